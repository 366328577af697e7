// The float executor agrees, op by op, with an independent reference written here: plain loops in
// double precision over one sample, fed by graphs built in memory and imported with
// import_onnx_bytes. XNNPACK tester style: one reference per op, one parameterized tester per op
// family, many small edge cases; plus a few hand-computed cases with literal numbers that pin the
// reference itself down.
//
// Every randomized case runs batch sizes 1, 3 and 17 through chunk sizes 1 and 8 on 1 and 2 threads
// (the wide Conv sweep uses three of those configurations), checks run() against the reference to
// 1e-5 relative, and checks that run_all() (no fusion) yields exactly the same output as run().
// Seeds are fixed and printed on failure; TILESCALE_TEST_SEED overrides them all.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "support/onnx_builder.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/graph.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale::quant {
namespace {

using test::attr_float;
using test::attr_int;
using test::attr_ints;
using test::attr_string;
using test::OnnxBuilder;

constexpr double kRelTol = 1e-5;  // |got - want| <= kRelTol * max(1, |want|)

// --- seeds and random data -----------------------------------------------------------------------

uint32_t seed_for(uint32_t fixed) {
  if (const char* s = std::getenv("TILESCALE_TEST_SEED"))
    return static_cast<uint32_t>(std::strtoul(s, nullptr, 0));
  return fixed;
}

std::string seed_note(uint32_t seed) {
  return "seed " + std::to_string(seed) +
         " (rerun with TILESCALE_TEST_SEED=" + std::to_string(seed) + ")";
}

// Uniform in [lo, hi]; with min_abs > 0, magnitudes in [min_abs, hi] with a random sign instead.
struct Range {
  double lo = -1.0, hi = 1.0;
  double min_abs = 0.0;
};

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, Range r = {}) {
  std::vector<float> v(n);
  if (r.min_abs > 0.0) {
    std::uniform_real_distribution<double> mag(r.min_abs, r.hi);
    std::bernoulli_distribution neg(0.5);
    for (float& x : v) x = static_cast<float>(neg(rng) ? -mag(rng) : mag(rng));
  } else {
    std::uniform_real_distribution<double> u(r.lo, r.hi);
    for (float& x : v) x = static_cast<float>(u(rng));
  }
  return v;
}

// --- reference: one sample, double precision, plain loops ----------------------------------------

// A per-sample activation: shape without the batch axis, values in C order.
struct Act {
  std::vector<int64_t> shape;
  std::vector<double> v;
  double& at(int64_t c, int64_t y, int64_t x) { return v[(c * shape[1] + y) * shape[2] + x]; }
  double at(int64_t c, int64_t y, int64_t x) const { return v[(c * shape[1] + y) * shape[2] + x]; }
};

Act make_act(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return Act{std::move(shape), std::vector<double>(static_cast<std::size_t>(n), 0.0)};
}

// Padding of one spatial axis as ONNX defines it: explicit pads (NOTSET), none (VALID), or enough
// for ceil(in / stride) outputs with the odd element after (SAME_UPPER) or before (SAME_LOWER).
struct AxisPads {
  int64_t lo = 0, hi = 0;
};
AxisPads axis_pads(const std::string& auto_pad, int64_t in, int64_t k, int64_t s, int64_t d,
                   int64_t lo, int64_t hi) {
  if (auto_pad.empty() || auto_pad == "NOTSET") return {lo, hi};
  if (auto_pad == "VALID") return {0, 0};
  const int64_t out = (in + s - 1) / s;
  const int64_t extent = (k - 1) * d + 1;
  const int64_t total = std::max<int64_t>(0, (out - 1) * s + extent - in);
  const int64_t small = total / 2, big = total - total / 2;
  return auto_pad == "SAME_UPPER" ? AxisPads{small, big} : AxisPads{big, small};
}

struct Geometry {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
};

// Output length of a sliding window; ceil_mode drops a last window that would start in the end
// padding.
int64_t window_count(int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo, int64_t hi,
                     bool ceil_mode) {
  const int64_t room = in + lo + hi - ((k - 1) * d + 1);
  int64_t out = room / s + 1;
  if (ceil_mode && room % s != 0) {
    ++out;
    if ((out - 1) * s >= in + lo) --out;
  }
  return out;
}

