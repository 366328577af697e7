// The Verilated ts_top inside SystemC (verilate(... SYSTEMC --pins-sc-uint)), driven by the
// sim library's testbench (ts_bench.h: host feeder, output collector, golden checker, cycle
// monitor) on the sa4x4_ws, sa4x4_os and sa8x8_ws parameter sets: seeded random layers back to
// back, every output lane equal to int_arith.h's golden code, the cycles the bench measures from
// its own handshakes equal to map::native_systolic_cycles of the mapper's folds (the prediction
// being checked), and with out_ready_i randomly low the extra cycles equal to the counted stalls.
// On sa8x8_ws also one image of each zoo network (W4A8 channelwise): every Conv/Gemm layer (all
// conv groups, pixel tiles where m > AccWords), bit-exact with the golden executor, in mapper
// cycles.
// SystemC elaborates once per process, so the three benches are built and run once (run_all) and
// each test checks its part. $TILESCALE_SEED sets the seed, else a fresh one; it is printed.
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
#include "tilescale_rtl_configs.h"

namespace map = tilescale::map;
namespace host = tilescale::sim::host;
using tilescale::rtl::RtlConfig;
using tilescale::sim::BenchLayer;
using tilescale::sim::BenchLayerResult;
using tilescale::sim::TopBench;
using tilescale::sim::TopShape;

namespace {

uint64_t test_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("TILESCALE_SEED");
    const uint64_t s = env != nullptr ? std::strtoull(env, nullptr, 0) : std::random_device{}();
    std::cout << "TILESCALE_SEED=" << s << " (set it to rerun with this seed)\n";
    return s;
  }();
  return seed;
}
std::string seed_note() { return "TILESCALE_SEED=" + std::to_string(test_seed()); }

host::Arch arch_of(const RtlConfig& c) {
  host::Arch a;
  a.rows = c.rows;
  a.cols = c.cols;
  a.os = c.dataflow == 1;
  a.regs = c.regs_per_bank;
  a.acc_words = c.acc_words;
  a.mant_bits = c.mant_bits;
  a.wide_bits = c.wide_bits;
  return a;
}

