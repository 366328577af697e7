// The integer arithmetic rules of int_arith.h: rounding, saturation, fixed-point multipliers.
#include "tilescale/quant/int_arith.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>

#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant {
namespace {

TEST(IntArith, RangesAreTwosComplementAndUnsigned) {
  EXPECT_EQ(signed_range(2).lo, -2);
  EXPECT_EQ(signed_range(2).hi, 1);
  EXPECT_EQ(signed_range(8).lo, -128);
  EXPECT_EQ(signed_range(8).hi, 127);
  EXPECT_EQ(unsigned_range(4).lo, 0);
  EXPECT_EQ(unsigned_range(4).hi, 15);
}

TEST(IntArith, RoundHalfUpGoesTowardPlusInfinityOnTies) {
  EXPECT_EQ(round_half_up(2.5), 3);
  EXPECT_EQ(round_half_up(-2.5), -2);
  EXPECT_EQ(round_half_up(-2.51), -3);
  EXPECT_EQ(round_half_up(0.49999), 0);
  EXPECT_EQ(round_half_up(-0.5), 0);
}

TEST(IntArith, RoundShiftMatchesRealRoundingForAllSmallValues) {
  for (int shift = 0; shift <= 6; ++shift)
    for (int64_t acc = -300; acc <= 300; ++acc)
      ASSERT_EQ(round_shift_half_up(acc, shift), round_half_up(std::ldexp(double(acc), -shift)))
          << "acc " << acc << " shift " << shift;
  EXPECT_EQ(round_shift_half_up(5, -2), 20);
}

TEST(IntArith, SaturateClampsNeverWraps) {
  EXPECT_EQ(saturate(200, signed_range(8)), 127);
  EXPECT_EQ(saturate(-200, signed_range(8)), -128);
  EXPECT_EQ(saturate(-1, unsigned_range(8)), 0);
  EXPECT_EQ(quantize_to_grid(1.0, 0.1, signed_range(4)), 7);
  EXPECT_EQ(quantize_to_grid(-0.25, 0.1, signed_range(4)), -2);  // -2.5 rounds half up to -2
}

TEST(IntArith, FixedMultiplierRelativeErrorIsBoundedByMantissaBits) {
  const uint64_t seed = 20261127;
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (int bits : {4, 8, 12, 16, 24}) {
    for (int i = 0; i < 2000; ++i) {
      const double M = std::ldexp(1.0 + double(rng() % 1000000) / 1000000.0, int(rng() % 60) - 40);
      const FixedMultiplier f = to_fixed_multiplier(M, bits);
      ASSERT_GE(f.m, int64_t{1} << (bits - 1)) << M;
      ASSERT_LT(f.m, int64_t{1} << bits) << M;
      ASSERT_LE(std::fabs(f.value() - M) / M, std::ldexp(1.0, -bits))
          << "M " << M << " bits " << bits;
    }
  }
}

TEST(IntArith, ShiftOnlyMultiplierIsNearestPowerOfTwo) {
  EXPECT_EQ(to_fixed_multiplier(0.25, 1).value(), 0.25);
  EXPECT_EQ(to_fixed_multiplier(0.3, 1).value(), 0.25);
  EXPECT_EQ(to_fixed_multiplier(0.4, 1).value(), 0.5);
  EXPECT_EQ(to_fixed_multiplier(8.0, 1).value(), 8.0);
}

TEST(IntArith, FixedMultiplierCarryRenormalises) {
  // 0.99999 with 4 bits rounds to 16/16: must come back as 8 * 2^-3.
  const FixedMultiplier f = to_fixed_multiplier(0.99999, 4);
  EXPECT_EQ(f.m, 8);
  EXPECT_EQ(f.r, 3);
  EXPECT_EQ(f.value(), 1.0);
  EXPECT_EQ(to_fixed_multiplier(0.0, 16).m, 0);
}

TEST(IntArith, RoundShiftRefusesShiftsBeyondTheBoundEitherWay) {
  // 63 is the widest (the RTL's 6-bit F): still exact at both ends.
  EXPECT_EQ(round_shift_half_up(int64_t{1} << 61, 62), 1);
  EXPECT_EQ(round_shift_half_up((int64_t{1} << 62) - 1, 63), 0);
  EXPECT_EQ(round_shift_half_up(std::numeric_limits<int64_t>::min(), 63), -1);
  EXPECT_EQ(round_shift_half_up(1, -62), int64_t{1} << 62);
  EXPECT_EQ(round_shift_half_up(-1, -63), std::numeric_limits<int64_t>::min());
  for (int shift : {64, 65, 100, -64, -65, -100})
    EXPECT_THROW(round_shift_half_up(1, shift), std::overflow_error) << shift;
}

TEST(IntArith, RoundShiftRefusesResultsThatLeaveInt64) {
  // A left shift (negative shift) whose product overflows, either sign.
  EXPECT_THROW(round_shift_half_up(1, -63), std::overflow_error);
  EXPECT_THROW(round_shift_half_up(2, -62), std::overflow_error);
  EXPECT_THROW(round_shift_half_up(-5, -61), std::overflow_error);
  EXPECT_EQ(round_shift_half_up(-4, -61), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(round_shift_half_up(-3, -61), -3 * (int64_t{1} << 61));
  EXPECT_EQ(round_shift_half_up(-1, -62), -(int64_t{1} << 62));
  // The rounding offset 2^(shift-1) pushed past INT64_MAX.
  const int64_t top = std::numeric_limits<int64_t>::max();
  EXPECT_THROW(round_shift_half_up(top, 1), std::overflow_error);
  EXPECT_THROW(round_shift_half_up(int64_t{1} << 62, 63), std::overflow_error);
  EXPECT_EQ(round_shift_half_up(top - 1, 1), (int64_t{1} << 62) - 1);
}

TEST(IntArith, AddRefusesGridsWhoseShiftExceedsTheBound) {
  // step_b / s_y = 2^-70 needs r = 16 + 69 fractional bits at 16 bits: F would be 85.
  const int64_t a[] = {3}, b[] = {5};
  int64_t y[1];
  const kernels::OutGrid out{1.0, 16, signed_range(8)};
  EXPECT_THROW(kernels::add(a, 1.0, b, std::ldexp(1.0, -70), 1, out, y), std::overflow_error);
  // The same sum with steps 2^-40 apart fits and rounds as the rule says.
  kernels::add(a, 1.0, b, std::ldexp(1.0, -40), 1, out, y);
  EXPECT_EQ(y[0], 3);
}

TEST(IntArith, AddRefusesAnAccumulatorThatCouldOverflowInt64) {
  // m_a * 2^(F - r_a) = 2^45 (F = 45 from step_b = 2^-30 at 16 bits): a code of 2^20 reaches 2^65.
  const int64_t a[] = {1, int64_t{1} << 20}, b[] = {0, 0};
  int64_t y[2];
  const kernels::OutGrid out{1.0, 16, signed_range(8)};
  EXPECT_THROW(kernels::add(a, 1.0, b, std::ldexp(1.0, -30), 2, out, y), std::overflow_error);
  // Codes of the grid's size are fine with the same steps.
  const int64_t small[] = {-128, 127};
  kernels::add(small, 1.0, b, std::ldexp(1.0, -30), 2, out, y);
  EXPECT_EQ(y[0], -128);
  EXPECT_EQ(y[1], 127);
}

}  // namespace
}  // namespace tilescale::quant
