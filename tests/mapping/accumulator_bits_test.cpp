// map::check_accumulator_bits, the one width check `tilescale map`, `simulate` and `verify` share:
// a fold's column sum (PE partial sums) and the edge's group sum over a run of folds of one
// reduction group must both fit acc_bits at the largest codes, or the arch is refused with a
// message naming the arch file, the layer and the bits needed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "layer_builder.h"
#include "tilescale/core/error.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/tiling.h"

namespace tilescale::map {
namespace {

using ::testing::HasSubstr;

// 3x3 kernel over 16 input channels (k = 144): 8-bit unsigned activations (<= 255), 4-bit weights
// (|w| <= 8). A fold of 8 rows sums to at most 8 * 255 * 8 = 16,320 (15 signed bits); one
// reduction group of all 144 indices sums to 293,760 over 18 folds (20 bits).
LayerWorkload layer(int64_t bi) {
  LayerWorkload w = test::make_layer(1, 4, 4, 9, 16, 4, bi);
  w.a_bits = 8;
  w.w_bits = 4;
  w.act_signed = false;
  return w;
}

std::string refusal(const LayerWorkload& w, int acc_bits) {
  ArchConfig a = test::systolic(8, 8, Dataflow::WS);
  a.acc_bits = acc_bits;
  const auto folds = systolic_folds(w, a, Align::Strict);
  try {
    check_accumulator_bits(w, folds, a);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(AccumulatorBits, FoldAndRunBitsAtTheLargestCodes) {
  ArchConfig a = test::systolic(8, 8, Dataflow::WS);
  const LayerWorkload one_group = layer(16);
  AccumulatorBits b = accumulator_bits(one_group, systolic_folds(one_group, a, Align::Strict));
  EXPECT_EQ(b.fold, 15);
  EXPECT_EQ(b.run, 20);
  // Blocks of 8 input channels: every fold is a run of its own.
  const LayerWorkload per_fold = layer(8);
  b = accumulator_bits(per_fold, systolic_folds(per_fold, a, Align::Strict));
  EXPECT_EQ(b.fold, 15);
  EXPECT_EQ(b.run, 15);
}

TEST(AccumulatorBits, RefusesAFoldSumOrARunSumWiderThanAccBits) {
  EXPECT_THAT(refusal(layer(16), 14),
              HasSubstr("test.json: layer 'L': a fold's column sum needs 15 bits, acc_bits is 14"));
  EXPECT_THAT(refusal(layer(16), 19),
              HasSubstr("layer 'L': a reduction group's sum over a run of folds needs 20 bits, "
                        "acc_bits is 19"));
  EXPECT_EQ(refusal(layer(16), 20), "");
  EXPECT_EQ(refusal(layer(8), 15), "");
}

}  // namespace
}  // namespace tilescale::map
