// The lowering (model/layout.h) every executor and simulator shares agrees with the ONNX
// definition written out here as plain loops: the im2col matrix in ONNX order (float and integer,
// the contiguous stride-1 path and the strided one), single columns of it, the hardware-order rows,
// the window taps, the count_include_pad divisor, the weight packing, and the blocks' ONNX columns.
#include "tilescale/model/layout.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "int_test_support.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant {
namespace {

namespace layout = model::layout;
using test::Random;
using test::tap_input;
using test::WindowSpec;

class LoweringTester : public WindowSpec<LoweringTester> {
 public:
  LoweringTester& channels(int64_t cin_g) {
    cin_g_ = cin_g;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note() + "; " + geometry() + " channels " + std::to_string(cin_g_));
    const layout::ConvShape s = shape(cin_g_);
    const int64_t kh = s.win.kernel_h, kw = s.win.kernel_w, P = s.positions(), k = s.k();
    ASSERT_GT(P, 0);
    const std::vector<int64_t> x = rnd.codes(cin_g_ * s.h * s.w, {-1000, 1000});
    // want[row][position], row = (c * kh + ky) * kw + kx.
    std::vector<int64_t> want(static_cast<std::size_t>(k * P), 0);
    for (int64_t c = 0; c < cin_g_; ++c)
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx)
          for (int64_t oy = 0; oy < s.ho; ++oy)
            for (int64_t ox = 0; ox < s.wo; ++ox) {
              int64_t iy, ix;
              if (tap_input(s, oy, ox, ky, kx, &iy, &ix))
                want[((c * kh + ky) * kw + kx) * P + oy * s.wo + ox] = x[(c * s.h + iy) * s.w + ix];
            }

    // ONNX order, integer codes into double, at an offset inside wider rows: the columns around
    // the matrix stay untouched.
    const int64_t ld = P + 3;
    std::vector<double> col(static_cast<std::size_t>(k * ld), -0.5);
    layout::im2col_onnx(s, x.data(), col.data() + 1, ld);
    for (int64_t r = 0; r < k; ++r)
      for (int64_t j = 0; j < ld; ++j) {
        const double expect = j >= 1 && j <= P ? static_cast<double>(want[r * P + j - 1]) : -0.5;
        ASSERT_EQ(col[r * ld + j], expect) << "onnx row " << r << " column " << j;
      }
    // The same in float.
    std::vector<float> xf(x.begin(), x.end()), colf(static_cast<std::size_t>(k * P), -0.5f);
    layout::im2col_onnx(s, xf.data(), colf.data(), P);
    for (int64_t i = 0; i < k * P; ++i)
      ASSERT_EQ(colf[i], static_cast<float>(want[i])) << "float element " << i;
    // One column at a time.
    for (int64_t m = 0; m < P; ++m) {
      std::vector<float> one(static_cast<std::size_t>(k * 2), -0.5f);
      layout::im2col_onnx_column(s, xf.data(), m, one.data(), 2);
      for (int64_t r = 0; r < k; ++r) {
        ASSERT_EQ(one[r * 2], static_cast<float>(want[r * P + m]))
            << "column " << m << " row " << r;
        ASSERT_EQ(one[r * 2 + 1], -0.5f) << "column " << m << " wrote outside its stride";
      }
    }
    // Hardware order: one row per output pixel, reduction index (ky * kw + kx) * cin_g + c.
    std::vector<int32_t> rows(static_cast<std::size_t>(P * k), -1);
    layout::im2col_hw(s, x.data(), rows.data());
    for (int64_t m = 0; m < P; ++m)
      for (int64_t c = 0; c < cin_g_; ++c)
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx)
            ASSERT_EQ(rows[m * k + (ky * kw + kx) * cin_g_ + c],
                      want[((c * kh + ky) * kw + kx) * P + m])
                << "hw row " << m << " c " << c << " ky " << ky << " kx " << kx;
    check_taps_and_divisor(s);
  }

 private:
  void check_taps_and_divisor(const layout::ConvShape& s) const {
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        std::vector<std::pair<int64_t, int64_t>> want, got;
        int64_t padded = 0;
        for (int64_t ky = 0; ky < s.win.kernel_h; ++ky)
          for (int64_t kx = 0; kx < s.win.kernel_w; ++kx) {
            int64_t iy, ix;
            if (tap_input(s, oy, ox, ky, kx, &iy, &ix))
              want.emplace_back(iy * s.w + ix, ky * s.win.kernel_w + kx);
            const int64_t y = oy * s.win.stride_h - s.win.pad_top + ky;
            const int64_t xx = ox * s.win.stride_w - s.win.pad_left + kx;
            padded += y >= -s.win.pad_top && y < s.h + s.win.pad_bottom && xx >= -s.win.pad_left &&
                      xx < s.w + s.win.pad_right;
          }
        layout::for_each_tap(s, oy, ox, [&](int64_t off, int64_t p) { got.emplace_back(off, p); });
        ASSERT_EQ(got, want) << "taps of output " << oy << "," << ox;
        ASSERT_EQ(s.padded_window_count(oy, ox), padded) << "output " << oy << "," << ox;
      }
  }

  int64_t cin_g_ = 2;
};

