// The Verilated ts_top (SystemC, --pins-sc-uint) and its SystemC twin TsTopModel
// (sim/.../ts_top_model.h) in lockstep (sim/.../ts_lockstep.h): one feeder drives both with the
// same beats, one collector drives both out_ready_i, and every cycle every output port of the twin
// must equal the RTL's (readies, out_valid_o, busy_o, stall_o, and with a beat its mask, last flag
// and lanes). On top, each model's beats are checked against the golden numerics and each model's
// cycles, measured from its own handshakes, against the mapper's prediction.
//   - seeded random layers on sa4x4_ws, sa4x4_os (shift-only unit) and sa8x8_ws: fixed-point and
//     power-of-two multipliers, w_bits 2/4/8, partial last blocks and tiles, first with every beat
//     offered at once, then with random input gaps and out_ready_i low;
//   - one image of each zoo network at W4A8 (lenet5 layer-wise, resnet8 and mobilenet block:16x16)
//     on sa8x8_ws: every conv group (in pixel tiles where its output pixels exceed AccWords);
//   - a too-narrow accumulator: sa4x4_ws with AccBits = 16 (what `simulate --allow-narrow-acc`,
//     test only, lets through): random 8-bit logits layers whose sums leave 16 bits wrap, and the
//     twin wraps exactly as the RTL does (lockstep equal) while both differ from the golden
//     numerics;
//   - a wrong rounding rule: the same Verilation (Vsc_sa4x4_ws_faulty) rounds requantizer ties half
//     to even (FaultRoundEven): on small layers full of ties, the lockstep and the golden check
//     report it, while the same layers on the correct sa4x4_ws show no difference at all.
// SystemC elaborates once per process: the benches of the selected tests are built and run
// together (run_all); one test per bench, so ctest (one test per process) simulates each once.
// $TILESCALE_SEED sets the seed.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <systemc>
#include <vector>

#include "Vsc_sa4x4_os.h"
#include "Vsc_sa4x4_ws.h"
#include "Vsc_sa4x4_ws_faulty.h"
#include "Vsc_sa4x4_ws_narrow.h"
#include "Vsc_sa8x8_ws.h"
#include "support/selected_tests.h"
#include "support/ts_layers.h"
#include "support/zoo_w4a8.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/sim/network_sim.h"
#include "tilescale/sim/ts_job.h"
#include "tilescale/sim/ts_lockstep.h"
#include "tilescale/sim/ts_top_model.h"

namespace map = tilescale::map;
namespace host = tilescale::sim::host;
namespace rtl = tilescale::rtl;
namespace sim = tilescale::sim;
namespace quant = tilescale::quant;
using tilescale::sim::ParamsOf;
using tilescale::test::seed_note;
using tilescale::test::test_seed;

namespace {

using tilescale::test::kInGap;
using tilescale::test::kOutStall;

// sa4x4_ws with a 16-bit accumulator, as Vsc_sa4x4_ws_faulty is Verilated (its other fault,
// FaultRoundEven, has no twin: the twin is the correct design).
constexpr rtl::RtlConfig kAcc16 = [] {
  rtl::RtlConfig c = rtl::kSa4x4Ws;
  c.name = "sa4x4_ws_acc16";
  c.acc_bits = 16;
  return c;
}();

// Small layers (|column sums| < 2^15, so 16-bit registers never wrap) whose requantizer sees many
// ties: every block multiplier is 1/2 (m = 1, r = 1), F = 1, so each odd accumulator is a tie;
// half to even differs from half up on the ties whose floor is even.
std::vector<sim::BenchLayer> tie_layers(int n, uint64_t seed, std::vector<int64_t>* mapper) {
  std::mt19937_64 rng(seed);
  const host::Arch A = tilescale::sim::arch_of(rtl::kSa4x4Ws);
  const map::ArchConfig arch =
      map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/" + rtl::kSa4x4Ws.source);
  std::vector<sim::BenchLayer> layers;
  while (static_cast<int>(layers.size()) < n) {
    host::LayerCase lc = host::random_layer(rng, A, rtl::kSa4x4Ws.act_bits);
    // k <= 6 R = 24 indices of at most 6-bit codes and 4-bit weights: |sum| <= 24 * 63 * 8.
    if (lc.w_bits > 4 || lc.a_bits > 6) continue;
    host::GemmLayer& L = lc.layer;
    for (quant::FixedMultiplier& fm : L.multiplier) fm = quant::FixedMultiplier{1, 1};
    L.frac_bits = 1;
    L.keep_acc = false;
    // A small bias (F = 1 fractional bit) keeps most outputs inside the grid, where ties show.
    std::uniform_int_distribution<int64_t> small(-8, 8);
    for (int64_t& bq : L.bias_q) bq = small(rng);
    sim::BenchLayer b;
    b.stim = host::make_stimulus(L, A, host::make_folds(L, A, lc.align), rtl::kSa4x4Ws.act_bits,
                                 rtl::kSa4x4Ws.weight_bits, rng);
    b.name = lc.str() + ", multipliers 1/2";
    b.out_stall = kOutStall;
    layers.push_back(std::move(b));
    mapper->push_back(tilescale::test::mapper_cycles(L, lc, arch));
  }
  return layers;
}

template <const rtl::RtlConfig& C, class Verilated>
struct Lockstep {
  using P = ParamsOf<C>;
  using Bench = sim::LockstepBench<P, Verilated, sim::TsTopModel<P>>;
  std::unique_ptr<Bench> bench;
  std::vector<int64_t> mapper;       // per layer, cycles (0: not predicted)
  std::vector<int64_t> golden_diff;  // per layer: host::reference lanes != the executor's
  int64_t skipped = 0;               // zoo conv groups with more pixels than AccWords: tiled
  int64_t port_cycles = 0;           // random layers: mapper cycles the port widths add

