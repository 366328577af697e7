// Per-layer granularity under a hardware budget (issue 14): for every Conv/Gemm layer, the
// candidate granularity with the least measured layer output error among those whose hardware cost
// fits. The costs come from outside as plain data (the CLI maps each candidate with the mapper), so
// the quantizer stays free of mapping code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/granularity.h"
#include "tilescale/quant/layer_granularity.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// The candidates tried when none are given: channel, blocks from 4x4 to 64x64, layer.
std::vector<Granularity> default_granularity_candidates();

// One candidate's hardware cost for one layer, as the caller computed it.
struct GranularityCost {
  bool fits = false;            // within the budget and mappable
  int64_t scale_registers = 0;  // per fold / crossbar
  double scale_area_um2 = 0.0;  // scale-path area (scale units + registers) if this layer set it
  int64_t cycles = 0;           // per image, including the padding the mapping needs
  std::string why;              // why it does not fit (empty if it does)
};

// A skeleton of `graph` quantized with per-layer `granularity` (indexed like QuantPlan::layer_ops):
// plan, activation bits (options.a_bits, signedness from the plan, first/last override) and each
// layer's name, w_bits, granularity and grid, without scales or codes. Enough for a mapper to cost
// a candidate before anything is quantized.
QuantizedModel granularity_skeleton(const model::Graph& graph, const QuantOptions& options,
                                    const std::vector<Granularity>& granularity);

// Whether every weight block of `fine` lies inside one block of `coarse` on any layer, with `fine`
// different: blocks start at channel 0 of their group, so block:AxB refines block:CxD when A
// divides C and B divides D; everything but layer refines layer; block:1xB refines channel.
// Other kinds (mx, vsq, xbar) are called refinements of layer only (conservative: never wrong).
bool granularity_refines(const Granularity& fine, const Granularity& coarse);

struct LayerGranularityChoice {
  std::string layer;                  // Conv/Gemm node name
  std::vector<double> error;          // per candidate: relative output error on calibration data
  std::vector<double> score;          // per candidate: least error of itself and what it refines
  std::vector<GranularityCost> cost;  // per candidate, as given
  int chosen = -1;                    // index of the chosen candidate
};

// Measures, for every layer and candidate, the layer's relative output error ||Q(W) x_q - W x||^2 /
// ||W x||^2 on options.calib_positions sampled positions of the options.calib_images calibration
// images (the draw quantize() makes), weights block-quantized at options' bits (first/last
// override included) with the weight-MSE step of each block, inputs on their min-max a_bits grid;
// then scores each candidate by the least error among itself and the fitting candidates it refines
// (granularity_refines: it can use their steps, so the real quantizer does at least as well with
// it) and picks per layer the fitting candidate of least score (ties: the refinement, then fewer
// scale registers, then the earlier candidate). cost is [layer][candidate]. Throws
// InputError("budget", ...) naming a layer no candidate fits, with each candidate's reason.
std::vector<LayerGranularityChoice> choose_layer_granularity(
    const model::Graph& graph, const QuantOptions& options, const Dataset& calib_set,
    const std::vector<Granularity>& candidates,
    const std::vector<std::vector<GranularityCost>>& cost);

}  // namespace tilescale::quant
