#include "tilescale/core/random.h"

#include <algorithm>

namespace tilescale {

namespace {
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio, the stream's increment
}  // namespace

uint64_t splitmix64(uint64_t x) {
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t SplitMix64::next() {
  const uint64_t out = splitmix64(state_);
  state_ += kGolden;
  return out;
}

uint64_t SplitMix64::below(uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

std::vector<int64_t> sample_indices(int64_t total, int64_t count, uint64_t seed) {
  count = std::min(count, total);
  std::vector<int64_t> idx(static_cast<std::size_t>(total));
  for (int64_t i = 0; i < total; ++i) idx[i] = i;
  SplitMix64 rng(seed);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(total - i)));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(static_cast<std::size_t>(count));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace tilescale
