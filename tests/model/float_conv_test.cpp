// The float executor against the references of float_op_tester.h. Conv: odd sizes, non-square
// kernels, strides, asymmetric and auto pads, dilation, groups, depthwise, pointwise, absent bias,
// a kernel covering the whole input, a wide sweep; fused activations and BatchNorm folded into the
// conv.
#include <gtest/gtest.h>

#include "float_op_tester.h"

namespace tilescale::quant {
namespace {

using namespace float_test;

class ConvTester : public WindowTester<ConvTester> {
 public:
  ConvTester() : WindowTester(1, 5, 5, Geometry{3, 3, 1, 1, 1, 1, 0, 0, 0, 0}) {}
  ConvTester& out_channels(int64_t c) {
    cout_ = c;
    return *this;
  }
  ConvTester& groups(int64_t g) {
    groups_ = g;
    return *this;
  }
  ConvTester& bias(bool b) {
    bias_ = b;
    return *this;
  }
  ConvTester& activation(Activation a) {
    act_ = a;
    return *this;
  }
  ConvTester& batch_norm(bool bn) {
    bn_ = bn;
    return *this;
  }
  ConvTester& sweep() {
    configs_ = kSweepConfigs;
    return *this;
  }

  void test(uint32_t fixed_seed) const {
    const uint32_t seed = seed_for(fixed_seed);
    SCOPED_TRACE(seed_note(seed));
    std::mt19937 rng(seed ^ 0x5eedu);
    // ReLU6 needs pre-activations beyond 6 to be exercised: scale the weights up.
    const double wscale = act_ == Activation::kReLU6Inputs ? 4.0 : 1.0;
    const std::vector<float> w = random_floats(
        rng, static_cast<std::size_t>(cout_ * (c_ / groups_) * g_.kh * g_.kw), {-wscale, wscale});
    const std::vector<float> bias =
        bias_ ? random_floats(rng, static_cast<std::size_t>(cout_)) : std::vector<float>{};
    const BnParams bn = random_bn(rng, cout_);

    OnnxBuilder b(act_ == Activation::kClipAttributes ? 9 : 13);
    b.input("x", {c_, h_, w_});
    b.initializer("W", {cout_, c_ / groups_, g_.kh, g_.kw}, w);
    std::vector<std::string> ins{"x", "W"};
    if (bias_) {
      b.initializer("B", {cout_}, bias);
      ins.push_back("B");
    }
    std::vector<onnx::AttributeProto> attrs = window_attrs();
    attrs.push_back(attr_ints("dilations", {g_.dh, g_.dw}));
    if (groups_ != 1) attrs.push_back(attr_int("group", groups_));
    b.node("Conv", ins, {"conv"}, attrs, "conv0");
    std::string last = "conv";
    if (bn_) {
      add_bn(b, last, "bn", bn);
      last = "bn";
    }
    b.output(add_activation(b, act_, last));

    const model::Graph g = import_model(b);
    ASSERT_EQ(count_op(g, model::Op::Conv), 1);
    EXPECT_EQ(static_cast<int>(g.nodes.size()), act_ == Activation::kNone ? 1 : 2)
        << "BatchNormalization must fold into the Conv, leaving no Mul/Add behind";
    for (const model::Node& n : g.nodes) EXPECT_NE(n.onnx_op, "BatchNormalization");

    const Geometry geo = resolved_geometry();
    const int64_t cout = cout_, groups = groups_;
    const bool has_bn = bn_;
    const Activation act = act_;
    expect_matches_reference(
        g,
        [&](const Act& x) {
          Act y = ref_conv(x, w, cout, bias, geo, groups);
          if (has_bn) y = ref_bn(std::move(y), bn);
          return ref_activation(std::move(y), act);
        },
        seed, {}, configs_);
  }

