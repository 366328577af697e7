// The float executor against the references of float_op_tester.h. Graph rewrites and hand-computed
// cases: identity and dropout removal, BatchNorm folding where it is and is not allowed, and
// literal numbers that pin the references themselves down.
#include <gtest/gtest.h>

#include "float_op_tester.h"

namespace tilescale::quant {
namespace {

using namespace float_test;

// --- removal and folding -------------------------------------------------------------------------

TEST(FloatImport, IdentityAndDropoutAreRemoved) {
  const uint32_t seed = seed_for(700);
  std::mt19937 rng(seed);
  const std::vector<float> w = random_floats(rng, 4 * 2 * 3 * 3), bias = random_floats(rng, 4);
  for (int64_t opset : {9, 13}) {
    SCOPED_TRACE("opset " + std::to_string(opset));
    OnnxBuilder b(opset);
    b.input("x", {2, 5, 5});
    b.initializer("W", {4, 2, 3, 3}, w).initializer("B", {4}, bias);
    b.node("Identity", {"x"}, {"i0"});
    b.node("Conv", {"i0", "W", "B"}, {"c"});
    if (opset < 12)
      b.node("Dropout", {"c"}, {"d", "mask"}, {attr_float("ratio", 0.5f)});
    else
      b.node("Dropout", {"c"}, {"d", "mask"});
    b.node("Relu", {"d"}, {"r"});
    b.node("Identity", {"r"}, {"y"});
    b.output("y");
    const model::Graph g = import_model(b);
    ASSERT_EQ(g.nodes.size(), 2u);
    EXPECT_EQ(g.nodes[0].op, model::Op::Conv);
    EXPECT_EQ(g.nodes[1].op, model::Op::Relu);
    expect_matches_reference(
        g,
        [&](const Act& x) {
          return ref_clamp(ref_conv(x, w, 4, bias, {3, 3, 1, 1, 1, 1, 0, 0, 0, 0}, 1), 0.0,
                           INFINITY);
        },
        seed);
  }
}

TEST(FloatBatchNorm, StandaloneBecomesMulThenAdd) {
  const uint32_t seed = seed_for(710);
  std::mt19937 rng(seed);
  const BnParams bn = random_bn(rng, 3);
  OnnxBuilder b;
  b.input("x", {3, 4, 5});
  b.node("Relu", {"x"}, {"r"});
  add_bn(b, "r", "y", bn);
  b.output("y");
  const model::Graph g = import_model(b);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[1].op, model::Op::Mul);
  EXPECT_EQ(g.nodes[2].op, model::Op::Add);
  expect_matches_reference(
      g, [&](const Act& x) { return ref_bn(ref_clamp(x, 0.0, INFINITY), bn); }, seed);
}

TEST(FloatBatchNorm, OnTheNetworkInputBecomesMulThenAdd) {
  const uint32_t seed = seed_for(711);
  std::mt19937 rng(seed);
  const BnParams bn = random_bn(rng, 4);
  OnnxBuilder b;
  b.input("x", {4, 3, 3});
  add_bn(b, "x", "y", bn);
  b.output("y");
  const model::Graph g = import_model(b);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(count_op(g, model::Op::Mul), 1);
  EXPECT_EQ(count_op(g, model::Op::Add), 1);
  expect_matches_reference(
      g, [&](const Act& x) { return ref_bn(x, bn); }, seed);
}

// Conv output feeds both BN and a residual Add: folding would change what the Add sees.
TEST(FloatBatchNorm, ConvWithSecondConsumerIsNotFolded) {
  const uint32_t seed = seed_for(712);
  std::mt19937 rng(seed);
  const std::vector<float> w = random_floats(rng, 3 * 3 * 3 * 3);
  const BnParams bn = random_bn(rng, 3);
  const Geometry geo{3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
  for (bool through_identity : {false, true}) {
    SCOPED_TRACE(through_identity ? "Conv -> Identity -> {BN, Add}" : "Conv -> {BN, Add}");
    OnnxBuilder b;
    b.input("x", {3, 4, 4});
    b.initializer("W", {3, 3, 3, 3}, w);
    b.node("Conv", {"x", "W"}, {"c0"}, {attr_ints("pads", {1, 1, 1, 1})});
    const std::string c = through_identity ? "c" : "c0";
    if (through_identity) b.node("Identity", {"c0"}, {"c"});
    add_bn(b, c, "bn", bn);
    b.node("Add", {"bn", c}, {"y"});
    b.output("y");
    const model::Graph g = import_model(b);
    expect_matches_reference(
        g,
        [&](const Act& x) {
          const Act conv = ref_conv(x, w, 3, {}, geo, 1);
          Act y = ref_bn(conv, bn);
          for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] += conv.v[i];
          return y;
        },
        seed);
  }
}

// The Conv output is the network output; a dangling BN reading it must not rewrite the Conv.
TEST(FloatBatchNorm, ConvWhoseOutputIsTheGraphOutputIsNotFolded) {
  const uint32_t seed = seed_for(713);
  std::mt19937 rng(seed);
  const std::vector<float> w = random_floats(rng, 2 * 2 * 3 * 3);
  const BnParams bn = random_bn(rng, 2);
  OnnxBuilder b;
  b.input("x", {2, 5, 5});
  b.initializer("W", {2, 2, 3, 3}, w);
  b.node("Conv", {"x", "W"}, {"c"});
  add_bn(b, "c", "bn", bn);
  b.output("c");
  const model::Graph g = import_model(b);
  expect_matches_reference(
      g,
      [&](const Act& x) {
        return ref_conv(x, w, 2, {}, {3, 3, 1, 1, 1, 1, 0, 0, 0, 0}, 1);
      },
      seed);
}

// --- hand-computed cases: literal numbers, no reference code -------------------------------------

const std::vector<float> kImage3x3{1, 2, 3, 4, 5, 6, 7, 8, 9};

model::Graph conv_1x3x3_k2x2(const std::vector<onnx::AttributeProto>& attrs, bool bias) {
  OnnxBuilder b;
  b.input("x", {1, 3, 3});
  b.initializer("W", {1, 1, 2, 2}, {1, 2, 3, 4});
  std::vector<std::string> ins{"x", "W"};
  if (bias) {
    b.initializer("B", {1}, {0.5f});
    ins.push_back("B");
  }
  b.node("Conv", ins, {"y"}, attrs);
  b.output("y");
  return import_model(b);
}

TEST(FloatHandComputed, Conv2x2On3x3) {
  // [1 2;4 5].[1 2;3 4] = 1+4+12+20 = 37, then 47, 67, 77; plus bias 0.5.
  const model::Graph g = conv_1x3x3_k2x2({}, true);
  EXPECT_EQ(g.output_value().shape, (std::vector<int64_t>{1, 2, 2}));
  expect_floats_near(run_one(g, kImage3x3), {37.5, 47.5, 67.5, 77.5});
}

TEST(FloatHandComputed, Conv2x2SameUpperPadsBottomRight) {
  // Padding row/column after the input: the last column sees only k[0][0] and k[1][0], etc.
  const model::Graph g = conv_1x3x3_k2x2({attr_string("auto_pad", "SAME_UPPER")}, false);
  expect_floats_near(run_one(g, kImage3x3), {37, 47, 21, 67, 77, 33, 23, 26, 9});
}

TEST(FloatHandComputed, Conv2x2SameLowerPadsTopLeft) {
  const model::Graph g = conv_1x3x3_k2x2({attr_string("auto_pad", "SAME_LOWER")}, false);
  expect_floats_near(run_one(g, kImage3x3), {4, 11, 18, 18, 37, 47, 36, 67, 77});
}

TEST(FloatHandComputed, Conv2x2Stride2Pad1) {
  // Windows start at -1 and 1: (-1,-1) sees x00*4; (-1,1) sees x01*3+x02*4; (1,-1) sees
  // x10*2+x20*4; (1,1) sees 5+12+24+36.
  const model::Graph g =
      conv_1x3x3_k2x2({attr_ints("pads", {1, 1, 1, 1}), attr_ints("strides", {2, 2})}, false);
  expect_floats_near(run_one(g, kImage3x3), {4, 18, 36, 77});
}

TEST(FloatHandComputed, DepthwiseMultiplier2) {
  // Two channels, group=2, two filters per channel, 1x1 kernels: scale each channel by 2 and -1.
  OnnxBuilder b;
  b.input("x", {2, 1, 2});
  b.initializer("W", {4, 1, 1, 1}, {2, -1, 10, 0.5f});
  b.node("Conv", {"x", "W"}, {"y"}, {attr_int("group", 2)});
  b.output("y");
  expect_floats_near(run_one(import_model(b), {1, 2, 3, 4}), {2, 4, -1, -2, 30, 40, 1.5, 2});
}

TEST(FloatHandComputed, MaxPoolCeilMode) {
  OnnxBuilder b;
  b.input("x", {1, 3, 3});
  b.node(
      "MaxPool", {"x"}, {"y"},
      {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2}), attr_int("ceil_mode", 1)});
  b.output("y");
  expect_floats_near(run_one(import_model(b), kImage3x3), {5, 6, 8, 9});
}

