// kernels::add_fast (quant/int_add_fast.h) against the reference kernels::add (itself tested
// against 128-bit arithmetic in int_kernels_test.cpp): the same codes on random tensors over steps
// that give F in 1..62 (the vectorised loop) and F <= 0 (handed to add), and the same error where
// add refuses the accumulator bound. Seeds are fixed and printed on failure.
#include "tilescale/quant/int_add_fast.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "int_test_support.h"

namespace tilescale::quant::kernels {
namespace {

using test::Random;

struct AddCase {
  double step_a, step_b, step_y;
  int scale_bits;
  IntRange in, out;
};

TEST(IntAddFast, MatchesReferenceOnRandomTensors) {
  const IntRange wide{-(int64_t{1} << 40), int64_t{1} << 40};
  const AddCase cases[] = {
      {0.05, 0.03, 0.07, 16, signed_range(8), signed_range(8)},
      {0.02, 0.05, 0.04, 16, unsigned_range(8), unsigned_range(8)},
      {0.1, 0.1, 0.05, 16, signed_range(8), signed_range(8)},    // both saturation ends
      {0.3, 0.07, 0.11, 1, signed_range(8), signed_range(8)},    // shift-only multipliers
      {0.5, 1.5, 1.0, 16, signed_range(8), signed_range(10)},    // exact halves: ties
      {4.0, 8.0, 1.0, 1, signed_range(8), wide},                 // F < 0: add's own loop
      {1e-9, 0.03, 0.07, 31, signed_range(8), signed_range(8)},  // F = 57, a bound add refuses
  };
  uint32_t seed = 40;
  for (const AddCase& c : cases) {
    Random rnd(seed++);
    SCOPED_TRACE(rnd.note() + "; steps " + std::to_string(c.step_a) + ", " +
                 std::to_string(c.step_b) + " -> " + std::to_string(c.step_y) + ", bits " +
                 std::to_string(c.scale_bits));
    // 1003 elements: whole vectors and a tail.
    const std::vector<int64_t> a = rnd.codes(1003, c.in), b = rnd.codes(1003, c.in);
    const OutGrid out{c.step_y, c.scale_bits, c.out};
    std::vector<int64_t> want(a.size(), -1), got(a.size(), 1);
    bool ref_threw = false, fast_threw = false;
    try {
      add(a.data(), c.step_a, b.data(), c.step_b, 1003, out, want.data());
    } catch (const std::overflow_error&) {
      ref_threw = true;
    }
    try {
      add_fast(a.data(), c.step_a, b.data(), c.step_b, 1003, out, got.data());
    } catch (const std::overflow_error&) {
      fast_threw = true;
    }
    EXPECT_EQ(fast_threw, ref_threw);
    if (!ref_threw) EXPECT_EQ(got, want);
  }
}

// The accumulator bound: codes so large that max|a| * s_a + max|b| * s_b reaches 2^62 make add
// throw, and add_fast throws the same error instead of wrapping.
TEST(IntAddFast, AccumulatorBoundRefusedLikeReference) {
  const std::vector<int64_t> a{int64_t{1} << 60, 1}, b{0, int64_t{1} << 60};
  std::vector<int64_t> y(2);
  const OutGrid out{0.07, 16, signed_range(8)};
  EXPECT_THROW(add(a.data(), 0.05, b.data(), 0.03, 2, out, y.data()), std::overflow_error);
  EXPECT_THROW(add_fast(a.data(), 0.05, b.data(), 0.03, 2, out, y.data()), std::overflow_error);
}

}  // namespace
}  // namespace tilescale::quant::kernels
