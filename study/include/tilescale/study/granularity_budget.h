// The layer above the quantizer and the mapper behind `quantize --auto-granularity` and the study's
// `"granularity": "auto"`: the hardware cost of every candidate granularity for every layer on one
// architecture, computed with the mapper and handed to the quantizer as plain data
// (quant::GranularityCost). It lives in the study library because both the CLI and the study use it
// and the quantizer must stay free of mapping code.
#pragma once

#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/area_model.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/auto_granularity.h"

namespace tilescale::study {

struct Budget {
  enum class Kind { ScaleRegs, ScaleAreaUm2 };
  Kind kind = Kind::ScaleRegs;
  double limit = 0.0;  // scale registers per fold (total.scale_registers of `map --json`) or um^2
  std::string text;    // as given
};

// "scale-regs=R" (R a non-negative integer) or "scale-area-um2=X" (X > 0); InputError("--budget")
// otherwise.
Budget parse_budget(const std::string& text);

// cost[layer][candidate]: each layer mapped alone (strict alignment) with each candidate. A
// layer's scale registers are what one fold of it needs; the network's total is their maximum, so
// a layer fits a scale-regs budget when its own count does, and a scale-area budget when the
// scale-path area (scale units + registers) with its count as the maximum does. A candidate the
// mapper refuses (alignment, registers beyond the architecture's) does not fit, with the reason.
std::vector<std::vector<quant::GranularityCost>> granularity_costs(
    const model::Graph& graph, const quant::QuantOptions& options,
    const std::vector<quant::Granularity>& candidates, const map::ArchConfig& arch,
    const map::AreaTable& area, const Budget& budget);

// The whole choice: the default candidates (quant::default_granularity_candidates()) costed on
// arch under budget, then quant::choose_layer_granularity on the calibration set; every layer's
// choice is written into options.layer_granularity. Returns the choices (indices into the default
// candidates). InputError("budget", ...) if a layer has no candidate that fits.
std::vector<quant::LayerGranularityChoice> choose_auto_granularity(
    const model::Graph& graph, quant::QuantOptions& options, const Dataset& calib,
    const map::ArchConfig& arch, const map::AreaTable& area, const Budget& budget);

}  // namespace tilescale::study
