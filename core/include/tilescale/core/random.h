// Seeded pseudo-random numbers that every platform and standard library draws identically, for
// the calibration sample, the search's position sample and the k-means streams.
#pragma once

#include <cstdint>
#include <vector>

namespace tilescale {

// One SplitMix64 step as a hash: x + golden ratio, then the two xor-shift-multiply rounds.
uint64_t splitmix64(uint64_t x);

// The SplitMix64 generator: the same seed gives the same stream everywhere, unlike
// std::uniform_int_distribution.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n) by 128-bit multiply-shift (Lemire), n > 0.
  uint64_t below(uint64_t n);

 private:
  uint64_t state_;
};

// `count` distinct indices of [0, total) chosen by a seeded partial Fisher-Yates shuffle, sorted.
std::vector<int64_t> sample_indices(int64_t total, int64_t count, uint64_t seed);

}  // namespace tilescale
