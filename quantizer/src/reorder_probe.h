// Private to reorder.cpp: the measured error a channel order causes in one Conv/Gemm layer (the
// error-driven choice of docs/reorder.md). A probe holds sampled input columns of the layer,
// quantized to the activation grid, and the float output on them; the error of an order is the
// layer's output error with its weights block-quantized in the reordered frame.
#pragma once

#include <cstdint>
#include <vector>

#include "reorder_spaces.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant::reorder_detail {

struct LayerProbe {
  int node = -1;    // index of the Conv/Gemm node
  WeightAxes axes;  // how its weight meets the channel spaces
  BlockGrid grid;   // its block grid (positions in the reordered frame)
  int w_bits = 4;   // weight bits
  int64_t groups = 1, cout_g = 0, k = 0, positions = 0;  // GEMM shape per group
  std::vector<float> xq;     // [groups][k][positions] quantized input columns, ONNX order
  std::vector<float> y_ref;  // [Cout][positions] float output (float weights and inputs)
  double ref_energy = 0.0;   // sum of y_ref^2 (>= a tiny floor)
};

// Samples `positions` output positions (seeded) of node `node_index` from `values` (FloatExecutor
// run_all on `images` images) and quantizes its input per tensor to an `a_bits` min-max grid
// (unsigned when the calibration values are all >= 0; a_bits 32 keeps float inputs), as the
// activation grids start out in quantize().
LayerProbe make_probe(const model::Graph& graph, const SpaceMap& map, int node_index,
                      const Granularity& granularity, int w_bits, int a_bits,
                      const std::vector<std::vector<float>>& values, int64_t images,
                      int64_t positions, uint64_t seed);

// ||Q(W) xq - y_ref||^2 / ref_energy, where Q quantizes the weight block by block after moving
// its rows' space channel c to position pos_rows[c] and its columns' space channel c to
// pos_cols[c] (empty: identity). Each block takes the step, among 0.3..1.0 x its min-max step in
// 15 points, with the least weight squared error, weights rounded half up and saturated to the
// signed w_bits range (int_arith.h).
double probe_error(const LayerProbe& probe, const model::Node& node,
                   const std::vector<int64_t>& pos_rows, const std::vector<int64_t>& pos_cols);

}  // namespace tilescale::quant::reorder_detail
