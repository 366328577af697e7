#include "tilescale/quant/int_add_fast.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tilescale::quant::kernels {

namespace {

struct AddArgs {
  const int64_t *a, *b;
  int64_t sa, sb, half, lo, hi, count;
  int F;
  int64_t* y;
  int64_t a_lo, a_hi, b_lo, b_hi;  // out: the extremes of a and b
};

// The formula in one pass with the extremes of a and b, which decide afterwards whether it was
// exact. The sum is formed in uint64 (wrapping is defined there, and where the bound holds the
// bits are those of the exact int64 sum); the conversion back to int64 and >> are GCC's modular
// conversion and arithmetic shift.
[[gnu::always_inline]] inline void add_body(AddArgs& g) {
  const uint64_t sa = static_cast<uint64_t>(g.sa), sb = static_cast<uint64_t>(g.sb);
  const uint64_t half = static_cast<uint64_t>(g.half);
  const int64_t lo = g.lo, hi = g.hi, count = g.count;
  const int64_t* a = g.a;
  const int64_t* b = g.b;
  int64_t* y = g.y;
  const int F = g.F;
  int64_t a_lo = 0, a_hi = 0, b_lo = 0, b_hi = 0;
  for (int64_t i = 0; i < count; ++i) {
    a_lo = std::min(a_lo, a[i]);
    a_hi = std::max(a_hi, a[i]);
    b_lo = std::min(b_lo, b[i]);
    b_hi = std::max(b_hi, b[i]);
    const uint64_t sum = static_cast<uint64_t>(a[i]) * sa + static_cast<uint64_t>(b[i]) * sb + half;
    const int64_t v = static_cast<int64_t>(sum) >> F;
    y[i] = v < lo ? lo : (v > hi ? hi : v);  // saturate
  }
  g.a_lo = a_lo;
  g.a_hi = a_hi;
  g.b_lo = b_lo;
  g.b_hi = b_hi;
}

// 64-bit multiplies and min/max vectorise with AVX-512DQ; the baseline build serves the others.
[[gnu::target("avx512f,avx512dq")]] void add_avx512(AddArgs& g) { add_body(g); }
void add_baseline(AddArgs& g) { add_body(g); }

bool has_avx512dq() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return yes;
}

// max(-lo, hi) as a double: kernels::add's max |x| (exact up to 2^53, rounded beyond as add's
// own conversion rounds; only compared against 2^62 below, as add compares it).
double magnitude(int64_t lo, int64_t hi) {
  return std::max(-static_cast<double>(lo), static_cast<double>(hi));
}

// m * 2^(F - r) as kernels::add forms it, or -1 where add would refuse it.
int64_t aligned(const FixedMultiplier& f, int F) {
  const int up = F - f.r;
  if (up < 0 || up > kMaxShift || f.m > (std::numeric_limits<int64_t>::max() >> up)) return -1;
  return f.m * (int64_t{1} << up);
}

}  // namespace

void add_fast(const int64_t* a, double step_a, const int64_t* b, double step_b, int64_t count,
              const OutGrid& out, int64_t* y) {
  // The multipliers exactly as kernels::add builds them.
  const FixedMultiplier ma = to_fixed_multiplier(step_a / out.step, out.scale_bits);
  const FixedMultiplier mb = to_fixed_multiplier(step_b / out.step, out.scale_bits);
  const int F = std::max(ma.r, mb.r);
  const int64_t sa = F >= 1 && F <= 62 ? aligned(ma, F) : -1;
  const int64_t sb = F >= 1 && F <= 62 ? aligned(mb, F) : -1;
  if (sa < 0 || sb < 0) {
    add(a, step_a, b, step_b, count, out, y);
    return;
  }
  AddArgs g{a, b, sa, sb, int64_t{1} << (F - 1), out.range.lo, out.range.hi, count, F, y,
            0, 0, 0,  0};
  (has_avx512dq() ? add_avx512 : add_baseline)(g);
  // add's own bound, computed in double as add computes it, on the extremes the pass found: if
  // it fails, y is discarded and add itself decides (it throws).
  if (magnitude(g.a_lo, g.a_hi) * static_cast<double>(sa) +
          magnitude(g.b_lo, g.b_hi) * static_cast<double>(sb) >=
      std::ldexp(1.0, 62))
    add(a, step_a, b, step_b, count, out, y);
}

}  // namespace tilescale::quant::kernels
