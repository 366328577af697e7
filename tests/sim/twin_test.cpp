// The SystemC twin of ts_top (sim/.../ts_top_model.h) alone, in the port-level testbench
// (ts_bench.h), on the generated parameter sets of sa4x4_ws (fixed:16), sa4x4_os (shift-only
// unit), sa8x8_ws and sa8x8_os: seeded random layers back to back (w_bits 2/4/8, fixed-point and
// power-of-two multipliers, partial last blocks and tiles), every output lane equal to the golden
// int_arith.h code (host::reference); the cycles the bench measures from the twin's handshakes
// equal to map::native_systolic_cycles of the same folds (the prediction being checked), and with
// random input gaps and out_ready_i low the extra cycles equal to the cycles stall_o is high.
// No Verilator: this runs in the sanitizer build too. tests/rtl/lockstep_test.cpp checks the twin
// against the Verilated RTL cycle by cycle. SystemC elaborates once per process: the benches of the
// selected tests run together (run_all), one test per bench, so ctest (one test per process)
// simulates each bench once. $TILESCALE_SEED sets the seed.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "support/selected_tests.h"
#include "support/ts_layers.h"
#include "tilescale/sim/ts_bench.h"
#include "tilescale/sim/ts_top_model.h"

namespace rtl = tilescale::rtl;
namespace sim = tilescale::sim;
using tilescale::sim::ParamsOf;
using tilescale::test::seed_note;
using tilescale::test::test_seed;

namespace {

using tilescale::test::kInGap;
using tilescale::test::kOutStall;

// One config: n layers with every beat offered at once and out_ready_i high, then n more with
// input gaps and out_ready_i low, back to back on one twin.
template <const rtl::RtlConfig& C>
struct TwinBench {
  using P = ParamsOf<C>;
  std::unique_ptr<sim::TopBench<P, sim::TsTopModel<P>>> bench;
  std::vector<int64_t> mapper;
  int n = 0;

  void build(int layers_per_half, uint64_t salt) {
    n = layers_per_half;
    const uint64_t seed = test_seed() ^ (salt * 0x9e3779b97f4a7c15ull);
    tilescale::test::RandomLayers a = tilescale::test::random_layers(C, n, seed, 0, 0);
    tilescale::test::RandomLayers b =
        tilescale::test::random_layers(C, n, seed + 1, kOutStall, kInGap);
    for (std::size_t i = 0; i < b.layers.size(); ++i) {
      b.layers[i].name += ", input gaps 25%, out_ready low 30%";
      a.layers.push_back(std::move(b.layers[i]));
      a.mapper.push_back(b.mapper[i]);
    }
    mapper = std::move(a.mapper);
    bench = std::make_unique<sim::TopBench<P, sim::TsTopModel<P>>>(std::string("twin_") + C.name,
                                                                   std::move(a.layers), seed);
  }

  void check(bool traffic) {
    SCOPED_TRACE(seed_note());
    SCOPED_TRACE(C.name);
    ASSERT_TRUE(bench->done()) << "the bench did not finish every layer";
    EXPECT_EQ(bench->extra_beats(), 0);
    const int first = traffic ? n : 0;
    int64_t outputs = 0, cycles = 0, stall_o = 0;
    for (int i = first; i < first + n; ++i) {
      const sim::BenchLayerResult& r = bench->results()[static_cast<std::size_t>(i)];
      const int64_t predicted = mapper[static_cast<std::size_t>(i)];
      SCOPED_TRACE("layer " + std::to_string(i) + ": " +
                   bench->layers()[static_cast<std::size_t>(i)].name);
      EXPECT_TRUE(r.done);
      EXPECT_EQ(r.outputs,
                static_cast<int64_t>(bench->layers()[static_cast<std::size_t>(i)].stim.out.size()));
      EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
      EXPECT_EQ(r.cycles, predicted + r.stall_o) << "mapper " << predicted << " + stall_o "
                                                 << r.stall_o << " (measured " << r.cycles << ")";
      if (!traffic) {
        EXPECT_EQ(r.stall_o, 0);
      }
      outputs += r.outputs;
      cycles += r.cycles;
      stall_o += r.stall_o;
      if (::testing::Test::HasFailure()) break;
    }
    if (traffic) {
      EXPECT_GT(stall_o, 0) << "gaps and out_ready_i low produced no stall";
    }
    EXPECT_GT(outputs, 0);
    std::cout << "twin " << C.name << (traffic ? " (gaps, out_ready low)" : "") << ": " << n
              << " random layers, " << outputs << " output beats, " << cycles << " cycles, "
              << stall_o << " stall cycles\n";
  }
};

// One bench per test; a process builds the benches of its selected tests only (ctest runs one test
// per process, so no bench is simulated twice), all before the first sc_start.
struct AllBenches {
  TwinBench<rtl::kSa4x4Ws> ws4;
  TwinBench<rtl::kSa4x4Os> os4;
  TwinBench<rtl::kSa8x8Ws> ws8;
  TwinBench<rtl::kSa8x8Os> os8;
  TwinBench<rtl::kSa4x4WsNarrow> narrow;  // 3 activation, 2 output lanes per beat
  bool done() const {
    return (!ws4.bench || ws4.bench->done()) && (!os4.bench || os4.bench->done()) &&
           (!ws8.bench || ws8.bench->done()) && (!os8.bench || os8.bench->done()) &&
           (!narrow.bench || narrow.bench->done());
  }
};

bool selected(const char* prefix) { return tilescale::test::any_selected("Twin", prefix); }

AllBenches& run_all() {
  static AllBenches* all = [] {
    auto* a = new AllBenches;  // lives to the end of the process, as SystemC's modules must
    if (selected("Ws4x4")) a->ws4.build(60, 11);
    if (selected("Os4x4")) a->os4.build(60, 12);
    if (selected("Ws8x8")) a->ws8.build(30, 13);
    if (selected("Os8x8")) a->os8.build(30, 14);
    if (selected("NarrowPorts")) a->narrow.build(60, 15);
    const sc_core::sc_time chunk(100000, sc_core::SC_NS);  // 10,000 cycles of 10 ns
    for (int i = 0; i < 1000 && !a->done(); ++i) sc_core::sc_start(chunk);
    return a;
  }();
  return *all;
}

// Each config: random layers golden in mapper cycles, then with input gaps and out_ready_i low
// exactly the cycles stall_o is high more.
TEST(Twin, Ws4x4RandomLayersGoldenInMapperCyclesGapsAndBackPressureAddTheStallCycles) {
  run_all().ws4.check(false);
  run_all().ws4.check(true);
}
TEST(Twin, Os4x4ShiftOnlyRandomLayersGoldenInMapperCyclesGapsAndBackPressureAddTheStallCycles) {
  run_all().os4.check(false);
  run_all().os4.check(true);
}
TEST(Twin, Ws8x8RandomLayersGoldenInMapperCyclesGapsAndBackPressureAddTheStallCycles) {
  run_all().ws8.check(false);
  run_all().ws8.check(true);
}
// Narrowed ports (sa4x4_ws_narrow: ifmap_bw 3, ofmap_bw 2): the mapper's port-limited cycles.
TEST(Twin, NarrowPortsRandomLayersGoldenInMapperCyclesGapsAndBackPressureAddTheStallCycles) {
  run_all().narrow.check(false);
  run_all().narrow.check(true);
}
TEST(Twin, Os8x8RandomLayersGoldenInMapperCyclesGapsAndBackPressureAddTheStallCycles) {
  run_all().os8.check(false);
  run_all().os8.check(true);
}

}  // namespace
