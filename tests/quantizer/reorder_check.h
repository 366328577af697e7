// Shared checks of the reorder tests: permutations are valid, and a permuted graph computes the
// same function with every activation holding its channels in the new order.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "tilescale/model/float_executor.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::test {

inline bool is_identity(const std::vector<int64_t>& order) {
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// Every order is a permutation of its channels; fixed spaces keep the identity.
inline void expect_valid(const std::vector<quant::ChannelPermutation>& perms) {
  for (std::size_t s = 0; s < perms.size(); ++s) {
    const auto& p = perms[s];
    std::vector<int64_t> sorted = p.order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_TRUE(static_cast<int64_t>(sorted.size()) == p.channels && is_identity(sorted))
        << "space " << s << " is not a permutation of " << p.channels << " channels";
    if (p.fixed) {
      EXPECT_TRUE(is_identity(p.order)) << "fixed space " << s << " was reordered";
    }
  }
}

inline int count_reordered(const std::vector<quant::ChannelPermutation>& perms) {
  int n = 0;
  for (const auto& p : perms) n += !is_identity(p.order);
  return n;
}

// The space holding value v.
inline const quant::ChannelPermutation& space_of(
    const std::vector<quant::ChannelPermutation>& perms, int v) {
  for (const auto& p : perms)
    if (std::find(p.values.begin(), p.values.end(), v) != p.values.end()) return p;
  throw std::logic_error("value " + std::to_string(v) + " is in no space");
}

// Uniform random orders for every movable space (seeded), to test application independently of
// choice.
inline std::vector<quant::ChannelPermutation> random_permutations(
    std::vector<quant::ChannelPermutation> perms, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& p : perms) {
    if (p.fixed) continue;
    for (int64_t i = p.channels - 1; i > 0; --i)
      std::swap(p.order[i], p.order[rng() % static_cast<uint64_t>(i + 1)]);
  }
  return perms;
}

// max over elements of |a - b| / max(|b|, 1% of max |b|).
template <typename T>
double max_relative_error(const std::vector<T>& a, const std::vector<T>& b) {
  double scale = 0.0;
  for (T v : b) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double denom = std::max(static_cast<double>(std::fabs(b[i])), 0.01 * scale);
    if (denom > 0.0) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / denom);
  }
  return worst;
}

// Runs both graphs on n seeded random inputs and expects, for every value v of every space, that
// the permuted graph's v equals the original's v with channel runs (size / channels elements)
// reordered. The logits are a fixed space, so this includes "same function".
inline void expect_values_permuted(const model::Graph& original, const model::Graph& permuted,
                                   const std::vector<quant::ChannelPermutation>& perms,
                                   uint64_t seed, double tolerance = 1e-4) {
  const int64_t n = 4, in_size = original.input_value().size();
  std::mt19937_64 rng(seed);
  std::vector<float> input(static_cast<std::size_t>(n * in_size));
  for (float& x : input) x = static_cast<float>(rng() >> 40) * 0x1.0p-24f;
  const model::FloatExecutorOptions one_thread{1, 8};
  const auto before = model::FloatExecutor(original, one_thread).run_all(input.data(), n);
  const auto after = model::FloatExecutor(permuted, one_thread).run_all(input.data(), n);
  for (const auto& p : perms) {
    for (int v : p.values) {
      const int64_t size = original.values[v].size(), run = size / p.channels;
      std::vector<float> want(before[v].size());
      for (int64_t s = 0; s < n; ++s)
        for (int64_t c = 0; c < p.channels; ++c)
          std::copy_n(before[v].data() + s * size + p.order[c] * run, run,
                      want.data() + s * size + c * run);
      EXPECT_LE(max_relative_error(after[v], want), tolerance)
          << "value " << v << " (" << original.values[v].name << "), seed " << seed;
    }
  }
}

}  // namespace tilescale::test
