// The float executor against the references of float_op_tester.h. Shape ops: Flatten, Reshape,
// Transpose, Concat, Pad (the per-sample order is observed through a Gemm after them).
#include <gtest/gtest.h>

#include "float_op_tester.h"

namespace tilescale::quant {
namespace {

using namespace float_test;

// --- shape ops -----------------------------------------------------------------------------------

// x [C,H,W] -> <shape op> -> Gemm to M outputs, so the per-sample flattening order is observable.
void check_flatten_then_gemm(const std::function<void(OnnxBuilder&)>& add_flatten,
                             uint32_t fixed_seed) {
  const uint32_t seed = seed_for(fixed_seed);
  std::mt19937 rng(seed);
  const int64_t c = 2, h = 3, w = 4, k = c * h * w, m = 5;
  const std::vector<float> wt = random_floats(rng, k * m), bias = random_floats(rng, m);
  OnnxBuilder b;
  b.input("x", {c, h, w});
  b.initializer("B", {m, k}, wt).initializer("C", {m}, bias);
  add_flatten(b);  // "x" -> "f"
  b.node("Gemm", {"f", "B", "C"}, {"y"}, {attr_int("transB", 1)});
  b.output("y");
  const model::Graph g = import_model(b);
  ASSERT_EQ(count_op(g, model::Op::Reshape), 1);
  for (const model::Node& n : g.nodes)
    if (n.op == model::Op::Reshape) {
      EXPECT_EQ(g.values[n.output].shape, (std::vector<int64_t>{k}));
    }
  expect_matches_reference(
      g,
      [&](const Act& x) {
        return ref_gemm(Act{{k}, x.v}, wt, m, true, 1.0, 1.0, bias);
      },
      seed);
}

TEST(FloatShape, FlattenKeepsCHWOrder) {
  check_flatten_then_gemm([](OnnxBuilder& b) { b.node("Flatten", {"x"}, {"f"}); }, 600);
  check_flatten_then_gemm(
      [](OnnxBuilder& b) { b.node("Flatten", {"x"}, {"f"}, {attr_int("axis", -3)}); }, 601);
}

TEST(FloatShape, ReshapeZeroMinusOneFlattensPerSample) {
  check_flatten_then_gemm(
      [](OnnxBuilder& b) {
        b.initializer_i64("shape", {2}, {0, -1});
        b.node("Reshape", {"x", "shape"}, {"f"});
      },
      602);
}

TEST(FloatShape, ReshapeMinusOneFFlattensPerSample) {
  check_flatten_then_gemm(
      [](OnnxBuilder& b) {
        b.initializer_i64("shape", {2}, {-1, 24});
        b.node("Reshape", {"x", "shape"}, {"f"});
      },
      603);
}

TEST(FloatShape, ReshapeToPerSampleImageKeepsData) {
  OnnxBuilder b;
  b.input("x", {2, 3, 6});
  b.initializer_i64("shape", {4}, {0, 4, 0, 3});  // 0 copies the input's axis: [N,4,3,3]
  b.node("Reshape", {"x", "shape"}, {"r"});
  b.node("Relu", {"r"}, {"y"});
  b.output("y");
  const model::Graph g = import_model(b);
  EXPECT_EQ(g.output_value().shape, (std::vector<int64_t>{4, 3, 3}));
  expect_matches_reference(
      g,
      [](const Act& x) {
        return ref_clamp(Act{{4, 3, 3}, x.v}, 0.0, INFINITY);
      },
      seed_for(604));
}

TEST(FloatConcat, ChannelsOfTwoConvsAndTheInput) {
  const uint32_t seed = seed_for(610);
  std::mt19937 rng(seed);
  const std::vector<float> wa = random_floats(rng, 2 * 3 * 3 * 3),
                           wb = random_floats(rng, 3 * 3 * 1 * 1);
  const std::vector<float> ba = random_floats(rng, 2), bb = random_floats(rng, 3);
  for (int64_t axis : {1, -3}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    OnnxBuilder b;
    b.input("x", {3, 5, 6});
    b.initializer("Wa", {2, 3, 3, 3}, wa).initializer("Ba", {2}, ba);
    b.initializer("Wb", {3, 3, 1, 1}, wb).initializer("Bb", {3}, bb);
    b.node("Conv", {"x", "Wa", "Ba"}, {"a"}, {attr_ints("pads", {1, 1, 1, 1})});
    b.node("Conv", {"x", "Wb", "Bb"}, {"b"});
    b.node("Concat", {"a", "x", "b"}, {"y"}, {attr_int("axis", axis)});
    b.output("y");
    const model::Graph g = import_model(b);
    EXPECT_EQ(g.output_value().shape, (std::vector<int64_t>{8, 5, 6}));
    expect_matches_reference(
        g,
        [&](const Act& x) {
          const Act a = ref_conv(x, wa, 2, ba, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 1);
          const Act c = ref_conv(x, wb, 3, bb, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 1);
          Act y{{8, 5, 6}, a.v};
          y.v.insert(y.v.end(), x.v.begin(), x.v.end());
          y.v.insert(y.v.end(), c.v.begin(), c.v.end());
          return y;
        },
        seed);
  }
}

TEST(FloatConcat, FeatureVectorsConcatenate) {
  OnnxBuilder b;
  b.input("x", {4});
  b.initializer("two", {1}, {2.0f});
  b.node("Mul", {"x", "two"}, {"m"});
  b.node("Concat", {"x", "m"}, {"y"}, {attr_int("axis", 1)});
  b.output("y");
  expect_matches_reference(
      import_model(b),
      [](const Act& x) {
        Act y{{8}, x.v};
        for (double v : x.v) y.v.push_back(2.0 * v);
        return y;
      },
      seed_for(611));
}

// Pad then AveragePool: the padded border takes part in the average as ordinary elements.
void check_pad_then_avgpool(int64_t opset, float value, uint32_t fixed_seed) {
  const int64_t c = 2, h = 5, w = 4;
  const std::vector<int64_t> pads{0, 0, 1, 2, 0, 0, 2, 1};  // [N,C,H,W] begins then ends
  OnnxBuilder b(opset);
  b.input("x", {c, h, w});
  if (opset >= 11) {
    b.initializer_i64("pads", {8}, pads).initializer("value", {}, {value});
    b.node("Pad", {"x", "pads", "value"}, {"p"}, {attr_string("mode", "constant")});
  } else {
    b.node("Pad", {"x"}, {"p"}, {attr_ints("pads", pads), attr_float("value", value)});
  }
  b.node("AveragePool", {"p"}, {"y"},
         {attr_ints("kernel_shape", {3, 3}), attr_ints("strides", {2, 1})});
  b.output("y");
  const model::Graph g = import_model(b);
  ASSERT_EQ(count_op(g, model::Op::Pad), 1);
  expect_matches_reference(
      g,
      [&](const Act& x) {
        Act p = make_act({c, h + 3, w + 3});
        std::fill(p.v.begin(), p.v.end(), static_cast<double>(value));
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t y = 0; y < h; ++y)
            for (int64_t xx = 0; xx < w; ++xx) p.at(ch, y + 1, xx + 2) = x.at(ch, y, xx);
        return ref_pool(p, false, {3, 3, 2, 1, 1, 1, 0, 0, 0, 0}, false, false);
      },
      seed_for(fixed_seed));
}

TEST(FloatPad, Opset13ConstantPadThenAveragePool) {
  check_pad_then_avgpool(13, 0.0f, 620);
  check_pad_then_avgpool(13, 0.75f, 621);
}

TEST(FloatPad, Opset9AttributePadThenAveragePool) { check_pad_then_avgpool(9, -0.5f, 622); }

TEST(FloatPad, ChannelPaddingAddsConstantPlanes) {
  OnnxBuilder b(13);
  b.input("x", {2, 2, 3});
  b.initializer_i64("pads", {8}, {0, 1, 0, 0, 0, 2, 0, 0});
  b.node("Pad", {"x", "pads"}, {"y"});
  b.output("y");
  expect_matches_reference(
      import_model(b),
      [](const Act& x) {
        Act y = make_act({5, 2, 3});
        std::copy(x.v.begin(), x.v.end(), y.v.begin() + 6);
        return y;
      },
      seed_for(623));
}

}  // namespace
}  // namespace tilescale::quant
