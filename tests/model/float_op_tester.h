// Shared by the float op tests (float_*_test.cpp): seeds and random data, the double-precision
// one-sample references of the windowed ops (Conv, pooling: padding per axis, auto_pad, ceil_mode,
// dilation) and of Gemm, BatchNorm and the activations, and the harness that runs a graph through
// every executor configuration against a reference (XNNPACK tester style: one reference, one
// parameterized tester per op family in its own file, many small edge cases).
//
// Every randomized case runs batch sizes 1, 3 and 17 through chunk sizes 1 and 8 on 1 and 2 threads
// (the wide Conv sweep uses three of those configurations), checks run() against the reference to
// 1e-5 relative, and checks that run_all() (no fusion) yields exactly the same output as run().
// Seeds are fixed and printed on failure; TILESCALE_TEST_SEED overrides them all.
#pragma once

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

namespace tilescale::quant::float_test {

using test::attr_float;
using test::attr_int;
using test::attr_ints;
using test::attr_string;
using test::OnnxBuilder;

constexpr double kRelTol = 1e-5;  // |got - want| <= kRelTol * max(1, |want|)

// --- seeds and random data -----------------------------------------------------------------------

inline uint32_t seed_for(uint32_t fixed) {
  if (const char* s = std::getenv("TILESCALE_TEST_SEED"))
    return static_cast<uint32_t>(std::strtoul(s, nullptr, 0));
  return fixed;
}

inline std::string seed_note(uint32_t seed) {
  return "seed " + std::to_string(seed) +
         " (rerun with TILESCALE_TEST_SEED=" + std::to_string(seed) + ")";
}

// Uniform in [lo, hi]; with min_abs > 0, magnitudes in [min_abs, hi] with a random sign instead.
struct Range {
  double lo = -1.0, hi = 1.0;
  double min_abs = 0.0;
};

inline std::vector<float> random_floats(std::mt19937& rng, std::size_t n, Range r = {}) {
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

inline Act make_act(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return Act{std::move(shape), std::vector<double>(static_cast<std::size_t>(n), 0.0)};
}

// Padding of one spatial axis as ONNX defines it: explicit pads (NOTSET), none (VALID), or enough
// for ceil(in / stride) outputs with the odd element after (SAME_UPPER) or before (SAME_LOWER).
struct AxisPads {
  int64_t lo = 0, hi = 0;
};
inline AxisPads axis_pads(const std::string& auto_pad, int64_t in, int64_t k, int64_t s, int64_t d,
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

// The window settings a Conv or pooling tester shares: input size and channels, kernel, strides,
// dilation, explicit or automatic pads (XNNPACK-style builder: each setter returns the tester).
// Derived is the tester (CRTP), so the setters chain with its own.
template <class Derived>
class WindowTester {
 public:
  WindowTester(int64_t c, int64_t h, int64_t w, Geometry g) : c_(c), h_(h), w_(w), g_(g) {}
  Derived& channels(int64_t c) {
    c_ = c;
    return self();
  }
  Derived& input_size(int64_t h, int64_t w) {
    h_ = h;
    w_ = w;
    return self();
  }
  Derived& kernel(int64_t kh, int64_t kw) {
    g_.kh = kh;
    g_.kw = kw;
    return self();
  }
  Derived& stride(int64_t sh, int64_t sw) {
    g_.sh = sh;
    g_.sw = sw;
    return self();
  }
  Derived& dilation(int64_t dh, int64_t dw) {
    g_.dh = dh;
    g_.dw = dw;
    return self();
  }
  Derived& pads(int64_t t, int64_t l, int64_t b, int64_t r) {
    g_.pt = t;
    g_.pl = l;
    g_.pb = b;
    g_.pr = r;
    return self();
  }
  Derived& auto_pad(const std::string& mode) {
    auto_pad_ = mode;
    return self();
  }

 protected:
  // The node's kernel_shape, strides and the pads (explicit, or auto_pad).
  std::vector<onnx::AttributeProto> window_attrs() const {
    std::vector<onnx::AttributeProto> attrs{attr_ints("kernel_shape", {g_.kh, g_.kw}),
                                            attr_ints("strides", {g_.sh, g_.sw})};
    if (auto_pad_.empty())
      attrs.push_back(attr_ints("pads", {g_.pt, g_.pl, g_.pb, g_.pr}));
    else
      attrs.push_back(attr_string("auto_pad", auto_pad_));
    return attrs;
  }
  // The geometry with the pads the reference uses (auto_pad resolved as ONNX defines it).
  Geometry resolved_geometry() const {
    Geometry geo = g_;
    const AxisPads ph = axis_pads(auto_pad_, h_, g_.kh, g_.sh, g_.dh, g_.pt, g_.pb);
    const AxisPads pw = axis_pads(auto_pad_, w_, g_.kw, g_.sw, g_.dw, g_.pl, g_.pr);
    geo.pt = ph.lo;
    geo.pb = ph.hi;
    geo.pl = pw.lo;
    geo.pr = pw.hi;
    return geo;
  }

  int64_t c_, h_, w_;
  Geometry g_;
  std::string auto_pad_;  // empty: explicit pads

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

// Output length of a sliding window; ceil_mode drops a last window that would start in the end
// padding.
inline int64_t window_count(int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo, int64_t hi,
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
inline Act ref_conv(const Act& x, const std::vector<float>& w, int64_t cout,
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
inline Act ref_pool(const Act& x, bool is_max, const Geometry& g, bool ceil_mode,
                    bool count_include_pad) {
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
inline Act ref_gemm(const Act& x, const std::vector<float>& b, int64_t m, bool trans_b,
                    double alpha, double beta, const std::vector<float>& c) {
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
inline BnParams random_bn(std::mt19937& rng, int64_t c) {
  BnParams p;
  p.gamma = random_floats(rng, c, {0.5, 1.5});
  p.beta = random_floats(rng, c, {-0.5, 0.5});
  p.mean = random_floats(rng, c, {-0.5, 0.5});
  p.var = random_floats(rng, c, {0.1, 1.0});
  return p;
}
inline Act ref_bn(Act x, const BnParams& p) {
  const int64_t c = x.shape[0], per = static_cast<int64_t>(x.v.size()) / c;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t j = 0; j < per; ++j) {
      double& v = x.v[ch * per + j];
      v = (v - p.mean[ch]) / std::sqrt(static_cast<double>(p.var[ch]) + p.eps) * p.gamma[ch] +
          p.beta[ch];
    }
  return x;
}
inline void add_bn(OnnxBuilder& b, const std::string& in, const std::string& out,
                   const BnParams& p) {
  const int64_t c = static_cast<int64_t>(p.gamma.size());
  b.initializer(out + "_gamma", {c}, p.gamma)
      .initializer(out + "_beta", {c}, p.beta)
      .initializer(out + "_mean", {c}, p.mean)
      .initializer(out + "_var", {c}, p.var);
  b.node("BatchNormalization", {in, out + "_gamma", out + "_beta", out + "_mean", out + "_var"},
         {out}, {attr_float("epsilon", p.eps)});
}

inline Act ref_clamp(Act x, double lo, double hi) {
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
inline std::vector<RunConfig> all_configs() {
  std::vector<RunConfig> c;
  for (int64_t batch : {1, 3, 17})
    for (int64_t chunk : {1, 8})
      for (int threads : {1, 2}) c.push_back({batch, chunk, threads});
  return c;
}

// For wide sweeps on a shared machine: one partial chunk, one chunk per sample, both thread counts.
inline const std::vector<RunConfig> kSweepConfigs{{17, 8, 1}, {3, 1, 2}, {1, 8, 2}};

inline model::Graph import_model(const OnnxBuilder& b) {
  return model::import_onnx_bytes(b.bytes(), "test.onnx");
}

inline int count_op(const model::Graph& g, model::Op op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                        [&](const model::Node& n) { return n.op == op; }));
}

// Runs g on batches of 1, 3 and 17 random samples through every executor configuration; run() must
// match ref per sample and run_all()'s output must equal run()'s. Reports the first failing
// configuration only (up to 3 elements), so one bug does not print a page per configuration.
inline void expect_matches_reference(const model::Graph& g, const RefFn& ref, uint32_t seed,
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
inline std::vector<float> run_one(const model::Graph& g, const std::vector<float>& input) {
  EXPECT_EQ(static_cast<int64_t>(input.size()), g.input_value().size());
  const model::FloatExecutor ex(g, {1, 8});
  std::vector<float> out(static_cast<std::size_t>(g.output_value().size()));
  ex.run(input.data(), 1, out.data());
  EXPECT_EQ(ex.run_all(input.data(), 1)[g.output], out) << "run_all() differs from run()";
  return out;
}

inline void expect_floats_near(const std::vector<float>& got, const std::vector<double>& want) {
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
inline std::string add_activation(OnnxBuilder& b, Activation a, const std::string& in) {
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

inline Act ref_activation(Act x, Activation a) {
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

}  // namespace tilescale::quant::float_test
