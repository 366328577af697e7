// Constant elementwise ops after the first quantized tensor (quant/affine.h): per-channel constants
// right after a Conv/Gemm fold into it on import; other chains run as one Affine op (one rounding,
// int_kernels.h's affine) or, for one positive factor, as a StepScale (same codes, scaled step).
// On the generated ONNX models of tests/data/affine (make_affine_nets.py): the plan, the kernel
// against the real map, int vs fake agreement at every --scale-bits, int vs float, the bundle
// round trip, and the refusal of what has no integer form.
#include "tilescale/quant/affine.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph_builder.h"
#include "random_images.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/model/onnx_write.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

const std::string kDir = TILESCALE_AFFINE_DIR;  // generated at build time (tests/CMakeLists.txt)

using test::random_images;

std::vector<float> pixels(const Dataset& d) {
  std::vector<float> in(static_cast<std::size_t>(d.count * d.image_size()));
  d.fill_batch(0, d.count, in.data());
  return in;
}

int count_kind(const QuantPlan& p, QOpKind k) {
  return static_cast<int>(
      std::count_if(p.ops.begin(), p.ops.end(), [&](const QOp& op) { return op.kind == k; }));
}

QuantOptions options(int w_bits, int scale_bits) {
  QuantOptions o;
  o.granularity = Granularity::parse("channel");
  o.w_bits = w_bits;
  o.a_bits = 8;
  o.scale_bits = scale_bits;
  o.search = SearchMethod::Minmax;
  o.calib_images = 64;
  o.threads = 1;
  return o;
}

struct Logits {
  std::vector<float> v;
  int64_t classes = 0;
  int64_t top1(int64_t i) const {
    const float* p = v.data() + i * classes;
    return std::max_element(p, p + classes) - p;
  }
};

Logits run_float(const model::Graph& g, const std::vector<float>& in, int64_t n) {
  Logits l{std::vector<float>(static_cast<std::size_t>(n * g.output_value().size())),
           g.output_value().size()};
  model::FloatExecutor(g).run(in.data(), n, l.v.data());
  return l;
}

Logits run_int(const QuantizedModel& m, const std::vector<float>& in, int64_t n) {
  Logits l{std::vector<float>(static_cast<std::size_t>(n * m.graph.output_value().size())),
           m.graph.output_value().size()};
  IntExecutor(m, 1).run(in.data(), n, l.v.data());
  return l;
}

// ----- import: folds into the producing layer ----------------------------------------------------

TEST(AffineImport, PerChannelConstantsRightAfterAConvOrGemmFoldIntoIt) {
  const model::Graph g = model::import_onnx(kDir + "const_ops.onnx");
  int constant_ops = 0;
  for (const model::Node& n : g.nodes) constant_ops += is_constant_op(n);
  // Of the file's 11 constant ops, the Mul and Add after the third Conv and the Div after the Gemm
  // are folded; the host Sub/Div, the StepScale Mul, the Sub-Mul-Div chain, 1 - x and the Add
  // after the Relu remain.
  EXPECT_EQ(constant_ops, 8);
  const model::Node& last = g.nodes.back();
  EXPECT_EQ(last.op, model::Op::Gemm);
  EXPECT_EQ(last.output, g.output);
}

TEST(AffineImport, FoldedGraphComputesTheUnfoldedFunction) {
  // Conv -> Mul per channel (mixed signs) -> Sub per channel -> Relu -> GAP -> Gemm -> Div, built
  // unfolded in C++, written as ONNX and imported (folded).
  test::GraphBuilder b({3, 8, 8}, 31);
  const int c = b.conv(b.input(), 6, 3);
  const int m = b.binary_const(model::Op::Mul, c, {0.5f, -1.25f, 2.0f, 0.75f, -0.5f, 1.5f});
  const int s = b.binary_const(model::Op::Sub, m, {0.1f, -0.2f, 0.3f, 0.0f, 0.25f, -0.4f});
  const int y = b.gemm(b.flatten(b.global_avg_pool(b.relu(s))), 4);
  const int z = b.binary_const(model::Op::Div, y, {2.0f, -4.0f, 0.5f, 3.0f});
  const model::Graph unfolded = b.finish(z);
  const model::Graph folded =
      model::import_onnx_bytes(model::graph_onnx_bytes(unfolded, {}, "unfolded"), "folded");
  EXPECT_EQ(folded.nodes.size() + 3, unfolded.nodes.size());
  const Dataset d = random_images(64, 41);
  const std::vector<float> in = pixels(d);
  const Logits a = run_float(unfolded, in, d.count), f = run_float(folded, in, d.count);
  double worst = 0.0, peak = 0.0;
  for (std::size_t i = 0; i < a.v.size(); ++i) {
    worst = std::max(worst, std::fabs(double(a.v[i]) - f.v[i]));
    peak = std::max(peak, std::fabs(double(a.v[i])));
  }
  EXPECT_LE(worst, 1e-5 * peak) << "folding is exact up to float32 rounding";
}

