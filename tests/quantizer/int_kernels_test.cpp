// The golden integer kernels (int_kernels.h) agree, op by op, with references written here: plain
// loops over one sample straight from the ONNX definitions, and exact rational arithmetic (128-bit
// integers, floor division) instead of int_arith.h's shift forms. XNNPACK tester style: one
// reference and one builder-style tester per kernel, many small edge cases (odd sizes, strides,
// padding, groups, depthwise, both saturation ends, exact .5 ties, partial last blocks, k = 1),
// plus hand-computed cases with literal numbers that pin the references down. Multipliers come
// from to_fixed_multiplier, whose own rules int_arith_test.cpp checks.
//
// Seeds are fixed and printed on failure; TILESCALE_TEST_SEED overrides them all.
#include "tilescale/quant/int_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "int_test_support.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant::kernels {
namespace {

namespace layout = model::layout;
using test::clamp_to;
using test::i128;
using test::pow2;
using test::Random;
using test::round_half_up_ratio;
using test::tap_input;
using test::times_multiplier;
using test::WindowSpec;

constexpr IntRange kS8 = signed_range(8), kU8 = unsigned_range(8), kS4 = signed_range(4);
constexpr IntRange kWide{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};

// The real number t rounded half up, from its floor and fraction.
int64_t ref_round_half_up(long double t) {
  const long double f = std::floor(t);
  return static_cast<int64_t>(t - f >= 0.5L ? f + 1 : f);
}

// Fails once, naming the first differing element and how many differ.
void expect_same(const std::vector<int64_t>& got, const std::vector<int64_t>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0, first = -1;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++bad;
    }
  if (bad)
    ADD_FAILURE() << what << ": " << bad << " of " << got.size() << " elements differ; first at "
                  << first << ": got " << got[first] << ", want " << want[first];
}

// Both ends of `r` occur in `v`: the case really exercised saturation.
void expect_both_ends(const std::vector<int64_t>& v, IntRange r) {
  EXPECT_NE(std::find(v.begin(), v.end(), r.lo), v.end()) << "no output saturated at " << r.lo;
  EXPECT_NE(std::find(v.begin(), v.end(), r.hi), v.end()) << "no output saturated at " << r.hi;
}

// Builder methods for the output side of a kernel: the grid's range, the multipliers' mantissa
// bits, and what a case must exercise (CRTP, so chains keep their type).
template <typename Self>
class OutputSpec {
 public:
  Self& output_range(IntRange r) {
    out_range_ = r;
    return self();
  }
  Self& scale_bits(int bits) {
    bits_ = bits;
    return self();
  }
  Self& expect_saturation() {  // the reference's outputs reach both ends of the range
    saturation_ = true;
    return self();
  }
  Self& expect_ties() {  // some reference output met an exact .5 tie before rounding
    ties_ = true;
    return self();
  }

 protected:
  OutGrid out_grid(double step) const { return {step, bits_, out_range_}; }
  void check_coverage(const std::vector<int64_t>& want, int64_t ties) const {
    if (saturation_) expect_both_ends(want, out_range_);
    if (ties_) {
      EXPECT_GT(ties, 0) << "no output met an exact .5 tie";
    }
  }

  IntRange out_range_ = kS8;
  int bits_ = 16;

 private:
  Self& self() { return static_cast<Self&>(*this); }
  bool saturation_ = false, ties_ = false;
};

// --- quantize_f32 --------------------------------------------------------------------------------

class QuantizeTester {
 public:
  QuantizeTester& step(double s) {
    step_ = s;
    return *this;
  }
  QuantizeTester& range(IntRange r) {
    range_ = r;
    return *this;
  }
  // Half of the values are exact ties (q + 0.5) * step; needs a power-of-two step.
  QuantizeTester& ties() {
    ties_ = true;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note());
    std::vector<float> x(301);
    // Codes up to 20 steps beyond both ends, so both saturate.
    const int64_t lo = range_.lo - 20, hi = range_.hi + 20;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double t = ties_ && i % 2 ? static_cast<double>(rnd.uniform(lo, hi)) + 0.5
                                      : rnd.real(static_cast<double>(lo), static_cast<double>(hi));
      x[i] = static_cast<float>(t * step_);
    }
    std::vector<int64_t> want(x.size()), got(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      want[i] = clamp_to(ref_round_half_up(static_cast<long double>(x[i]) / step_), range_);
    quantize_f32(x.data(), static_cast<int64_t>(x.size()), step_, range_, got.data());
    expect_same(got, want, "quantize_f32");
    expect_both_ends(want, range_);
  }

 private:
  double step_ = 0.25;
  IntRange range_ = kS8;
  bool ties_ = false;
};

TEST(IntQuantize, HandComputedTiesRoundUp) {
  const std::vector<float> x{0.125f, -0.125f, 0.375f, -0.375f, 100.0f, -100.0f};
  std::vector<int64_t> q(x.size());
  quantize_f32(x.data(), 6, 0.25, kS4, q.data());
  EXPECT_EQ(q, (std::vector<int64_t>{1, 0, 2, -1, 7, -8}));
}
TEST(IntQuantize, SignedGridMatchesReference) { QuantizeTester().step(0.0371).test(1); }
TEST(IntQuantize, UnsignedGridMatchesReference) {
  QuantizeTester().step(0.0123).range(kU8).test(2);
}
TEST(IntQuantize, ExactHalfTiesRoundUpBothSigns) {
  QuantizeTester().step(0.125).ties().test(3);
  QuantizeTester().step(4.0).range(unsigned_range(4)).ties().test(4);
}

// --- activation_range and clamp ------------------------------------------------------------------

model::Node activation(model::Op op, float lo = 0.0f, float hi = 0.0f) {
  model::Node n;
  n.op = op;
  n.clip_min = lo;
  n.clip_max = hi;
  return n;
}

TEST(IntActivationRange, ReluRaisesOnlyTheLowerBound) {
  const IntRange r = activation_range(activation(model::Op::Relu), 0.5, kS8);
  EXPECT_EQ(r.lo, 0);
  EXPECT_EQ(r.hi, 127);
  EXPECT_EQ(activation_range(activation(model::Op::Relu), 0.5, kU8).lo, 0);
}