// weight [cout][cin/groups][kh][kw]; bias empty = none.
Act ref_conv(const Act& x, const std::vector<float>& w, int64_t cout,
             const std::vector<float>& bias, const Geometry& g, int64_t groups) {
  const int64_t cin = x.shape[0], h = x.shape[1], wd = x.shape[2];
  const int64_t ho = window_count(h, g.kh, g.sh, g.dh, g.pt, g.pb, false);
  const int64_t wo = window_count(wd, g.kw, g.sw, g.dw, g.pl, g.pr, false);
  const int64_t cin_g = cin / groups, cout_g = cout / groups;
  Act y = make_act({cout, ho, wo});
  for (int64_t co = 0; co < cout; ++co) {
    const int64_t grp = co / cout_g;
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        double acc = bias.empty() ? 0.0 : bias[co];
        for (int64_t ci = 0; ci < cin_g; ++ci)
          for (int64_t ky = 0; ky < g.kh; ++ky)
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              acc +=
                  x.at(grp * cin_g + ci, iy, ix) * w[((co * cin_g + ci) * g.kh + ky) * g.kw + kx];
            }
        y.at(co, oy, ox) = acc;
      }
  }
  return y;
}

// Max or average pooling. count_include_pad divides by the window positions that fall inside the
// input or its declared padding (PyTorch's rule: the ceil_mode overhang past the padding never
// counts).
Act ref_pool(const Act& x, bool is_max, const Geometry& g, bool ceil_mode, bool count_include_pad) {
  const int64_t c = x.shape[0], h = x.shape[1], wd = x.shape[2];
  const int64_t ho = window_count(h, g.kh, g.sh, g.dh, g.pt, g.pb, ceil_mode);
  const int64_t wo = window_count(wd, g.kw, g.sw, g.dw, g.pl, g.pr, ceil_mode);
  Act y = make_act({c, ho, wo});
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        double best = -INFINITY, sum = 0.0;
        int64_t inside = 0, padded = 0;
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const int64_t iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
            if (iy >= -g.pt && iy < h + g.pb && ix >= -g.pl && ix < wd + g.pr) ++padded;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            best = std::max(best, x.at(ch, iy, ix));
            sum += x.at(ch, iy, ix);
            ++inside;
          }
        y.at(ch, oy, ox) =
            is_max ? best : sum / static_cast<double>(count_include_pad ? padded : inside);
      }
  return y;
}

// Gemm with B as stored in the file: [K][M], or [M][K] when trans_b; c broadcast from 1 or M
// values.
Act ref_gemm(const Act& x, const std::vector<float>& b, int64_t m, bool trans_b, double alpha,
             double beta, const std::vector<float>& c) {
  const int64_t k = x.shape[0];
  Act y = make_act({m});
  for (int64_t o = 0; o < m; ++o) {
    double acc = 0.0;
    for (int64_t i = 0; i < k; ++i) acc += x.v[i] * (trans_b ? b[o * k + i] : b[i * m + o]);
    y.v[o] = alpha * acc + (c.empty() ? 0.0 : beta * c[c.size() == 1 ? 0 : o]);
  }
  return y;
}