// ----- the plan ----------------------------------------------------------------------------------

TEST(AffinePlan, UnfoldedBatchNormsBecomeAffineOpsWithTheirRelu) {
  const model::Graph g = model::import_onnx(kDir + "bn_unfused.onnx");
  const QuantPlan p = make_quant_plan(g);
  // After a Conv with another reader, after an Add (each + Relu), after a Concat.
  ASSERT_EQ(count_kind(p, QOpKind::Affine), 3);
  int fused = 0;
  for (const QOp& op : p.ops)
    if (op.kind == QOpKind::Affine) {
      EXPECT_EQ(op.chain.size(), 2u) << "an unfolded BN is a Mul then an Add";
      fused += op.fused_act >= 0;
      EXPECT_EQ(p.non_negative[op.output], op.fused_act >= 0);
    }
  EXPECT_EQ(fused, 2);
}

TEST(AffinePlan, ChainsStepScalesAndNonNegativity) {
  const model::Graph g = model::import_onnx(kDir + "const_ops.onnx");
  const QuantPlan p = make_quant_plan(g);
  EXPECT_EQ(p.host_nodes.size(), 2u);
  ASSERT_EQ(count_kind(p, QOpKind::StepScale), 1);
  ASSERT_EQ(count_kind(p, QOpKind::Affine), 3);
  for (const QOp& op : p.ops) {
    if (op.kind == QOpKind::StepScale) {
      EXPECT_TRUE(p.non_negative[op.output]) << "0.5 x of a Relu output";
      EXPECT_EQ(op.fused_act, -1);
    }
    if (op.kind == QOpKind::Affine && op.chain.size() == 3) {
      EXPECT_GE(op.fused_act, 0) << "Sub, Mul, Div, then the Relu folded into its rounding";
      EXPECT_TRUE(p.non_negative[op.output]);
    }
  }
}

// ----- the kernel --------------------------------------------------------------------------------

// With 24 mantissa bits the realised map is a * x + b up to ~2^-24 relative: away from rounding
// ties, y is the real map's value rounded half up and saturated.
TEST(AffineKernel, MatchesTheRealMapAwayFromTies) {
  const uint64_t seed = 20261130;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const IntRange out = signed_range(8);
  int64_t checked = 0;
  for (int t = 0; t < 200; ++t) {
    const double a = u(rng) * 3.0, b = u(rng) * 2.0;
    const double sx = 0.01 + 0.1 * std::fabs(u(rng)), sy = 0.01 + 0.1 * std::fabs(u(rng));
    const kernels::AffineTerm term = kernels::affine_term(a, b, sx, sy, 24, 255);
    std::vector<int64_t> x(511), y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int64_t>(i) - 255;
    kernels::affine(x.data(), 1, static_cast<int64_t>(x.size()), &term, 1, 1, out, y.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double real = (a * double(x[i]) * sx + b) / sy;
      if (std::fabs(real - std::floor(real) - 0.5) < 1e-4) continue;  // near a tie
      ASSERT_EQ(y[i], saturate(round_half_up(real), out))
          << "seed " << seed << " a " << a << " b " << b << " x " << x[i];
      ++checked;
    }
  }
  EXPECT_GT(checked, 90000);
}

TEST(AffineKernel, ShiftOnlyFactorsAndNegativeFactorsFollowTheDocumentedRule) {
  // bits 1: |a| s_x / s_y = 3 is realised as 2^2 (m 1, r -2, F 0); a < 0 negates the code first.
  const kernels::AffineTerm t = kernels::affine_term(-3.0, 1.25, 1.0, 1.0, 1, 127);
  EXPECT_EQ(t.mul.m, 1);
  EXPECT_EQ(t.mul.r, -2);
  EXPECT_EQ(t.frac_bits, 0);
  EXPECT_EQ(t.offset, 1);  // round_half_up(1.25)
  const std::vector<int64_t> x = {5, -5, 40};
  std::vector<int64_t> y(3);
  kernels::affine(x.data(), 1, 3, &t, 1, 1, signed_range(8), y.data());
  EXPECT_EQ(y, (std::vector<int64_t>{-19, 21, -128}));  // -4q + 1, saturated at -128
  // A tie rounds up: a = 0.5 (m 2^15, r 16 at 16 bits), q = 3: 1.5 + 0 -> 2; q = -3: -1.5 -> -1.
  const kernels::AffineTerm h = kernels::affine_term(0.5, 0.0, 1.0, 1.0, 16, 127);
  const std::vector<int64_t> hx = {3, -3};
  std::vector<int64_t> hy(2);
  kernels::affine(hx.data(), 1, 2, &h, 1, 1, signed_range(8), hy.data());
  EXPECT_EQ(hy, (std::vector<int64_t>{2, -1}));
}

