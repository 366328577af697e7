#include "reorder_order.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "tilescale/core/random.h"

namespace tilescale::quant::reorder_detail {
namespace {

// Ranges below 2^-24 of the side's max count as 2^-24, so dead (all-zero) channels stay finite.
constexpr double kFloorLog2 = -24.0;
constexpr int kMaxLloydIterations = 100;

// Mean of F over the sides of one kind; empty if the kind has no side.
std::vector<double> mean_feature(const std::vector<SideRanges>& sides, bool out, int64_t channels) {
  std::vector<double> sum;
  int count = 0;
  for (const SideRanges& s : sides) {
    if (s.out != out) continue;
    const std::vector<double> f = log_relative(s.range);
    if (sum.empty()) sum.assign(static_cast<std::size_t>(channels), 0.0);
    for (int64_t c = 0; c < channels; ++c) sum[c] += f[c];
    ++count;
  }
  for (double& v : sum) v /= count;
  return sum;
}

// A block size changes which channels share a scale only when it splits the channels.
bool splits(int64_t block, int64_t channels) { return block > 1 && block < channels; }

double squared_distance(const std::array<double, 2>& a, const std::array<double, 2>& b) {
  const double dx = a[0] - b[0], dy = a[1] - b[1];
  return dx * dx + dy * dy;
}

// Uniform integer in [0, n) by rejection, so every standard library draws the same values.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the low values that would bias x % n
  for (;;) {
    const uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

// Uniform double in [0, 1) from the top 53 bits.
double uniform_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// k-means++: the first centre uniformly, each next one with probability proportional to the squared
// distance to the nearest centre chosen so far.
std::vector<std::array<double, 2>> kmeanspp_init(const std::vector<std::array<double, 2>>& pts,
                                                 int k, std::mt19937_64& rng) {
  const std::size_t n = pts.size();
  std::vector<std::array<double, 2>> centres{pts[uniform_below(rng, n)]};
  std::vector<double> d2(n);
  for (std::size_t c = 0; c < n; ++c) d2[c] = squared_distance(pts[c], centres[0]);
  while (static_cast<int>(centres.size()) < k) {
    const double total = std::accumulate(d2.begin(), d2.end(), 0.0);
    std::size_t pick = 0;
    if (total > 0.0) {
      // Walk the cumulative weights; the last positive-weight point guards against rounding.
      const double target = uniform_unit(rng) * total;
      double cum = 0.0;
      for (std::size_t c = 0; c < n; ++c) {
        if (d2[c] <= 0.0) continue;
        pick = c;
        cum += d2[c];
        if (cum > target) break;
      }
    }  // else every point sits on a centre: any pick duplicates one, point 0 does
    centres.push_back(pts[pick]);
    for (std::size_t c = 0; c < n; ++c)
      d2[c] = std::min(d2[c], squared_distance(pts[c], pts[pick]));
  }
  return centres;
}

// Nearest centre, ties to the lower index.
int nearest(const std::array<double, 2>& p, const std::vector<std::array<double, 2>>& centres) {
  int best = 0;
  double best_d = squared_distance(p, centres[0]);
  for (std::size_t j = 1; j < centres.size(); ++j) {
    const double d = squared_distance(p, centres[j]);
    if (d < best_d) {
      best_d = d;
      best = static_cast<int>(j);
    }
  }
  return best;
}

// Lloyd iterations from the given centres; returns the cluster of each point. An empty cluster
// keeps its centre.
std::vector<int> lloyd(const std::vector<std::array<double, 2>>& pts,
                       std::vector<std::array<double, 2>> centres) {
  std::vector<int> assign(pts.size(), -1);
  for (int it = 0; it < kMaxLloydIterations; ++it) {
    bool changed = false;
    for (std::size_t c = 0; c < pts.size(); ++c) {
      const int j = nearest(pts[c], centres);
      changed |= j != assign[c];
      assign[c] = j;
    }
    if (!changed) break;
    std::vector<std::array<double, 2>> sum(centres.size(), {0.0, 0.0});
    std::vector<int64_t> count(centres.size(), 0);
    for (std::size_t c = 0; c < pts.size(); ++c) {
      sum[assign[c]][0] += pts[c][0];
      sum[assign[c]][1] += pts[c][1];
      ++count[assign[c]];
    }
    for (std::size_t j = 0; j < centres.size(); ++j)
      if (count[j] > 0) centres[j] = {sum[j][0] / count[j], sum[j][1] / count[j]};
  }
  return assign;
}

}  // namespace

// log2 of each range relative to the side's max, so sides of very different magnitude weigh alike
// and a block's error, which scales with its largest range, is compared in ratios.
std::vector<double> log_relative(const std::vector<float>& range) {
  const double max = *std::max_element(range.begin(), range.end());
  std::vector<double> f(range.size(), 0.0);
  if (max <= 0.0) return f;  // an all-zero side says nothing about the order
  for (std::size_t c = 0; c < range.size(); ++c)
    f[c] = std::max(std::log2(static_cast<double>(range[c]) / max), kFloorLog2);
  return f;
}

ChannelFeatures channel_features(const std::vector<SideRanges>& sides, int64_t channels,
                                 int64_t block_out, int64_t block_in) {
  const std::vector<double> f_out = mean_feature(sides, true, channels);
  const std::vector<double> f_in = mean_feature(sides, false, channels);
  double w_out = !f_out.empty() && splits(block_out, channels) ? 1.0 : 0.0;
  double w_in = !f_in.empty() && splits(block_in, channels) ? 1.0 : 0.0;
  ChannelFeatures f;
  if (w_out > 0.0) f.unit = block_out;
  if (w_in > 0.0) f.unit = f.unit > 0 ? std::min(f.unit, block_in) : block_in;
  if (w_out + w_in == 0.0) {
    w_out = f_out.empty() ? 0.0 : 1.0;
    w_in = f_in.empty() ? 0.0 : 1.0;
  }
  f.point.assign(static_cast<std::size_t>(channels), {0.0, 0.0});
  f.key.assign(static_cast<std::size_t>(channels), 0.0);
  if (w_out + w_in == 0.0) return f;  // no weight sees this space: all channels alike
  for (int64_t c = 0; c < channels; ++c) {
    const double o = w_out > 0.0 ? f_out[c] : 0.0, i = w_in > 0.0 ? f_in[c] : 0.0;
    f.point[c] = {std::sqrt(w_out) * o, std::sqrt(w_in) * i};
    f.key[c] = (w_out * o + w_in * i) / (w_out + w_in);
  }
  return f;
}

std::vector<int64_t> sort_order(const std::vector<double>& key) {
  std::vector<int64_t> order(key.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return key[a] < key[b]; });
  return order;
}

std::vector<int64_t> kmeans_order(const ChannelFeatures& features, uint64_t stream_seed) {
  const int64_t n = static_cast<int64_t>(features.key.size());
  if (features.unit <= 0 || n == 0) return sort_order(features.key);
  const int k = static_cast<int>((n + features.unit - 1) / features.unit);
  std::mt19937_64 rng(stream_seed);
  const std::vector<int> assign = lloyd(features.point, kmeanspp_init(features.point, k, rng));
  // Cluster key = mean key of its channels; empty clusters drop out.
  std::vector<double> cluster_key(k, 0.0);
  std::vector<int64_t> count(k, 0);
  for (int64_t c = 0; c < n; ++c) {
    cluster_key[assign[c]] += features.key[c];
    ++count[assign[c]];
  }
  for (int j = 0; j < k; ++j)
    if (count[j] > 0) cluster_key[j] /= count[j];
  // One sort: by cluster key, then cluster index, then channel key, then channel index, so clusters
  // are contiguous and neighbouring clusters (which share a block when sizes do not divide) are
  // close.
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const int ja = assign[a], jb = assign[b];
    if (ja != jb)
      return cluster_key[ja] != cluster_key[jb] ? cluster_key[ja] < cluster_key[jb] : ja < jb;
    if (features.key[a] != features.key[b]) return features.key[a] < features.key[b];
    return a < b;
  });
  return order;
}

