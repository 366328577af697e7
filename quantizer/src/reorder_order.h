// Private to reorder.cpp: per-channel range features of one channel space and the orders derived
// from them (sort, k-means). The rules are documented in docs/reorder.md.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace tilescale::quant::reorder_detail {

// The per-channel weight ranges (max |W|) of one weight tensor as seen by one space.
struct SideRanges {
  bool out = true;  // true: producer rows (blocks of block_out); false: consumer columns (block_in)
  std::vector<float> range;  // per space channel, >= 0
};

// Normalized, weighted per-channel coordinates of one space.
struct ChannelFeatures {
  std::vector<std::array<double, 2>> point;  // (sqrt(w_out) * F_out, sqrt(w_in) * F_in), log2 units
  std::vector<double> key;                   // (w_out * F_out + w_in * F_in) / (w_out + w_in)
  int64_t unit = 0;  // k-means group size in channels; 0 = no block benefits
};

// F_side[c] = log2(max(r[c], 2^-24 M) / M), M = the side's max; F_out/F_in average the sides of a
// kind. A kind weighs 1 if it has sides and its block size b satisfies 1 < b < channels (only then
// can the order change which channels share a scale), else 0; if neither weighs, both present kinds
// weigh 1 so the order stays meaningful. unit = the smallest block size among weighted kinds.
ChannelFeatures channel_features(const std::vector<SideRanges>& sides, int64_t channels,
                                 int64_t block_out, int64_t block_in);

// F[c] = log2(max(r[c], 2^-24 M) / M), M = max r (all 0 if M is 0): one side's log relative ranges.
std::vector<double> log_relative(const std::vector<float>& range);

// Channels by ascending key, ties by ascending index.
std::vector<int64_t> sort_order(const std::vector<double>& key);

// k = ceil(channels / unit) clusters by k-means (k-means++ init from a std::mt19937_64 seeded with
// stream_seed, Lloyd iterations until stable or 100); clusters laid out by ascending mean key, each
// cluster's channels by ascending key. With unit == 0 this is sort_order.
std::vector<int64_t> kmeans_order(const ChannelFeatures& features, uint64_t stream_seed);

// Balanced k-means for the error-driven choice: k = ceil(n / unit) clusters of at most `unit`
// channels each, on points of any dimension (one coordinate per block-sensitive side,
// docs/reorder.md). k-means++ init from std::mt19937_64(stream_seed), then up to 20 rounds of
// capacity-bounded assignment (all (channel, centre) pairs by ascending squared distance, ties by
// channel then centre, a pair taken while its centre has room) and centre updates, until stable.
// Layout: full clusters first, then by ascending mean key (ties by cluster index); inside a cluster
// by key, then index. So every block of `unit` channels is one cluster.
std::vector<int64_t> balanced_kmeans_order(const std::vector<std::vector<double>>& point,
                                           const std::vector<double>& key, int64_t unit,
                                           uint64_t stream_seed);

// The seed of one space's random stream: splitmix64(seed ^ splitmix64(space_index)).
uint64_t stream_seed(uint64_t seed, uint64_t space_index);

}  // namespace tilescale::quant::reorder_detail
