// The float executor against the references of float_op_tester.h. Max and average pooling: pads,
// strides, ceil_mode, count_include_pad, global pooling.
#include <gtest/gtest.h>

#include "float_op_tester.h"

namespace tilescale::quant {
namespace {

using namespace float_test;

// --- pooling -------------------------------------------------------------------------------------

class PoolTester : public WindowTester<PoolTester> {
 public:
  explicit PoolTester(bool is_max)
      : WindowTester(2, 6, 6, Geometry{2, 2, 2, 2, 1, 1, 0, 0, 0, 0}), max_(is_max) {}
  PoolTester& ceil_mode(bool c) {
    ceil_ = c;
    return *this;
  }
  PoolTester& count_include_pad(bool c) {
    include_ = c;
    return *this;
  }

  void test(uint32_t fixed_seed) const {
    const uint32_t seed = seed_for(fixed_seed);
    OnnxBuilder b(13);
    b.input("x", {c_, h_, w_});
    std::vector<onnx::AttributeProto> attrs = window_attrs();
    if (ceil_) attrs.push_back(attr_int("ceil_mode", 1));
    if (max_ && (g_.dh != 1 || g_.dw != 1)) attrs.push_back(attr_ints("dilations", {g_.dh, g_.dw}));
    if (!max_) attrs.push_back(attr_int("count_include_pad", include_ ? 1 : 0));
    b.node(max_ ? "MaxPool" : "AveragePool", {"x"}, {"y"}, attrs);
    b.output("y");
    const model::Graph g = import_model(b);
    ASSERT_EQ(g.nodes.size(), 1u);
    const Geometry geo = resolved_geometry();
    const bool is_max = max_, ceil = ceil_, include = include_;
    expect_matches_reference(
        g, [&](const Act& x) { return ref_pool(x, is_max, geo, ceil, include); }, seed);
  }

 private:
  bool max_;
  bool ceil_ = false, include_ = false;
};

TEST(FloatMaxPool, Kernel2Stride2MatchesReference) {
  PoolTester(true).input_size(6, 8).test(300);
  PoolTester(true).input_size(7, 5).test(301);  // odd sizes drop the last row/column
}

TEST(FloatMaxPool, PadsAndStrideMatchReference) {
  PoolTester(true).input_size(7, 7).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).test(302);
  PoolTester(true).input_size(6, 5).kernel(3, 2).stride(1, 2).pads(0, 1, 2, 0).test(303);
}

TEST(FloatMaxPool, CeilModeKeepsPartialLastWindow) {
  PoolTester(true).input_size(7, 5).ceil_mode(true).test(304);
  PoolTester(true)
      .input_size(8, 9)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .ceil_mode(true)
      .test(305);
  PoolTester(true)
      .input_size(6, 6)
      .kernel(3, 3)
      .stride(3, 3)
      .pads(1, 1, 1, 1)
      .ceil_mode(true)
      .test(306);
}

TEST(FloatMaxPool, DilationAndSameUpperMatchReference) {
  PoolTester(true).input_size(9, 9).kernel(2, 2).stride(1, 1).dilation(2, 2).test(307);
  PoolTester(true).input_size(7, 6).kernel(3, 3).stride(2, 2).auto_pad("SAME_UPPER").test(308);
}

TEST(FloatAveragePool, CountIncludePad0DividesByInsideElements) {
  PoolTester(false)
      .input_size(7, 7)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .count_include_pad(false)
      .test(310);
  PoolTester(false)
      .input_size(5, 6)
      .kernel(3, 2)
      .stride(1, 1)
      .pads(2, 0, 1, 1)
      .count_include_pad(false)
      .test(311);
}

TEST(FloatAveragePool, CountIncludePad1DividesByPaddedWindow) {
  PoolTester(false)
      .input_size(7, 7)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .count_include_pad(true)
      .test(312);
  PoolTester(false)
      .input_size(5, 6)
      .kernel(3, 2)
      .stride(1, 1)
      .pads(2, 0, 1, 1)
      .count_include_pad(true)
      .test(313);
}

TEST(FloatAveragePool, CeilModeOverhangNeverCounts) {
  PoolTester(false)
      .input_size(7, 5)
      .kernel(2, 2)
      .stride(2, 2)
      .ceil_mode(true)
      .count_include_pad(false)
      .test(314);
  PoolTester(false)
      .input_size(7, 5)
      .kernel(2, 2)
      .stride(2, 2)
      .ceil_mode(true)
      .count_include_pad(true)
      .test(315);
  PoolTester(false)
      .input_size(8, 8)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .ceil_mode(true)
      .count_include_pad(true)
      .test(316);
  PoolTester(false)
      .input_size(8, 8)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .ceil_mode(true)
      .count_include_pad(false)
      .test(317);
}

TEST(FloatAveragePool, OneByOneKernelStride2Subsamples) {
  PoolTester(false).input_size(7, 6).kernel(1, 1).stride(2, 2).test(318);
}

TEST(FloatGlobalAveragePool, AveragesEachChannelPlane) {
  for (const auto& chw :
       std::vector<std::array<int64_t, 3>>{{3, 7, 5}, {1, 1, 1}, {4, 1, 6}, {2, 16, 16}}) {
    const int64_t c = chw[0], h = chw[1], w = chw[2];
    OnnxBuilder b;
    b.input("x", {c, h, w});
    b.node("GlobalAveragePool", {"x"}, {"y"});
    b.output("y");
    const model::Graph g = import_model(b);
    expect_matches_reference(
        g,
        [&](const Act& x) {
          Act y = make_act({c, 1, 1});
          for (int64_t ch = 0; ch < c; ++ch) {
            double s = 0.0;
            for (int64_t i = 0; i < h * w; ++i) s += x.v[ch * h * w + i];
            y.v[ch] = s / static_cast<double>(h * w);
          }
          return y;
        },
        seed_for(320 + static_cast<uint32_t>(h)));
  }
}

}  // namespace
}  // namespace tilescale::quant