TEST(FloatHandComputed, AveragePool3x3Pad1BothCountModes) {
  for (int include : {0, 1}) {
    SCOPED_TRACE("count_include_pad " + std::to_string(include));
    OnnxBuilder b;
    b.input("x", {1, 3, 3});
    b.node("AveragePool", {"x"}, {"y"},
           {attr_ints("kernel_shape", {3, 3}), attr_ints("pads", {1, 1, 1, 1}),
            attr_int("count_include_pad", include)});
    b.output("y");
    const std::vector<double> sums{12, 21, 16, 27, 45, 33, 24, 39, 28};
    const std::vector<double> inside{4, 6, 4, 6, 9, 6, 4, 6, 4};
    std::vector<double> want(9);
    for (int i = 0; i < 9; ++i) want[i] = sums[i] / (include ? 9.0 : inside[i]);
    expect_floats_near(run_one(import_model(b), kImage3x3), want);
  }
}

TEST(FloatHandComputed, GemmAlphaBetaTransB) {
  // B^T x = [1+2, 2-2, 0+6] = [3, 0, 6]; 2*[3,0,6] + 0.5*[1,2,3] = [6.5, 1, 13.5].
  OnnxBuilder b;
  b.input("x", {2});
  b.initializer("B", {3, 2}, {1, 1, 2, -1, 0, 3}).initializer("C", {3}, {1, 2, 3});
  b.node("Gemm", {"x", "B", "C"}, {"y"},
         {attr_int("transB", 1), attr_float("alpha", 2), attr_float("beta", 0.5f)});
  b.output("y");
  expect_floats_near(run_one(import_model(b), {1, 2}), {6.5, 1, 13.5});
}

