// Shared pieces of the layout and integer-kernel testers: a seeded random source that names its
// seed, exact rational arithmetic for the references (written without int_arith.h's shift forms),
// and a builder base for window geometry.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tilescale/model/layout.h"
#include "tilescale/quant/int_arith.h"

namespace tilescale::quant::test {

// A test's random numbers: the test's fixed seed, or TILESCALE_TEST_SEED when set, so a failure
// can be replayed; note() goes into SCOPED_TRACE.
class Random {
 public:
  explicit Random(uint32_t fixed)
      : seed_(std::getenv("TILESCALE_TEST_SEED")
                  ? static_cast<uint32_t>(std::strtoul(std::getenv("TILESCALE_TEST_SEED"), 0, 0))
                  : fixed),
        gen_(seed_) {}
  uint32_t seed() const { return seed_; }
  std::string note() const {
    return "seed " + std::to_string(seed_) +
           " (rerun with TILESCALE_TEST_SEED=" + std::to_string(seed_) + ")";
  }
  int64_t uniform(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen_);
  }
  double real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  std::vector<int64_t> codes(int64_t count, IntRange r) {
    std::vector<int64_t> v(static_cast<std::size_t>(count));
    for (int64_t& x : v) x = uniform(r.lo, r.hi);
    return v;
  }

 private:
  uint32_t seed_;
  std::mt19937_64 gen_;
};

// --- exact reference arithmetic ------------------------------------------------------------------

using i128 = __int128;

// floor(num / den), den > 0.
inline i128 floor_div(i128 num, i128 den) {
  i128 q = num / den;
  if (num % den != 0 && num < 0) --q;
  return q;
}

// The rational num / den rounded half up (toward +infinity): floor(num / den + 1/2).
inline int64_t round_half_up_ratio(i128 num, i128 den) {
  return static_cast<int64_t>(floor_div(2 * num + den, 2 * den));
}

inline i128 pow2(int e) { return static_cast<i128>(1) << e; }

inline int64_t clamp_to(int64_t v, IntRange r) { return std::min(std::max(v, r.lo), r.hi); }

// x times the real multiplier m * 2^-r, rounded half up.
inline int64_t times_multiplier(int64_t x, const FixedMultiplier& f) {
  const i128 num = static_cast<i128>(x) * f.m;
  return f.r >= 0 ? round_half_up_ratio(num, pow2(f.r)) : static_cast<int64_t>(num * pow2(-f.r));
}

// --- window geometry ----------------------------------------------------------------------------

// Builder methods for a sliding window, shared by the testers (CRTP, so chains keep their type).
template <typename Self>
class WindowSpec {
 public:
  Self& input_size(int64_t h, int64_t w) {
    h_ = h;
    w_ = w;
    return self();
  }
  Self& kernel(int64_t kh, int64_t kw) {
    win_.kernel_h = kh;
    win_.kernel_w = kw;
    return self();
  }
  Self& stride(int64_t sh, int64_t sw) {
    win_.stride_h = sh;
    win_.stride_w = sw;
    return self();
  }
  Self& dilation(int64_t dh, int64_t dw) {
    win_.dilation_h = dh;
    win_.dilation_w = dw;
    return self();
  }
  Self& pads(int64_t top, int64_t left, int64_t bottom, int64_t right) {
    win_.pad_top = top;
    win_.pad_left = left;
    win_.pad_bottom = bottom;
    win_.pad_right = right;
    return self();
  }
  // Overrides ONNX's floor formula, e.g. for a ceil_mode pool whose last window overhangs.
  Self& output_size(int64_t ho, int64_t wo) {
    ho_ = ho;
    wo_ = wo;
    return self();
  }

 protected:
  model::layout::ConvShape shape(int64_t cin_g) const {
    model::layout::ConvShape s;
    s.win = win_;
    s.cin_g = cin_g;
    s.h = h_;
    s.w = w_;
    const auto out = [](int64_t in, int64_t k, int64_t st, int64_t d, int64_t lo, int64_t hi) {
      return (in + lo + hi - ((k - 1) * d + 1)) / st + 1;
    };
    s.ho =
        ho_ ? ho_
            : out(h_, win_.kernel_h, win_.stride_h, win_.dilation_h, win_.pad_top, win_.pad_bottom);
    s.wo =
        wo_ ? wo_
            : out(w_, win_.kernel_w, win_.stride_w, win_.dilation_w, win_.pad_left, win_.pad_right);
    return s;
  }
  std::string geometry() const {
    auto pair = [](int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); };
    return "input " + pair(h_, w_) + " kernel " + pair(win_.kernel_h, win_.kernel_w) + " stride " +
           pair(win_.stride_h, win_.stride_w) + " dilation " +
           pair(win_.dilation_h, win_.dilation_w) + " pads " + pair(win_.pad_top, win_.pad_left) +
           "/" + pair(win_.pad_bottom, win_.pad_right);
  }

 private:
  Self& self() { return static_cast<Self&>(*this); }
  model::Window win_;
  int64_t h_ = 5, w_ = 5, ho_ = 0, wo_ = 0;
};

// Plain reference of a kernel tap: the input element (iy, ix) read by tap (ky, kx) of output
// (oy, ox), written out from the ONNX definition; false when it lies in the padding.
inline bool tap_input(const model::layout::ConvShape& s, int64_t oy, int64_t ox, int64_t ky,
                      int64_t kx, int64_t* iy, int64_t* ix) {
  *iy = oy * s.win.stride_h + ky * s.win.dilation_h - s.win.pad_top;
  *ix = ox * s.win.stride_w + kx * s.win.dilation_w - s.win.pad_left;
  return *iy >= 0 && *iy < s.h && *ix >= 0 && *ix < s.w;
}

}  // namespace tilescale::quant::test
