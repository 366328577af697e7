// PTQ-SL post-training quantization (DESIGN.md sections 3-5): calibration, channel reordering,
// scale search and integer weights.
#pragma once

#include "tilescale/core/dataset.h"
#include "tilescale/core/random.h"  // sample_indices, also used by the scale search
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// Quantizes `graph` with the options, calibrating on images drawn (seeded) from `calib_set`.
// The calibration images are options.calib_images distinct images chosen by sample_indices.
// Each layer's search sees the float model's input of that layer (CalibInput::Float, default) or
// the output of the already quantized layers before it (CalibInput::Quantized).
QuantizedModel quantize(const model::Graph& graph, const QuantOptions& options,
                        const Dataset& calib_set);

}  // namespace tilescale::quant
