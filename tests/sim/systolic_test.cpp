// The SystemC systolic model against an int_arith.h reference on seeded random GEMMs: every output
// bit-exact, and cycles equal to map::native_systolic_cycles() (with bandwidth limits: the
// difference to the stall-free count equals the stalls the model counted).
#include "tilescale/sim/systolic.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "tilescale/map/cycle_model.h"
#include "tilescale/map/tiling.h"

namespace tilescale::sim {
namespace {

uint64_t test_seed() {
  const char* env = std::getenv("TILESCALE_SEED");
  return env ? std::strtoull(env, nullptr, 10) : 20261127;
}

// The layer math of int_arith.h, written directly: block partial sums, scaled, summed, requantized.
std::vector<int64_t> reference(const GemmJob& j) {
  const map::LayerWorkload& L = j.layer;
  std::vector<int64_t> out(static_cast<std::size_t>(L.groups * L.n * L.m));
  for (int64_t g = 0; g < L.groups; ++g)
    for (int64_t n = 0; n < L.n; ++n)
      for (int64_t m = 0; m < L.m; ++m) {
        const int64_t o = g * L.n + n;
        int64_t acc = j.bias_q[static_cast<std::size_t>(o)];
        for (int64_t rg = 0; rg < L.red_groups; ++rg) {
          int64_t p = 0;
          for (int64_t k = 0; k < L.k; ++k)
            if (L.red_group[static_cast<std::size_t>(k)] == rg)
              p += int64_t{j.act[static_cast<std::size_t>((g * L.m + m) * L.k + k)]} *
                   j.weight[static_cast<std::size_t>((g * L.k + k) * L.n + n)];
          const auto& f =
              j.multiplier[static_cast<std::size_t>(L.out_group[o] * L.red_groups + rg)];
          acc += p * f.m * (int64_t{1} << (j.frac_bits - f.r));
        }
        out[static_cast<std::size_t>(o * L.m + m)] =
            j.keep_acc ? acc
                       : quant::saturate(quant::round_shift_half_up(acc, j.frac_bits), j.clamp);
      }
  return out;
}

// A random grouped GEMM with `bo` output channels x `bi` reduction indices per scale block
// (bi = 0: one reduction group).
GemmJob random_job(std::mt19937_64& rng, int64_t groups, int64_t m, int64_t n, int64_t k,
                   int64_t bo, int64_t bi, bool keep_acc) {
  GemmJob j;
  map::LayerWorkload& L = j.layer;
  L.name = "random";
  L.groups = groups;
  L.m = m;
  L.n = n;
  L.k = k;
  L.cin_g = k;
  L.out_group.resize(static_cast<std::size_t>(groups * n));
  for (int64_t o = 0; o < groups * n; ++o) L.out_group[static_cast<std::size_t>(o)] = o / bo;
  L.out_groups = (groups * n + bo - 1) / bo;
  L.red_group.resize(static_cast<std::size_t>(k));
  for (int64_t i = 0; i < k; ++i) L.red_group[static_cast<std::size_t>(i)] = bi ? i / bi : 0;
  L.red_groups = bi ? (k + bi - 1) / bi : 1;
  std::uniform_int_distribution<int> act(0, 255), w(-8, 7), mant(1 << 14, (1 << 15) - 1),
      shift(16, 24);
  for (int64_t i = 0; i < groups * m * k; ++i) j.act.push_back(act(rng));
  for (int64_t i = 0; i < groups * k * n; ++i) j.weight.push_back(w(rng));
  j.frac_bits = 0;
  for (int64_t b = 0; b < L.out_groups * L.red_groups; ++b) {
    j.multiplier.push_back({mant(rng), shift(rng)});
    j.frac_bits = std::max(j.frac_bits, j.multiplier.back().r);
  }
  std::uniform_int_distribution<int64_t> bias(-(int64_t{1} << 30), int64_t{1} << 30);
  for (int64_t o = 0; o < groups * n; ++o) j.bias_q.push_back(bias(rng));
  j.keep_acc = keep_acc;
  j.clamp = {0, 255};
  j.expected = reference(j);
  return j;
}

map::ArchConfig arch(int rows, int cols, int ifmap_bw = 0, int weight_bw = 0, int ofmap_bw = 0,
                     map::Dataflow df = map::Dataflow::WS) {
  map::ArchConfig a;
  a.name = "test";
  a.source = "test";
  a.rows = rows;
  a.cols = cols;
  a.dataflow = df;
  a.ifmap_bw = ifmap_bw;
  a.weight_bw = weight_bw;
  a.ofmap_bw = ofmap_bw;
  a.scale_regs_per_tile = 1 << 20;
  return a;
}

void expect_run(const GemmJob& j, const map::ArchConfig& a, const std::string& what) {
  SimOptions opt;
  opt.align = map::Align::Pad;
  const LayerRun r = SystolicSim::instance().run(j, a, opt);
  EXPECT_EQ(r.mismatches, 0) << what << ": " << r.first_mismatch.str();
  const map::NativeCycles nc =
      map::native_systolic_cycles(map::systolic_folds(j.layer, a, opt.align), a);
  EXPECT_EQ(r.cycles, nc.cycles) << what;
  EXPECT_EQ(r.cycles - r.stalls, nc.stall_free_cycles) << what;
  EXPECT_EQ(r.stalls, nc.stalls()) << what;
}

TEST(SystolicWs, SmallGemmIsBitExactAndMeetsNativeCycles) {
  std::mt19937_64 rng(1);
  expect_run(random_job(rng, 1, 5, 3, 7, 1, 0, false), arch(4, 4), "m5 n3 k7 on 4x4");
}

TEST(SystolicWs, EdgeShapesSingleRowColumnAndOneByOne) {
  std::mt19937_64 rng(2);
  expect_run(random_job(rng, 1, 1, 1, 1, 1, 0, true), arch(4, 4), "1x1x1");
  expect_run(random_job(rng, 1, 1, 9, 13, 2, 4, true), arch(4, 4), "single row (Gemm m=1)");
  expect_run(random_job(rng, 1, 11, 1, 13, 1, 5, false), arch(4, 4), "single column");
  expect_run(random_job(rng, 1, 6, 5, 9, 1, 0, false), arch(1, 1), "1x1 array");
  expect_run(random_job(rng, 3, 4, 2, 5, 1, 0, false), arch(3, 8), "grouped, 3 groups");
}

// A small ofmap SRAM: accumulator_words() = 2048 bits / (3 columns * 96 bits) = 7 pixels, so ws
// layers run in pixel tiles (the last one shorter than the 4 rows, where the preload sets the
// pace); the model executes map::systolic_folds and meets its cycles.
TEST(SystolicWs, PixelTilesOfTheAccumulatorWordsAreBitExactInNativeCycles) {
  std::mt19937_64 rng(3);
  map::ArchConfig a = arch(4, 3);
  a.ofmap_sram_kib = 0.25;
  ASSERT_EQ(map::accumulator_words(a), 7);
  expect_run(random_job(rng, 1, 16, 5, 11, 2, 3, false), a, "m16 = 7 + 7 + 2 pixels");
  expect_run(random_job(rng, 2, 30, 4, 6, 1, 0, true), a, "grouped, m30, logits");
  ASSERT_GT(
      map::systolic_folds(random_job(rng, 1, 16, 5, 11, 2, 3, false).layer, a, map::Align::Pad)
          .size(),
      map::systolic_folds(random_job(rng, 1, 16, 5, 11, 2, 3, false).layer, arch(4, 3),
                          map::Align::Pad)
          .size());
}

TEST(SystolicWs, SeededRandomShapesAreBitExactWithNativeCycles) {
  const uint64_t seed = test_seed();
  std::printf("seed %llu (TILESCALE_SEED overrides)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dim(1, 40), arr(1, 12), pick(0, 3);
  for (int i = 0; i < 40; ++i) {
    const int64_t m = dim(rng), n = dim(rng), k = dim(rng), groups = 1 + pick(rng) / 3;
    const int64_t bo = 1 + rng() % n, bi = pick(rng) ? 1 + rng() % k : 0;
    const int rows = arr(rng), cols = arr(rng);
    const bool os = i % 2 == 1;
    const GemmJob j = random_job(rng, groups, m, n, k, bo, bi, pick(rng) == 0);
    expect_run(j, arch(rows, cols, 0, 0, 0, os ? map::Dataflow::OS : map::Dataflow::WS),
               std::string(os ? "os " : "ws ") + "seed " + std::to_string(seed) + " case " +
                   std::to_string(i) + ": g" + std::to_string(groups) + " m" + std::to_string(m) +
                   " n" + std::to_string(n) + " k" + std::to_string(k) + " bo" +
                   std::to_string(bo) + " bi" + std::to_string(bi) + " on " + std::to_string(rows) +
                   "x" + std::to_string(cols));
  }
}

// Narrow ifmap and ofmap ports on random ws shapes (partial last channel tiles, so consecutive
// output rows differ in width at tile boundaries): bit-exact, and the measured cycles and stalls
// are the mapper's port-limited count; the edge's ofmap port never finds a row arriving while
// it is busy (an internal error otherwise).
TEST(SystolicWs, SeededRandomNarrowPortsMeetTheMapper) {
  const uint64_t seed = test_seed();
  std::printf("seed %llu (TILESCALE_SEED overrides)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed ^ 0x6e6172726f77ull);
  std::uniform_int_distribution<int> dim(1, 30), arr(2, 8), pick(0, 3);
  for (int i = 0; i < 30; ++i) {
    const int64_t m = dim(rng), n = dim(rng), k = dim(rng);
    const int64_t bo = 1 + rng() % n, bi = pick(rng) ? 1 + rng() % k : 0;
    const int rows = arr(rng), cols = arr(rng);
    const int ibw = 1 + static_cast<int>(rng() % rows), obw = 1 + static_cast<int>(rng() % cols);
    const GemmJob j = random_job(rng, 1, m, n, k, bo, bi, pick(rng) == 0);
    expect_run(j, arch(rows, cols, ibw, 0, obw),
               "seed " + std::to_string(seed) + " case " + std::to_string(i) + ": m" +
                   std::to_string(m) + " n" + std::to_string(n) + " k" + std::to_string(k) +
                   " on " + std::to_string(rows) + "x" + std::to_string(cols) + " ifmap_bw " +
                   std::to_string(ibw) + " ofmap_bw " + std::to_string(obw));
  }
}

TEST(SystolicOs, EdgeShapesAndUnequalSegments) {
  std::mt19937_64 rng(4);
  const auto os = [](int r, int c, int ibw = 0, int wbw = 0) {
    return arch(r, c, ibw, wbw, 0, map::Dataflow::OS);
  };
  expect_run(random_job(rng, 1, 1, 1, 1, 1, 0, true), os(4, 4), "os 1x1x1");
  expect_run(random_job(rng, 1, 1, 9, 13, 2, 4, true), os(4, 4), "os single row");
  expect_run(random_job(rng, 1, 11, 1, 13, 1, 5, false), os(4, 4), "os single column");
  expect_run(random_job(rng, 1, 6, 5, 9, 1, 0, false), os(1, 1), "os 1x1 array");
  expect_run(random_job(rng, 1, 8, 4, 8, 4, 6, false), os(4, 4), "os segments of 6 and 2");
  expect_run(random_job(rng, 2, 9, 7, 20, 3, 7, false), os(4, 3, 3, 2), "os narrow read ports");
}

TEST(SystolicWs, BandwidthStallsExplainTheCycleDifference) {
  std::mt19937_64 rng(3);
  const GemmJob j = random_job(rng, 1, 20, 13, 29, 4, 8, false);
  expect_run(j, arch(8, 8, 3, 5, 2), "ifmap 3, weight 5, ofmap 2 words/cycle");
  expect_run(j, arch(8, 8, 8, 1, 0), "weight port 1 word/cycle");
  SimOptions opt;
  opt.align = map::Align::Pad;
  const LayerRun r = SystolicSim::instance().run(j, arch(8, 8, 3, 5, 2), opt);
  EXPECT_GT(r.stalls, 0);
}

// Each SRAM port on its own, on a layer that is one fold (m 20, k 8, n 8 on 8x8 ws): the port
// streams decide the cycles, by hand: an 8-word row through a 3-word port takes 3 beats, so the
// 20 vectors stream in 60 cycles instead of 20 (ifmap; ofmap the same: 19 output rows of 3 beats
// between the 20 vectors, and the last row's 3 beats end 2 cycles after it is complete); the 64
// weights through a 2-word port take 32 cycles instead of the chains' 8. Both narrow: the first
// vector waits for its 3 activation beats (2 cycles more), then 19 output rows of 4 beats (3 more
// each) and the last row's 4 beats (3 more). The extra cycles are the counted stalls, and the
// mapper predicts the same.
TEST(SystolicWs, EachNarrowPortAddsTheCyclesItsBeatsTake) {
  std::mt19937_64 rng(5);
  const GemmJob j = random_job(rng, 1, 20, 8, 8, 8, 0, false);
  SimOptions opt;
  opt.align = map::Align::Pad;
  const LayerRun full = SystolicSim::instance().run(j, arch(8, 8), opt);
  ASSERT_EQ(full.folds, 1);
  EXPECT_EQ(full.stalls, 0);
  struct Port {
    map::ArchConfig a;
    int64_t extra;  // cycles the narrow port adds, by hand
    const char* what;
  };
  for (const Port& p :
       {Port{arch(8, 8, 3, 0, 0), 20 * (3 - 1), "ifmap 3 words"},
        Port{arch(8, 8, 0, 2, 0), 32 - 8, "weight 2 words"},
        Port{arch(8, 8, 0, 0, 3), 20 * (3 - 1), "ofmap 3 words"},
        Port{arch(8, 8, 3, 0, 2), (3 - 1) + 19 * (4 - 1) + (4 - 1), "ifmap 3, ofmap 2 words"}}) {
    const LayerRun r = SystolicSim::instance().run(j, p.a, opt);
    EXPECT_EQ(r.mismatches, 0) << p.what;
    EXPECT_EQ(r.cycles - full.cycles, p.extra) << p.what;
    EXPECT_EQ(r.stalls, p.extra) << p.what;
    expect_run(j, p.a, p.what);
  }
}

// Back-pressure: the ofmap SRAM refuses beats at random (seeded). Every output still matches,
// the layers take longer than the mapper's ports predict (each at least as long; a 5-pixel layer
// can draw ready on all 4 of its output rows that delay a vector, so not every one is longer),
// and the extra cycles are exactly the stalls the model counted.
TEST(SystolicWs, OfmapBackPressureCostsExactlyTheCountedStalls) {
  const uint64_t seed = test_seed();
  std::printf("seed %llu (TILESCALE_SEED overrides)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  int64_t extra = 0;
  for (int i = 0; i < 6; ++i) {
    const GemmJob j = random_job(rng, 1 + i % 2, 5 + 7 * i, 3 + 5 * i, 4 + 9 * i, 4, 5, i == 3);
    const map::ArchConfig a = arch(4 + i % 3, 5 - i % 2, 0, 0, i % 2 ? 3 : 0);
    SimOptions opt;
    opt.align = map::Align::Pad;
    opt.ofmap_ready_percent = 55;
    opt.ofmap_ready_seed = seed + static_cast<uint64_t>(i);
    const LayerRun r = SystolicSim::instance().run(j, a, opt);
    const std::string what = "seed " + std::to_string(seed) + " case " + std::to_string(i);
    EXPECT_EQ(r.mismatches, 0) << what << ": " << r.first_mismatch.str();
    const map::NativeCycles nc =
        map::native_systolic_cycles(map::systolic_folds(j.layer, a, opt.align), a);
    EXPECT_GE(r.cycles, nc.cycles) << what;
    EXPECT_EQ(r.cycles - r.stalls, nc.stall_free_cycles) << what;
    extra += r.cycles - nc.cycles;
  }
  EXPECT_GT(extra, 0) << "seed " << seed << ": the refused beats cost nothing";
}

}  // namespace
}  // namespace tilescale::sim