  void start(std::vector<sim::BenchLayer> layers, uint64_t seed, const std::string& what = "") {
    bench =
        std::make_unique<Bench>(std::string("lockstep_") + C.name + what, std::move(layers), seed);
  }

  // n layers at once, then n with gaps and back-pressure.
  void build_random(int n, uint64_t salt) {
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
    port_cycles = a.port_cycles + b.port_cycles;
    start(std::move(a.layers), seed);
  }

  // The models agree in every cycle; then each model's outputs and cycles per layer.
  void check_lockstep() {
    SCOPED_TRACE(seed_note());
    SCOPED_TRACE(C.name);
    ASSERT_TRUE(bench->done()) << "the bench did not finish every layer; lockstep: "
                               << bench->lockstep().first;
    const sim::LockstepResult& ls = bench->lockstep();
    EXPECT_EQ(ls.differences, 0) << ls.first;
    EXPECT_GT(ls.beats, 0);
    EXPECT_EQ(bench->extra_beats_a(), 0);
    EXPECT_EQ(bench->extra_beats_b(), 0);
    for (std::size_t i = 0; i < bench->layers().size(); ++i) {
      const sim::BenchLayerResult& a = bench->results_a()[i];
      const sim::BenchLayerResult& b = bench->results_b()[i];
      SCOPED_TRACE("layer " + std::to_string(i) + ": " + bench->layers()[i].name);
      EXPECT_EQ(a.cycles, b.cycles) << "RTL vs twin cycles";
      EXPECT_EQ(a.stall_o, b.stall_o);
      EXPECT_EQ(a.outputs, b.outputs);
      EXPECT_EQ(a.mismatches, b.mismatches);
      if (::testing::Test::HasFailure()) break;
    }
    std::cout << "lockstep " << C.name << ": " << bench->layers().size() << " layers, " << ls.cycles
              << " cycles compared, " << ls.beats << " output beats, " << ls.differences
              << " differences\n";
  }