std::vector<int64_t> balanced_kmeans_order(const std::vector<std::vector<double>>& point,
                                           const std::vector<double>& key, int64_t unit,
                                           uint64_t stream_seed) {
  const int64_t n = static_cast<int64_t>(point.size());
  if (unit <= 0 || n == 0) return sort_order(key);
  const int64_t k = (n + unit - 1) / unit;
  auto dist = [](const std::vector<double>& a, const std::vector<double>& b) {
    double d = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
    return d;
  };
  // k-means++ seeding, as kmeanspp_init but in any dimension.
  std::mt19937_64 rng(stream_seed);
  std::vector<std::vector<double>> centres{point[uniform_below(rng, static_cast<uint64_t>(n))]};
  std::vector<double> d2(static_cast<std::size_t>(n));
  for (int64_t c = 0; c < n; ++c) d2[c] = dist(point[c], centres[0]);
  while (static_cast<int64_t>(centres.size()) < k) {
    const double total = std::accumulate(d2.begin(), d2.end(), 0.0);
    std::size_t pick = 0;
    if (total > 0.0) {
      const double target = uniform_unit(rng) * total;
      double cum = 0.0;
      for (int64_t c = 0; c < n; ++c) {
        if (d2[c] <= 0.0) continue;
        pick = static_cast<std::size_t>(c);
        cum += d2[c];
        if (cum > target) break;
      }
    }
    centres.push_back(point[pick]);
    for (int64_t c = 0; c < n; ++c) d2[c] = std::min(d2[c], dist(point[c], point[pick]));
  }
  std::vector<int64_t> assign(static_cast<std::size_t>(n), -1);
  struct Pair {
    double d;
    int64_t c, j;
  };
  for (int it = 0; it < 20; ++it) {
    std::vector<Pair> pairs;
    pairs.reserve(static_cast<std::size_t>(n * k));
    for (int64_t c = 0; c < n; ++c)
      for (int64_t j = 0; j < k; ++j) pairs.push_back({dist(point[c], centres[j]), c, j});
    std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) {
      if (a.d != b.d) return a.d < b.d;
      return a.c != b.c ? a.c < b.c : a.j < b.j;
    });
    std::vector<int64_t> next(static_cast<std::size_t>(n), -1),
        room(static_cast<std::size_t>(k), unit);
    for (const Pair& p : pairs)
      if (next[p.c] < 0 && room[p.j] > 0) {
        next[p.c] = p.j;
        --room[p.j];
      }
    if (next == assign) break;
    assign = std::move(next);
    std::vector<std::vector<double>> sum(centres.size(), std::vector<double>(point[0].size(), 0.0));
    std::vector<int64_t> count(centres.size(), 0);
    for (int64_t c = 0; c < n; ++c) {
      for (std::size_t i = 0; i < point[c].size(); ++i) sum[assign[c]][i] += point[c][i];
      ++count[assign[c]];
    }
    for (int64_t j = 0; j < k; ++j)
      if (count[j] > 0)
        for (std::size_t i = 0; i < sum[j].size(); ++i) centres[j][i] = sum[j][i] / count[j];
  }
  std::vector<double> cluster_key(static_cast<std::size_t>(k), 0.0);
  std::vector<int64_t> count(static_cast<std::size_t>(k), 0);
  for (int64_t c = 0; c < n; ++c) {
    cluster_key[assign[c]] += key[c];
    ++count[assign[c]];
  }
  for (int64_t j = 0; j < k; ++j)
    if (count[j] > 0) cluster_key[j] /= count[j];
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const int64_t ja = assign[a], jb = assign[b];
    if (ja != jb) {
      const bool fa = count[ja] == unit, fb = count[jb] == unit;
      if (fa != fb) return fa;
      return cluster_key[ja] != cluster_key[jb] ? cluster_key[ja] < cluster_key[jb] : ja < jb;
    }
    if (key[a] != key[b]) return key[a] < key[b];
    return a < b;
  });
  return order;
}

uint64_t stream_seed(uint64_t seed, uint64_t space_index) {
  return splitmix64(seed ^ splitmix64(space_index));
}

}  // namespace tilescale::quant::reorder_detail