TEST(IntActivationRange, ClipBoundsRoundHalfUpOnTheGrid) {
  // 6 / 0.25 = 24; 2.5 steps -> 3; -2.5 steps -> -2.
  IntRange r = activation_range(activation(model::Op::Clip, 0.0f, 6.0f), 0.25, kS8);
  EXPECT_EQ(r.lo, 0);
  EXPECT_EQ(r.hi, 24);
  r = activation_range(activation(model::Op::Clip, -1.25f, 1.25f), 0.5, kS8);
  EXPECT_EQ(r.lo, -2);
  EXPECT_EQ(r.hi, 3);
}

TEST(IntActivationRange, ClipIntersectsTheBaseAndIgnoresInfiniteBounds) {
  const float inf = std::numeric_limits<float>::infinity();
  IntRange r = activation_range(activation(model::Op::Clip, -100.0f, 100.0f), 0.5, kS8);
  EXPECT_EQ(r.lo, -128);
  EXPECT_EQ(r.hi, 127);
  r = activation_range(activation(model::Op::Clip, -inf, 1.0f), 0.5, kWide);
  EXPECT_EQ(r.lo, kWide.lo);
  EXPECT_EQ(r.hi, 2);
}

class ClampTester {
 public:
  ClampTester& range(IntRange r) {
    range_ = r;
    return *this;
  }
  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note());
    const std::vector<int64_t> x = rnd.codes(257, kS8);
    std::vector<int64_t> want(x.size()), got(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      want[i] = x[i] < range_.lo ? range_.lo : x[i] > range_.hi ? range_.hi : x[i];
    clamp(x.data(), static_cast<int64_t>(x.size()), range_, got.data());
    expect_same(got, want, "clamp");
  }

 private:
  IntRange range_ = kS8;
};

TEST(IntClamp, ReluRangeZeroesNegatives) { ClampTester().range({0, kWide.hi}).test(10); }
TEST(IntClamp, BothEndsSaturate) { ClampTester().range({-5, 24}).test(11); }
TEST(IntClamp, SingleCodeRange) { ClampTester().range({3, 3}).test(12); }

// --- requantize ----------------------------------------------------------------------------------

class RequantizeTester : public OutputSpec<RequantizeTester> {
 public:
  RequantizeTester() { expect_saturation(); }
  RequantizeTester& frac_bits(int f) {
    frac_ = f;
    return *this;
  }
  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note() + ", F = " + std::to_string(frac_));
    const int64_t one = int64_t{1} << frac_;
    std::vector<int64_t> acc;
    for (int i = 0; i < 400; ++i) {
      const int64_t q = rnd.uniform(out_range_.lo - 16, out_range_.hi + 16);
      // Every third value an exact tie q + 1/2 (F >= 1), the rest anywhere between grid points.
      acc.push_back(q * one + (frac_ > 0 && i % 3 == 0 ? one / 2 : rnd.uniform(0, one - 1)));
    }
    std::vector<int64_t> want(acc.size()), got(acc.size());
    for (std::size_t i = 0; i < acc.size(); ++i)
      want[i] = clamp_to(round_half_up_ratio(acc[i], pow2(frac_)), out_range_);
    requantize(acc.data(), static_cast<int64_t>(acc.size()), frac_, out_range_, got.data());
    expect_same(got, want, "requantize");
    check_coverage(want, 0);
  }

 private:
  int frac_ = 8;
};

TEST(IntRequantize, HandComputedHalfTiesRoundTowardPlusInfinity) {
  const std::vector<int64_t> acc{5, -5, 3, -3, 4, 1000, -1000};
  std::vector<int64_t> y(acc.size());
  requantize(acc.data(), 7, 1, kS8, y.data());
  EXPECT_EQ(y, (std::vector<int64_t>{3, -2, 2, -1, 2, 127, -128}));
}
TEST(IntRequantize, NoFractionalBitsOnlySaturates) { RequantizeTester().frac_bits(0).test(20); }
TEST(IntRequantize, OneFractionalBit) {
  RequantizeTester().frac_bits(1).output_range(kU8).test(21);
}
TEST(IntRequantize, WideFractionMatchesReference) {
  RequantizeTester().frac_bits(17).test(22);
  RequantizeTester().frac_bits(40).output_range(kS4).test(23);
}

// --- add -----------------------------------------------------------------------------------------

class AddTester : public OutputSpec<AddTester> {
 public:
  AddTester& steps(double a, double b, double y) {
    sa_ = a;
    sb_ = b;
    sy_ = y;
    return *this;
  }
  AddTester& inputs(IntRange a, IntRange b) {
    ra_ = a;
    rb_ = b;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note());
    const std::vector<int64_t> a = rnd.codes(501, ra_), b = rnd.codes(501, rb_);
    const FixedMultiplier ma = to_fixed_multiplier(sa_ / sy_, bits_);
    const FixedMultiplier mb = to_fixed_multiplier(sb_ / sy_, bits_);
    // a * ma + b * mb as one fraction over 2^d.
    const int d = std::max({ma.r, mb.r, 0});
    std::vector<int64_t> want(a.size()), got(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      const i128 num = static_cast<i128>(a[i]) * ma.m * pow2(d - ma.r) +
                       static_cast<i128>(b[i]) * mb.m * pow2(d - mb.r);
      want[i] = clamp_to(round_half_up_ratio(num, pow2(d)), out_range_);
    }
    add(a.data(), sa_, b.data(), sb_, static_cast<int64_t>(a.size()), out_grid(sy_), got.data());
    expect_same(got, want, "add");
    check_coverage(want, 0);
  }

 private:
  double sa_ = 0.05, sb_ = 0.03, sy_ = 0.07;
  IntRange ra_ = kS8, rb_ = kS8;
};

