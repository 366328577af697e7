// The Verilated rtl/ts_shift_add.sv inside the SystemC CIM macro (sim/cim.h, cim_shift_add.h):
// one Verilated instance per lane (crossbar slot x channel), clocked in the macro's cycle in which
// the lane's ADC codes are complete, its sum handed on to the macro's scale unit and compared with
// the macro's own shift-add of the same codes term by term. Seeded random layers against
// quant/adc.h's rule (cim_tile_sum_reference), every layer of resnet8 for one image on cim128_2b
// against the ADC-aware golden executor, and a shift-add that ignores the sign of a signed input's
// top bit caught on the first term that differs.
#include <gtest/gtest.h>
#include <verilated.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "Vsa_lanes2.h"
#include "Vsa_lanes4.h"
#include "support/cim_jobs.h"
#include "support/test_seed.h"
#include "support/zoo_w4a8.h"
#include "tilescale/quant/adc.h"
#include "tilescale/sim/cim.h"
#include "tilescale/sim/cim_shift_add.h"
#include "tilescale/sim/network_sim.h"

namespace tilescale::sim {
namespace {

// The Verilations' parameters (tests/rtl/CMakeLists.txt): AdcBits 9 holds a 128-row column sum
// of 2-bit cells (384), CellBits 2, AccBits 32, ActBits 8, CountBits 8.
constexpr int kAdcBits = 9;
constexpr int kCellBits = 2;
constexpr int kCountBits = 8;

// One Verilated ts_shift_add per lane, created and reset on first use.
template <typename V>
class Lanes {
 public:
  explicit Lanes(VerilatedContext* ctx) : ctx_(ctx) {}
  int64_t add(const CimShiftAddTerm& t, bool ignore_sign) {
    V& m = lane(t.lane);
    uint64_t packed = 0;
    for (int s = 0; s < t.slices; ++s) {
      const int64_t c = t.code[static_cast<std::size_t>(s)];
      if (c < 0 || c >= (int64_t{1} << kAdcBits))
        throw std::invalid_argument("ADC level " + std::to_string(c) + " does not fit AdcBits");
      packed |= static_cast<uint64_t>(c) << (s * kAdcBits);
    }
    if (t.row_count >= (int64_t{1} << kCountBits))
      throw std::invalid_argument("row count " + std::to_string(t.row_count) + " too wide");
    m.adc_i = packed;
    m.valid_i = 1;
    m.clear_i = t.clear;
    m.row_count_i = static_cast<uint32_t>(t.row_count);
    m.bit_pos_i = static_cast<uint32_t>(t.bit_pos);
    m.bit_neg_i = t.negative && !ignore_sign;
    m.clk_i = 0;
    m.eval();
    m.clk_i = 1;  // the register takes the term on this edge
    m.eval();
    m.valid_i = 0;
    return static_cast<int32_t>(m.acc_o);  // AccBits = 32, two's complement
  }

 private:
  V& lane(int64_t i) {
    if (static_cast<std::size_t>(i) >= lanes_.size())
      lanes_.resize(static_cast<std::size_t>(i) + 1);
    std::unique_ptr<V>& m = lanes_[static_cast<std::size_t>(i)];
    if (!m) {
      m = std::make_unique<V>(ctx_);
      m->clk_i = 0;
      m->rst_ni = 0;
      m->valid_i = 0;
      m->eval();
      m->rst_ni = 1;
      m->eval();
    }
    return *m;
  }
  VerilatedContext* ctx_;
  std::vector<std::unique_ptr<V>> lanes_;
};

// The CIM shift-add hook served by the Verilated module: 2 slices (W3/W4 weights on 2-bit cells)
// or 4 (W5..W8).
class VerilatedShiftAdd : public CimShiftAddUnit {
 public:
  explicit VerilatedShiftAdd(bool ignore_sign = false) : ignore_sign_(ignore_sign) {}
  int64_t add(const CimShiftAddTerm& t) override {
    ++terms;
    if (t.cell_bits != kCellBits)
      throw std::invalid_argument("no Verilated ts_shift_add for " + std::to_string(t.cell_bits) +
                                  "-bit cells");
    if (t.slices == 2) return two_.add(t, ignore_sign_);
    if (t.slices == 4) return four_.add(t, ignore_sign_);
    throw std::invalid_argument("no Verilated ts_shift_add with " + std::to_string(t.slices) +
                                " slices");
  }
  int64_t terms = 0;