TEST(AffineKernel, PerChannelTermsRunOverTheirPlanes) {
  const kernels::AffineTerm t[2] = {kernels::affine_term(1.0, 0.0, 1.0, 1.0, 16, 127),
                                    kernels::affine_term(-1.0, 10.0, 1.0, 1.0, 16, 127)};
  const std::vector<int64_t> x = {1, 2, 3, 4, 5, 6, 7, 8};  // 2 samples x 2 channels x 2
  std::vector<int64_t> y(8);
  kernels::affine(x.data(), 2, 4, t, 2, 2, signed_range(8), y.data());
  EXPECT_EQ(y, (std::vector<int64_t>{1, 2, 7, 6, 5, 6, 3, 2}));
}

TEST(AffineKernel, RefusesTermsThatWouldOverflow) {
  EXPECT_THROW(kernels::affine_term(1e-30, 0.0, 1.0, 1.0, 16, 127), std::overflow_error);
  EXPECT_THROW(kernels::affine_term(1.0, 1e30, 1.0, 1.0, 16, 127), std::overflow_error);
  EXPECT_THROW(kernels::affine_term(1.0, NAN, 1.0, 1.0, 16, 127), std::overflow_error);
  EXPECT_THROW(kernels::affine_term(1e30, 0.0, 1.0, 1.0, 16, 127), std::overflow_error);
  EXPECT_NO_THROW(kernels::affine_term(0.0, 3.0, 1.0, 1.0, 16, 127));  // a = 0: y = b
}

// ----- whole networks ----------------------------------------------------------------------------

class AffineNets : public ::testing::TestWithParam<std::string> {
 protected:
  model::Graph graph() const { return model::import_onnx(kDir + GetParam() + ".onnx"); }
};

// The fake path models the Affine rescale with its realised factors, offsets and tie offset, and a
// StepScale passes codes unchanged: top-1 agrees at every --scale-bits, shift-only included.
TEST_P(AffineNets, IntAndFakeAgreeAtEveryScaleBits) {
  const model::Graph g = graph();
  const Dataset calib = random_images(64, 11), test = random_images(1000, 12);
  const std::vector<float> in = pixels(test);
  for (int bits : {1, 4, 8, 16}) {
    const QuantizedModel m = quantize(g, options(4, bits), calib);
    const Logits q = run_int(m, in, test.count);
    const Logits f = run_float(make_fake_quant_graph(m), in, test.count);
    int64_t same = 0, off = 0;
    double worst = 0.0, peak = 0.0;
    for (int64_t i = 0; i < test.count; ++i) same += q.top1(i) == f.top1(i);
    for (std::size_t i = 0; i < q.v.size(); ++i) peak = std::max(peak, std::fabs(double(q.v[i])));
    for (std::size_t i = 0; i < q.v.size(); ++i) {
      const double d = std::fabs(double(q.v[i]) - f.v[i]);
      worst = std::max(worst, d);
      off += d > 1e-4 * peak;
    }
    std::printf(
        "%s scale-bits %d: top-1 agree %.4f, max |logit diff| %.3g of %.3g, logits off by more "
        "than 1e-4 of it: %lld of %zu\n",
        GetParam().c_str(), bits, double(same) / test.count, worst, peak,
        static_cast<long long>(off), q.v.size());
    // Float rounding can still move a value within ~1e-5 codes of a rounding boundary across it
    // (fake_quant.h), rarely: a flipped code moves a few logits by a fraction of a percent.
    EXPECT_GE(same, 999) << "scale-bits " << bits;
    EXPECT_LE(off, static_cast<int64_t>(q.v.size()) / 100) << "scale-bits " << bits;
    EXPECT_LE(worst, 0.02 * peak) << "scale-bits " << bits;
  }
}