TEST(IntAdd, HandComputedShiftOnlyHalvesTieUp) {
  // Scale bits 1: both multipliers are exactly 1/2 (m = 1, r = 1).
  const std::vector<int64_t> a{1, -1, 1, -3, 127, -128}, b{0, 0, 2, 0, 127, -128};
  std::vector<int64_t> y(a.size());
  add(a.data(), 1.0, b.data(), 1.0, 6, {2.0, 1, signed_range(7)}, y.data());
  EXPECT_EQ(y, (std::vector<int64_t>{1, 0, 2, -1, 63, -64}));
}
TEST(IntAdd, UnequalStepsMatchReference) { AddTester().test(30); }
TEST(IntAdd, ResidualOfTwoUnsignedReluTensors) {
  AddTester().inputs(kU8, kU8).output_range(kU8).steps(0.02, 0.05, 0.04).test(31);
}
TEST(IntAdd, BothSaturationEnds) { AddTester().steps(0.1, 0.1, 0.05).expect_saturation().test(32); }
TEST(IntAdd, ShiftOnlyMultipliers) { AddTester().scale_bits(1).steps(0.3, 0.07, 0.11).test(33); }
TEST(IntAdd, MultipliersAboveOneShiftLeft) {
  // Steps 4x and 8x the output's: at one mantissa bit r = -2 and -3, so F < 0.
  AddTester().scale_bits(1).steps(4.0, 8.0, 1.0).output_range(kWide).test(34);
  AddTester().scale_bits(3).steps(5.0, 3.0, 1.0).output_range(kWide).test(35);
}
TEST(IntAdd, ExactHalfMultipliersTie) {
  AddTester().steps(0.5, 1.5, 1.0).output_range(signed_range(10)).test(36);
}

// --- conv_gemm_blocks ----------------------------------------------------------------------------

