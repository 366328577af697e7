// The seeded generators (core/random.h): the published SplitMix64 stream, the hash form agreeing
// with the generator, and sample_indices drawing distinct sorted indices reproducibly.
#include "tilescale/core/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace tilescale {
namespace {

TEST(SplitMix64, SeedZeroGivesTheReferenceStream) {
  // The first outputs of Vigna's splitmix64.c seeded with 0.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafull);
  EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(rng.next(), 0x06c45d188009454full);
}

TEST(SplitMix64, HashIsTheFirstDrawOfAGeneratorSeededWithIt) {
  for (uint64_t x : {uint64_t{0}, uint64_t{1}, uint64_t{7}, ~uint64_t{0}, uint64_t{1} << 63})
    EXPECT_EQ(splitmix64(x), SplitMix64(x).next()) << x;
}

TEST(SplitMix64, BelowStaysInRangeIncludingOne) {
  SplitMix64 rng(42);
  for (uint64_t n : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1000}, ~uint64_t{0}})
    for (int i = 0; i < 100; ++i) EXPECT_LT(rng.below(n), n) << n;
}

TEST(SampleIndices, DistinctSortedAndTheSameForTheSameSeed) {
  for (int64_t total : {1, 5, 64, 1000}) {
    for (int64_t count : {0, 1, 3, 64, 5000}) {
      const auto a = sample_indices(total, count, 7);
      EXPECT_EQ(static_cast<int64_t>(a.size()), std::min(count, total));
      EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
      EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), a.size());
      for (int64_t i : a) {
        EXPECT_GE(i, 0);
        EXPECT_LT(i, total);
      }
      EXPECT_EQ(sample_indices(total, count, 7), a);
    }
  }
  EXPECT_NE(sample_indices(1000, 10, 1), sample_indices(1000, 10, 2));
}

}  // namespace
}  // namespace tilescale
