// The fake-quant float path: the quantized model's math carried out in float32.
#pragma once

#include "tilescale/model/graph.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// A float graph computing what the integer path computes, up to float rounding: Conv/Gemm weights
// are the realised weights (realized_weight), and a FakeQuant node follows every tensor that has
// its own activation grid, every standalone Relu/Clip and every Pad with a non-zero value. Original
// value ids keep their meaning (the value before its FakeQuant); new values are appended. With
// float activations (a_bits 32) only the weights are quantized.
model::Graph make_fake_quant_graph(const QuantizedModel& model);

}  // namespace tilescale::quant