class ConvGemmTester : public WindowSpec<ConvGemmTester>, public OutputSpec<ConvGemmTester> {
 public:
  ConvGemmTester& channels(int64_t cin, int64_t cout) {
    cin_ = cin;
    cout_ = cout;
    return *this;
  }
  ConvGemmTester& groups(int64_t g) {
    groups_ = g;
    return *this;
  }
  // A fully connected layer: x [n][k], weights [nout][k].
  ConvGemmTester& gemm(int64_t k, int64_t nout) {
    gemm_ = true;
    cin_ = k;
    cout_ = nout;
    return *this;
  }
  ConvGemmTester& batch(int64_t n) {
    n_ = n;
    return *this;
  }
  ConvGemmTester& granularity(const std::string& g) {
    granularity_ = g;
    return *this;
  }
  ConvGemmTester& w_bits(int b) {
    w_bits_ = b;
    return *this;
  }
  ConvGemmTester& input_range(IntRange r) {
    in_range_ = r;
    return *this;
  }
  // Block multipliers m * 2^-r with m of `bits` bits and r in [lo, hi]. By default r is chosen
  // so that outputs spread over about an eighth of the output range and few saturate.
  ConvGemmTester& multipliers(int bits, int lo, int hi) {
    m_bits_ = bits;
    r_lo_ = lo;
    r_hi_ = hi;
    auto_shift_ = false;
    return *this;
  }
  ConvGemmTester& zero_blocks() {  // about a quarter of the blocks get m = 0
    zero_blocks_ = true;
    return *this;
  }
  ConvGemmTester& keep_acc() {
    keep_acc_ = true;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note() + "; " + (gemm_ ? "gemm" : geometry()) + " channels " +
                 std::to_string(cin_) + "->" + std::to_string(cout_) + " groups " +
                 std::to_string(groups_) + " " + granularity_);
    const Layer layer = make_layer(rnd);
    const layout::ConvShape& s = layer.view.shape;
    const int64_t in_size = cin_ * s.h * s.w, out_size = cout_ * s.positions();
    const std::vector<int64_t> x = rnd.codes(n_ * in_size, in_range_);
    std::vector<int64_t> want(static_cast<std::size_t>(n_ * out_size));
    int64_t ties = 0;
    for (int64_t i = 0; i < n_; ++i)
      reference(layer, x.data() + i * in_size, want.data() + i * out_size, &ties);
    std::vector<int64_t> got(want.size(), -7);
    GemmScratch scratch;
    conv_gemm_blocks(layer.view, n_, x.data(), got.data(), scratch);
    expect_same(got, want, "conv_gemm_blocks over the batch");
    // One image at a time gives the same codes (the simulators call it per image).
    std::vector<int64_t> one(static_cast<std::size_t>(out_size));
    for (int64_t i = 0; i < n_; ++i) {
      conv_gemm_blocks(layer.view, 1, x.data() + i * in_size, one.data(), scratch);
      expect_same(one, {want.begin() + i * out_size, want.begin() + (i + 1) * out_size},
                  "conv_gemm_blocks on image " + std::to_string(i));
    }
    check_coverage(want, ties);
  }

 private:
  struct Layer {
    BlockGrid grid;
    std::vector<int8_t> weight;
    std::vector<FixedMultiplier> mult;
    std::vector<int64_t> bias;
    GemmLayer view;
  };

  Layer make_layer(Random& rnd) const {
    model::Node node;
    node.op = gemm_ ? model::Op::Gemm : model::Op::Conv;
    const int64_t cin_g = cin_ / groups_;
    Layer L;
    L.view.shape = shape(cin_g);
    node.window = L.view.shape.win;
    node.window.groups = groups_;
    if (gemm_) {
      node.weight.shape = {cout_, cin_};
      model::Value in{"x", {cin_}}, out{"y", {cout_}};
      L.view.shape = layout::conv_shape(node, in, out);
    } else {
      node.weight.shape = {cout_, cin_g, L.view.shape.win.kernel_h, L.view.shape.win.kernel_w};
    }
    L.grid = make_block_grid(node, Granularity::parse(granularity_));
    for (int64_t i = 0; i < cout_ * L.view.shape.k(); ++i)
      L.weight.push_back(
          static_cast<int8_t>(rnd.uniform(signed_range(w_bits_).lo, signed_range(w_bits_).hi)));
    const double width = std::min(static_cast<double>(out_range_.hi) - out_range_.lo, 1e6);
    int r_lo = r_lo_, r_hi = r_hi_;
    if (auto_shift_) {
      const double max_x = std::max(-static_cast<double>(in_range_.lo), double(in_range_.hi));
      const double typical = std::sqrt(static_cast<double>(L.view.shape.k())) * max_x *
                             std::ldexp(1.0, w_bits_ - 1) / 3.0;
      const double m_mid = 1.5 * std::ldexp(1.0, m_bits_ - 1);
      r_lo = static_cast<int>(std::lround(std::log2(m_mid * typical / (width / 8.0)))) - 1;
      r_hi = r_lo + 2;
    }
    int frac = std::numeric_limits<int>::min();
    for (int64_t b = 0; b < L.grid.num_blocks(); ++b) {
      FixedMultiplier f;
      if (!zero_blocks_ || rnd.uniform(0, 3) != 0) {
        f.m = rnd.uniform(int64_t{1} << (m_bits_ - 1), (int64_t{1} << m_bits_) - 1);
        f.r = static_cast<int>(rnd.uniform(r_lo, r_hi));
        frac = std::max(frac, f.r);
      }
      L.mult.push_back(f);
    }
    if (frac == std::numeric_limits<int>::min()) frac = 0;
    // Biases up to a few output steps, with F fractional bits (or multiples of 2^-F for F < 0).
    const int64_t span = static_cast<int64_t>(width / 8.0) + 1;
    for (int64_t o = 0; o < cout_; ++o)
      L.bias.push_back(frac >= 0 ? rnd.uniform(-(span << frac), span << frac)
                                 : rnd.uniform(-span, span));
    L.view.groups = groups_;
    L.view.out_channels = cout_;
    L.view.grid = &L.grid;
    L.view.weight = L.weight.data();
    L.view.multiplier = L.mult.data();
    L.view.bias_q = L.bias.data();
    L.view.frac_bits = frac;
    L.view.keep_acc = keep_acc_;
    L.view.range = out_range_;
    return L;
  }

  // One sample, straight from the definition: per output, exact block sums over the window's taps
  // inside the input, each times its real multiplier, plus the bias, rounded once.
  void reference(const Layer& L, const int64_t* x, int64_t* y, int64_t* ties) const {
    const layout::ConvShape& s = L.view.shape;
    const BlockGrid& grid = L.grid;
    const int64_t cin_g = cin_ / groups_, cout_g = cout_ / groups_;
    const int64_t kh = s.win.kernel_h, kw = s.win.kernel_w;
    const int F = L.view.frac_bits, d = std::max(F, 0);  // the fraction's denominator is 2^d
    for (int64_t o = 0; o < cout_; ++o) {
      const int64_t g = o / cout_g;
      for (int64_t oy = 0; oy < s.ho; ++oy)
        for (int64_t ox = 0; ox < s.wo; ++ox) {
          std::vector<i128> part(static_cast<std::size_t>(grid.num_blocks()), 0);
          for (int64_t c = 0; c < cin_g; ++c)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                int64_t iy, ix;
                if (!tap_input(s, oy, ox, ky, kx, &iy, &ix)) continue;
                const int64_t xv = x[((g * cin_g + c) * s.h + iy) * s.w + ix];
                const int64_t wv = L.weight[((o * cin_g + c) * kh + ky) * kw + kx];
                const int64_t hw = (ky * kw + kx) * cin_g + c;
                part[grid.out_group[o] * grid.red_groups + grid.red_group[hw]] += xv * wv;
              }
          i128 num = static_cast<i128>(L.bias[o]) * pow2(d - F);
          for (std::size_t b = 0; b < part.size(); ++b)
            if (L.mult[b].m) num += part[b] * L.mult[b].m * pow2(d - L.mult[b].r);
          int64_t& dst = y[o * s.positions() + oy * s.wo + ox];
          if (keep_acc_) {
            dst = static_cast<int64_t>(F >= 0 ? num : num / pow2(-F));
            continue;
          }
          if (d > 0 && (num % pow2(d) == pow2(d - 1) || num % pow2(d) == -pow2(d - 1))) ++*ties;
          dst = clamp_to(round_half_up_ratio(num, pow2(d)), out_range_);
        }
    }
  }

  int64_t cin_ = 3, cout_ = 4, groups_ = 1, n_ = 2;
  bool gemm_ = false, zero_blocks_ = false, keep_acc_ = false, auto_shift_ = true;
  std::string granularity_ = "channel";
  int w_bits_ = 4, m_bits_ = 8, r_lo_ = 0, r_hi_ = 0;
  IntRange in_range_ = kU8;
};

TEST(IntConvGemm, HandComputedWindowSumsHalveAndTieUp) {
  // Input 1..9 (3x3), a 2x2 kernel of ones, one block with M = 1/2, bias 1/2 (bias_q 1 at F = 1):
  // window sums 12, 16, 24, 28 -> 6.5, 8.5, 12.5, 14.5 -> 7, 9, 13, 15.
  model::Node node;
  node.op = model::Op::Conv;
  node.window.kernel_h = node.window.kernel_w = 2;
  node.weight.shape = {1, 1, 2, 2};
  const BlockGrid grid = make_block_grid(node, Granularity::parse("layer"));
  const std::vector<int8_t> w(4, 1);
  const FixedMultiplier half{1, 1};
  const int64_t bias = 1;
  GemmLayer L;
  L.shape = layout::conv_shape(node, {"x", {1, 3, 3}}, {"y", {1, 2, 2}});
  L.out_channels = 1;
  L.grid = &grid;
  L.weight = w.data();
  L.multiplier = &half;
  L.bias_q = &bias;
  L.frac_bits = 1;
  L.range = kS8;
  const std::vector<int64_t> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<int64_t> y(4);
  GemmScratch scratch;
  conv_gemm_blocks(L, 1, x.data(), y.data(), scratch);
  EXPECT_EQ(y, (std::vector<int64_t>{7, 9, 13, 15}));
  L.keep_acc = true;
  conv_gemm_blocks(L, 1, x.data(), y.data(), scratch);
  EXPECT_EQ(y, (std::vector<int64_t>{13, 17, 25, 29}));
}

