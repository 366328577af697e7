// Block grids: which weights share a scale for each granularity, including partial last blocks,
// depthwise convs and mx runs along the hardware reduction order.
#include "tilescale/quant/granularity.h"

#include <gtest/gtest.h>

#include <set>

#include "tilescale/core/error.h"

namespace tilescale::quant {
namespace {

model::Node conv(int64_t cout, int64_t cin_g, int64_t k, int64_t groups = 1) {
  model::Node n;
  n.op = model::Op::Conv;
  n.weight.shape = {cout, cin_g, k, k};
  n.weight.data.assign(static_cast<std::size_t>(cout * cin_g * k * k), 1.0f);
  n.window.groups = groups;
  n.window.kernel_h = n.window.kernel_w = k;
  return n;
}

TEST(Granularity, ParsesEveryFormAndRoundTrips) {
  for (const char* s : {"layer", "channel", "block:16x32", "mx:32", "vsq:16", "xbar:64x128"})
    EXPECT_EQ(Granularity::parse(s).str(), s);
  const Granularity b = Granularity::parse("block:4x8");
  EXPECT_EQ(b.block_out, 4);
  EXPECT_EQ(b.block_in, 8);
}

TEST(Granularity, RejectsZeroAndMalformedShapes) {
  for (const char* s : {"block:0x4", "block:4x0", "block:4", "block:ax4", "mx:0", "tile", "",
                        "Layer", "xbar", "xbar:64", "xbar:0x128"})
    EXPECT_THROW(Granularity::parse(s), InputError) << s;
}

TEST(Granularity, LayerIsOneBlockChannelIsOnePerOutput) {
  const model::Node n = conv(6, 5, 3);
  EXPECT_EQ(make_block_grid(n, Granularity::parse("layer")).num_blocks(), 1);
  const BlockGrid c = make_block_grid(n, Granularity::parse("channel"));
  EXPECT_EQ(c.num_blocks(), 6);
  EXPECT_EQ(c.red_groups, 1);
}

TEST(Granularity, BlockLeavesASmallerLastBlockInBothDimensions) {
  const model::Node n = conv(10, 7, 3);
  const BlockGrid g = make_block_grid(n, Granularity::parse("block:4x3"));
  EXPECT_EQ(g.out_groups, 3);  // 4 + 4 + 2
  EXPECT_EQ(g.red_groups, 3);  // 3 + 3 + 1 input channels
  EXPECT_EQ(g.out_group[9], 2);
  // Every kernel position of input channel c is in group c / 3.
  for (int64_t c = 0; c < 7; ++c)
    for (int64_t p = 0; p < 9; ++p) EXPECT_EQ(g.red_group[g.hw_index(c, p)], c / 3);
}

TEST(Granularity, DepthwiseBlocksRunAlongOutputChannelsOnly) {
  const model::Node n = conv(32, 1, 3, 32);
  const BlockGrid g = make_block_grid(n, Granularity::parse("block:16x16"));
  EXPECT_EQ(g.out_groups, 2);
  EXPECT_EQ(g.red_groups, 1);
}

TEST(Granularity, MxRunsFollowTheHardwareReductionOrder) {
  const model::Node n = conv(2, 8, 3);  // reduction 72 = 9 positions x 8 channels
  const BlockGrid g = make_block_grid(n, Granularity::parse("mx:32"));
  EXPECT_EQ(g.out_groups, 2);
  EXPECT_EQ(g.red_groups, 3);  // 32 + 32 + 8
  // Hardware index k = position * cin + c: positions 0..3 fill the first run.
  EXPECT_EQ(g.red_group[g.hw_index(7, 3)], 0);
  EXPECT_EQ(g.red_group[g.hw_index(0, 4)], 1);
  EXPECT_EQ(g.red_group[g.hw_index(7, 8)], 2);
}

// xbar:BOxR: BO output channels x runs of R hardware reduction rows, so with R = a crossbar's rows
// every block's reduction run fills whole crossbars (the last one of a layer may be shorter).
TEST(Granularity, XbarBlocksAreCrossbarRowRunsTimesColumnGroups) {
  const model::Node n = conv(10, 16, 3);  // reduction 144 = 9 positions x 16 channels
  const BlockGrid g = make_block_grid(n, Granularity::parse("xbar:4x128"));
  EXPECT_EQ(g.out_groups, 3);  // 4 + 4 + 2
  EXPECT_EQ(g.red_groups, 2);  // 128 + 16 rows
  for (int64_t k = 0; k < g.reduction(); ++k) EXPECT_EQ(g.red_group[k], k / 128) << k;
  EXPECT_EQ(g.out_group[9], 2);
}

TEST(Granularity, BlockLargerThanEveryLayerIsRefused) {
  model::Graph g;
  g.source = "m.onnx";
  g.nodes.push_back(conv(16, 8, 3));
  EXPECT_NO_THROW(check_granularity_fits(g, Granularity::parse("block:16x8")));
  EXPECT_THROW(check_granularity_fits(g, Granularity::parse("block:32x8")), InputError);
  EXPECT_THROW(check_granularity_fits(g, Granularity::parse("block:16x9")), InputError);
}

}  // namespace
}  // namespace tilescale::quant
