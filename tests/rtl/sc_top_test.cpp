// The Verilated ts_top inside SystemC (verilate(... SYSTEMC --pins-sc-uint)), driven by the
// sim library's testbench (ts_bench.h: host feeder, output collector, golden checker, cycle
// monitor) on the sa4x4_ws, sa4x4_os and sa8x8_ws parameter sets: seeded random layers back to
// back, every output lane equal to int_arith.h's golden code, the cycles the bench measures from
// its own handshakes equal to map::native_systolic_cycles of the mapper's folds (the prediction
// being checked), and with out_ready_i randomly low the extra cycles equal to the counted stalls.
// On sa8x8_ws also one image of each zoo network (W4A8 channelwise): every Conv/Gemm layer (all
// conv groups, pixel tiles where m > AccWords), bit-exact with the golden executor, in mapper
// cycles.
// SystemC elaborates once per process: the benches of the selected tests are built and run together
// (run_all); one test per bench, so ctest (one test per process) simulates each bench once.
// $TILESCALE_SEED sets the seed, else a fresh one; it is printed.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <systemc>
#include <vector>

#include "Vsc_sa4x4_os.h"
#include "Vsc_sa4x4_ws.h"
#include "Vsc_sa8x8_ws.h"
#include "support/selected_tests.h"
#include "support/ts_layers.h"
#include "support/zoo_w4a8.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/sim/network_sim.h"
#include "tilescale/sim/ts_bench.h"
#include "tilescale/sim/ts_job.h"
#include "tilescale/sim/ts_rtl_config.h"

namespace map = tilescale::map;
namespace host = tilescale::sim::host;
using tilescale::rtl::RtlConfig;
using tilescale::sim::arch_of;
using tilescale::sim::BenchLayer;
using tilescale::sim::BenchLayerResult;
using tilescale::sim::ParamsOf;
using tilescale::sim::TopBench;
using tilescale::test::seed_note;
using tilescale::test::test_seed;

namespace {

using tilescale::test::kOutStall;

// One config: n random layers with out_ready_i always high, then the same n layers with it low 30%
// of the cycles, back to back on one accelerator (state carries over, as in a network).
template <const RtlConfig& C, class Dut>
struct ConfigBench {
  std::unique_ptr<TopBench<ParamsOf<C>, Dut>> bench;
  std::vector<int64_t> mapper_cycles;  // per layer, map::native_systolic_cycles, cycles
  std::vector<std::string> what;       // per layer, the case
  int n = 0;                           // layers per half

  void build(int layers_per_half, uint64_t salt) {
    n = layers_per_half;
    tilescale::test::RandomLayers r =
        tilescale::test::random_layers(C, n, test_seed() ^ (salt * 0x9e3779b97f4a7c15ull), 0, 0);
    std::vector<BenchLayer>& layers = r.layers;
    mapper_cycles = r.mapper;
    for (const BenchLayer& l : layers) what.push_back(l.name);
    for (int i = 0; i < n; ++i) {
      BenchLayer b = layers[static_cast<std::size_t>(i)];
      b.out_stall = kOutStall;
      b.name += ", out_ready low 30%";
      layers.push_back(b);
      mapper_cycles.push_back(mapper_cycles[static_cast<std::size_t>(i)]);
      what.push_back(b.name);
    }
    // Last, a copy of layer 0 whose golden code of its first beat, lane 0, is off by one: the
    // checker must report exactly that lane (it is not a vacuous comparison).
    BenchLayer wrong = layers.front();
    wrong.stim.out.front().lane.front() += 1;
    wrong.name += ", golden lane perturbed";
    layers.push_back(wrong);
    mapper_cycles.push_back(mapper_cycles.front());
    what.push_back(wrong.name);
    bench =
        std::make_unique<TopBench<ParamsOf<C>, Dut>>(C.name, std::move(layers), test_seed() + salt);
  }