// W8A8 with 16-bit multipliers stays close to the float network.
TEST_P(AffineNets, IntStaysCloseToFloat) {
  const model::Graph g = graph();
  const Dataset calib = random_images(64, 11), test = random_images(1000, 12);
  const std::vector<float> in = pixels(test);
  const QuantizedModel m = quantize(g, options(8, 16), calib);
  const Logits q = run_int(m, in, test.count), f = run_float(g, in, test.count);
  int64_t same = 0;
  double err = 0.0, norm = 0.0;
  for (int64_t i = 0; i < test.count; ++i) same += q.top1(i) == f.top1(i);
  for (std::size_t i = 0; i < q.v.size(); ++i) {
    err += (double(q.v[i]) - f.v[i]) * (double(q.v[i]) - f.v[i]);
    norm += double(f.v[i]) * f.v[i];
  }
  const double rel = std::sqrt(err / norm);
  std::printf("%s W8A8: top-1 int vs float %.3f, relative logit error %.4f\n", GetParam().c_str(),
              double(same) / test.count, rel);
  EXPECT_GE(same, 900);
  EXPECT_LE(rel, 0.05);
}

// write -> read gives the same plan and bit-identical integer and fake-quant logits, also with
// reordered channels (the constants' channels move with their tensor).
TEST_P(AffineNets, BundleRoundTripsBitExactly) {
  const std::string path = kDir + GetParam() + ".onnx";
  const model::Graph g = graph();
  const Dataset calib = random_images(64, 11), test = random_images(64, 12);
  const std::vector<float> in = pixels(test);
  std::string tmpl = ::testing::TempDir() + "tilescale_affine_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  for (ReorderMethod reorder : {ReorderMethod::None, ReorderMethod::KMeans}) {
    QuantOptions o = options(4, 8);
    o.granularity = Granularity::parse("block:4x4");
    o.search = SearchMethod::Output;
    o.grid_points = 10;
    o.reorder = reorder;
    const QuantizedModel m = quantize(g, o, calib);
    const std::string dir = tmpl + "/b" + std::to_string(static_cast<int>(reorder));
    write_bundle(m, read_file(path), dir);
    const QuantizedModel r = read_bundle(dir);
    ASSERT_EQ(r.plan.ops.size(), m.plan.ops.size());
    for (std::size_t i = 0; i < m.plan.ops.size(); ++i) {
      EXPECT_EQ(r.plan.ops[i].kind, m.plan.ops[i].kind);
      EXPECT_EQ(r.plan.ops[i].chain, m.plan.ops[i].chain);
    }
    EXPECT_EQ(run_int(r, in, test.count).v, run_int(m, in, test.count).v);
    EXPECT_EQ(run_float(make_fake_quant_graph(r), in, test.count).v,
              run_float(make_fake_quant_graph(m), in, test.count).v);
  }
  std::filesystem::remove_all(tmpl);
}

INSTANTIATE_TEST_SUITE_P(Generated, AffineNets, ::testing::Values("bn_unfused", "const_ops"));

// A StepScale passes codes through, so its output grid must be its input's, scaled: a bundle whose
// manifest states another step is refused.
TEST(AffineBundle, StepScaleGridThatIsNotTheInputsScaledIsRefused) {
  const std::string path = kDir + "const_ops.onnx";
  const QuantizedModel m = quantize(model::import_onnx(path), options(4, 8), random_images(16, 11));
  std::string out;
  for (const QOp& op : m.plan.ops)
    if (op.kind == QOpKind::StepScale) out = m.graph.values[op.output].name;
  ASSERT_FALSE(out.empty());
  std::string tmpl = ::testing::TempDir() + "tilescale_affine_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl + "/b";
  write_bundle(m, read_file(path), dir);
  EXPECT_NO_THROW(read_bundle(dir));
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_file(dir + "/manifest.json"));
  bool edited = false;
  for (auto& a : j["activations"]) {
    if (a["value"] != out) continue;
    const float f = static_cast<float>(a["scale"].get<double>()) * 2.0f;
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    char hex[11];
    std::snprintf(hex, sizeof hex, "0x%08x", bits);
    a["scale"] = static_cast<double>(f);
    a["scale_hex"] = hex;
    edited = true;
  }
  ASSERT_TRUE(edited);
  std::ofstream(dir + "/manifest.json") << j.dump(2) << "\n";
  try {
    read_bundle(dir);
    ADD_FAILURE() << "a StepScale grid twice the derived step was read";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("manifest.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("StepScale"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(tmpl);
}

// ----- what stays unsupported --------------------------------------------------------------------

TEST(AffineErrors, TwoTensorDivAndReciprocalAreRefusedNamingFileAndNode) {
  for (const auto& [file, node] :
       {std::pair<std::string, std::string>{"div_by_tensor", "div_two_tensors"},
        {"reciprocal", "reciprocal"}}) {
    const model::Graph g = model::import_onnx(kDir + file + ".onnx");
    try {
      quantize(g, options(4, 16), random_images(8, 1));
      ADD_FAILURE() << file << " was quantized";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(kDir + file + ".onnx"), std::string::npos) << what;
      EXPECT_NE(what.find("'" + node + "'"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace tilescale::quant