  // Both models bit-exact with the golden numerics and in the mapper's cycles (+ stall cycles).
  void check_golden() {
    SCOPED_TRACE(seed_note());
    SCOPED_TRACE(C.name);
    ASSERT_TRUE(bench->done());
    int64_t outputs = 0, cycles = 0, stall_o = 0;
    for (std::size_t i = 0; i < bench->layers().size(); ++i) {
      const sim::BenchLayerResult& a = bench->results_a()[i];
      const sim::BenchLayerResult& b = bench->results_b()[i];
      SCOPED_TRACE("layer " + std::to_string(i) + ": " + bench->layers()[i].name);
      if (!golden_diff.empty()) {
        EXPECT_EQ(golden_diff[i], 0) << "host::reference differs from the golden executor";
      }
      EXPECT_TRUE(a.done && b.done);
      EXPECT_EQ(a.outputs, static_cast<int64_t>(bench->layers()[i].stim.out.size()));
      EXPECT_EQ(a.mismatches, 0) << "RTL: " << a.first_mismatch;
      EXPECT_EQ(b.mismatches, 0) << "twin: " << b.first_mismatch;
      EXPECT_EQ(a.cycles, mapper[i] + a.stall_o) << "RTL vs mapper " << mapper[i];
      EXPECT_EQ(b.cycles, mapper[i] + b.stall_o) << "twin vs mapper " << mapper[i];
      if (bench->layers()[i].in_gap == 0) {
        EXPECT_EQ(a.stall_o, a.stalls) << "without input gaps only the output stream stalls";
      }
      outputs += a.outputs;
      cycles += a.cycles;
      stall_o += a.stall_o;
      if (::testing::Test::HasFailure()) break;
    }
    std::cout << C.name << ": " << outputs << " output beats, " << cycles << " cycles, " << stall_o
              << " stall cycles" << (skipped ? ", " : "")
              << (skipped ? std::to_string(skipped) + " conv groups in pixel tiles (m > AccWords)"
                          : "")
              << "\n";
  }
};

// One image of each zoo network (W4A8) on sa8x8_ws: every conv group (those with more pixels than
// AccWords in pixel tiles), fed from the golden executor's input codes, checked against its output
// codes.
std::vector<sim::BenchLayer> zoo_layers(const rtl::RtlConfig& C, std::vector<int64_t>* mapper,
                                        std::vector<int64_t>* golden_diff, int64_t* skipped) {
  const host::Arch A = tilescale::sim::arch_of(C);
  const map::ArchConfig arch =
      map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/" + C.source);
  std::mt19937_64 junk(test_seed() ^ 0x2545f4914f6cdd1dull);
  std::vector<sim::BenchLayer> layers;
  for (const tilescale::test::ZooNet& net : tilescale::test::kZooW4A8) {
    const quant::QuantizedModel model =
        tilescale::test::quantize_w4a8(net.name, net.data, net.granularity);
    const tilescale::Dataset test =
        tilescale::load_named(net.data, "test", tilescale::default_data_dir());
    std::vector<float> input(static_cast<std::size_t>(test.image_size()));
    test.fill_batch(0, 1, input.data());
    quant::IntExecutor golden(model, 1);
    const auto codes = golden.run_codes(input.data(), 1);
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(model.layers[l].op)];
      const sim::GemmJob job =
          sim::make_gemm_job(model, l, codes[static_cast<std::size_t>(op.inputs[0])].data(),
                             codes[static_cast<std::size_t>(op.output)].data());
      const std::vector<host::GemmLayer> groups = sim::host_layers(job);
      for (std::size_t g = 0; g < groups.size(); ++g) {
        const host::GemmLayer& L = groups[g];
        *skipped += L.m > A.acc_words;  // runs in pixel tiles (host::make_folds)
        const std::vector<host::Fold> folds = host::make_folds(L, A, host::Align::Strict);
        sim::BenchLayer b;
        b.stim = host::make_stimulus(L, A, folds, C.act_bits, C.weight_bits, junk);
        b.name = std::string(net.name) + " " + job.layer.name + " group " + std::to_string(g);
        const std::vector<int64_t> ref = host::reference(L);
        const int64_t base = static_cast<int64_t>(g) * L.n * L.m;
        int64_t diff = 0;
        for (std::size_t i = 0; i < ref.size(); ++i)
          diff += ref[i] != job.expected[static_cast<std::size_t>(base) + i];
        golden_diff->push_back(diff);
        layers.push_back(std::move(b));
        host::LayerCase lc;
        lc.a_bits = job.layer.a_bits;
        lc.w_bits = job.layer.w_bits;
        lc.align = host::Align::Strict;
        mapper->push_back(tilescale::test::mapper_cycles(L, lc, arch));
      }
    }
  }
  return layers;
}

