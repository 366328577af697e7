#include "tilescale/quant/reorder.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "reorder_order.h"
#include "reorder_probe.h"
#include "reorder_spaces.h"
#include "tilescale/core/error.h"

namespace tilescale::quant {

using reorder_detail::AxisView;
using reorder_detail::SideRanges;
using reorder_detail::SpaceMap;
using reorder_detail::WeightAxes;

std::vector<ChannelPermutation> channel_spaces(const model::Graph& graph) {
  return reorder_detail::analyze_spaces(graph).spaces;
}

namespace {

bool is_weighted(const model::Node& node) {
  return node.op == model::Op::Conv || node.op == model::Op::Gemm;
}

bool is_identity(const std::vector<int64_t>& order) {
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// Every weight's view of every movable space: producer rows (out) and consumer columns (in).
std::vector<std::vector<SideRanges>> collect_sides(const model::Graph& graph, const SpaceMap& map) {
  std::vector<std::vector<SideRanges>> sides(map.spaces.size());
  auto add = [&](const model::Node& node, const AxisView& view, bool out) {
    if (view.space < 0 || map.spaces[view.space].fixed) return;
    const int64_t channels = map.spaces[view.space].channels;
    sides[view.space].push_back(
        {out, reorder_detail::channel_ranges(node.weight.data, channels, view)});
  };
  for (const model::Node& node : graph.nodes) {
    if (!is_weighted(node)) continue;
    const WeightAxes axes = reorder_detail::weight_axes(map, node);
    add(node, axes.rows, true);
    add(node, axes.cols, false);
  }
  return sides;
}

// Throws unless perms is exactly this graph's space list with valid orders.
void validate(const SpaceMap& map, const std::vector<ChannelPermutation>& perms) {
  const std::string src = "permutations";
  if (perms.size() != map.spaces.size())
    fail_input(src, std::to_string(perms.size()) + " spaces given, the graph has " +
                        std::to_string(map.spaces.size()));
  for (std::size_t s = 0; s < perms.size(); ++s) {
    const ChannelPermutation& p = perms[s];
    const ChannelPermutation& want = map.spaces[s];
    const std::string where = "space " + std::to_string(s);
    if (p.values != want.values || p.channels != want.channels)
      fail_input(src, where + " does not match the graph's channel spaces");
    if (static_cast<int64_t>(p.order.size()) != p.channels)
      fail_input(src, where + " has " + std::to_string(p.order.size()) + " entries for " +
                          std::to_string(p.channels) + " channels");
    std::vector<bool> seen(p.order.size(), false);
    for (int64_t c : p.order) {
      if (c < 0 || c >= p.channels || seen[c]) fail_input(src, where + " is not a permutation");
      seen[c] = true;
    }
    if (want.fixed && !is_identity(p.order))
      fail_input(src, where + " is fixed but not the identity");
  }
}

}  // namespace

std::vector<ChannelPermutation> choose_permutations(const model::Graph& graph,
                                                    const ReorderOptions& options) {
  const SpaceMap map = reorder_detail::analyze_spaces(graph);
  std::vector<ChannelPermutation> spaces = map.spaces;
  if (options.method == ReorderMethod::None) return spaces;
  const auto sides = collect_sides(graph, map);
  for (std::size_t s = 0; s < spaces.size(); ++s) {
    ChannelPermutation& p = spaces[s];
    if (p.fixed || p.channels < 2 || sides[s].empty()) continue;
    const auto features =
        reorder_detail::channel_features(sides[s], p.channels, options.block_out, options.block_in);
    p.order =
        options.method == ReorderMethod::Sort
            ? reorder_detail::sort_order(features.key)
            : reorder_detail::kmeans_order(features, reorder_detail::stream_seed(options.seed, s));
  }
  return spaces;
}

namespace {

// A candidate must lower the summed relative error by more than this fraction of the identity's
// to replace it: float noise in the sums must not pick an order that changes nothing.
constexpr double kMinGain = 1e-6;
// Balanced k-means restarts per space (each its own stream).
constexpr uint64_t kKMeansRestarts = 2;

using reorder_detail::LayerProbe;

// One block-sensitive view of a space: a probe's rows or columns.
struct Side {
  std::string name;       // "out:<layer>" or "in:<layer>"
  std::vector<double> f;  // log relative range per space channel
  int64_t unit = 0;       // space channels per block
};

// Space channels per block of a probe's rows (out) or columns (in): the distinct space channels
// in the first group.
int64_t side_unit(const LayerProbe& p, bool out, int64_t channels) {
  std::set<int64_t> seen;
  const BlockGrid& g = p.grid;
  if (out) {
    const int64_t rpc = std::max<int64_t>(1, g.out_channels / channels);
    for (int64_t o = 0; o < g.out_channels; ++o)
      if (g.out_group[o] == 0) seen.insert(o / rpc);
  } else {
    const int64_t run = p.axes.cols.run;
    for (int64_t i = 0; i < g.reduction(); ++i)
      if (g.red_group[g.hw_index(i / g.kernel, i % g.kernel)] == 0) seen.insert(i / run);
  }
  return static_cast<int64_t>(seen.size());
}

std::vector<int64_t> inverse(const std::vector<int64_t>& order) {
  std::vector<int64_t> pos(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) pos[order[i]] = static_cast<int64_t>(i);
  return pos;
}

// The candidate orders of one space, named, the identity first, duplicates dropped.
std::vector<std::pair<std::string, std::vector<int64_t>>> candidates(const std::vector<Side>& sides,
                                                                     int64_t channels,
                                                                     ReorderMethod method,
                                                                     uint64_t seed,
                                                                     uint64_t space) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  auto add = [&](std::string name, std::vector<int64_t> order) {
    for (const auto& c : out)
      if (c.second == order) return;
    out.emplace_back(std::move(name), std::move(order));
  };
  std::vector<int64_t> identity(static_cast<std::size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) identity[c] = c;
  add("identity", identity);
  if (sides.empty()) return out;
  std::vector<double> mean(static_cast<std::size_t>(channels), 0.0);
  int64_t unit = sides[0].unit;
  for (const Side& s : sides) {
    for (int64_t c = 0; c < channels; ++c) mean[c] += s.f[c] / static_cast<double>(sides.size());
    unit = std::min(unit, s.unit);
  }
  for (const Side& s : sides) add("sort:" + s.name, reorder_detail::sort_order(s.f));
  add("sort:mean", reorder_detail::sort_order(mean));
  if (method == ReorderMethod::KMeans) {
    std::vector<std::vector<double>> point(static_cast<std::size_t>(channels));
    for (int64_t c = 0; c < channels; ++c)
      for (const Side& s : sides) point[c].push_back(s.f[c]);
    for (uint64_t r = 0; r < kKMeansRestarts; ++r)
      add("kmeans:" + std::to_string(r),
          reorder_detail::balanced_kmeans_order(point, mean, unit,
                                                reorder_detail::stream_seed(seed + r, space)));
  }
  return out;
}

}  // namespace

std::vector<ChannelPermutation> choose_permutations(const model::Graph& graph,
                                                    const ReorderOptions& options,
                                                    const ReorderCalibration& calib) {
  const SpaceMap map = reorder_detail::analyze_spaces(graph);
  std::vector<ChannelPermutation> spaces = map.spaces;
  if (options.method == ReorderMethod::None) return spaces;
  if (calib.values == nullptr || calib.granularity.size() != graph.nodes.size() ||
      calib.w_bits.size() != graph.nodes.size())
    throw std::invalid_argument("choose_permutations: calibration does not describe the graph");
  auto movable = [&](int space) { return space >= 0 && !map.spaces[space].fixed; };
  std::vector<LayerProbe> probes;
  std::vector<std::vector<std::size_t>> touching(spaces.size());
  for (std::size_t n = 0; n < graph.nodes.size(); ++n) {
    const model::Node& node = graph.nodes[n];
    if (!is_weighted(node)) continue;
    const WeightAxes axes = reorder_detail::weight_axes(map, node);
    if (!movable(axes.rows.space) && !movable(axes.cols.space)) continue;
    probes.push_back(reorder_detail::make_probe(
        graph, map, static_cast<int>(n), calib.granularity[n], calib.w_bits[n], calib.a_bits,
        *calib.values, calib.images, calib.positions,
        reorder_detail::stream_seed(options.seed, uint64_t{1} << 40 | n)));
    const std::size_t i = probes.size() - 1;
    if (movable(axes.rows.space)) touching[axes.rows.space].push_back(i);
    if (movable(axes.cols.space) && axes.cols.space != axes.rows.space)
      touching[axes.cols.space].push_back(i);
  }
  std::vector<std::vector<int64_t>> pos(spaces.size());  // chosen so far; empty = identity
  for (std::size_t s = 0; s < spaces.size(); ++s) {
    ChannelPermutation& p = spaces[s];
    if (p.fixed || p.channels < 2 || touching[s].empty()) continue;
    std::vector<Side> sides;
    for (std::size_t i : touching[s]) {
      const LayerProbe& probe = probes[i];
      const model::Node& node = graph.nodes[probe.node];
      for (bool out : {true, false}) {
        const AxisView& view = out ? probe.axes.rows : probe.axes.cols;
        if (view.space != static_cast<int>(s)) continue;
        const int64_t unit = side_unit(probe, out, p.channels);
        if (unit <= 1 || unit >= p.channels) continue;  // the order cannot change its blocks
        sides.push_back({std::string(out ? "out:" : "in:") + node.name,
                         reorder_detail::log_relative(
                             reorder_detail::channel_ranges(node.weight.data, p.channels, view)),
                         unit});
      }
    }
    if (sides.empty()) continue;
    auto error = [&](const std::vector<int64_t>& candidate_pos) {
      double sum = 0.0;
      for (std::size_t i : touching[s]) {
        const LayerProbe& probe = probes[i];
        auto pos_of = [&](int space) -> const std::vector<int64_t>& {
          static const std::vector<int64_t> none;
          if (space < 0) return none;
          return static_cast<std::size_t>(space) == s ? candidate_pos : pos[space];
        };
        sum += reorder_detail::probe_error(probe, graph.nodes[probe.node],
                                           pos_of(probe.axes.rows.space),
                                           pos_of(probe.axes.cols.space));
      }
      return sum;
    };
    const auto cands = candidates(sides, p.channels, options.method, options.seed, s);
    p.error_identity = error({});
    p.error_chosen = p.error_identity;
    for (std::size_t c = 1; c < cands.size(); ++c) {
      const double e = error(inverse(cands[c].second));
      if (e < p.error_chosen && e < p.error_identity * (1.0 - kMinGain)) {
        p.error_chosen = e;
        p.chosen = cands[c].first;
        p.order = cands[c].second;
      }
    }
    if (!is_identity(p.order)) pos[s] = inverse(p.order);
  }
  return spaces;
}

void apply_permutations(model::Graph& graph, const std::vector<ChannelPermutation>& permutations) {
  const SpaceMap map = reorder_detail::analyze_spaces(graph);
  validate(map, permutations);
  // Permutes one tensor along a view unless its space keeps the identity (fixed spaces always do).
  auto permute = [&](std::vector<float>& data, const AxisView& view) {
    if (view.space < 0) return;
    const std::vector<int64_t>& order = permutations[view.space].order;
    if (!is_identity(order)) reorder_detail::permute_channels(data, order, view);
  };
  for (model::Node& node : graph.nodes) {
    if (is_weighted(node)) {
      const WeightAxes axes = reorder_detail::weight_axes(map, node);
      permute(node.weight.data, axes.rows);  // producer: output channels move
      permute(node.bias.data, axes.bias);
      permute(node.weight.data, axes.cols);  // consumer: input channels move with its input value
    } else if (node.inputs.size() == 1 && !node.operand.data.empty()) {
      // A constant operand is broadcast to the activation's shape: its channel slices move with it.
      const int in = node.inputs[0];
      permute(node.operand.data, {map.space_of_value[in], 1, map.run_of_value[in]});
    }
  }
}

}  // namespace tilescale::quant
