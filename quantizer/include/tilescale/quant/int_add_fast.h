// A vectorised kernels::add (int_kernels.h, the reference): the same codes, or the same
// std::overflow_error, for every input. The reference calls round_shift_half_up per element, whose
// guards keep the compiler from vectorising the loop; here the guards are discharged once per call
// from bounds on the whole tensor, and the loop is the function's formula inlined.
#pragma once

#include <cstdint>

#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant::kernels {

// kernels::add's result. Why it is exact: with F in 1..62 and the aligned multipliers s_a, s_b
// formed in int64 as add forms them, the reference's own check max|a| * s_a + max|b| * s_b < 2^62
// bounds |a * s_a + b * s_b| < 2^62, so neither product nor sum wraps and acc + 2^(F-1) < 2^63;
// (acc + 2^(F-1)) >> F is then round_shift_half_up(acc, F) (an arithmetic shift, as GCC defines >>
// on negative values), followed by the same saturate. The bound is checked on the extremes found
// in the same pass that computes y (in uint64, whose wrap-around is defined), and y is recomputed
// by kernels::add where it fails; every other case (F <= 0 or F > 62, an unformable multiplier) is
// handed to kernels::add directly, which computes it or throws. When it throws, y may hold codes
// of the discarded pass.
void add_fast(const int64_t* a, double step_a, const int64_t* b, double step_b, int64_t count,
              const OutGrid& out, int64_t* y);

}  // namespace tilescale::quant::kernels
