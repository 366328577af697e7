#include "reorder_spaces.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace tilescale::quant::reorder_detail {
namespace {

// Elements per entry of a value's own channel axis (axis 0): H*W for {C,H,W}, 1 for {F}.
int64_t plane_of(const model::Value& v) { return v.size() / v.shape.at(0); }

// Walks the nodes once, joining the values that must share a permutation (union-find) and tracking
// how many contiguous elements a space channel spans in each value.
class SpaceBuilder {
 public:
  explicit SpaceBuilder(const model::Graph& g)
      : g_(g), parent_(g.values.size()), run_(g.values.size()), fixed_(g.values.size(), false) {
    std::iota(parent_.begin(), parent_.end(), 0);
    // Until a node says otherwise, a value starts its own space with one channel per axis-0 entry.
    for (std::size_t v = 0; v < g.values.size(); ++v) run_[v] = plane_of(g.values[v]);
    // The network's input and logits are never permuted.
    fixed_[g.input] = true;
    fixed_[g.output] = true;
  }

  SpaceMap build() {
    for (const model::Node& node : g_.nodes) visit(node);
    return collect();
  }

 private:
  int find(int v) {
    while (parent_[v] != v) v = parent_[v] = parent_[parent_[v]];
    return v;
  }
  void join(int a, int b) { parent_[find(a)] = find(b); }

  // Same shape, same layout: the output holds the input's channels at the same places.
  void pass_elementwise(int in, int out) {
    join(in, out);
    run_[out] = run_[in];
  }

  // An op that maps each channel plane to one output plane (pools, spatial Pad, depthwise conv):
  // a space channel spanning m input planes spans m output planes.
  void pass_per_channel(int in, int out) {
    const int64_t m = run_[in] / plane_of(g_.values[in]);
    join(in, out);
    run_[out] = m * plane_of(g_.values[out]);
  }

  // The op cannot carry a permutation: its input and output spaces keep the identity.
  void block(const model::Node& node) {
    for (int v : node.inputs) fixed_[v] = true;
    fixed_[node.output] = true;
  }

  void visit(const model::Node& node);
  void visit_binary(const model::Node& node);
  void visit_reshape(const model::Node& node);
  SpaceMap collect();