TEST(IntConvGemm, OddSizesMatchReference) {
  ConvGemmTester().channels(3, 5).input_size(7, 5).kernel(3, 3).test(100);
  ConvGemmTester().channels(2, 3).input_size(5, 9).kernel(1, 5).pads(0, 2, 0, 2).test(101);
}
TEST(IntConvGemm, StridesAndAsymmetricPads) {
  ConvGemmTester()
      .channels(3, 4)
      .input_size(9, 8)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .test(102);
  ConvGemmTester()
      .channels(2, 3)
      .input_size(7, 8)
      .kernel(2, 3)
      .stride(2, 3)
      .pads(1, 0, 0, 2)
      .test(103);
  ConvGemmTester()
      .channels(1, 2)
      .input_size(4, 4)
      .kernel(2, 2)
      .stride(2, 1)
      .pads(1, 0, 0, 1)
      .test(104);
}
TEST(IntConvGemm, DilationMatchesReference) {
  ConvGemmTester()
      .channels(2, 3)
      .input_size(9, 10)
      .kernel(3, 2)
      .dilation(2, 3)
      .pads(2, 1, 2, 3)
      .test(105);
}
TEST(IntConvGemm, WindowsWhollyInThePaddingGiveTheBias) {
  ConvGemmTester()
      .channels(2, 3)
      .input_size(3, 3)
      .kernel(2, 2)
      .stride(2, 2)
      .pads(2, 2, 3, 3)
      .test(106);
}
TEST(IntConvGemm, GroupsMatchReference) {
  ConvGemmTester()
      .channels(4, 6)
      .groups(2)
      .input_size(6, 5)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .granularity("block:2x1")
      .test(107);
  ConvGemmTester().channels(6, 3).groups(3).input_size(5, 5).kernel(1, 1).test(108);
}
TEST(IntConvGemm, DepthwiseMatchesReference) {
  ConvGemmTester()
      .channels(5, 5)
      .groups(5)
      .input_size(7, 6)
      .kernel(3, 3)
      .stride(2, 1)
      .pads(1, 1, 1, 1)
      .granularity("block:2x8")
      .test(109);
  ConvGemmTester()
      .channels(3, 6)
      .groups(3)
      .input_size(5, 5)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .granularity("channel")
      .test(110);  // channel multiplier 2
}
TEST(IntConvGemm, PartialLastBlocksBothAxes) {
  ConvGemmTester()
      .channels(11, 7)
      .input_size(4, 5)
      .kernel(3, 3)
      .pads(1, 1, 1, 1)
      .granularity("block:3x5")
      .test(111);
  ConvGemmTester().channels(5, 3).input_size(4, 4).kernel(3, 3).granularity("mx:7").test(112);
  ConvGemmTester().channels(4, 2).input_size(3, 3).kernel(2, 2).granularity("vsq:5").test(113);
}
TEST(IntConvGemm, LayerwiseAndChannelwise) {
  ConvGemmTester().channels(3, 4).input_size(6, 6).kernel(3, 3).granularity("layer").test(114);
  ConvGemmTester().channels(3, 4).input_size(6, 6).kernel(3, 3).granularity("channel").test(115);
}
TEST(IntConvGemm, ReductionOfOneElement) {
  ConvGemmTester().channels(1, 3).input_size(4, 3).kernel(1, 1).test(116);
  ConvGemmTester().gemm(1, 4).test(117);
}
TEST(IntConvGemm, GemmMatchesReference) {
  ConvGemmTester().gemm(37, 10).granularity("block:4x16").batch(3).test(118);
  ConvGemmTester().gemm(64, 5).granularity("mx:32").input_range(kS8).test(119);
}
TEST(IntConvGemm, BothSaturationEnds) {
  ConvGemmTester()
      .channels(4, 6)
      .input_size(6, 6)
      .kernel(3, 3)
      .input_range(kS8)
      .multipliers(8, 4, 7)
      .expect_saturation()
      .test(120);
  ConvGemmTester()
      .gemm(40, 16)
      .input_range(kS8)
      .output_range(kU8)
      .multipliers(8, 4, 7)
      .expect_saturation()
      .test(121);
}
TEST(IntConvGemm, ExactHalfTiesRoundUp) {
  // r = 1 everywhere: F = 1, so every odd accumulator is a tie.
  ConvGemmTester()
      .channels(2, 3)
      .input_size(5, 5)
      .kernel(3, 3)
      .input_range(kS4)
      .multipliers(3, 1, 1)
      .output_range(signed_range(12))
      .expect_ties()
      .test(122);
}
TEST(IntConvGemm, BlocksWithZeroMultiplierContributeNothing) {
  ConvGemmTester()
      .channels(8, 6)
      .input_size(4, 4)
      .kernel(3, 3)
      .granularity("block:2x3")
      .zero_blocks()
      .test(123);
}
TEST(IntConvGemm, KeepAccumulatorForLogits) {
  ConvGemmTester().gemm(24, 10).granularity("block:4x8").keep_acc().test(124);
  ConvGemmTester().channels(3, 2).input_size(5, 4).kernel(3, 3).keep_acc().test(125);
}
TEST(IntConvGemm, ShiftOnlyAndMultipliersAboveOne) {
  ConvGemmTester().channels(3, 4).input_size(5, 5).kernel(3, 3).multipliers(1, 4, 10).test(126);
  // r in [-2, -1]: block multipliers of 4 to 12, F < 0; the accumulator is scaled up, not
  // rounded.
  ConvGemmTester()
      .channels(2, 2)
      .input_size(4, 4)
      .kernel(2, 2)
      .input_range(kS4)
      .w_bits(2)
      .multipliers(2, -2, -1)
      .output_range(kWide)
      .test(127);
}
TEST(IntConvGemm, RandomGeometriesMatchReference) {
  Random rnd(128);
  for (int i = 0; i < 40; ++i) {
    // One draw per statement, so the sequence does not depend on evaluation order.
    int64_t v[17];
    const int64_t limits[17][2] = {{1, 3}, {1, 4}, {1, 4}, {1, 3}, {1, 3}, {1, 2},
                                   {1, 2}, {0, 5}, {0, 5}, {1, 3}, {1, 3}, {0, 2},
                                   {0, 2}, {0, 2}, {0, 2}, {1, 5}, {1, 5}};
    for (int j = 0; j < 17; ++j) v[j] = rnd.uniform(limits[j][0], limits[j][1]);
    const int64_t groups = v[0], kh = v[3], kw = v[4], dh = v[5], dw = v[6];
    const std::string g = "block:" + std::to_string(v[15]) + "x" + std::to_string(v[16]);
    const int64_t h = (kh - 1) * dh + 1 + v[7], w = (kw - 1) * dw + 1 + v[8];
    const int64_t batch = rnd.uniform(1, 3);
    const bool is_signed = rnd.uniform(0, 1);
    const uint32_t seed = static_cast<uint32_t>(rnd.uniform(0, 1 << 30));
    ConvGemmTester()
        .channels(groups * v[1], groups * v[2])
        .groups(groups)
        .input_size(h, w)
        .kernel(kh, kw)
        .stride(v[9], v[10])
        .dilation(dh, dw)
        .pads(v[11], v[12], v[13], v[14])
        .batch(batch)
        .granularity(g)
        .input_range(is_signed ? kS8 : kU8)
        .test(seed);
  }
}

