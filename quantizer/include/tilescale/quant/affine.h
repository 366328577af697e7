// Constant elementwise ops after the first quantized tensor (Add/Sub/Mul/Div with a constant, an
// unfolded BatchNormalization's Mul + Add): a chain of them is one affine map y = a * x + b per
// element, which the integer path runs as one op (QOpKind::Affine, kernels::affine) or, for a
// positive uniform factor without offset, as a new step on the same codes (QOpKind::StepScale).
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::quant {

// y = scale[p] * x + shift[p] for element i of a sample, p = (i / run) % scale.size(): one entry
// for a uniform map (run = the sample's size), one per channel (run = the channel plane), or one
// per element (run = 1).
struct AffineConstants {
  std::vector<double> scale;  // a, real factor per entry
  std::vector<double> shift;  // b, real offset per entry (same units as y)
  int64_t run = 1;            // consecutive elements that share one entry
  double scale_at(int64_t i) const { return scale[(i / run) % scale.size()]; }
  double shift_at(int64_t i) const { return shift[(i / run) % shift.size()]; }
};

// Whether node n is a binary op with a constant operand (the only kind a chain holds).
bool is_constant_op(const model::Node& n);

// Composes the chain (node indices into g.nodes, each reading the previous one's output) in double
// precision: x + c, x - c, c - x, x * c, x / c per element, then compresses equal entries.
// Throws InputError naming g.source and the node for c / x (not affine) and for a non-finite
// result (a division by zero).
AffineConstants compose_affine(const model::Graph& g, const std::vector<int>& chain);

// A chain that only multiplies by one positive factor (no offset): its output is its input's
// codes on a grid of step factor * s_x, exactly, with no rounding (QOpKind::StepScale).
bool is_step_scale(const AffineConstants& c);

}  // namespace tilescale::quant