// Inference BatchNormalization over axis 0 of the per-sample shape.
struct BnParams {
  std::vector<float> gamma, beta, mean, var;
  float eps = 1e-3f;
};
BnParams random_bn(std::mt19937& rng, int64_t c) {
  BnParams p;
  p.gamma = random_floats(rng, c, {0.5, 1.5});
  p.beta = random_floats(rng, c, {-0.5, 0.5});
  p.mean = random_floats(rng, c, {-0.5, 0.5});
  p.var = random_floats(rng, c, {0.1, 1.0});
  return p;
}
Act ref_bn(Act x, const BnParams& p) {
  const int64_t c = x.shape[0], per = static_cast<int64_t>(x.v.size()) / c;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t j = 0; j < per; ++j) {
      double& v = x.v[ch * per + j];
      v = (v - p.mean[ch]) / std::sqrt(static_cast<double>(p.var[ch]) + p.eps) * p.gamma[ch] +
          p.beta[ch];
    }
  return x;
}
void add_bn(OnnxBuilder& b, const std::string& in, const std::string& out, const BnParams& p) {
  const int64_t c = static_cast<int64_t>(p.gamma.size());
  b.initializer(out + "_gamma", {c}, p.gamma)
      .initializer(out + "_beta", {c}, p.beta)
      .initializer(out + "_mean", {c}, p.mean)
      .initializer(out + "_var", {c}, p.var);
  b.node("BatchNormalization", {in, out + "_gamma", out + "_beta", out + "_mean", out + "_var"},
         {out}, {attr_float("epsilon", p.eps)});
}

Act ref_clamp(Act x, double lo, double hi) {
  for (double& v : x.v) v = std::min(std::max(v, lo), hi);
  return x;
}

// --- harness -------------------------------------------------------------------------------------

using RefFn = std::function<Act(const Act&)>;

// One executor configuration and batch size.
struct RunConfig {
  int64_t batch;  // samples
  int64_t chunk;  // samples per worker chunk
  int threads;
};

// Every combination of batch {1, 3, 17} (17 = two full chunks of 8 and a partial one), chunk {1, 8}
// and threads {1, 2}.
std::vector<RunConfig> all_configs() {
  std::vector<RunConfig> c;
  for (int64_t batch : {1, 3, 17})
    for (int64_t chunk : {1, 8})
      for (int threads : {1, 2}) c.push_back({batch, chunk, threads});
  return c;
}

// For wide sweeps on a shared machine: one partial chunk, one chunk per sample, both thread counts.
const std::vector<RunConfig> kSweepConfigs{{17, 8, 1}, {3, 1, 2}, {1, 8, 2}};

model::Graph import_model(const OnnxBuilder& b) {
  return model::import_onnx_bytes(b.bytes(), "test.onnx");
}

int count_op(const model::Graph& g, model::Op op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                        [&](const model::Node& n) { return n.op == op; }));
}

// Runs g on batches of 1, 3 and 17 random samples through every executor configuration; run() must
// match ref per sample and run_all()'s output must equal run()'s. Reports the first failing
// configuration only (up to 3 elements), so one bug does not print a page per configuration.
void expect_matches_reference(const model::Graph& g, const RefFn& ref, uint32_t seed,
                              Range input_range = {},
                              const std::vector<RunConfig>& configs = all_configs()) {
  SCOPED_TRACE(seed_note(seed));
  constexpr int64_t kMaxBatch = 17;
  const int64_t in_size = g.input_value().size(), out_size = g.output_value().size();
  std::mt19937 rng(seed);
  const std::vector<float> input =
      random_floats(rng, static_cast<std::size_t>(kMaxBatch * in_size), input_range);
  std::vector<Act> want;
  for (int64_t s = 0; s < kMaxBatch; ++s) {
    Act x{g.input_value().shape,
          std::vector<double>(input.begin() + s * in_size, input.begin() + (s + 1) * in_size)};
    want.push_back(ref(x));
    ASSERT_EQ(want.back().shape, g.output_value().shape)
        << "imported output shape differs from the reference";
  }
  for (const RunConfig& rc : configs) {
    const int64_t batch = rc.batch, chunk = rc.chunk;
    const int threads = rc.threads;
    SCOPED_TRACE("batch " + std::to_string(batch) + " chunk " + std::to_string(chunk) +
                 " threads " + std::to_string(threads));
    const model::FloatExecutor ex(g, {threads, chunk});
    std::vector<float> out(static_cast<std::size_t>(batch * out_size), NAN);
    ex.run(input.data(), batch, out.data());
    int bad = 0;
    for (int64_t s = 0; s < batch && bad < 3; ++s)
      for (int64_t i = 0; i < out_size && bad < 3; ++i) {
        const double w = want[s].v[i], got = out[s * out_size + i];
        if (!(std::fabs(got - w) <= kRelTol * std::max(1.0, std::fabs(w)))) {
          ++bad;
          ADD_FAILURE() << "run(): sample " << s << " element " << i << ": got " << got
                        << ", reference " << w;
        }
      }
    const auto all = ex.run_all(input.data(), batch);
    const std::vector<float>& unfused = all[g.output];
    ASSERT_EQ(unfused.size(), out.size());
    for (std::size_t i = 0; i < out.size(); ++i)
      if (unfused[i] != out[i]) {
        ++bad;
        ADD_FAILURE() << "run_all() output differs from run() at flat index " << i << ": "
                      << unfused[i] << " vs " << out[i];
        break;
      }
    if (bad > 0) return;
  }
}