  // Checks layers [first, first + n): bit-exact, cycles == mapper + counted stalls.
  void check(bool back_pressure) {
    SCOPED_TRACE(seed_note());
    SCOPED_TRACE(C.name);
    ASSERT_TRUE(bench->done()) << "the bench did not finish every layer";
    EXPECT_EQ(bench->extra_beats(), 0);
    const int first = back_pressure ? n : 0;
    int64_t outputs = 0, cycles = 0, stalls = 0;
    for (int i = first; i < first + n; ++i) {
      const BenchLayerResult& r = bench->results()[static_cast<std::size_t>(i)];
      const int64_t mapper = mapper_cycles[static_cast<std::size_t>(i)];
      SCOPED_TRACE("layer " + std::to_string(i) + ": " + what[static_cast<std::size_t>(i)]);
      EXPECT_TRUE(r.done);
      EXPECT_EQ(r.outputs,
                static_cast<int64_t>(bench->layers()[static_cast<std::size_t>(i)].stim.out.size()));
      EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
      EXPECT_EQ(r.cycles, mapper + r.stalls)
          << "mapper " << mapper << " + stalls " << r.stalls << " (measured " << r.cycles << ")";
      EXPECT_EQ(r.stalls, r.stall_o) << "handshake stalls vs stall_o";
      if (!back_pressure) {
        EXPECT_EQ(r.stalls, 0);
      }
      outputs += r.outputs;
      cycles += r.cycles;
      stalls += r.stalls;
      if (::testing::Test::HasFailure()) break;
    }
    if (back_pressure) {
      EXPECT_GT(stalls, 0) << "out_ready_i toggling produced no stall";
    }
    EXPECT_GT(outputs, 0);
    std::cout << C.name << (back_pressure ? " (out_ready low 30%)" : "") << ": " << n
              << " random layers, " << outputs << " output beats, " << cycles << " cycles, "
              << stalls << " stalls\n";
  }
  // The perturbed layer: one mismatch, named with its layer, fold, pixel and channel.
  void check_perturbed() {
    SCOPED_TRACE(seed_note());
    SCOPED_TRACE(C.name);
    ASSERT_TRUE(bench->done());
    const BenchLayerResult& r = bench->results()[static_cast<std::size_t>(2 * n)];
    const host::OutBeat& e = bench->layers()[static_cast<std::size_t>(2 * n)].stim.out.front();
    EXPECT_EQ(r.mismatches, 1);
    const std::string where = "layer " + std::to_string(2 * n) + " (";
    EXPECT_EQ(r.first_mismatch.rfind(where, 0), 0u) << r.first_mismatch;
    const std::string at = "fold " + std::to_string(e.fold) + " pixel " + std::to_string(e.pixel0) +
                           " channel " + std::to_string(e.n0) + " (beat 0, cycle ";
    EXPECT_NE(r.first_mismatch.find(at), std::string::npos) << r.first_mismatch;
    EXPECT_EQ(r.cycles, mapper_cycles.back());
  }
};

// Zoo layers on sa8x8_ws: one image of each zoo network (W4A8, channelwise, min-max), every
// Conv/Gemm layer with all its conv groups as one ts_top layer (host::make_group_stimulus; layers
// with more pixels than AccWords = 341 run in pixel tiles), fed from the golden executor's input
// codes, checked against its output codes, cycles against the mapper on the layer's workload.
struct ZooBench {
  static constexpr const RtlConfig& C = tilescale::rtl::kSa8x8Ws;
  std::unique_ptr<TopBench<ParamsOf<C>, Vsc_sa8x8_ws>> bench;
  std::vector<int64_t> mapper_cycles;  // per bench layer, cycles
  std::vector<int64_t> golden_diff;    // per bench layer: host::reference lanes != executor's
  int64_t tiled = 0;                   // conv groups with more pixels than AccWords

  void build() {
    namespace quant = tilescale::quant;
    const host::Arch A = arch_of(C);
    const map::ArchConfig arch =
        map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/" + C.source);
    std::mt19937_64 junk(test_seed() ^ 0x2545f4914f6cdd1dull);
    std::vector<BenchLayer> layers;
    for (const auto& [net, ds] : {std::pair<std::string, std::string>{"lenet5_mnist", "mnist"},
                                  {"resnet8_fmnist", "fmnist"},
                                  {"mobilenet_fmnist", "fmnist"}}) {
      const quant::QuantizedModel model = tilescale::test::quantize_w4a8(net, ds, "channel");
      const tilescale::Dataset test =
          tilescale::load_named(ds, "test", tilescale::default_data_dir());
      std::vector<float> input(static_cast<std::size_t>(test.image_size()));
      test.fill_batch(0, 1, input.data());
      quant::IntExecutor golden(model, 1);
      const auto codes = golden.run_codes(input.data(), 1);
      for (std::size_t l = 0; l < model.layers.size(); ++l) {
        const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(model.layers[l].op)];
        const tilescale::sim::GemmJob job = tilescale::sim::make_gemm_job(
            model, l, codes[static_cast<std::size_t>(op.inputs[0])].data(),
            codes[static_cast<std::size_t>(op.output)].data());
        const std::vector<host::GemmLayer> groups = tilescale::sim::host_layers(job);
        // All conv groups in one ts_top layer, pixel tiles of at most AccWords pixels.
        BenchLayer b;
        b.stim = host::make_group_stimulus(groups, A, host::Align::Strict, C.act_bits,
                                           C.weight_bits, junk);
        b.name = net + " " + job.layer.name + " (" + std::to_string(groups.size()) + " groups, m " +
                 std::to_string(job.layer.m) + ")";
        // The bench checks against host::reference; it must be the executor's output.
        int64_t diff = 0;
        for (std::size_t g = 0; g < groups.size(); ++g) {
          const std::vector<int64_t> ref = host::reference(groups[g]);
          const int64_t base = static_cast<int64_t>(g) * groups[g].n * groups[g].m;
          for (std::size_t i = 0; i < ref.size(); ++i)
            diff += ref[i] != job.expected[static_cast<std::size_t>(base) + i];
          tiled += groups[g].m > A.acc_words;
        }
        golden_diff.push_back(diff);
        layers.push_back(b);
        mapper_cycles.push_back(map::native_systolic_cycles(
                                    map::systolic_folds(job.layer, arch, map::Align::Strict), arch)
                                    .stall_free_cycles);
      }
    }
    bench = std::make_unique<TopBench<ParamsOf<C>, Vsc_sa8x8_ws>>("zoo_sa8x8_ws", std::move(layers),
                                                                  test_seed() + 4);
  }
};

