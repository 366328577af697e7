// The float executor against the references of float_op_tester.h. Elementwise ops and activations:
// unary ops, binary ops with a constant operand of every broadcastable shape on either side.
#include <gtest/gtest.h>

#include "float_op_tester.h"

namespace tilescale::quant {
namespace {

using namespace float_test;

// --- elementwise ---------------------------------------------------------------------------------

double ref_apply(const std::string& op, double a, double b) {
  if (op == "Add") return a + b;
  if (op == "Sub") return a - b;
  if (op == "Mul") return a * b;
  return a / b;
}

TEST(FloatRelu, StandaloneClampsNegativesOnImagesAndVectors) {
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{3, 4, 5}, std::vector<int64_t>{11}}) {
    OnnxBuilder b;
    b.input("x", shape);
    b.node("Relu", {"x"}, {"y"});
    b.output("y");
    expect_matches_reference(
        import_model(b), [](const Act& x) { return ref_clamp(x, 0.0, INFINITY); }, seed_for(400));
  }
}

TEST(FloatClip, Opset9AttributesClampBothSides) {
  OnnxBuilder b(9);
  b.input("x", {2, 3, 4});
  b.node("Clip", {"x"}, {"y"}, {attr_float("min", -0.25f), attr_float("max", 0.5f)});
  b.output("y");
  expect_matches_reference(
      import_model(b), [](const Act& x) { return ref_clamp(x, -0.25, 0.5); }, seed_for(401));
}

TEST(FloatClip, Opset9MissingAttributesAreUnbounded) {
  OnnxBuilder b(9);
  b.input("x", {2, 3, 4});
  b.node("Clip", {"x"}, {"y"}, {attr_float("max", 0.1f)});
  b.output("y");
  expect_matches_reference(
      import_model(b), [](const Act& x) { return ref_clamp(x, -INFINITY, 0.1); }, seed_for(402));
}

TEST(FloatClip, Opset13InputsGiveReLU6) {
  OnnxBuilder b(13);
  b.input("x", {2, 3, 4});
  b.initializer("lo", {}, {0.0f}).initializer("hi", {}, {6.0f});
  b.node("Clip", {"x", "lo", "hi"}, {"y"});
  b.output("y");
  expect_matches_reference(import_model(b), [](const Act& x) { return ref_clamp(x, 0.0, 6.0); },
                           seed_for(403), {-10.0, 10.0});
}

TEST(FloatClip, Opset13MinOnlyAndMaxOnly) {
  {
    OnnxBuilder b(13);
    b.input("x", {5});
    b.initializer("lo", {}, {-0.2f});
    b.node("Clip", {"x", "lo"}, {"y"});
    b.output("y");
    expect_matches_reference(
        import_model(b), [](const Act& x) { return ref_clamp(x, -0.2, INFINITY); }, seed_for(404));
  }
  {
    OnnxBuilder b(13);
    b.input("x", {5});
    b.initializer("hi", {}, {0.3f});
    b.node("Clip", {"x", "", "hi"}, {"y"});
    b.output("y");
    expect_matches_reference(
        import_model(b), [](const Act& x) { return ref_clamp(x, -INFINITY, 0.3); }, seed_for(405));
  }
}

// A binary op with one constant operand of the given ONNX shape, on the left or the right.
struct BinaryCase {
  std::vector<int64_t> const_shape;
  bool const_first;
};

