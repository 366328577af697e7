// The fake-quant float path: the quantized model's math carried out in float32.
#pragma once

#include "tilescale/model/graph.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// A float graph computing what the integer path computes, up to float rounding: Conv/Gemm weights
// are the realised weights (realized_weight) and their biases the realised biases (bias_q * 2^-F *
// s_y), and a FakeQuant node follows every tensor that has its own activation grid, every
// standalone Relu/Clip and every Pad with a non-zero value. Every other rescale the integer kernels
// perform is modelled with its realised multiplier (the same to_fixed_multiplier bits, so
// shift-only scales too): a Mul by M_i * s_y / s_i before each input of an Add or Concat, and a Mul
// by M * s_y * count / s_x after an AveragePool (per window count) or GlobalAveragePool, and an
// Affine op's chain of constant nodes replaced by one Mul by its realised factors and one Add of
// its realised offsets (a StepScale chain stays as it is: the FakeQuant after it lands on the
// same codes).
// Rounding ties: before each rounding the integer path performs (requantization, Add, Concat,
// pools), the value is a multiple of 2^-r (r the shift), often an exact half, which it rounds up;
// float error lands such a tie a few ulp to either side. The fake path adds a quarter of that
// resolution, 2^-(r+2) * s_y (in the bias, or an Add of a constant), which puts every tie on the
// integer path's side and moves no other value across a boundary. Original value ids keep their
// meaning (the value before its FakeQuant, with those factors and offsets applied); new values
// are appended. With float activations (a_bits 32) only the weights are quantized.
model::Graph make_fake_quant_graph(const QuantizedModel& model);

}  // namespace tilescale::quant