 private:
  bool ignore_sign_;
  VerilatedContext ctx_;
  Lanes<Vsa_lanes2> two_{&ctx_};
  Lanes<Vsa_lanes4> four_{&ctx_};
};

// Detaches the hook when a test ends, pass or fail (the macro is process-wide).
struct UnitAttached {
  explicit UnitAttached(CimShiftAddUnit* u) { CimSim::instance().set_shift_add_unit(u); }
  ~UnitAttached() { CimSim::instance().set_shift_add_unit(nullptr); }
};

// Terms the macro must hand the unit: every channel of every crossbar, pixel and input step.
int64_t expected_terms(const GemmJob& job, const map::ArchConfig& arch) {
  const map::LayerWorkload& L = job.layer;
  const auto tiles = quant::crossbar_row_tiles(L.red_group, arch.xbar_rows);
  const auto steps = quant::input_steps(L.a_bits, L.act_signed, arch.input_bits_per_cycle);
  return L.groups * L.n * static_cast<int64_t>(tiles.size()) * L.m *
         static_cast<int64_t>(steps.size());
}

struct Case {
  int64_t groups, m, n, k, bo, bi;
  int w_bits, a_bits;
  bool a_signed, keep_acc;
  int rows, cols, adc_bits, cols_per_adc, macros;
  quant::AdcRange range;
};

TEST(CimShiftAddLockstep, RandomLayersBitExactWithTheVerilatedShiftAddInside) {
  using quant::AdcRange;
  const Case cases[] = {
      // W4 (2 slices), clipping 4-bit ADCs shared by 4 columns, one round
      {1, 5, 6, 40, 3, 40, 4, 8, false, false, 32, 32, 4, 4, 4, AdcRange::Clip},
      // W8 (4 slices), signed inputs, blocks along the reduction, several rounds
      {1, 4, 10, 50, 5, 10, 8, 8, true, false, 16, 16, 5, 2, 2, AdcRange::Clip},
      // W3 (2 slices), conv groups, full-scale rule (ADC LSB > 1), raw accumulators out
      {3, 3, 5, 60, 5, 60, 3, 6, false, true, 64, 16, 4, 8, 4, AdcRange::Rows},
      // W4 on cim128_2b's geometry, signed inputs, one ADC per column, lossless 9-bit ADCs
      {1, 3, 8, 200, 8, 200, 4, 8, true, false, 128, 128, 9, 1, 4, AdcRange::Clip},
  };
  const uint64_t seed = test::test_seed();
  std::mt19937 gen(static_cast<uint32_t>(seed));
  int idx = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE("case " + std::to_string(idx++) + ", " + test::seed_note());
    const map::ArchConfig arch =
        test::cim_arch(c.rows, c.cols, kCellBits, c.adc_bits, c.cols_per_adc, 1, c.macros, c.range);
    GemmJob job = test::random_job(gen, c.groups, c.m, c.n, c.k, c.bo, c.bi, c.w_bits, c.a_bits,
                                   c.a_signed, c.keep_acc);
    job.expected = test::expected_codes(job, arch.cim_numerics());
    const CimLayerRun alone = CimSim::instance().run(job, arch, SimOptions{});
    VerilatedShiftAdd unit;
    CimLayerRun with;
    {
      UnitAttached attached(&unit);
      with = CimSim::instance().run(job, arch, SimOptions{});
    }
    EXPECT_EQ(with.run.mismatches, 0) << with.run.first_mismatch.str();
    EXPECT_EQ(with.run.output, job.expected);
    EXPECT_EQ(unit.terms, expected_terms(job, arch));
    // The hook changes neither the timing nor the counted events.
    EXPECT_EQ(with.run.cycles, alone.run.cycles);
    EXPECT_EQ(map::to_json(with.events).dump(), map::to_json(alone.events).dump());
  }
}

// Every layer of resnet8 (W4A8 block:16x16; first and last layer 8-bit, so both Verilations)
// for one image on cim128_2b, the Verilated shift-add inside, against the ADC-aware golden
// executor.
TEST(CimShiftAddLockstep, Resnet8EveryLayerOfOneImageOnCim128) {
  const map::ArchConfig arch =
      map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/configs/cim128_2b.json");
  const quant::QuantizedModel q = test::quantize_w4a8("resnet8_fmnist", "fmnist", "block:16x16");
  const Dataset test = load_named("fmnist", "test", default_data_dir());
  SimOptions opt;
  opt.align = map::Align::Pad;
  VerilatedShiftAdd unit;
  UnitAttached attached(&unit);
  const NetworkRun run = simulate_network_cim(q, arch, test, 1, opt);
  EXPECT_EQ(run.mismatches, 0) << run.first_mismatch;
  EXPECT_GT(unit.terms, 0);
  for (const LayerTotals& l : run.layers) EXPECT_EQ(l.cycles, l.native_cycles) << l.name;
}

// A shift-add that adds a signed input's top bit instead of subtracting it (bit_neg_i tied low):
// the macro stops at the first term that differs, naming it.
TEST(CimShiftAddLockstep, SignIgnoringShiftAddIsCaught) {
  std::mt19937 gen(static_cast<uint32_t>(test::test_seed()));
  const map::ArchConfig arch = test::cim_arch(32, 32, kCellBits, 9, 4, 1, 4, quant::AdcRange::Clip);
  GemmJob job = test::random_job(gen, 1, 4, 6, 30, 6, 30, 4, 8, true, false);
  // Every input negative, so the sign step has a set bit on every row.
  for (int32_t& a : job.act) a = a < 0 ? a : -1 - a;
  job.expected = test::expected_codes(job, arch.cim_numerics());
  VerilatedShiftAdd faulty(/*ignore_sign=*/true);
  UnitAttached attached(&faulty);
  try {
    CimSim::instance().run(job, arch, SimOptions{});
    FAIL() << "the sign-ignoring shift-add was not caught (" << test::seed_note() << ")";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("shift-add unit lane"), std::string::npos) << e.what();
    std::cout << "caught: " << e.what() << "\n";
  }
}

}  // namespace
}  // namespace tilescale::sim