map::LayerWorkload workload_of(const host::GemmLayer& L, int a_bits, int w_bits) {
  map::LayerWorkload w;
  w.name = "random";
  w.is_conv = false;
  w.m = L.m;
  w.n = L.n;
  w.k = L.k;
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

template <const RtlConfig& C>
using ShapeOf =
    TopShape<C.rows, C.cols, C.act_bits, C.weight_bits, C.mant_bits, C.regs_per_bank, C.wide_bits>;

constexpr double kOutStall = 0.3;  // probability that out_ready_i is low in a back-pressure cycle

// One config: n random layers with out_ready_i always high, then the same n layers with it low 30%
// of the cycles, back to back on one accelerator (state carries over, as in a network).
template <const RtlConfig& C, class Dut>
struct ConfigBench {
  std::unique_ptr<TopBench<ShapeOf<C>, Dut>> bench;
  std::vector<int64_t> mapper_cycles;  // per layer, map::native_systolic_cycles, cycles
  std::vector<std::string> what;       // per layer, the case
  int n = 0;                           // layers per half

  void build(int layers_per_half, uint64_t salt) {
    n = layers_per_half;
    std::mt19937_64 rng(test_seed() ^ (salt * 0x9e3779b97f4a7c15ull));
    const host::Arch A = arch_of(C);
    const map::ArchConfig arch =
        map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/" + C.source);
    std::vector<BenchLayer> layers;
    while (static_cast<int>(layers.size()) < n) {
      const host::LayerCase lc = host::random_layer(rng, A, C.act_bits);
      if (lc.layer.frac_bits < 0 || lc.layer.frac_bits > 63) continue;  // not a 6-bit F
      const std::vector<host::Fold> folds = host::make_folds(lc.layer, A, lc.align);
      BenchLayer b;
      b.stim = host::make_stimulus(lc.layer, A, folds, C.act_bits, C.weight_bits, rng);
      b.name = lc.str();
      layers.push_back(b);
      const std::vector<map::SystolicFold> mf = map::systolic_folds(
          workload_of(lc.layer, lc.a_bits, lc.w_bits), arch,
          lc.align == host::Align::Strict ? map::Align::Strict : map::Align::Pad);
      mapper_cycles.push_back(map::native_systolic_cycles(mf, arch).stall_free_cycles);
      what.push_back(lc.str());
    }
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
        std::make_unique<TopBench<ShapeOf<C>, Dut>>(C.name, std::move(layers), test_seed() + salt);
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
  std::unique_ptr<TopBench<ShapeOf<C>, Vsc_sa8x8_ws>> bench;
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
      quant::QuantOptions o;
      o.granularity = quant::Granularity::parse("channel");
      o.w_bits = 4;
      o.a_bits = 8;
      o.first_last_bits = 8;
      o.search = quant::SearchMethod::Minmax;
      o.calib_images = 8;
      o.seed = 1;
      const tilescale::Dataset train =
          tilescale::load_named(ds, "train", tilescale::default_data_dir());
      const tilescale::Dataset test =
          tilescale::load_named(ds, "test", tilescale::default_data_dir());
      const quant::QuantizedModel model =
          quant::quantize(tilescale::model::import_onnx(std::string(TILESCALE_SOURCE_DIR) +
                                                        "/models/" + net + ".onnx"),
                          o, train);
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
    bench = std::make_unique<TopBench<ShapeOf<C>, Vsc_sa8x8_ws>>("zoo_sa8x8_ws", std::move(layers),
                                                                 test_seed() + 4);
  }
};

struct AllBenches {
  ConfigBench<tilescale::rtl::kSa4x4Ws, Vsc_sa4x4_ws> ws4;
  ConfigBench<tilescale::rtl::kSa4x4Os, Vsc_sa4x4_os> os4;
  ConfigBench<tilescale::rtl::kSa8x8Ws, Vsc_sa8x8_ws> ws8;
  ZooBench zoo;
};

// Elaborates the three benches and runs them together until every layer is done (or a watchdog).
AllBenches& run_all() {
  static AllBenches* all = [] {
    auto* a = new AllBenches;  // lives to the end of the process, as SystemC's modules must
    a->ws4.build(300, 1);
    a->os4.build(300, 2);
    a->ws8.build(150, 3);
    a->zoo.build();
    const sc_core::sc_time chunk(100000, sc_core::SC_NS);  // 10,000 cycles of 10 ns
    for (int i = 0; i < 1000; ++i) {
      sc_core::sc_start(chunk);
      if (a->ws4.bench->done() && a->os4.bench->done() && a->ws8.bench->done() &&
          a->zoo.bench->done())
        break;
    }
    return a;
  }();
  return *all;
}

TEST(ScTop, Ws4x4RandomLayersMatchGoldenInMapperCycles) { run_all().ws4.check(false); }
TEST(ScTop, Os4x4RandomLayersMatchGoldenInMapperCycles) { run_all().os4.check(false); }
TEST(ScTop, Ws8x8RandomLayersMatchGoldenInMapperCycles) { run_all().ws8.check(false); }
TEST(ScTop, Ws4x4OutReadyToggleAddsExactlyTheCountedStalls) { run_all().ws4.check(true); }
TEST(ScTop, Os4x4OutReadyToggleAddsExactlyTheCountedStalls) { run_all().os4.check(true); }
TEST(ScTop, Ws8x8OutReadyToggleAddsExactlyTheCountedStalls) { run_all().ws8.check(true); }
TEST(ScTop, GoldenCheckerReportsAPerturbedLaneWithItsPlace) {
  run_all().ws4.check_perturbed();
  run_all().os4.check_perturbed();
  run_all().ws8.check_perturbed();
}

TEST(ScTop, ZooLayersOfOneImageOnSa8x8WsMatchTheExecutorInMapperCycles) {
  ZooBench& z = run_all().zoo;
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
