// The RTL's contract against the mapper, without Verilating anything: the generated RTL parameter
// sets equal what map::ArchConfig reads from the same configs/*.json; the host's fold list
// (ts_host.h, what the Verilated tests feed ts_top) equals map::systolic_folds; and the cycle
// formula the RTL is measured against equals map::native_systolic_cycles. Together with
// rtl_top_tests (RTL cycles == ts_host.h's formula) this makes RTL cycles == mapper cycles.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <string>

#include "support/test_seed.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"
#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_rtl_config.h"

namespace map = tilescale::map;
using namespace tilescale::rtl;
using namespace tilescale::sim::host;
using tilescale::sim::arch_of;

using tilescale::test::test_seed;

namespace {

map::ArchConfig arch_config(const RtlConfig& c) {
  return map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/" + c.source);
}

TEST(RtlContract, GeneratedParametersEqualArchConfig) {
  for (const RtlConfig& c : kRtlConfigs) {
    SCOPED_TRACE(c.name);
    const map::ArchConfig a = arch_config(c);
    EXPECT_EQ(a.name, c.name);
    EXPECT_EQ(a.kind, map::ArchKind::Systolic);
    EXPECT_EQ(a.rows, c.rows);
    EXPECT_EQ(a.cols, c.cols);
    EXPECT_EQ(a.dataflow == map::Dataflow::OS ? 1 : 0, c.dataflow);
    EXPECT_NE(a.dataflow, map::Dataflow::IS);
    EXPECT_EQ(a.act_bits, c.act_bits);
    EXPECT_EQ(a.weight_bits, c.weight_bits);
    EXPECT_EQ(a.acc_bits, c.acc_bits);
    EXPECT_EQ(a.scale_unit.kind == map::ScaleUnitKind::Shift ? 1 : 0, c.scale_kind);
    EXPECT_EQ(a.scale_unit.mant_bits, c.mant_bits);
    EXPECT_EQ(a.scale_regs_per_tile, c.regs_per_bank);
    EXPECT_EQ(map::scale_register_banks(a.rows, a.cols, a.dataflow), c.scale_banks);
    // Accumulator words: os one per row of the tile; ws the ofmap SRAM's share of a column.
    const int words = a.dataflow == map::Dataflow::OS ? a.rows
                                                      : static_cast<int>(a.ofmap_sram_kib * 8192) /
                                                            (a.cols * (a.acc_bits + c.wide_bits));
    EXPECT_EQ(words, c.acc_words);
    EXPECT_EQ(map::accumulator_words(a), c.acc_words);
    // Lanes per beat: the SRAM port widths, at most a row (0: unlimited).
    EXPECT_EQ(a.ifmap_bw > 0 ? std::min(a.ifmap_bw, a.rows) : a.rows, c.act_lanes);
    EXPECT_EQ(a.ofmap_bw > 0 ? std::min(a.ofmap_bw, a.cols) : a.cols, c.out_lanes);
  }
}

TEST(RtlContract, EverySystolicConfigHasAnRtlParameterSet) {
  std::set<std::string> built;
  for (const RtlConfig& c : kRtlConfigs) built.insert(c.name);
  int systolic = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(TILESCALE_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".json") continue;
    const map::ArchConfig a = map::ArchConfig::parse_file(e.path().string());
    if (a.kind != map::ArchKind::Systolic || a.dataflow == map::Dataflow::IS ||
        a.scale_unit.kind == map::ScaleUnitKind::None)
      continue;
    ++systolic;
    EXPECT_TRUE(built.count(a.name)) << a.name << " has no generated RTL parameters";
  }
  EXPECT_EQ(systolic, static_cast<int>(built.size()));
}

map::LayerWorkload workload_of(const GemmLayer& L, int a_bits, int w_bits) {
  map::LayerWorkload w;
  w.name = "random";
  w.is_conv = false;
  w.groups = 1;
  w.m = L.m;
  w.n = L.n;
  w.k = L.k;
  w.kernel = 1;
  w.cin_g = L.k;
  w.w_bits = w_bits;
  w.a_bits = a_bits;
  w.act_signed = L.act_signed;
  w.out_group = L.out_group;
  w.red_group = L.red_group;
  w.out_groups = L.out_groups;
  w.red_groups = L.red_groups;
  w.granularity = "random";
  return w;
}

// The host's folds are the mapper's, field by field, and the RTL's documented cycle formula is the
// mapper's native model (with the config's port widths), on every config with an RTL parameter
// set.
TEST(RtlContract, HostFoldsAndCycleFormulaEqualTheMapper) {
  std::mt19937_64 rng(test_seed());
  int layers = 0;
  for (const RtlConfig& c : kRtlConfigs) {
    SCOPED_TRACE(c.name);
    const map::ArchConfig arch = arch_config(c);
    const Arch A = arch_of(c);
    for (int i = 0; i < 150; ++i) {
      const LayerCase lc = random_layer(rng, A, c.act_bits);
      SCOPED_TRACE(lc.str());
      const std::vector<Fold> host = make_folds(lc.layer, A, lc.align);
      const std::vector<map::SystolicFold> mf =
          map::systolic_folds(workload_of(lc.layer, lc.a_bits, lc.w_bits), arch,
                              lc.align == Align::Strict ? map::Align::Strict : map::Align::Pad);
      ASSERT_EQ(host.size(), mf.size());
      for (std::size_t f = 0; f < mf.size(); ++f) {
        SCOPED_TRACE("fold " + std::to_string(f));
        const Fold& h = host[f];
        const map::SystolicFold& m = mf[f];
        EXPECT_EQ(h.m0, m.m0);
        EXPECT_EQ(h.m_len, m.m_len);
        EXPECT_EQ(h.n0, m.n0);
        EXPECT_EQ(h.n_len, m.n_len);
        EXPECT_EQ(A.os ? -1 : h.ks.front(), m.k.k0);
        EXPECT_EQ(static_cast<int64_t>(h.ks.size()), m.k.length);
        EXPECT_EQ(h.red_group, m.k.red_group);
        EXPECT_EQ(h.group_end, m.k.group_end);
        EXPECT_EQ(h.rows_used, m.rows_used);
        EXPECT_EQ(h.cols_used, m.cols_used);
        EXPECT_EQ(h.stream, m.stream);
        EXPECT_EQ(static_cast<int64_t>(h.reg_block.size()), m.blocks);
        EXPECT_EQ(h.scale_loads, m.scale_loads);
        EXPECT_EQ(h.output_end, m.output_end);
      }
      EXPECT_EQ(expected_cycles(host, A), map::native_systolic_cycles(mf, arch).cycles);
      ++layers;
      if (::testing::Test::HasFailure()) return;
    }
  }
  std::cout << layers << " random layers: folds and cycles equal the mapper's\n";
}

}  // namespace