// --- pools ---------------------------------------------------------------------------------------

// The pool testers' common part: planes of random codes through a window.
template <typename Self>
class PoolSpec : public WindowSpec<Self> {
 public:
  Self& planes(int64_t p) {
    planes_ = p;
    return static_cast<Self&>(*this);
  }
  Self& input_range(IntRange r) {
    in_range_ = r;
    return static_cast<Self&>(*this);
  }

 protected:
  int64_t planes_ = 3;
  IntRange in_range_ = kS8;
};

class MaxPoolTester : public PoolSpec<MaxPoolTester> {
 public:
  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note() + "; " + geometry());
    const layout::ConvShape s = shape(1);
    const std::vector<int64_t> x = rnd.codes(planes_ * s.h * s.w, in_range_);
    std::vector<int64_t> want, got(static_cast<std::size_t>(planes_ * s.positions()), -7);
    for (int64_t p = 0; p < planes_; ++p)
      for (int64_t oy = 0; oy < s.ho; ++oy)
        for (int64_t ox = 0; ox < s.wo; ++ox) {
          bool any = false;
          int64_t best = 0;
          for (int64_t ky = 0; ky < s.win.kernel_h; ++ky)
            for (int64_t kx = 0; kx < s.win.kernel_w; ++kx) {
              int64_t iy, ix;
              if (!tap_input(s, oy, ox, ky, kx, &iy, &ix)) continue;
              const int64_t v = x[(p * s.h + iy) * s.w + ix];
              best = any ? std::max(best, v) : v;
              any = true;
            }
          want.push_back(best);
        }
    max_pool(s, planes_, x.data(), got.data());
    expect_same(got, want, "max_pool");
  }
};

TEST(IntMaxPool, Kernel2Stride2OnOddInput) {
  MaxPoolTester().input_size(7, 5).kernel(2, 2).stride(2, 2).test(200);
}
TEST(IntMaxPool, PaddingNeverWinsOnNegativeCodes) {
  MaxPoolTester()
      .input_size(5, 6)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .input_range({-100, -1})
      .test(201);
}
TEST(IntMaxPool, DilationAndAsymmetricPads) {
  MaxPoolTester().input_size(9, 8).kernel(3, 2).dilation(2, 2).pads(2, 0, 1, 1).test(202);
}
TEST(IntMaxPool, CeilModeOverhangAndEmptyWindowsGiveZero) {
  // 5 wide, kernel 2, stride 2: a third column whose window keeps one tap; a fourth wholly
  // outside the input, which gives 0.
  MaxPoolTester()
      .input_size(5, 5)
      .kernel(2, 2)
      .stride(2, 2)
      .output_size(3, 4)
      .input_range({-50, -10})
      .test(203);
}
TEST(IntMaxPool, OneByOneKernelSubsamples) {
  MaxPoolTester().input_size(6, 7).kernel(1, 1).stride(2, 3).planes(2).test(204);
}

class AvgPoolTester : public PoolSpec<AvgPoolTester>, public OutputSpec<AvgPoolTester> {
 public:
  AvgPoolTester& count_include_pad() {
    include_pad_ = true;
    return *this;
  }
  AvgPoolTester& steps(double x, double y) {
    sx_ = x;
    sy_ = y;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note() + "; " + geometry());
    const layout::ConvShape s = shape(1);
    const std::vector<int64_t> x = rnd.codes(planes_ * s.h * s.w, in_range_);
    std::vector<int64_t> want, got(static_cast<std::size_t>(planes_ * s.positions()), -7);
    int64_t ties = 0;
    for (int64_t p = 0; p < planes_; ++p)
      for (int64_t oy = 0; oy < s.ho; ++oy)
        for (int64_t ox = 0; ox < s.wo; ++ox) {
          int64_t sum = 0, count = 0;
          for (int64_t ky = 0; ky < s.win.kernel_h; ++ky)
            for (int64_t kx = 0; kx < s.win.kernel_w; ++kx) {
              int64_t iy, ix;
              if (tap_input(s, oy, ox, ky, kx, &iy, &ix)) {
                sum += x[(p * s.h + iy) * s.w + ix];
                if (!include_pad_) ++count;
              }
              // count_include_pad: elements of the undilated window inside input plus padding.
              const int64_t y = oy * s.win.stride_h - s.win.pad_top + ky;
              const int64_t xx = ox * s.win.stride_w - s.win.pad_left + kx;
              if (include_pad_ && y >= -s.win.pad_top && y < s.h + s.win.pad_bottom &&
                  xx >= -s.win.pad_left && xx < s.w + s.win.pad_right)
                ++count;
            }
          if (count == 0) {
            want.push_back(0);
            continue;
          }
          const FixedMultiplier f =
              to_fixed_multiplier(sx_ / (sy_ * static_cast<double>(count)), bits_);
          if (f.r > 0 &&
              (static_cast<i128>(sum) * f.m % pow2(f.r) + pow2(f.r)) % pow2(f.r) == pow2(f.r - 1))
            ++ties;
          want.push_back(clamp_to(times_multiplier(sum, f), out_range_));
        }
    avg_pool(s, include_pad_, planes_, x.data(), sx_, out_grid(sy_), got.data());
    expect_same(got, want, "avg_pool");
    check_coverage(want, ties);
  }

 private:
  bool include_pad_ = false;
  double sx_ = 0.05, sy_ = 0.04;
};