 private:
  std::vector<RunConfig> configs_ = all_configs();
  int64_t cout_ = 1, groups_ = 1;
  bool bias_ = true, bn_ = false;
  Activation act_ = Activation::kNone;
};

TEST(FloatConv, OddSizesMatchReference) {
  ConvTester().channels(3).input_size(7, 5).out_channels(5).kernel(3, 3).test(101);
}

TEST(FloatConv, NonSquareKernelsMatchReference) {
  ConvTester().channels(2).input_size(6, 7).out_channels(3).kernel(3, 2).test(102);
  ConvTester().channels(2).input_size(5, 9).out_channels(2).kernel(1, 5).pads(0, 2, 0, 2).test(103);
}

TEST(FloatConv, Stride2OnOddAndEvenInputs) {
  ConvTester().channels(3).input_size(9, 9).out_channels(4).kernel(3, 3).stride(2, 2).test(104);
  ConvTester()
      .channels(3)
      .input_size(8, 6)
      .out_channels(4)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .test(105);
  ConvTester()
      .channels(2)
      .input_size(7, 8)
      .out_channels(3)
      .kernel(2, 3)
      .stride(2, 3)
      .pads(1, 0, 0, 2)
      .test(106);
}

TEST(FloatConv, AsymmetricPadsMatchReference) {
  ConvTester().channels(2).input_size(5, 6).out_channels(3).kernel(3, 3).pads(0, 1, 2, 1).test(107);
  ConvTester()
      .channels(1)
      .input_size(4, 4)
      .out_channels(2)
      .kernel(2, 2)
      .pads(1, 0, 0, 1)
      .stride(2, 1)
      .test(108);
}

TEST(FloatConv, DilationMatchesReference) {
  ConvTester()
      .channels(2)
      .input_size(9, 9)
      .out_channels(3)
      .kernel(3, 3)
      .dilation(2, 2)
      .pads(2, 2, 2, 2)
      .test(109);
  ConvTester()
      .channels(2)
      .input_size(10, 11)
      .out_channels(2)
      .kernel(3, 2)
      .dilation(2, 3)
      .stride(2, 1)
      .test(110);
}

TEST(FloatConv, AutoPadSameUpperPutsOddPaddingAfter) {
  ConvTester()
      .channels(2)
      .input_size(6, 7)
      .out_channels(3)
      .kernel(2, 2)
      .auto_pad("SAME_UPPER")
      .test(111);
  ConvTester()
      .channels(2)
      .input_size(8, 7)
      .out_channels(3)
      .kernel(3, 3)
      .stride(2, 2)
      .auto_pad("SAME_UPPER")
      .test(112);
  ConvTester()
      .channels(1)
      .input_size(7, 7)
      .out_channels(2)
      .kernel(3, 3)
      .dilation(2, 2)
      .auto_pad("SAME_UPPER")
      .test(113);
}

TEST(FloatConv, AutoPadSameLowerPutsOddPaddingBefore) {
  ConvTester()
      .channels(2)
      .input_size(6, 7)
      .out_channels(3)
      .kernel(2, 2)
      .auto_pad("SAME_LOWER")
      .test(114);
  ConvTester()
      .channels(2)
      .input_size(8, 7)
      .out_channels(3)
      .kernel(3, 3)
      .stride(2, 2)
      .auto_pad("SAME_LOWER")
      .test(115);
  ConvTester()
      .channels(3)
      .input_size(5, 5)
      .out_channels(3)
      .groups(3)
      .kernel(4, 4)
      .auto_pad("SAME_LOWER")
      .test(116);
}

TEST(FloatConv, AutoPadValidIgnoresPadding) {
  ConvTester().channels(2).input_size(7, 6).out_channels(3).kernel(3, 3).auto_pad("VALID").test(
      117);
  ConvTester()
      .channels(2)
      .input_size(7, 6)
      .out_channels(3)
      .kernel(3, 2)
      .stride(2, 2)
      .auto_pad("VALID")
      .test(118);
}

TEST(FloatConv, TwoGroupsMatchReference) {
  ConvTester()
      .channels(4)
      .input_size(5, 5)
      .out_channels(6)
      .groups(2)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .test(119);
  ConvTester()
      .channels(6)
      .input_size(6, 5)
      .out_channels(2)
      .groups(2)
      .kernel(3, 3)
      .stride(2, 2)
      .test(120);
}

TEST(FloatConv, DepthwiseMatchesReference) {
  ConvTester()
      .channels(5)
      .input_size(6, 7)
      .out_channels(5)
      .groups(5)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .test(121);
  ConvTester()
      .channels(4)
      .input_size(9, 8)
      .out_channels(4)
      .groups(4)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(0, 1, 1, 0)
      .test(122);
  ConvTester()
      .channels(3)
      .input_size(9, 9)
      .out_channels(3)
      .groups(3)
      .kernel(3, 3)
      .dilation(2, 2)
      .test(123);
  ConvTester().channels(3).input_size(5, 5).out_channels(3).groups(3).kernel(3, 3).bias(false).test(
      124);
}

TEST(FloatConv, DepthwiseChannelMultiplier2MatchesReference) {
  ConvTester()
      .channels(3)
      .input_size(6, 5)
      .out_channels(6)
      .groups(3)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .test(125);
  ConvTester()
      .channels(2)
      .input_size(7, 7)
      .out_channels(4)
      .groups(2)
      .kernel(3, 3)
      .stride(2, 2)
      .test(126);
}

TEST(FloatConv, PointwiseOneByOneMatchesReference) {
  ConvTester().channels(8).input_size(4, 5).out_channels(4).kernel(1, 1).test(127);
  ConvTester().channels(3).input_size(7, 6).out_channels(5).kernel(1, 1).stride(2, 2).test(128);
  ConvTester().channels(1).input_size(1, 1).out_channels(1).kernel(1, 1).test(129);
}

TEST(FloatConv, AbsentBiasMeansZero) {
  ConvTester().channels(3).input_size(5, 5).out_channels(4).kernel(3, 3).bias(false).test(130);
  ConvTester().channels(4).input_size(5, 5).out_channels(4).groups(2).kernel(3, 3).bias(false).test(
      131);
}

TEST(FloatConv, KernelCoveringWholeInputGivesOnePixel) {
  ConvTester().channels(3).input_size(4, 5).out_channels(7).kernel(4, 5).test(132);
}

TEST(FloatConv, SweepOfKernelStrideDilationAndPadsMatchesReference) {
  uint32_t seed = 1000;
  for (int64_t k : {1, 2, 3})
    for (int64_t s : {1, 2, 3})
      for (int64_t d : {1, 2})
        for (int64_t p : {0, 1}) {
          SCOPED_TRACE("k " + std::to_string(k) + " s " + std::to_string(s) + " d " +
                       std::to_string(d) + " p " + std::to_string(p));
          ConvTester()
              .channels(2)
              .input_size(7, 6)
              .out_channels(3)
              .kernel(k, k)
              .stride(s, s)
              .dilation(d, d)
              .pads(p, 0, 0, p)
              .sweep()
              .test(seed++);
        }
}

TEST(FloatConvFusion, ConvReluFusedMatchesReference) {
  ConvTester()
      .channels(3)
      .input_size(6, 6)
      .out_channels(4)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .activation(Activation::kRelu)
      .test(140);
  ConvTester()
      .channels(4)
      .input_size(6, 6)
      .out_channels(4)
      .groups(4)
      .kernel(3, 3)
      .activation(Activation::kRelu)
      .test(141);
  ConvTester()
      .channels(4)
      .input_size(6, 6)
      .out_channels(6)
      .groups(2)
      .kernel(3, 3)
      .activation(Activation::kRelu)
      .test(142);
}

TEST(FloatConvFusion, ConvClipOpset9AttributesFusedMatchesReference) {
  ConvTester()
      .channels(3)
      .input_size(6, 5)
      .out_channels(4)
      .kernel(3, 3)
      .activation(Activation::kClipAttributes)
      .test(143);
  ConvTester()
      .channels(3)
      .input_size(6, 5)
      .out_channels(3)
      .groups(3)
      .kernel(3, 3)
      .activation(Activation::kClipAttributes)
      .test(144);
}

TEST(FloatConvFusion, ConvReLU6Opset13InputsFusedMatchesReference) {
  ConvTester()
      .channels(3)
      .input_size(6, 5)
      .out_channels(4)
      .kernel(3, 3)
      .activation(Activation::kReLU6Inputs)
      .test(145);
  ConvTester()
      .channels(4)
      .input_size(6, 5)
      .out_channels(4)
      .groups(4)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .activation(Activation::kReLU6Inputs)
      .test(146);
}

TEST(FloatBatchNorm, FoldedIntoConvLeavesNoBnNodeAndMatchesConvThenBn) {
  ConvTester().channels(3).input_size(6, 6).out_channels(4).kernel(3, 3).batch_norm(true).test(150);
  ConvTester()
      .channels(3)
      .input_size(6, 6)
      .out_channels(4)
      .kernel(3, 3)
      .bias(false)
      .batch_norm(true)
      .test(151);
  ConvTester()
      .channels(4)
      .input_size(6, 6)
      .out_channels(4)
      .groups(4)
      .kernel(3, 3)
      .batch_norm(true)
      .activation(Activation::kRelu)
      .test(152);
  ConvTester()
      .channels(4)
      .input_size(6, 6)
      .out_channels(6)
      .groups(2)
      .kernel(3, 3)
      .batch_norm(true)
      .activation(Activation::kReLU6Inputs)
      .test(153);
}

}  // namespace
}  // namespace tilescale::quant