  const model::Graph& g_;
  std::vector<int> parent_;
  std::vector<int64_t> run_;  // elements per space channel, per value
  std::vector<bool> fixed_;   // per value: its space must keep the identity
};

void SpaceBuilder::visit(const model::Node& node) {
  const int in = node.inputs.empty() ? -1 : node.inputs[0];
  switch (node.op) {
    case model::Op::Conv:
      if (is_depthwise(g_, node)) {
        pass_per_channel(in, node.output);
      } else if (node.window.groups != 1) {
        // A permutation would have to stay inside each group; keeping both sides fixed is the
        // simple correct choice (docs/reorder.md).
        block(node);
      }
      break;  // a dense conv starts a new space at its output (the constructor's default)
    case model::Op::Gemm:
      break;  // new space at the output
    case model::Op::Relu:
    case model::Op::Clip:
    case model::Op::FakeQuant:
      pass_elementwise(in, node.output);
      break;  // one grid for the whole tensor
    case model::Op::Add:
    case model::Op::Sub:
    case model::Op::Mul:
    case model::Op::Div:
      visit_binary(node);
      break;
    case model::Op::MaxPool:
    case model::Op::AveragePool:
    case model::Op::GlobalAveragePool:
      pass_per_channel(in, node.output);
      break;
    case model::Op::Pad: {
      const std::size_t rank = g_.values[in].shape.size();
      const bool pads_channels = node.pads.at(0) != 0 || node.pads.at(rank) != 0;
      if (pads_channels)
        block(node);
      else
        pass_per_channel(in, node.output);
      break;
    }
    case model::Op::Reshape:
      visit_reshape(node);
      break;
    case model::Op::Concat:
      block(node);
      break;  // documented limitation
    default:
      block(node);
      break;  // an op this analysis does not know: keep its tensors as they are
  }
}

void SpaceBuilder::visit_binary(const model::Node& node) {
  const int a = node.inputs[0];
  pass_elementwise(a, node.output);  // a constant operand is permuted along with the activation
  if (node.inputs.size() < 2) return;
  // Two activations meet element by element (a residual Add): both must hold the same order.
  const int b = node.inputs[1];
  join(b, node.output);
  // Equal shapes but different channel layouts (e.g. a flattened conv output plus a Gemm output)
  // cannot share one permutation.
  if (run_[a] != run_[b]) fixed_[a] = true;
}

void SpaceBuilder::visit_reshape(const model::Node& node) {
  // A reshape keeps flat memory, so the runs carry over; the output can hold the permutation if a
  // run covers whole entries of its own channel axis (Flatten of {C,H,W}: runs of H*W features).
  const int in = node.inputs[0];
  const model::Value& out = g_.values[node.output];
  if (run_[in] % plane_of(out) == 0) {
    pass_elementwise(in, node.output);
  } else {
    block(node);
  }
}

SpaceMap SpaceBuilder::collect() {
  const int n = static_cast<int>(g_.values.size());
  SpaceMap map;
  map.space_of_value.assign(n, -1);
  map.run_of_value = run_;
  std::vector<int> space_of_root(n, -1);
  // Values in ascending id, so spaces come out ordered by their smallest value id.
  for (int v = 0; v < n; ++v) {
    const int root = find(v);
    if (space_of_root[root] < 0) {
      space_of_root[root] = static_cast<int>(map.spaces.size());
      ChannelPermutation p;
      p.channels = g_.values[v].size() / run_[v];
      map.spaces.push_back(p);
    }
    const int s = space_of_root[root];
    ChannelPermutation& p = map.spaces[s];
    map.space_of_value[v] = s;
    p.values.push_back(v);
    const int64_t size = g_.values[v].size();
    // A space whose values disagree on its channel count cannot be permuted consistently.
    if (fixed_[v] || size % run_[v] != 0 || size / run_[v] != p.channels) p.fixed = true;
  }
  for (ChannelPermutation& p : map.spaces) {
    p.order.resize(static_cast<std::size_t>(p.channels));
    std::iota(p.order.begin(), p.order.end(), int64_t{0});
  }
  return map;
}

}  // namespace

SpaceMap analyze_spaces(const model::Graph& graph) { return SpaceBuilder(graph).build(); }

bool is_depthwise(const model::Graph& graph, const model::Node& node) {
  if (node.op != model::Op::Conv) return false;
  const int64_t cin = graph.values[node.inputs[0]].shape.at(0);
  const int64_t cout = node.weight.shape.at(0);
  return node.window.groups == cin && cin == cout;
}

WeightAxes weight_axes(const SpaceMap& map, const model::Node& node) {
  WeightAxes axes;
  const int out_space = map.space_of_value[node.output];
  const int64_t rows = node.weight.shape.at(0);
  const int64_t row_len = node.weight.numel() / rows;
  const int64_t out_channels = map.spaces[out_space].channels;
  axes.rows = {out_space, 1, rows / out_channels * row_len};
  axes.bias = {out_space, 1, rows / out_channels};
  const bool dense = node.op == model::Op::Gemm || node.window.groups == 1;
  if (dense) {
    const int in_space = map.space_of_value[node.inputs[0]];
    axes.cols = {in_space, rows, row_len / map.spaces[in_space].channels};
  }
  return axes;
}

std::vector<float> channel_ranges(const std::vector<float>& data, int64_t channels,
                                  const AxisView& view) {
  std::vector<float> range(static_cast<std::size_t>(channels), 0.0f);
  for (int64_t o = 0; o < view.outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const float* p = data.data() + (o * channels + c) * view.run;
      for (int64_t r = 0; r < view.run; ++r) range[c] = std::max(range[c], std::fabs(p[r]));
    }
  return range;
}

void permute_channels(std::vector<float>& data, const std::vector<int64_t>& order,
                      const AxisView& view) {
  const int64_t channels = static_cast<int64_t>(order.size());
  if (view.outer * channels * view.run != static_cast<int64_t>(data.size()))
    throw std::logic_error("permute_channels: view does not cover the tensor");
  const std::vector<float> old = data;
  for (int64_t o = 0; o < view.outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      std::copy_n(old.data() + (o * channels + order[c]) * view.run, view.run,
                  data.data() + (o * channels + c) * view.run);
}

}  // namespace tilescale::quant::reorder_detail
