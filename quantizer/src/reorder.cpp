#include "tilescale/quant/reorder.h"

#include <string>

#include "reorder_order.h"
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
