// Cycle models: the native formulas on hand-worked cases, stalls under bandwidth limits, and
// SCALE-Sim v2's reported totals rebuilt from its demand-matrix construction.
#include "tilescale/map/cycle_model.h"

#include <gtest/gtest.h>

#include "layer_builder.h"

namespace tilescale::map {
namespace {

using test::make_layer;
using test::systolic;

TEST(NativeCycles, WeightStationaryHandWorked) {
  // R = C = 4, M = 10, N = 6, K = 7, one scale: folds (n tile, k fold) = 2 x 2, each streams 10
  // rows; the first waits for its preload (4) and 1 scale load.
  const LayerWorkload l = make_layer(1, 10, 6, 1, 7, 6, 7);
  const ArchConfig a = systolic(4, 4, Dataflow::WS);
  const auto folds = systolic_folds(l, a, Align::Strict);
  ASSERT_EQ(folds.size(), 4u);
  const NativeCycles c = native_systolic_cycles(folds, a);
  // start = 4, then + 10 per fold; end = start_4 + 10 + 3 + 3 + 1 + kPostArrayLatency.
  EXPECT_EQ(c.fold_start, (std::vector<int64_t>{4, 14, 24, 34}));
  EXPECT_EQ(c.cycles, 34 + 10 + 7 + kPostArrayLatency);
  EXPECT_EQ(c.stalls(), 0);
}

TEST(NativeCycles, ShortStreamsArePreloadBound) {
  // A fully connected layer at batch 1 (M = 1) cannot hide the R-cycle weight preload.
  const LayerWorkload l = make_layer(1, 1, 8, 1, 32, 8, 32);
  const ArchConfig a = systolic(8, 8, Dataflow::WS);
  const NativeCycles c = native_systolic_cycles(systolic_folds(l, a, Align::Strict), a);
  EXPECT_EQ(c.fold_start, (std::vector<int64_t>{8, 16, 24, 32}));
  EXPECT_EQ(c.cycles, 32 + 1 + 15 + kPostArrayLatency);
}

TEST(NativeCycles, OutputStationaryHandWorked) {
  // R = C = 4, M = 6, N = 4, K = 5 in one segment: two m tiles; each streams 5 reduction steps,
  // then drains R = 4 rows while the next computes.
  const LayerWorkload l = make_layer(1, 6, 4, 1, 5, 4, 5);
  const ArchConfig a = systolic(4, 4, Dataflow::OS);
  const auto folds = systolic_folds(l, a, Align::Strict);
  ASSERT_EQ(folds.size(), 2u);
  const NativeCycles c = native_systolic_cycles(folds, a);
  EXPECT_EQ(c.fold_start, (std::vector<int64_t>{1, 6}));  // 1 scale load first
  EXPECT_EQ(c.cycles, 6 + 5 + 7 + 4 + kPostArrayLatency);
}

TEST(NativeCycles, OutputStationaryShortSegmentWaitsForTheDrain) {
  // R = C = 4, M = N = 4, K = 8 in reduction groups of 6 and 2 (blocks of 6 input channels): the
  // 2-step fold may not end until the 6-step fold's results have drained (R = 4 cycles), so it
  // starts at 1 + max(6, 6 + 4 - 2, 1) = 9, not 7.
  const LayerWorkload l = make_layer(1, 4, 4, 1, 8, 4, 6);
  const ArchConfig a = systolic(4, 4, Dataflow::OS);
  const auto folds = systolic_folds(l, a, Align::Strict);
  ASSERT_EQ(folds.size(), 2u);
  const NativeCycles c = native_systolic_cycles(folds, a);
  EXPECT_EQ(c.fold_start, (std::vector<int64_t>{1, 9}));
  EXPECT_EQ(c.cycles, 9 + 2 + 3 + 3 + 1 + 4 + kPostArrayLatency);
}

TEST(NativeCycles, BandwidthLimitsAddCountedStalls) {
  const LayerWorkload l = make_layer(1, 10, 6, 1, 7, 6, 7);
  ArchConfig a = systolic(4, 4, Dataflow::WS);
  const NativeCycles free = native_systolic_cycles(systolic_folds(l, a, Align::Strict), a);
  a.ifmap_bw = 2;  // 4 rows need 4 activation words per cycle: every vector takes 2 cycles
  const NativeCycles limited = native_systolic_cycles(systolic_folds(l, a, Align::Strict), a);
  EXPECT_EQ(limited.stall_free_cycles, free.cycles);
  EXPECT_EQ(limited.stalls(), 4 * 10);  // 4 folds x 10 vectors x 1 extra cycle
}

// SCALE-Sim v2 builds, per fold, an ofmap demand matrix of (prefix + T) rows and C columns, then
// skews it (C - 1 more rows), and reports the cycle of the last demand line: lines - 1. The
// prefix is 2R - 1 for ws/is and T - 1 + R rows in total for os (its filter/ifmap matrices agree).
int64_t scalesim_lines_per_fold(Dataflow df, int64_t R, int64_t C, int64_t T) {
  const int64_t rows_before_skew = df == Dataflow::OS ? (T - 1) + R : (2 * R - 1) + T;
  return rows_before_skew + (C - 1);
}

TEST(ScaleSimCycles, MatchesItsDemandMatrixConstruction) {
  struct Case {
    Dataflow df;
    int R, C;
    int64_t m, n, k;
  } cases[] = {{Dataflow::WS, 4, 4, 10, 6, 7},   {Dataflow::OS, 4, 4, 10, 6, 7},
               {Dataflow::IS, 4, 4, 10, 6, 7},   {Dataflow::WS, 32, 32, 3025, 96, 363},
               {Dataflow::OS, 16, 8, 196, 1, 9}, {Dataflow::IS, 8, 16, 1, 1000, 512}};
  for (const Case& c : cases) {
    const LayerWorkload l = make_layer(1, c.m, c.n, 1, c.k, c.n, c.k);
    const ArchConfig a = systolic(c.R, c.C, c.df);
    int64_t sr = c.k, sc = c.n, t = c.m;
    if (c.df == Dataflow::OS) sr = c.m, sc = c.n, t = c.k;
    if (c.df == Dataflow::IS) sr = c.k, sc = c.m, t = c.n;
    const int64_t folds = ((sr + c.R - 1) / c.R) * ((sc + c.C - 1) / c.C);
    const ScaleSimCycles s = scalesim_cycles(l, a);
    SCOPED_TRACE(std::string(kDataflowNames.name(c.df)) + " " + std::to_string(c.R) + "x" +
                 std::to_string(c.C));
    EXPECT_EQ(s.folds, folds);
    EXPECT_EQ(s.cycles, folds * scalesim_lines_per_fold(c.df, c.R, c.C, t) - 1);
    EXPECT_NEAR(s.overall_util,
                100.0 * c.m * c.n * c.k / (static_cast<double>(s.cycles) * c.R * c.C), 1e-9);
  }
}

TEST(ScaleSimCycles, FullyMappedFoldHasFullMappingEfficiency) {
  const LayerWorkload l = make_layer(1, 100, 8, 1, 16, 8, 16);
  const ScaleSimCycles s = scalesim_cycles(l, systolic(8, 8, Dataflow::WS));
  EXPECT_DOUBLE_EQ(s.mapping_eff, 100.0);
  // Compute utilization per fold: R*C*T / (R*C*(2R + 2C + T - 3)).
  EXPECT_NEAR(s.compute_util, 100.0 * 100 / (16 + 16 + 100 - 3), 1e-9);
}

}  // namespace
}  // namespace tilescale::map