TEST(IntAvgPool, Kernel2Stride2MatchesReference) {
  AvgPoolTester().input_size(7, 6).kernel(2, 2).stride(2, 2).test(210);
}
TEST(IntAvgPool, PaddingExcludedDividesByTapsInside) {
  AvgPoolTester().input_size(5, 5).kernel(3, 3).pads(1, 1, 1, 1).test(211);
}
TEST(IntAvgPool, CountIncludePadDividesByPaddedWindow) {
  AvgPoolTester()
      .input_size(5, 6)
      .kernel(3, 3)
      .stride(2, 2)
      .pads(1, 1, 1, 1)
      .count_include_pad()
      .test(212);
  AvgPoolTester().input_size(4, 4).kernel(3, 2).pads(2, 0, 0, 1).count_include_pad().test(213);
}
TEST(IntAvgPool, CeilModeOverhangNeverCounts) {
  AvgPoolTester()
      .input_size(5, 5)
      .kernel(2, 2)
      .stride(2, 2)
      .output_size(3, 3)
      .count_include_pad()
      .test(214);
  AvgPoolTester().input_size(5, 5).kernel(2, 2).stride(2, 2).output_size(4, 4).test(215);
}
TEST(IntAvgPool, ExactHalfTiesRoundUp) {
  // Equal steps and two taps: M = 1/2 exactly, so every odd sum is a tie.
  AvgPoolTester().input_size(3, 8).kernel(1, 2).stride(1, 2).steps(0.1, 0.1).expect_ties().test(
      216);
}
TEST(IntAvgPool, SaturatesOnANarrowerGrid) {
  AvgPoolTester()
      .input_size(4, 4)
      .kernel(2, 2)
      .steps(0.1, 0.01)
      .output_range(kS4)
      .expect_saturation()
      .test(217);
  AvgPoolTester().input_size(6, 6).kernel(3, 3).stride(3, 3).scale_bits(1).test(218);
}

class GlobalAvgPoolTester : public OutputSpec<GlobalAvgPoolTester> {
 public:
  GlobalAvgPoolTester() { output_range(kU8); }
  GlobalAvgPoolTester& planes(int64_t p, int64_t hw) {
    planes_ = p;
    hw_ = hw;
    return *this;
  }
  // Input codes of range `in` on a grid of step x, output step y.
  GlobalAvgPoolTester& grids(IntRange in, double x, double y) {
    in_range_ = in;
    sx_ = x;
    sy_ = y;
    return *this;
  }
  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note());
    const std::vector<int64_t> x = rnd.codes(planes_ * hw_, in_range_);
    const FixedMultiplier f = to_fixed_multiplier(sx_ / (sy_ * static_cast<double>(hw_)), bits_);
    std::vector<int64_t> want, got(static_cast<std::size_t>(planes_));
    for (int64_t p = 0; p < planes_; ++p) {
      int64_t sum = 0;
      for (int64_t j = 0; j < hw_; ++j) sum += x[p * hw_ + j];
      want.push_back(clamp_to(times_multiplier(sum, f), out_range_));
    }
    global_avg_pool(planes_, hw_, x.data(), sx_, out_grid(sy_), got.data());
    expect_same(got, want, "global_avg_pool");
    check_coverage(want, 0);
  }

 private:
  int64_t planes_ = 5, hw_ = 49;
  double sx_ = 0.03, sy_ = 0.02;
  IntRange in_range_ = kU8;
};

TEST(IntGlobalAvgPool, SevenBySevenPlanes) { GlobalAvgPoolTester().test(220); }
TEST(IntGlobalAvgPool, OneElementPlanesOnlyRescale) {
  GlobalAvgPoolTester().planes(7, 1).grids(kU8, 0.5, 0.25).output_range(kS8).test(221);
}
TEST(IntGlobalAvgPool, ShiftOnlyAndSaturation) {
  GlobalAvgPoolTester()
      .planes(4, 9)
      .scale_bits(1)
      .grids(kS8, 0.2, 0.01)
      .output_range(kS4)
      .expect_saturation()
      .test(222);
}

// --- concat and pad ------------------------------------------------------------------------------