class FloatBinaryConstant : public ::testing::TestWithParam<std::string> {
 protected:
  // x: [C=3][H=4][W=5]; the constant broadcasts numpy-style against [N][3][4][5].
  void check(const BinaryCase& bc, uint32_t fixed_seed) {
    const std::string op = GetParam();
    const uint32_t seed = seed_for(fixed_seed);
    SCOPED_TRACE(op + " " + seed_note(seed));
    std::mt19937 rng(seed ^ 0xb1u);
    int64_t n = 1;
    for (int64_t d : bc.const_shape) n *= d;
    // Magnitudes in [0.5, 1.5] keep Div away from zero on either side.
    const std::vector<float> k = random_floats(rng, static_cast<std::size_t>(n), {-1.5, 1.5, 0.5});
    OnnxBuilder b;
    b.input("x", {3, 4, 5});
    b.initializer("k", bc.const_shape, k);
    b.node(op,
           bc.const_first ? std::vector<std::string>{"k", "x"} : std::vector<std::string>{"x", "k"},
           {"y"});
    b.output("y");
    const model::Graph g = import_model(b);
    ASSERT_EQ(g.nodes.size(), 1u);
    // Index of the constant element that pairs with per-sample index (c, h, w), numpy broadcasting.
    std::vector<int64_t> cs = bc.const_shape;
    if (cs.size() == 4) cs.erase(cs.begin());
    while (cs.size() < 3) cs.insert(cs.begin(), 1);
    const bool first = bc.const_first;
    expect_matches_reference(g,
                             [&](const Act& x) {
                               Act y = x;
                               for (int64_t c = 0; c < 3; ++c)
                                 for (int64_t h = 0; h < 4; ++h)
                                   for (int64_t w = 0; w < 5; ++w) {
                                     const int64_t ci = cs[0] == 1 ? 0 : c, hi = cs[1] == 1 ? 0 : h,
                                                   wi = cs[2] == 1 ? 0 : w;
                                     const double kv = k[(ci * cs[1] + hi) * cs[2] + wi];
                                     y.at(c, h, w) = first ? ref_apply(op, kv, x.at(c, h, w))
                                                           : ref_apply(op, x.at(c, h, w), kv);
                                   }
                               return y;
                             },
                             seed, {-1.5, 1.5, 0.5});
  }
};

TEST_P(FloatBinaryConstant, PerChannelConstantOnTheRight) { check({{1, 3, 1, 1}, false}, 500); }
TEST_P(FloatBinaryConstant, PerChannelConstantOnTheLeft) { check({{1, 3, 1, 1}, true}, 501); }
TEST_P(FloatBinaryConstant, Rank3PerChannelConstantOnTheLeft) { check({{3, 1, 1}, true}, 502); }
TEST_P(FloatBinaryConstant, ScalarConstantOnEitherSide) {
  check({{1}, false}, 503);
  check({{}, true}, 504);
}
TEST_P(FloatBinaryConstant, TrailingAxisConstantBroadcastsOverRows) { check({{5}, true}, 505); }
TEST_P(FloatBinaryConstant, FullPerSampleConstant) { check({{1, 3, 4, 5}, false}, 506); }

INSTANTIATE_TEST_SUITE_P(Ops, FloatBinaryConstant, ::testing::Values("Add", "Sub", "Mul", "Div"),
                         [](const auto& info) { return info.param; });

TEST(FloatResidual, AddOfReluConvAndInputMatchesReference) {
  const uint32_t seed = seed_for(510);
  std::mt19937 rng(seed);
  const std::vector<float> w = random_floats(rng, 3 * 3 * 3 * 3), bias = random_floats(rng, 3);
  OnnxBuilder b;
  b.input("x", {3, 5, 4});
  b.initializer("W", {3, 3, 3, 3}, w).initializer("B", {3}, bias);
  b.node("Conv", {"x", "W", "B"}, {"c"}, {attr_ints("pads", {1, 1, 1, 1})});
  b.node("Relu", {"c"}, {"r"});
  b.node("Add", {"r", "x"}, {"y"});
  b.output("y");
  const model::Graph g = import_model(b);
  ASSERT_EQ(count_op(g, model::Op::Add), 1);
  const Geometry geo{3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
  expect_matches_reference(
      g,
      [&](const Act& x) {
        Act y = ref_clamp(ref_conv(x, w, 3, bias, geo, 1), 0.0, INFINITY);
        for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] += x.v[i];
        return y;
      },
      seed);
}

TEST(FloatResidual, SubAndDivOfTwoActivationsKeepOperandOrder) {
  for (const std::string op : {"Sub", "Div"}) {
    SCOPED_TRACE(op);
    OnnxBuilder b;
    b.input("x", {2, 3, 3});
    b.initializer("two", {1}, {2.0f});
    b.node("Mul", {"x", "two"}, {"x2"});  // x2 = 2x, so x2 op x is far from 0/0
    b.node("Relu", {"x"}, {"r"});
    b.node("Add", {"r", "x2"}, {"a"});  // a = relu(x) + 2x, nonzero when |x| >= 0.5
    b.node(op, {"x", "a"}, {"y"});
    b.output("y");
    expect_matches_reference(import_model(b),
                             [&](const Act& x) {
                               Act y = x;
                               for (std::size_t i = 0; i < y.v.size(); ++i)
                                 y.v[i] =
                                     ref_apply(op, x.v[i], std::max(x.v[i], 0.0) + 2.0 * x.v[i]);
                               return y;
                             },
                             seed_for(511), {-1.5, 1.5, 0.5});
  }
}

}  // namespace
}  // namespace tilescale::quant
