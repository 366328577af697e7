#include "tilescale/quant/int_add_fast.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tilescale::quant::kernels {

namespace {

[[gnu::always_inline]] inline void extremes_body(const int64_t* x, int64_t count, int64_t& lo_out,
                                                 int64_t& hi_out) {
  int64_t lo = lo_out, hi = hi_out;  // locals: through the references the loop would not vectorise
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo_out = lo;
  hi_out = hi;
}

struct AddArgs {
  const int64_t *a, *b;
  int64_t sa, sb, half, lo, hi, count;
  int F;
  int64_t* y;
};

[[gnu::always_inline]] inline void add_body(const AddArgs& g) {
  const int64_t sa = g.sa, sb = g.sb, half = g.half, lo = g.lo, hi = g.hi, count = g.count;
  const int64_t* a = g.a;
  const int64_t* b = g.b;
  int64_t* y = g.y;
  const int F = g.F;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = (a[i] * sa + b[i] * sb + half) >> F;
    y[i] = v < lo ? lo : (v > hi ? hi : v);  // saturate
  }
}

// 64-bit multiplies and min/max vectorise with AVX-512DQ; the baseline build serves the others.
[[gnu::target("avx512f,avx512dq")]] void add_avx512(const AddArgs& g) { add_body(g); }
void add_baseline(const AddArgs& g) { add_body(g); }
[[gnu::target("avx512f,avx512dq")]] void extremes_avx512(const int64_t* x, int64_t count,
                                                         int64_t& lo, int64_t& hi) {
  extremes_body(x, count, lo, hi);
}
[[gnu::target("avx2")]] void extremes_avx2(const int64_t* x, int64_t count, int64_t& lo,
                                           int64_t& hi) {
  extremes_body(x, count, lo, hi);
}

bool has_avx512dq() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return yes;
}

// max |x|, as a double (exact up to 2^53, rounded beyond: only compared against 2^62 below, the
// same comparison kernels::add makes in double).
double max_abs(const int64_t* x, int64_t count) {
  int64_t lo = 0, hi = 0;
  if (has_avx512dq())
    extremes_avx512(x, count, lo, hi);
  else if (__builtin_cpu_supports("avx2"))
    extremes_avx2(x, count, lo, hi);
  else
    extremes_body(x, count, lo, hi);
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
  // add's own bound, computed in double as add computes it.
  if (sa < 0 || sb < 0 ||
      max_abs(a, count) * static_cast<double>(sa) + max_abs(b, count) * static_cast<double>(sb) >=
          std::ldexp(1.0, 62)) {
    add(a, step_a, b, step_b, count, out, y);
    return;
  }
  const AddArgs g{a, b, sa, sb, int64_t{1} << (F - 1), out.range.lo, out.range.hi, count, F, y};
  (has_avx512dq() ? add_avx512 : add_baseline)(g);
}

}  // namespace tilescale::quant::kernels