// One bench per test; a process builds the benches of its selected tests only, all before the
// first sc_start, and runs them together until every layer is done (or a watchdog).
struct AllBenches {
  ConfigBench<tilescale::rtl::kSa4x4Ws, Vsc_sa4x4_ws> ws4;
  ConfigBench<tilescale::rtl::kSa4x4Os, Vsc_sa4x4_os> os4;
  ConfigBench<tilescale::rtl::kSa8x8Ws, Vsc_sa8x8_ws> ws8;
  ZooBench zoo;
  bool done() const {
    return (!ws4.bench || ws4.bench->done()) && (!os4.bench || os4.bench->done()) &&
           (!ws8.bench || ws8.bench->done()) && (!zoo.bench || zoo.bench->done());
  }
};

bool selected(const char* prefix) { return tilescale::test::any_selected("ScTop", prefix); }

AllBenches& run_all() {
  static AllBenches* all = [] {
    auto* a = new AllBenches;  // lives to the end of the process, as SystemC's modules must
    if (selected("Ws4x4")) a->ws4.build(300, 1);
    if (selected("Os4x4")) a->os4.build(300, 2);
    if (selected("Ws8x8")) a->ws8.build(150, 3);
    if (selected("Zoo")) a->zoo.build();
    const sc_core::sc_time chunk(100000, sc_core::SC_NS);  // 10,000 cycles of 10 ns
    for (int i = 0; i < 1000 && !a->done(); ++i) sc_core::sc_start(chunk);
    return a;
  }();
  return *all;
}

// Each config: random layers bit-exact in mapper cycles; the same layers with out_ready_i low 30%
// of the cycles take exactly the counted stalls more; a perturbed golden lane is reported with its
// place (the checker is not vacuous).
TEST(ScTop, Ws4x4RandomLayersGoldenInMapperCyclesOutReadyToggleAddsTheCountedStalls) {
  run_all().ws4.check(false);
  run_all().ws4.check(true);
  run_all().ws4.check_perturbed();
}
TEST(ScTop, Os4x4RandomLayersGoldenInMapperCyclesOutReadyToggleAddsTheCountedStalls) {
  run_all().os4.check(false);
  run_all().os4.check(true);
  run_all().os4.check_perturbed();
}
TEST(ScTop, Ws8x8RandomLayersGoldenInMapperCyclesOutReadyToggleAddsTheCountedStalls) {
  run_all().ws8.check(false);
  run_all().ws8.check(true);
  run_all().ws8.check_perturbed();
}

TEST(ScTop, ZooLayersOfOneImageOnSa8x8WsMatchTheExecutorInMapperCycles) {
  ZooBench& z = run_all().zoo;
  ASSERT_NE(z.bench, nullptr);
  SCOPED_TRACE(seed_note());
  ASSERT_TRUE(z.bench->done());
  int64_t outputs = 0, cycles = 0;
  for (std::size_t i = 0; i < z.bench->layers().size(); ++i) {
    const BenchLayerResult& r = z.bench->results()[i];
    SCOPED_TRACE(z.bench->layers()[i].name);
    EXPECT_EQ(z.golden_diff[i], 0) << "host::reference differs from the golden executor";
    EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
    EXPECT_EQ(r.outputs, static_cast<int64_t>(z.bench->layers()[i].stim.out.size()));
    EXPECT_EQ(r.cycles, z.mapper_cycles[i]);
    EXPECT_EQ(r.stalls, 0);
    outputs += r.outputs;
    cycles += r.cycles;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(z.bench->layers().size(), 0u);
  EXPECT_GT(z.tiled, 0) << "no conv group needed pixel tiles";
  std::cout << "zoo on sa8x8_ws: " << z.bench->layers().size() << " layers run, " << z.tiled
            << " conv groups in pixel tiles (more pixels than AccWords), " << outputs
            << " output beats, " << cycles << " cycles\n";
}

}  // namespace
