// Quantization grids: the real -> integer rules that the graph IR's FakeQuant op and the golden
// integer arithmetic (tilescale/quant/int_arith.h, which documents the whole integer datapath)
// share.
#pragma once

#include <cmath>
#include <cstdint>

namespace tilescale::model {

// Inclusive integer range of a grid.
struct IntRange {
  int64_t lo = 0;  // smallest code
  int64_t hi = 0;  // largest code
};

// Signed two's-complement range of `bits` bits: [-2^(bits-1), 2^(bits-1) - 1].
constexpr IntRange signed_range(int bits) {
  return {-(int64_t{1} << (bits - 1)), (int64_t{1} << (bits - 1)) - 1};
}

// Unsigned range of `bits` bits: [0, 2^bits - 1].
constexpr IntRange unsigned_range(int bits) { return {0, (int64_t{1} << bits) - 1}; }

// Clamps v into r (saturation, never wrap-around).
constexpr int64_t saturate(int64_t v, IntRange r) {
  return v < r.lo ? r.lo : (v > r.hi ? r.hi : v);
}

// Round half up (toward +infinity) of a real number: floor(x + 0.5). -2.5 -> -2, 2.5 -> 3.
// Used for every real -> integer step (weights, activations, biases, multipliers) so that the float
// fake-quant path and the integer path round alike.
inline int64_t round_half_up(double x) { return static_cast<int64_t>(std::floor(x + 0.5)); }

// Quantizes a real value to the grid of step `step`: saturate(round_half_up(x / step), r).
inline int64_t quantize_to_grid(double x, double step, IntRange r) {
  return saturate(round_half_up(x / step), r);
}

}  // namespace tilescale::model