// Runs a single sample through run() and run_all() and returns run()'s output (for hand-computed
// cases).
std::vector<float> run_one(const model::Graph& g, const std::vector<float>& input) {
  EXPECT_EQ(static_cast<int64_t>(input.size()), g.input_value().size());
  const model::FloatExecutor ex(g, {1, 8});
  std::vector<float> out(static_cast<std::size_t>(g.output_value().size()));
  ex.run(input.data(), 1, out.data());
  EXPECT_EQ(ex.run_all(input.data(), 1)[g.output], out) << "run_all() differs from run()";
  return out;
}

void expect_floats_near(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i]))) << "element " << i;
}

// --- Conv ----------------------------------------------------------------------------------------

enum class Activation {
  kNone,
  kRelu,
  kClipAttributes,  // Clip with min/max attributes (opset < 11): [-0.5, 0.5]
  kReLU6Inputs,     // Clip with min/max inputs (opset >= 11): [0, 6]
};

// Appends the activation node after `in`; returns its output name (or `in` for none).
std::string add_activation(OnnxBuilder& b, Activation a, const std::string& in) {
  switch (a) {
    case Activation::kNone:
      return in;
    case Activation::kRelu:
      b.node("Relu", {in}, {"act"});
      break;
    case Activation::kClipAttributes:
      b.node("Clip", {in}, {"act"}, {attr_float("min", -0.5f), attr_float("max", 0.5f)});
      break;
    case Activation::kReLU6Inputs:
      b.initializer("clip_lo", {}, {0.0f}).initializer("clip_hi", {}, {6.0f});
      b.node("Clip", {in, "clip_lo", "clip_hi"}, {"act"});
      break;
  }
  return "act";
}

Act ref_activation(Act x, Activation a) {
  switch (a) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      return ref_clamp(std::move(x), 0.0, INFINITY);
    case Activation::kClipAttributes:
      return ref_clamp(std::move(x), -0.5, 0.5);
    case Activation::kReLU6Inputs:
      return ref_clamp(std::move(x), 0.0, 6.0);
  }
  return x;
}