TEST(Lowering, OddSizesStride1Pads) {
  LoweringTester().input_size(7, 5).kernel(3, 3).pads(1, 1, 1, 1).test(1);
  LoweringTester().channels(3).input_size(5, 9).kernel(1, 5).pads(0, 2, 0, 2).test(2);
}
TEST(Lowering, StridesAndAsymmetricPads) {
  LoweringTester().input_size(9, 8).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).test(3);
  LoweringTester().input_size(7, 8).kernel(2, 3).stride(2, 3).pads(1, 0, 0, 2).test(4);
  LoweringTester().channels(1).input_size(4, 4).kernel(2, 2).stride(2, 1).pads(1, 0, 0, 1).test(5);
}
TEST(Lowering, Dilation) {
  LoweringTester().input_size(9, 10).kernel(3, 2).dilation(2, 3).pads(2, 1, 2, 3).test(6);
}
TEST(Lowering, PadsWiderThanTheKernel) {
  LoweringTester().input_size(3, 3).kernel(2, 2).pads(3, 3, 3, 3).test(7);
  LoweringTester().input_size(3, 4).kernel(2, 2).stride(2, 2).pads(2, 3, 3, 2).test(8);
}
TEST(Lowering, PointwiseAndWholeInputKernels) {
  LoweringTester().channels(5).input_size(3, 4).kernel(1, 1).test(9);
  LoweringTester().channels(3).input_size(4, 3).kernel(4, 3).test(10);
  LoweringTester().channels(1).input_size(1, 1).kernel(1, 1).test(11);  // k = 1
}
TEST(Lowering, RandomGeometries) {
  Random rnd(12);
  for (int i = 0; i < 60; ++i) {
    // One draw per statement, so the sequence does not depend on evaluation order.
    int64_t v[14];
    const int64_t limits[14][2] = {{1, 4}, {1, 4}, {1, 3}, {1, 3}, {1, 3}, {0, 5}, {0, 5},
                                   {1, 3}, {1, 3}, {0, 3}, {0, 3}, {0, 3}, {0, 3}, {0, 1 << 30}};
    for (int j = 0; j < 14; ++j) v[j] = rnd.uniform(limits[j][0], limits[j][1]);
    const int64_t kh = v[0], kw = v[1], dh = v[2], dw = v[3];
    LoweringTester()
        .channels(v[4])
        .input_size((kh - 1) * dh + 1 + v[5], (kw - 1) * dw + 1 + v[6])
        .kernel(kh, kw)
        .stride(v[7], v[8])
        .dilation(dh, dw)
        .pads(v[9], v[10], v[11], v[12])
        .test(static_cast<uint32_t>(v[13]));
  }
}