// One bench per test; a process builds the benches of its selected tests only (ctest runs one test
// per process, so no bench is simulated twice), all before the first sc_start.
struct AllBenches {
  Lockstep<rtl::kSa4x4Ws, Vsc_sa4x4_ws> ws4;
  Lockstep<rtl::kSa4x4Os, Vsc_sa4x4_os> os4;
  Lockstep<rtl::kSa8x8Ws, Vsc_sa8x8_ws> ws8;
  Lockstep<rtl::kSa8x8Ws, Vsc_sa8x8_ws> zoo;
  Lockstep<kAcc16, Vsc_sa4x4_ws_faulty> narrow;
  Lockstep<kAcc16, Vsc_sa4x4_ws_faulty> round_even;          // tie layers on the faulty requantizer
  Lockstep<rtl::kSa4x4Ws, Vsc_sa4x4_ws> round_ok;            // the same layers on the correct one
  Lockstep<rtl::kSa4x4WsNarrow, Vsc_sa4x4_ws_narrow> ports;  // 3 activation, 2 output lanes
  // f over the benches that were built.
  template <class F>
  bool all(F f) const {
    return (!ws4.bench || f(*ws4.bench)) && (!os4.bench || f(*os4.bench)) &&
           (!ws8.bench || f(*ws8.bench)) && (!zoo.bench || f(*zoo.bench)) &&
           (!narrow.bench || f(*narrow.bench)) && (!round_even.bench || f(*round_even.bench)) &&
           (!round_ok.bench || f(*round_ok.bench)) && (!ports.bench || f(*ports.bench));
  }
  bool done() const {
    return all([](const auto& b) { return b.done(); });
  }
  bool done_a() const {
    return all([](const auto& b) { return b.done_a(); });
  }
};

bool selected(const char* prefix) { return tilescale::test::any_selected("Lockstep", prefix); }

AllBenches& run_all() {
  static AllBenches* all = [] {
    auto* a = new AllBenches;  // lives to the end of the process, as SystemC's modules must
    if (selected("Ws4x4")) a->ws4.build_random(100, 21);
    if (selected("Os4x4")) a->os4.build_random(100, 22);
    if (selected("Ws8x8")) a->ws8.build_random(50, 23);
    if (selected("NarrowPorts")) a->ports.build_random(100, 27);
    if (selected("Zoo"))
      a->zoo.start(zoo_layers(rtl::kSa8x8Ws, &a->zoo.mapper, &a->zoo.golden_diff, &a->zoo.skipped),
                   test_seed() + 24, "_zoo");
    if (selected("NarrowAccumulator")) {
      // 8-bit activations and weights on 4..16 reduction indices: a column sum needs up to 21
      // bits, so 16-bit registers wrap on most layers. Logits layers: the wide accumulator comes
      // out as it is, so every wrapped bit shows and the requantizer (faulty in this
      // Verilation) is not used.
      std::mt19937_64 rng(test_seed() ^ 0xacc16);
      const host::Arch A = tilescale::sim::arch_of(kAcc16);
      std::vector<sim::BenchLayer> layers;
      while (layers.size() < 40) {
        host::LayerCase lc = host::random_layer(rng, A, kAcc16.act_bits);
        if (lc.w_bits != 8 || lc.a_bits < 7 || lc.layer.frac_bits < 0 || lc.layer.frac_bits > 63)
          continue;
        lc.layer.keep_acc = true;
        sim::BenchLayer b;
        b.stim = host::make_stimulus(lc.layer, A, host::make_folds(lc.layer, A, lc.align),
                                     kAcc16.act_bits, kAcc16.weight_bits, rng);
        b.name = lc.str();
        b.out_stall = kOutStall;
        layers.push_back(std::move(b));
      }
      a->narrow.start(std::move(layers), test_seed() + 25);
    }
    if (selected("RoundHalfToEven")) {
      const uint64_t seed = test_seed() ^ 0x0dd0e7e4;
      a->round_even.start(tie_layers(30, seed, &a->round_even.mapper), test_seed() + 26, "_even");
      a->round_ok.start(tie_layers(30, seed, &a->round_ok.mapper), test_seed() + 26, "_ties");
    }
    const sc_core::sc_time chunk(100000, sc_core::SC_NS);  // 10,000 cycles of 10 ns
    // Until both models finished every layer; a twin that falls behind the RTL gets 20,000
    // cycles after the RTL is done (then the layer it missed shows up as not done).
    int after_a = 0;
    for (int i = 0; i < 2000 && !a->done() && after_a < 2; ++i) {
      sc_core::sc_start(chunk);
      if (a->done_a()) ++after_a;
    }
    return a;
  }();
  return *all;
}

