// Private to the quantizer: the per-layer bit rules quantize() applies, shared with the
// granularity skeleton of auto_granularity.cpp so both see the same layers' bits.
#pragma once

#include <cstddef>

#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// Which layers take the first/last-layer bit override: the first and the last Gemm op.
bool is_first_or_last(const QuantPlan& plan, std::size_t layer);

// Bits of each own-scale tensor: a_bits, the first/last override for the inputs of the first and
// last layers, 32 (float) for the logits of a final Gemm. Needs m.options, m.graph and m.plan.
void init_act_bits(QuantizedModel& m);

// Weight bits of layer l (index into plan.layer_ops): first_last_bits for the first and last
// layers when set, else w_bits.
int layer_w_bits(const QuantOptions& o, const QuantPlan& plan, std::size_t l);

}  // namespace tilescale::quant