TEST(Lowering, ConvShapeOfConvPoolAndGemmNodes) {
  model::Node conv;
  conv.op = model::Op::Conv;
  conv.window.kernel_h = 3;
  conv.window.groups = 2;
  const layout::ConvShape c = layout::conv_shape(conv, {"x", {6, 7, 8}}, {"y", {4, 5, 8}});
  EXPECT_EQ(c.cin_g, 3);
  EXPECT_EQ(c.h, 7);
  EXPECT_EQ(c.w, 8);
  EXPECT_EQ(c.positions(), 40);
  EXPECT_EQ(c.k(), 9);
  model::Node gemm;
  gemm.op = model::Op::Gemm;
  gemm.weight.shape = {10, 37};
  const layout::ConvShape g = layout::conv_shape(gemm, {"x", {37}}, {"y", {10}});
  EXPECT_EQ(g.cin_g, 37);
  EXPECT_EQ(g.k(), 37);
  EXPECT_EQ(g.positions(), 1);
  // A Gemm lowers as a 1x1 convolution: its im2col is the input vector as one column.
  std::vector<int64_t> x(37), col(37, -1);
  for (int64_t i = 0; i < 37; ++i) x[i] = 3 * i - 50;
  layout::im2col_onnx(g, x.data(), col.data(), 1);
  EXPECT_EQ(col, x);
}

TEST(Lowering, WeightPackingPutsHardwareReductionOnRows) {
  const int64_t groups = 2, n = 3, cin_g = 4, kernel = 6, k = cin_g * kernel;
  std::vector<int8_t> onnx(static_cast<std::size_t>(groups * n * k));
  for (std::size_t i = 0; i < onnx.size(); ++i) onnx[i] = static_cast<int8_t>(i % 251 - 125);
  std::vector<int32_t> packed(onnx.size(), 999);
  layout::pack_weights_hw(onnx.data(), groups, n, cin_g, kernel, packed.data());
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t o = 0; o < n; ++o)
      for (int64_t c = 0; c < cin_g; ++c)
        for (int64_t p = 0; p < kernel; ++p)
          ASSERT_EQ(packed[(g * k + p * cin_g + c) * n + o],
                    onnx[((g * n + o) * cin_g + c) * kernel + p])
              << "g " << g << " o " << o << " c " << c << " p " << p;
}

TEST(Lowering, PlacePaddedMovesEachElementByItsPads) {
  // Two samples of [2][3] padded by (1, 0) before and (0, 2) after into [3][5].
  const std::vector<int> in{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<int> out(30, 0);
  layout::place_padded<int>({2, 3}, {3, 5}, {1, 0, 0, 2}, 2, in.data(), out.data());
  EXPECT_EQ(out, (std::vector<int>{0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4,  5,  6,  0, 0,
                                   0, 0, 0, 0, 0, 7, 8, 9, 0, 0, 10, 11, 12, 0, 0}));
}

TEST(Lowering, BlockOnnxColumnsPartitionTheReductionInAscendingOrder) {
  for (const char* g : {"layer", "channel", "block:2x3", "mx:5", "vsq:7"}) {
    SCOPED_TRACE(g);
    model::Node node;
    node.op = model::Op::Conv;
    node.weight.shape = {4, 7, 3, 2};
    const BlockGrid grid = make_block_grid(node, Granularity::parse(g));
    const auto cols = grid.onnx_columns();
    ASSERT_EQ(static_cast<int64_t>(cols.size()), grid.red_groups);
    std::vector<int> seen(static_cast<std::size_t>(grid.reduction()), 0);
    for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
      EXPECT_TRUE(std::is_sorted(cols[rg].begin(), cols[rg].end()));
      for (int64_t onnx : cols[rg]) {
        const int64_t c = onnx / grid.kernel, p = onnx % grid.kernel;
        EXPECT_EQ(grid.red_group[p * grid.cin_g + c], rg) << "column " << onnx;
        ++seen[onnx];
      }
    }
    for (int s : seen) EXPECT_EQ(s, 1);
  }
}

}  // namespace
}  // namespace tilescale::quant
