// Tiling: every MAC covered exactly once, no fold mixing reduction blocks, fold counts, alignment
// refusals and padding, scale-register counts per granularity.
#include "tilescale/map/tiling.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "layer_builder.h"
#include "tilescale/core/error.h"

namespace tilescale::map {
namespace {

using test::make_layer;
using test::systolic;

// Reduction indices of a fold, in the order the array consumes them.
std::vector<int64_t> fold_indices(const LayerWorkload& l, const KFold& k) {
  std::vector<int64_t> idx;
  if (k.k0 >= 0) {
    for (int64_t i = k.k0; i < k.k0 + k.length; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < l.k; ++i)
      if (l.red_group[static_cast<std::size_t>(i)] == k.red_group) idx.push_back(i);
  }
  return idx;
}

// Counts how often each (group, m, n, k) MAC appears over all folds; all must be exactly 1.
void expect_exact_cover(const LayerWorkload& l, const std::vector<SystolicFold>& folds,
                        const ArchConfig& a) {
  std::vector<int> count(static_cast<std::size_t>(l.groups * l.m * l.n * l.k), 0);
  for (const SystolicFold& f : folds) {
    const auto idx = fold_indices(l, f.k);
    ASSERT_EQ(static_cast<int64_t>(idx.size()), f.k.length);
    for (int64_t k : idx) ASSERT_EQ(l.red_group[static_cast<std::size_t>(k)], f.k.red_group);
    ASSERT_LE(f.rows_used, a.rows);
    ASSERT_LE(f.cols_used, a.cols);
    for (int64_t m = f.m0; m < f.m0 + f.m_len; ++m)
      for (int64_t n = f.n0; n < f.n0 + f.n_len; ++n)
        for (int64_t k : idx)
          ++count[static_cast<std::size_t>(((f.group * l.m + m) * l.n + n) * l.k + k)];
  }
  for (std::size_t i = 0; i < count.size(); ++i) ASSERT_EQ(count[i], 1) << "MAC " << i;
}

TEST(Tiling, EveryMacExactlyOnceOnRandomShapesAllDataflows) {
  const uint64_t seed = 20261127;
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t groups = pick(1, 3), m = pick(1, 13), n = pick(1, 11),
                  kernel = pick(1, 3) * 2 - 1;
    const int64_t cin = pick(1, 9), bo = pick(1, 5), bi = pick(1, 6);
    const bool mx = pick(0, 3) == 0;
    const LayerWorkload l = make_layer(groups, m, n, kernel, cin, bo, bi, mx ? pick(1, 8) : 0);
    for (Dataflow df : {Dataflow::WS, Dataflow::OS, Dataflow::IS}) {
      const ArchConfig a = systolic(pick(1, 6), pick(1, 6), df);
      SCOPED_TRACE("trial " + std::to_string(trial) + " dataflow " + kDataflowNames.name(df));
      expect_exact_cover(l, systolic_folds(l, a, Align::Pad), a);
    }
  }
}

TEST(Tiling, FoldCountsMatchCeilDivisionPerDataflow) {
  const LayerWorkload l = make_layer(2, 10, 7, 9, 5, 7, 5);  // one block per group: K = 45
  EXPECT_EQ(systolic_folds(l, systolic(4, 3, Dataflow::WS), Align::Strict).size(),
            2u * 12 * 3);  // groups x ceil(45/4) x ceil(7/3)
  EXPECT_EQ(systolic_folds(l, systolic(4, 3, Dataflow::IS), Align::Strict).size(),
            2u * 12 * 4);  // groups x ceil(45/4) x ceil(10/3)
  EXPECT_EQ(systolic_folds(l, systolic(4, 3, Dataflow::OS), Align::Strict).size(),
            2u * 3 * 3);  // groups x ceil(10/4) x ceil(7/3) x one segment
}

// The edge keeps one int32 and one 64-bit word per output and column of a fold in the ofmap SRAM:
// ws folds stream at most accumulator_words() pixels (is: channels); the tiles cover every MAC.
TEST(Tiling, PixelTilesKeepEveryFoldWithinTheAccumulatorWords) {
  ArchConfig ws = systolic(4, 3, Dataflow::WS);
  ws.ofmap_sram_kib = 0.25;  // 2048 bits / (3 columns * 96 bits) = 7 words
  EXPECT_EQ(accumulator_words(ws), 7);
  const LayerWorkload l = make_layer(2, 17, 5, 9, 5, 5, 5);  // m 17: tiles 7 + 7 + 3
  const auto folds = systolic_folds(l, ws, Align::Strict);
  // groups x n tiles x m tiles x k folds
  EXPECT_EQ(folds.size(), 2u * 2 * 3 * 12);
  for (const SystolicFold& f : folds) {
    EXPECT_LE(f.m_len, 7);
    EXPECT_EQ(f.stream, f.m_len);
  }
  EXPECT_EQ(folds[0].m_len, 7);
  EXPECT_EQ(folds[12].m0, 7);  // the second pixel tile follows the first one's k folds
  EXPECT_EQ(folds[24].m_len, 3);
  expect_exact_cover(l, folds, ws);
  ArchConfig is = systolic(4, 3, Dataflow::IS);
  is.ofmap_sram_kib = 0.125;  // 1024 / 288 = 3 channels per fold
  const auto ifolds = systolic_folds(l, is, Align::Pad);
  for (const SystolicFold& f : ifolds) EXPECT_LE(f.stream, 3);
  expect_exact_cover(l, ifolds, is);
  // os: one word per row of the tile, whatever the layer.
  EXPECT_EQ(accumulator_words(systolic(4, 3, Dataflow::OS)), 4);
}

TEST(Tiling, AnOfmapSramWithoutRoomForTheAccumulatorsIsRefused) {
  const LayerWorkload l = make_layer(1, 4, 4, 9, 8, 4, 4);
  ArchConfig a = systolic(4, 16, Dataflow::WS);
  a.ofmap_sram_kib = 0.125;  // 1024 bits < 16 columns * 96 bits
  EXPECT_EQ(accumulator_words(a), 0);
  try {
    systolic_folds(l, a, Align::Pad);
    FAIL() << "expected a refusal";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("test.json: field 'ofmap_sram_kib': 0.125", 0), 0u) << msg;
    EXPECT_NE(msg.find("16 columns: 1536 bits"), std::string::npos) << msg;
  }
  a.dataflow = Dataflow::OS;
  a.rows = 8;  // 8 words of 96 bits per column, 16 columns: 12288 bits
  a.ofmap_sram_kib = 1;
  EXPECT_THROW(systolic_folds(l, a, Align::Pad), InputError);
  a.ofmap_sram_kib = 1.5;
  EXPECT_NO_THROW(systolic_folds(l, a, Align::Pad));
}