class ConcatTester : public OutputSpec<ConcatTester> {
 public:
  // Per-sample shapes of the inputs, equal but along `axis`.
  ConcatTester& inputs(const std::vector<std::vector<int64_t>>& shapes, int axis) {
    shapes_ = shapes;
    axis_ = axis;
    return *this;
  }
  ConcatTester& steps(const std::vector<double>& in, double out) {
    steps_ = in;
    sy_ = out;
    return *this;
  }
  ConcatTester& batch(int64_t n) {
    n_ = n;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note());
    auto numel = [](const std::vector<int64_t>& s) {
      int64_t e = 1;
      for (int64_t d : s) e *= d;
      return e;
    };
    std::vector<int64_t> out_shape = shapes_[0];
    out_shape[axis_] = 0;
    std::vector<std::vector<int64_t>> codes;
    std::vector<ConcatInput> ins;
    for (std::size_t i = 0; i < shapes_.size(); ++i) {
      out_shape[axis_] += shapes_[i][axis_];
      codes.push_back(rnd.codes(n_ * numel(shapes_[i]), kS8));
      ins.push_back({codes.back().data(), numel(shapes_[i]), steps_[i]});
    }
    // Reference: walk the output's coordinates; the axis coordinate picks the input.
    const int64_t out_size = numel(out_shape);
    std::vector<int64_t> want, got(static_cast<std::size_t>(n_ * out_size), -7);
    for (int64_t s = 0; s < n_; ++s)
      for (int64_t e = 0; e < out_size; ++e) {
        std::vector<int64_t> at(out_shape.size());
        for (int64_t a = static_cast<int64_t>(at.size()) - 1, r = e; a >= 0; --a) {
          at[a] = r % out_shape[a];
          r /= out_shape[a];
        }
        std::size_t i = 0;
        while (at[axis_] >= shapes_[i][axis_]) at[axis_] -= shapes_[i++][axis_];
        int64_t idx = 0;
        for (std::size_t a = 0; a < at.size(); ++a) idx = idx * shapes_[i][a] + at[a];
        const int64_t q = codes[i][s * numel(shapes_[i]) + idx];
        want.push_back(
            clamp_to(times_multiplier(q, to_fixed_multiplier(steps_[i] / sy_, bits_)), out_range_));
      }
    int64_t outer = 1;
    for (int a = 0; a < axis_; ++a) outer *= out_shape[a];
    concat(ins, n_, outer, out_grid(sy_), got.data());
    expect_same(got, want, "concat");
    check_coverage(want, 0);
  }

 private:
  std::vector<std::vector<int64_t>> shapes_;
  int axis_ = 0;
  std::vector<double> steps_{0.1, 0.1, 0.1};
  double sy_ = 0.1;
  int64_t n_ = 2;
};

TEST(IntConcat, ChannelsOnOneGridAreCopied) {
  ConcatTester().inputs({{2, 3, 3}, {1, 3, 3}}, 0).test(300);
}
TEST(IntConcat, ChannelsOnThreeGridsAreRescaledAndSaturate) {
  ConcatTester()
      .inputs({{2, 3, 2}, {3, 3, 2}, {1, 3, 2}}, 0)
      .steps({0.1, 0.05, 0.4}, 0.2)
      .batch(3)
      .expect_saturation()
      .test(301);
}
TEST(IntConcat, InnerAxesInterleaveRuns) {
  ConcatTester().inputs({{2, 3, 4}, {2, 1, 4}}, 1).steps({0.1, 0.3}, 0.15).test(302);
  ConcatTester()
      .inputs({{2, 2, 1}, {2, 2, 3}, {2, 2, 2}}, 2)
      .steps({0.1, 0.2, 0.05}, 0.1)
      .test(303);
}
TEST(IntConcat, FeatureVectorsWithShiftOnlyMultipliers) {
  ConcatTester().inputs({{5}, {7}}, 0).steps({0.3, 0.7}, 0.2).scale_bits(1).batch(4).test(304);
}

class PadTester {
 public:
  PadTester& shape(const std::vector<int64_t>& in, const std::vector<int64_t>& pads) {
    in_shape_ = in;
    pads_ = pads;
    return *this;
  }
  PadTester& value(float v, double step, IntRange r) {
    value_ = v;
    step_ = step;
    range_ = r;
    return *this;
  }
  PadTester& expect_pad_code(int64_t q) {
    pad_code_ = q;
    return *this;
  }

  void test(uint32_t seed) const {
    Random rnd(seed);
    SCOPED_TRACE(rnd.note());
    const std::size_t rank = in_shape_.size();
    std::vector<int64_t> out_shape(rank);
    int64_t in_size = 1, out_size = 1;
    for (std::size_t a = 0; a < rank; ++a) {
      out_shape[a] = in_shape_[a] + pads_[a] + pads_[rank + a];
      in_size *= in_shape_[a];
      out_size *= out_shape[a];
    }
    const int64_t n = 2;
    const std::vector<int64_t> x = rnd.codes(n * in_size, range_);
    const int64_t pad_q =
        clamp_to(ref_round_half_up(static_cast<long double>(value_) / step_), range_);
    if (pad_code_ != kNone) {
      EXPECT_EQ(pad_q, pad_code_) << "the reference's pad code";
    }
    std::vector<int64_t> want, got(static_cast<std::size_t>(n * out_size), -7);
    for (int64_t s = 0; s < n; ++s)
      for (int64_t e = 0; e < out_size; ++e) {
        int64_t idx = 0, r = e, stride = 1;
        bool inside = true;
        for (int64_t a = static_cast<int64_t>(rank) - 1; a >= 0; --a) {
          const int64_t c = r % out_shape[a] - pads_[a];
          r /= out_shape[a];
          inside = inside && c >= 0 && c < in_shape_[a];
          idx += c * stride;
          stride *= in_shape_[a];
        }
        want.push_back(inside ? x[s * in_size + idx] : pad_q);
      }
    pad(in_shape_, out_shape, pads_, value_, step_, range_, n, x.data(), got.data());
    expect_same(got, want, "pad");
  }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
  std::vector<int64_t> in_shape_{2, 3, 3}, pads_{0, 1, 1, 0, 1, 1};
  float value_ = 0.0f;
  double step_ = 0.1;
  IntRange range_ = kS8;
  int64_t pad_code_ = kNone;
};

TEST(IntPad, ZeroPaddingAroundPlanes) { PadTester().expect_pad_code(0).test(400); }
TEST(IntPad, AsymmetricAndChannelPadding) {
  PadTester().shape({3, 2, 4}, {1, 0, 2, 2, 3, 0}).test(401);
  PadTester().shape({5}, {2, 3}).test(402);
}
TEST(IntPad, PadValueTiesRoundUpAndSaturate) {
  PadTester().value(0.625f, 0.25, kS8).expect_pad_code(3).test(403);    // 2.5 -> 3
  PadTester().value(-0.625f, 0.25, kS8).expect_pad_code(-2).test(404);  // -2.5 -> -2
  PadTester().value(-5.0f, 0.25, kU8).expect_pad_code(0).test(405);
  PadTester().value(1000.0f, 0.25, kS8).expect_pad_code(127).test(406);
}

}  // namespace
}  // namespace tilescale::quant::kernels
