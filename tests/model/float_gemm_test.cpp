// The float executor against the references of float_op_tester.h. Gemm and MatMul: transposed and
// plain B, bias broadcast, fused activations.
#include <gtest/gtest.h>

#include "float_op_tester.h"

namespace tilescale::quant {
namespace {

using namespace float_test;

// --- Gemm and MatMul -----------------------------------------------------------------------------

enum class GemmBias { kNone, kVector, kRow, kScalar };

class GemmTester {
 public:
  GemmTester& in_features(int64_t k) {
    k_ = k;
    return *this;
  }
  GemmTester& out_features(int64_t m) {
    m_ = m;
    return *this;
  }
  GemmTester& trans_b(bool t) {
    trans_b_ = t;
    return *this;
  }
  GemmTester& alpha(float a) {
    alpha_ = a;
    return *this;
  }
  GemmTester& beta(float b) {
    beta_ = b;
    return *this;
  }
  GemmTester& bias(GemmBias b) {
    bias_ = b;
    return *this;
  }
  GemmTester& matmul(bool m) {
    matmul_ = m;
    return *this;
  }
  GemmTester& activation(Activation a) {
    act_ = a;
    return *this;
  }
  GemmTester& batch_norm(bool bn) {
    bn_ = bn;
    return *this;
  }

  void test(uint32_t fixed_seed) const {
    const uint32_t seed = seed_for(fixed_seed);
    SCOPED_TRACE(seed_note(seed));
    std::mt19937 rng(seed ^ 0x6e33u);
    const std::vector<float> w = random_floats(rng, static_cast<std::size_t>(k_ * m_));
    const std::size_t nc = bias_ == GemmBias::kScalar ? 1 : static_cast<std::size_t>(m_);
    const std::vector<float> c =
        (bias_ == GemmBias::kNone || matmul_) ? std::vector<float>{} : random_floats(rng, nc);
    const BnParams bn = random_bn(rng, m_);

    OnnxBuilder b(act_ == Activation::kClipAttributes ? 9 : 13);
    b.input("x", {k_});
    const bool tb = trans_b_ && !matmul_;
    b.initializer("B", tb ? std::vector<int64_t>{m_, k_} : std::vector<int64_t>{k_, m_}, w);
    if (matmul_) {
      b.node("MatMul", {"x", "B"}, {"y"});
    } else {
      std::vector<std::string> ins{"x", "B"};
      if (!c.empty()) {
        b.initializer("C",
                      bias_ == GemmBias::kRow      ? std::vector<int64_t>{1, m_}
                      : bias_ == GemmBias::kScalar ? std::vector<int64_t>{1}
                                                   : std::vector<int64_t>{m_},
                      c);
        ins.push_back("C");
      }
      b.node(
          "Gemm", ins, {"y"},
          {attr_int("transB", tb ? 1 : 0), attr_float("alpha", alpha_), attr_float("beta", beta_)});
    }
    std::string last = "y";
    if (bn_) {
      add_bn(b, last, "bn", bn);
      last = "bn";
    }
    b.output(add_activation(b, act_, last));

    const model::Graph g = import_model(b);
    ASSERT_EQ(count_op(g, model::Op::Gemm), 1);
    EXPECT_EQ(static_cast<int>(g.nodes.size()), act_ == Activation::kNone ? 1 : 2);
    const double alpha = matmul_ ? 1.0 : alpha_, beta = matmul_ ? 1.0 : beta_;
    const int64_t m = m_;
    const bool has_bn = bn_;
    const Activation act = act_;
    expect_matches_reference(
        g,
        [&](const Act& x) {
          Act y = ref_gemm(x, w, m, tb, alpha, beta, c);
          if (has_bn) y = ref_bn(std::move(y), bn);
          return ref_activation(std::move(y), act);
        },
        seed);
  }

 private:
  int64_t k_ = 5, m_ = 3;
  bool trans_b_ = false, matmul_ = false, bn_ = false;
  float alpha_ = 1.0f, beta_ = 1.0f;
  GemmBias bias_ = GemmBias::kVector;
  Activation act_ = Activation::kNone;
};

TEST(FloatGemm, TransB0MatchesReference) {
  GemmTester().in_features(7).out_features(5).trans_b(false).test(200);
}

TEST(FloatGemm, TransB1MatchesReference) {
  GemmTester().in_features(7).out_features(5).trans_b(true).test(201);
}

TEST(FloatGemm, AlphaScalesProductAndBetaScalesBias) {
  GemmTester().in_features(6).out_features(4).alpha(0.5f).beta(2.0f).trans_b(true).test(202);
  GemmTester().in_features(6).out_features(4).alpha(-1.5f).beta(0.0f).test(203);
}

TEST(FloatGemm, BiasBroadcastsFromScalarAndRow) {
  GemmTester().in_features(6).out_features(4).bias(GemmBias::kScalar).beta(3.0f).test(204);
  GemmTester().in_features(6).out_features(4).bias(GemmBias::kRow).trans_b(true).test(205);
}

TEST(FloatGemm, AbsentBiasMeansZero) {
  GemmTester().in_features(6).out_features(4).bias(GemmBias::kNone).test(206);
}

TEST(FloatGemm, DegenerateSizesMatchReference) {
  GemmTester().in_features(1).out_features(1).test(207);
  GemmTester().in_features(1).out_features(9).trans_b(true).test(208);
  GemmTester().in_features(33).out_features(1).test(209);
}

TEST(FloatGemm, MatMulWithConstantRightOperandMatchesReference) {
  GemmTester().in_features(7).out_features(5).matmul(true).test(210);
  GemmTester().in_features(1).out_features(3).matmul(true).test(211);
}

TEST(FloatGemm, GemmReluAndReLU6FusedMatchReference) {
  GemmTester().in_features(9).out_features(6).activation(Activation::kRelu).test(212);
  GemmTester()
      .in_features(9)
      .out_features(6)
      .trans_b(true)
      .activation(Activation::kClipAttributes)
      .test(213);
}

TEST(FloatGemm, BatchNormFoldedIntoGemm) {
  GemmTester().in_features(8).out_features(5).batch_norm(true).test(214);
  GemmTester()
      .in_features(8)
      .out_features(5)
      .matmul(true)
      .batch_norm(true)
      .activation(Activation::kRelu)
      .test(215);
}

}  // namespace
}  // namespace tilescale::quant
