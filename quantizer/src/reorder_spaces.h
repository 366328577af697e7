// Private to reorder.cpp: the channel-space structure of a graph and how each Conv/Gemm weight
// meets it, shared by the choice of permutations (ranges) and their application (rewrites).
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/model/graph.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::quant::reorder_detail {

// Every value belongs to one space. In flat per-sample memory a space channel of value v is a set
// of contiguous runs of run_of_value[v] elements: H*W for a {C,H,W} value, 1 for a Gemm output, H*W
// for the {C*H*W} output of a Flatten. Permuting a value = permuting those runs.
struct SpaceMap {
  std::vector<ChannelPermutation> spaces;  // identity orders, ordered by smallest value id
  std::vector<int> space_of_value;         // per value: index into spaces
  std::vector<int64_t> run_of_value;       // per value: elements per space channel (contiguous)
};

SpaceMap analyze_spaces(const model::Graph& graph);

// A tensor seen as [outer][channels][run] with the middle axis the one a space permutes.
struct AxisView {
  int space = -1;     // index into SpaceMap::spaces; -1: the tensor has no such axis
  int64_t outer = 1;  // independent slices in front of the channel axis
  int64_t run = 1;    // contiguous elements per space channel
};

// How a Conv/Gemm node's weight [rows][cols] and bias meet the spaces: rows follow the output space
// (for a depthwise conv, the space it passes through); cols follow the input space for dense convs
// and Gemm only (a depthwise row has one input channel; grouped convs sit between fixed spaces).
struct WeightAxes {
  AxisView rows;  // weight rows (out): blocks of block_out
  AxisView bias;  // bias, same space as rows
  AxisView cols;  // weight input channels (in): blocks of block_in
};

bool is_depthwise(const model::Graph& graph, const model::Node& node);  // groups == Cin == Cout
WeightAxes weight_axes(const SpaceMap& map, const model::Node& node);

// Per-channel max |x| of data viewed as [outer][channels][run].
std::vector<float> channel_ranges(const std::vector<float>& data, int64_t channels,
                                  const AxisView& view);

// out[o][i][:] = data[o][order[i]][:] for data viewed as [outer][channels][run], in place.
void permute_channels(std::vector<float>& data, const std::vector<int64_t>& order,
                      const AxisView& view);

}  // namespace tilescale::quant::reorder_detail