class ConvTester {
 public:
  ConvTester& channels(int64_t c) {
    c_ = c;
    return *this;
  }
  ConvTester& input_size(int64_t h, int64_t w) {
    h_ = h;
    w_ = w;
    return *this;
  }
  ConvTester& out_channels(int64_t c) {
    cout_ = c;
    return *this;
  }
  ConvTester& kernel(int64_t kh, int64_t kw) {
    g_.kh = kh;
    g_.kw = kw;
    return *this;
  }
  ConvTester& stride(int64_t sh, int64_t sw) {
    g_.sh = sh;
    g_.sw = sw;
    return *this;
  }
  ConvTester& dilation(int64_t dh, int64_t dw) {
    g_.dh = dh;
    g_.dw = dw;
    return *this;
  }
  ConvTester& pads(int64_t t, int64_t l, int64_t b, int64_t r) {
    g_.pt = t;
    g_.pl = l;
    g_.pb = b;
    g_.pr = r;
    return *this;
  }
  ConvTester& auto_pad(const std::string& mode) {
    auto_pad_ = mode;
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
    std::vector<onnx::AttributeProto> attrs{attr_ints("kernel_shape", {g_.kh, g_.kw}),
                                            attr_ints("strides", {g_.sh, g_.sw}),
                                            attr_ints("dilations", {g_.dh, g_.dw})};
    if (auto_pad_.empty())
      attrs.push_back(attr_ints("pads", {g_.pt, g_.pl, g_.pb, g_.pr}));
    else
      attrs.push_back(attr_string("auto_pad", auto_pad_));
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

    Geometry geo = g_;
    const AxisPads ph = axis_pads(auto_pad_, h_, g_.kh, g_.sh, g_.dh, g_.pt, g_.pb);
    const AxisPads pw = axis_pads(auto_pad_, w_, g_.kw, g_.sw, g_.dw, g_.pl, g_.pr);
    geo.pt = ph.lo;
    geo.pb = ph.hi;
    geo.pl = pw.lo;
    geo.pr = pw.hi;
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
  int64_t c_ = 1, h_ = 5, w_ = 5, cout_ = 1, groups_ = 1;
  Geometry g_{3, 3, 1, 1, 1, 1, 0, 0, 0, 0};
  std::string auto_pad_;  // empty: explicit pads
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

// --- pooling -------------------------------------------------------------------------------------

class PoolTester {
 public:
  explicit PoolTester(bool is_max) : max_(is_max) {}
  PoolTester& channels(int64_t c) {
    c_ = c;
    return *this;
  }
  PoolTester& input_size(int64_t h, int64_t w) {
    h_ = h;
    w_ = w;
    return *this;
  }
  PoolTester& kernel(int64_t kh, int64_t kw) {
    g_.kh = kh;
    g_.kw = kw;
    return *this;
  }
  PoolTester& stride(int64_t sh, int64_t sw) {
    g_.sh = sh;
    g_.sw = sw;
    return *this;
  }
  PoolTester& dilation(int64_t dh, int64_t dw) {
    g_.dh = dh;
    g_.dw = dw;
    return *this;
  }
  PoolTester& pads(int64_t t, int64_t l, int64_t b, int64_t r) {
    g_.pt = t;
    g_.pl = l;
    g_.pb = b;
    g_.pr = r;
    return *this;
  }
  PoolTester& auto_pad(const std::string& mode) {
    auto_pad_ = mode;
    return *this;
  }
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
    std::vector<onnx::AttributeProto> attrs{attr_ints("kernel_shape", {g_.kh, g_.kw}),
                                            attr_ints("strides", {g_.sh, g_.sw})};
    if (auto_pad_.empty())
      attrs.push_back(attr_ints("pads", {g_.pt, g_.pl, g_.pb, g_.pr}));
    else
      attrs.push_back(attr_string("auto_pad", auto_pad_));
    if (ceil_) attrs.push_back(attr_int("ceil_mode", 1));
    if (max_ && (g_.dh != 1 || g_.dw != 1)) attrs.push_back(attr_ints("dilations", {g_.dh, g_.dw}));
    if (!max_) attrs.push_back(attr_int("count_include_pad", include_ ? 1 : 0));
    b.node(max_ ? "MaxPool" : "AveragePool", {"x"}, {"y"}, attrs);
    b.output("y");
    const model::Graph g = import_model(b);
    ASSERT_EQ(g.nodes.size(), 1u);
    Geometry geo = g_;
    const AxisPads ph = axis_pads(auto_pad_, h_, g_.kh, g_.sh, g_.dh, g_.pt, g_.pb);
    const AxisPads pw = axis_pads(auto_pad_, w_, g_.kw, g_.sw, g_.dw, g_.pl, g_.pr);
    geo.pt = ph.lo;
    geo.pb = ph.hi;
    geo.pl = pw.lo;
    geo.pr = pw.hi;
    const bool is_max = max_, ceil = ceil_, include = include_;
    expect_matches_reference(
        g, [&](const Act& x) { return ref_pool(x, is_max, geo, ceil, include); }, seed);
  }

 private:
  bool max_;
  int64_t c_ = 2, h_ = 6, w_ = 6;
  Geometry g_{2, 2, 2, 2, 1, 1, 0, 0, 0, 0};
  std::string auto_pad_;
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