TEST(Tiling, StrictRefusesAFoldThatMixesInputBlocksAndNamesIt) {
  // 8 input channels in blocks of 4, 3x3 kernel: rows of 8 cover 4+4 channels of two blocks.
  const LayerWorkload l = make_layer(1, 4, 4, 9, 8, 4, 4);
  try {
    reduction_folds(l, 8, Align::Strict);
    FAIL() << "expected a refusal";
  } catch (const AlignError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("layer 'L'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fold 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("blocks 0 and 1"), std::string::npos) << msg;
    // The library names no flag (the CLI adds "--align strict: ", cli/map_cli_test.cpp).
    EXPECT_EQ(msg.rfind("layer 'L': ", 0), 0u) << msg;
    EXPECT_NE(msg.find("use the pad alignment"), std::string::npos) << msg;
  }
  // Rows that divide the block size line up with whole blocks.
  EXPECT_EQ(reduction_folds(l, 4, Align::Strict).size(), 18u);
}

TEST(Tiling, PadStartsAFoldAtEveryBlockBoundary) {
  // 6 input channels in blocks of 4 (runs 4, 2 per kernel position), 2 kernel positions, 8 rows.
  const LayerWorkload l = make_layer(1, 3, 2, 2, 6, 2, 4);
  const auto folds = reduction_folds(l, 8, Align::Pad);
  ASSERT_EQ(folds.size(), 4u);
  const int64_t lengths[] = {4, 2, 4, 2}, groups[] = {0, 1, 0, 1};
  for (std::size_t i = 0; i < folds.size(); ++i) {
    EXPECT_EQ(folds[i].length, lengths[i]);
    EXPECT_EQ(folds[i].red_group, groups[i]);
    EXPECT_TRUE(folds[i].group_end);  // the group changes after every run
  }
}

TEST(Tiling, ScaleRegistersPerGranularityOn16Columns) {
  const ArchConfig a = systolic(16, 16, Dataflow::WS);
  auto max_regs = [&](const LayerWorkload& l) {
    int64_t r = 0;
    for (const auto& f : systolic_folds(l, a, Align::Pad)) r = std::max(r, f.blocks);
    return r;
  };
  // 32 output channels, 32 input channels, 3x3.
  EXPECT_EQ(max_regs(make_layer(1, 5, 32, 9, 32, 32, 32)), 1);     // layer
  EXPECT_EQ(max_regs(make_layer(1, 5, 32, 9, 32, 1, 32)), 16);     // channel: one per column
  EXPECT_EQ(max_regs(make_layer(1, 5, 32, 9, 32, 4, 16)), 4);      // block:4x16
  EXPECT_EQ(max_regs(make_layer(1, 5, 32, 9, 32, 8, 8)), 2);       // block:8x8
  EXPECT_EQ(max_regs(make_layer(1, 5, 32, 9, 32, 1, 0, 32)), 16);  // mx:32
}

TEST(Tiling, ScaleLoadsOnlyWhenTheBlocksChange) {
  // Channelwise, K = 32 over 16 rows: two k folds per column tile share their 16 scales.
  const LayerWorkload l = make_layer(1, 5, 32, 1, 32, 1, 32);
  const auto folds = systolic_folds(l, systolic(16, 16, Dataflow::WS), Align::Strict);
  ASSERT_EQ(folds.size(), 4u);
  EXPECT_EQ(folds[0].scale_loads, 16);
  EXPECT_EQ(folds[1].scale_loads, 0);
  EXPECT_EQ(folds[2].scale_loads, 16);
  EXPECT_EQ(folds[3].scale_loads, 0);
  EXPECT_FALSE(folds[0].output_end);
  EXPECT_TRUE(folds[1].output_end);
  // Only the last fold of a reduction group triggers scale-unit work.
  EXPECT_EQ(folds[0].scaled_outputs, 0);
  EXPECT_EQ(folds[1].scaled_outputs, 5 * 16);
}

}  // namespace
}  // namespace tilescale::map
