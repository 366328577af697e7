// The integer arithmetic of tilescale: every rounding and saturation rule the golden executor, the
// SystemC model and the RTL implement lives here (the real -> integer grid rules in
// tilescale/model/grid.h, included below), and only here.
//
// Notation. A real value x on a grid of step s is stored as the integer q with x ~ q * s.
//   weights      signed, symmetric, w_bits in 2..8: q in [-2^(w_bits-1), 2^(w_bits-1) - 1]
//   activations  per tensor, a_bits in 4..8: unsigned q in [0, 2^a_bits - 1] after ReLU/Clip(min >=
//   0),
//                signed q in [-2^(a_bits-1), 2^(a_bits-1) - 1] otherwise
// A layer y = W x + b with input step s_x, weight block steps s_w[blk] and output step s_y computes
//   P[blk]   = sum over the block's (input, weight) pairs of q_x * q_w          exact, |P| < 2^31
//   M[blk]   = s_x * s_w[blk] / s_y  ~  m[blk] * 2^-r[blk]                        FixedMultiplier
//   acc      = sum over blocks of (P[blk] * m[blk]) << (F - r[blk]) + bias_q       exact int64
//              with F = max r over the layer and bias_q = round_half_up(b / s_y * 2^F)
//   q_y      = saturate(round_shift_half_up(acc, F), lo, hi)                      next layer's grid
// Partial sums of different blocks are scaled before they meet, and the sum is exact: no rounding
// happens before the single final shift. The order of the sums does not change any bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "tilescale/model/grid.h"

namespace tilescale::quant {

// The real -> integer rules (grid ranges, saturation, round half up, quantize_to_grid) are the
// semantics of the graph IR's FakeQuant op as well, so they live one layer down, in
// tilescale/model/grid.h, and are used here under the same names.
using model::IntRange;
using model::quantize_to_grid;
using model::round_half_up;
using model::saturate;
using model::signed_range;
using model::unsigned_range;

// The widest shift any kernel performs, either way: 63, what the RTL's 6-bit F field holds. A
// shift of 64 or more is undefined behaviour in C++ (and means nothing on 64-bit hardware).
// Builders of multipliers and F (finalize_multipliers, kernels::add) refuse anything wider with an
// error instead of computing garbage.
inline constexpr int kMaxShift = 63;

// acc / 2^shift rounded half up: (acc + 2^(shift-1)) >> shift with an arithmetic shift (floor).
// shift == 0 returns acc; shift < 0 multiplies by 2^-shift. Matches round_half_up(acc * 2^-shift).
// Guarded, never wrapping: |shift| > kMaxShift, a left shift whose product leaves int64, or an
// acc so close to INT64_MAX that the rounding offset overflows throws std::overflow_error. The
// executors never get there (their F and accumulators are bounded when the model is built); the
// checks make a corrupt model fail loudly.
constexpr int64_t round_shift_half_up(int64_t acc, int shift) {
  if (shift > kMaxShift || shift < -kMaxShift)
    throw std::overflow_error("round_shift_half_up: shift " + std::to_string(shift) +
                              " is outside -63..63");
  if (shift <= 0) {
    const int k = -shift;
    // In range iff min >> k <= acc <= max >> k (arithmetic shifts); the product is then formed
    // on the unsigned bits, so that -2^63 itself (acc = -1, k = 63) is reachable without UB.
    if (acc > (std::numeric_limits<int64_t>::max() >> k) ||
        acc < (std::numeric_limits<int64_t>::min() >> k))
      throw std::overflow_error("round_shift_half_up: " + std::to_string(acc) + " * 2^" +
                                std::to_string(k) + " exceeds int64");
    return static_cast<int64_t>(static_cast<uint64_t>(acc) << k);
  }
  const int64_t half = int64_t{1} << (shift - 1);
  if (acc > std::numeric_limits<int64_t>::max() - half)
    throw std::overflow_error("round_shift_half_up: " + std::to_string(acc) +
                              " + the rounding offset exceeds int64");
  return (acc + half) >> shift;
}

// A positive real multiplier M realised as m * 2^-r with m an unsigned integer of `bits` bits,
// normalised so that 2^(bits-1) <= m < 2^bits (full precision), r may be negative for M >= 2^bits.
// The relative error |m * 2^-r - M| / M is at most 2^-bits. bits = 1 gives pure powers of two
// (m = 1, a shift-only scale unit); M is then rounded to the nearest power of two in the log
// domain.
struct FixedMultiplier {
  int64_t m = 0;  // mantissa, unsigned, < 2^bits
  int r = 0;      // right shift
  double value() const { return std::ldexp(static_cast<double>(m), -r); }
};

// Builds the FixedMultiplier of M > 0 with `bits` (1..31) bits of mantissa. m = round_half_up(M *
// 2^r) for the r that puts m in [2^(bits-1), 2^bits); a rounding carry to 2^bits renormalises (m /=
// 2, r -= 1).
inline FixedMultiplier to_fixed_multiplier(double M, int bits) {
  FixedMultiplier f;
  if (!(M > 0.0) || !std::isfinite(M)) return f;  // m = 0: the block contributes nothing
  if (bits == 1) {
    f.m = 1;
    f.r = -static_cast<int>(std::lround(std::log2(M)));
    return f;
  }
  int e = 0;
  std::frexp(M, &e);  // M = f * 2^e, f in [0.5, 1)
  f.r = bits - e;     // M * 2^r in [2^(bits-1), 2^bits)
  f.m = round_half_up(std::ldexp(M, f.r));
  if (f.m >= (int64_t{1} << bits)) {
    f.m >>= 1;
    f.r -= 1;
  }
  return f;
}

}  // namespace tilescale::quant