// Each random bench: n layers with every beat offered at once, then n with input gaps and
// out_ready_i low. The twin equals the RTL in every cycle; both match the golden numerics in the
// mapper's cycles plus the counted stalls.
TEST(Lockstep, Ws4x4TwinEqualsRtlInEveryCycleBothGoldenInMapperCycles) {
  run_all().ws4.check_lockstep();
  run_all().ws4.check_golden();
}
TEST(Lockstep, Os4x4TwinEqualsRtlInEveryCycleBothGoldenInMapperCycles) {
  run_all().os4.check_lockstep();
  run_all().os4.check_golden();
}
TEST(Lockstep, Ws8x8TwinEqualsRtlInEveryCycleBothGoldenInMapperCycles) {
  run_all().ws8.check_lockstep();
  run_all().ws8.check_golden();
}

// Narrowed ports (configs/sa4x4_ws_narrow.json: ifmap_bw 3, ofmap_bw 2 on a 4x4 array): a vector
// comes in one or two beats, a result leaves in one or two; with input gaps and out_ready_i low
// the outputs still match and the extra cycles over the mapper's (port-limited) count are exactly
// the counted stall cycles.
TEST(Lockstep, NarrowPortsTwinEqualsRtlBothGoldenInMapperCycles) {
  Lockstep<rtl::kSa4x4WsNarrow, Vsc_sa4x4_ws_narrow>& p = run_all().ports;
  p.check_lockstep();
  p.check_golden();
  // The ports really are narrow: the mapper's counts exceed its full-width counts.
  EXPECT_GT(p.port_cycles, 0);
  std::cout << "sa4x4_ws_narrow: the port widths add " << p.port_cycles
            << " cycles over full-width ports (mapper)\n";
}

TEST(Lockstep, ZooConvGroupsOnSa8x8WsTwinEqualsRtlAndGolden) {
  Lockstep<rtl::kSa8x8Ws, Vsc_sa8x8_ws>& z = run_all().zoo;
  EXPECT_GT(z.bench->layers().size(), 0u);
  z.check_lockstep();
  z.check_golden();
}

TEST(Lockstep, NarrowAccumulatorWrapsAlikeInTwinAndRtl) {
  Lockstep<kAcc16, Vsc_sa4x4_ws_faulty>& n = run_all().narrow;
  n.check_lockstep();
  int64_t wrong_a = 0, wrong_b = 0;
  for (std::size_t i = 0; i < n.bench->layers().size(); ++i) {
    wrong_a += n.bench->results_a()[i].mismatches;
    wrong_b += n.bench->results_b()[i].mismatches;
  }
  // The golden numerics never wrap; 16-bit registers do, and both models alike.
  EXPECT_GT(wrong_a, 0) << "no layer overflowed 16 bits: the test shows nothing";
  EXPECT_EQ(wrong_a, wrong_b);
  std::cout << "AccBits 16: " << wrong_a << " lanes differ from golden in the RTL, " << wrong_b
            << " in the twin\n";
}

TEST(Lockstep, RoundHalfToEvenRequantizerIsCaught) {
  AllBenches& all = run_all();
  // The correct RTL on the tie layers: nothing to report.
  all.round_ok.check_lockstep();
  all.round_ok.check_golden();
  // The faulty one: the twin (correct rounding) differs from it, the golden check flags it, and
  // only the output lanes differ (timing is untouched).
  Lockstep<kAcc16, Vsc_sa4x4_ws_faulty>& f = all.round_even;
  SCOPED_TRACE(seed_note());
  ASSERT_TRUE(f.bench->done());
  int64_t wrong_a = 0, wrong_b = 0, outputs = 0;
  for (std::size_t i = 0; i < f.bench->layers().size(); ++i) {
    const sim::BenchLayerResult& a = f.bench->results_a()[i];
    const sim::BenchLayerResult& b = f.bench->results_b()[i];
    EXPECT_EQ(a.cycles, b.cycles);
    EXPECT_EQ(a.cycles, f.mapper[i] + a.stall_o);
    wrong_a += a.mismatches;
    wrong_b += b.mismatches;
    outputs += a.outputs;
  }
  EXPECT_GT(f.bench->lockstep().differences, 0) << "the lockstep missed the rounding fault";
  EXPECT_GT(wrong_a, 0) << "the golden check missed the rounding fault";
  EXPECT_EQ(wrong_b, 0) << "the twin rounds half up: " << f.bench->results_b()[0].first_mismatch;
  std::cout << "FaultRoundEven: " << wrong_a << " of " << outputs
            << " outputs differ from golden in the RTL; lockstep: "
            << f.bench->lockstep().differences << " cycles differ, first "
            << f.bench->lockstep().first << "\n";
}

}  // namespace
