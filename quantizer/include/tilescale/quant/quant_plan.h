// How a float Graph runs on integers: which nodes run on the host in float (input pre-processing),
// which tensors carry their own activation scale, and which Relu/Clip fold into their producer's
// requantization. Derived from the graph alone, so every executor and the bundle agree on it.
#pragma once

#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/model/graph.h"

namespace tilescale::quant {

enum class QOpKind {
  Quantize,       // host float -> integer grid of the first quantized tensor
  Gemm,           // Conv or Gemm: block partial sums, block multipliers, requantization
  Add,            // two integer tensors rescaled to the output grid
  MaxPool,        // on integer codes, same grid
  AvgPool,        // sum of codes times a multiplier per window size
  GlobalAvgPool,  // sum of codes times one multiplier
  Reshape,        // same codes, new shape
  Concat,         // each input rescaled to the output grid
  Pad,            // same grid, pad value quantized
  Clamp,          // standalone Relu/Clip: codes clamped to the quantized bounds
  Affine,         // a chain of constant Add/Sub/Mul/Div (an unfolded BN): y = a * x + b per
                  // element, one rescale to its own grid (kernels::affine)
  StepScale,      // a chain that only multiplies by one positive factor: the same codes on a grid
                  // of step factor * s_x (exact, no rounding)
};
// The names a bundle's plan summary records.
inline constexpr auto kQOpKindNames =
    make_enum_names<QOpKind>("integer op", {{QOpKind::Quantize, "Quantize"},
                                            {QOpKind::Gemm, "Gemm"},
                                            {QOpKind::Add, "Add"},
                                            {QOpKind::MaxPool, "MaxPool"},
                                            {QOpKind::AvgPool, "AvgPool"},
                                            {QOpKind::GlobalAvgPool, "GlobalAvgPool"},
                                            {QOpKind::Reshape, "Reshape"},
                                            {QOpKind::Concat, "Concat"},
                                            {QOpKind::Pad, "Pad"},
                                            {QOpKind::Clamp, "Clamp"},
                                            {QOpKind::Affine, "Affine"},
                                            {QOpKind::StepScale, "StepScale"}});

struct QOp {
  QOpKind kind = QOpKind::Gemm;
  int node = -1;            // index of the main graph node
  int fused_act = -1;       // index of a Relu/Clip folded into this op's requantization, or -1
  std::vector<int> inputs;  // value ids of integer tensors
  int output = -1;          // value id (the fused activation's output when fused)
  // Affine/StepScale: the constant nodes it runs, in order (chain[0] == node); else empty.
  std::vector<int> chain;
};

struct QuantPlan {
  std::vector<int> host_nodes;     // float pre-processing nodes, run before Quantize
  std::vector<QOp> ops;            // in execution order; ops[0] is the Quantize
  std::vector<int> scale_source;   // per value id: value whose scale it carries, -1 for host values
  std::vector<bool> non_negative;  // per value id: provably >= 0 (after Relu/Clip(min >= 0) and ops
                                   // that preserve it), so it takes an unsigned grid
  std::vector<int> layer_ops;      // indices into ops of the Gemm ops, in order
};

// Builds the plan. Host nodes are the maximal chain from the input of binary ops with a constant
// (e.g. the Sub/Div of input normalization). After the first quantized tensor, a chain of constant
// ops (each the only reader of the previous one's output) is one Affine op, or a StepScale op when
// it only multiplies by a positive constant (affine.h); a Relu/Clip right after it folds into its
// rounding as after a Conv or Add. Throws InputError naming the graph's file and the node for
// graphs the integer path cannot express: Sub/Mul/Div of two tensors, c / x.
QuantPlan make_quant_plan(const model::Graph& graph);

}  // namespace tilescale::quant