TEST(FloatHandComputed, StandaloneBatchNorm) {
  // scale = 2 / sqrt(3 + 1) = 1, shift = 1 - 0.5 * 1 = 0.5 on channel 0; channel 1 is the identity.
  OnnxBuilder b;
  b.input("x", {2, 1, 2});
  b.initializer("g", {2}, {2, 1})
      .initializer("b", {2}, {1, 0})
      .initializer("m", {2}, {0.5f, 0})
      .initializer("v", {2}, {3, 0});
  b.node("BatchNormalization", {"x", "g", "b", "m", "v"}, {"y"}, {attr_float("epsilon", 1.0f)});
  b.output("y");
  expect_floats_near(run_one(import_model(b), {1, -2, 3, -4}), {1.5, -1.5, 3, -4});
}

TEST(FloatHandComputed, ConvThenBatchNormFolded) {
  // Conv 1x1 weight 2, bias 1: y = 2x + 1; BN scale 3/sqrt(1)=3, shift 0 - 1*3 = -3: z = 6x.
  OnnxBuilder b;
  b.input("x", {1, 1, 3});
  b.initializer("W", {1, 1, 1, 1}, {2}).initializer("B", {1}, {1});
  b.initializer("g", {1}, {3})
      .initializer("b", {1}, {0})
      .initializer("m", {1}, {1})
      .initializer("v", {1}, {1});
  b.node("Conv", {"x", "W", "B"}, {"c"});
  b.node("BatchNormalization", {"c", "g", "b", "m", "v"}, {"y"}, {attr_float("epsilon", 0.0f)});
  b.output("y");
  const model::Graph g = import_model(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  expect_floats_near(run_one(g, {1, -0.5f, 2}), {6, -3, 12});
}

TEST(FloatHandComputed, ReLU6AndRelu) {
  OnnxBuilder b(13);
  b.input("x", {4});
  b.initializer("lo", {}, {0}).initializer("hi", {}, {6});
  b.node("Clip", {"x", "lo", "hi"}, {"y"});
  b.output("y");
  expect_floats_near(run_one(import_model(b), {-1, 3, 7, 6}), {0, 3, 6, 6});
}

TEST(FloatHandComputed, SubAndDivWithConstantOnTheLeft) {
  for (const std::string op : {"Sub", "Div"}) {
    OnnxBuilder b;
    b.input("x", {2, 1, 1});
    b.initializer("k", {1, 2, 1, 1}, {12, 1});
    b.node(op, {"k", "x"}, {"y"});
    b.output("y");
    const std::vector<double> want =
        op == "Sub" ? std::vector<double>{8, -1} : std::vector<double>{3, 0.5};
    expect_floats_near(run_one(import_model(b), {4, 2}), want);
  }
}

TEST(FloatHandComputed, PadThenAveragePool) {
  // [1 2;3 4] padded by one zero on every side, 2x2 average with stride 2: each window holds
  // exactly one input element and three zeros, so the output is the input divided by 4.
  OnnxBuilder b(13);
  b.input("x", {1, 2, 2});
  b.initializer_i64("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  b.node("Pad", {"x", "pads"}, {"p"}, {attr_string("mode", "constant")});
  b.node("AveragePool", {"p"}, {"y"},
         {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})});
  b.output("y");
  expect_floats_near(run_one(import_model(b), {1, 2, 3, 4}), {0.25, 0.5, 0.75, 1.0});
}

}  // namespace
}  // namespace tilescale::quant
