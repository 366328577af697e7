#include "tilescale/quant/quant_plan.h"

#include "tilescale/core/error.h"
#include "tilescale/quant/affine.h"

namespace tilescale::quant {
namespace {

bool is_activation(const model::Node& n) {
  return n.op == model::Op::Relu || n.op == model::Op::Clip;
}

bool activation_non_negative(const model::Node& n) {
  return n.op == model::Op::Relu || (n.op == model::Op::Clip && n.clip_min >= 0.0f);
}

}  // namespace

QuantPlan make_quant_plan(const model::Graph& g) {
  QuantPlan plan;
  const std::size_t nv = g.values.size();
  plan.scale_source.assign(nv, -1);
  plan.non_negative.assign(nv, false);
  std::vector<int> consumers(nv, 0);
  for (const model::Node& n : g.nodes)
    for (int v : n.inputs) consumers[v]++;

  std::vector<bool> host(nv, false);
  host[g.input] = true;
  std::size_t i = 0;
  for (; i < g.nodes.size(); ++i) {
    const model::Node& n = g.nodes[i];
    if (!is_constant_op(n) || !host[n.inputs[0]]) break;
    host[n.output] = true;
    plan.host_nodes.push_back(static_cast<int>(i));
  }
  // Pixels are in [0, 1]: without pre-processing the first grid is unsigned.
  const bool input_non_negative = plan.host_nodes.empty();

  auto quantized = [&](int v) {
    if (plan.scale_source[v] >= 0) return;
    if (!host[v])
      fail_input(g.source, "value '" + g.values[v].name + "' is used before it is computed");
    QOp q;
    q.kind = QOpKind::Quantize;
    q.inputs = {v};
    q.output = v;
    plan.ops.push_back(q);
    plan.scale_source[v] = v;
    plan.non_negative[v] = input_non_negative;
  };

  for (; i < g.nodes.size(); ++i) {
    const model::Node& n = g.nodes[i];
    for (int v : n.inputs) quantized(v);
    QOp q;
    q.node = static_cast<int>(i);
    q.inputs = n.inputs;
    q.output = n.output;
    bool own_scale = true;
    bool non_neg = false;
    auto all_inputs_non_negative = [&] {
      for (int v : n.inputs)
        if (!plan.non_negative[v]) return false;
      return true;
    };
    switch (n.op) {
      case model::Op::Conv:
      case model::Op::Gemm:
      case model::Op::Add:
      case model::Op::Sub:
      case model::Op::Mul:
      case model::Op::Div: {
        const bool constant = is_constant_op(n);
        if (!constant && n.op != model::Op::Add && n.op != model::Op::Conv &&
            n.op != model::Op::Gemm)
          fail_input(g.source, "node '" + n.name + "' (" + n.onnx_op + ") of two tensors: the " +
                                   "integer path adds two tensors (Add) and applies constants " +
                                   "(Add/Sub/Mul/Div with a constant), nothing else");
        q.kind = n.op == model::Op::Conv || n.op == model::Op::Gemm ? QOpKind::Gemm
                 : constant                                         ? QOpKind::Affine
                                                                    : QOpKind::Add;
        int last = static_cast<int>(i);  // the last node of the op before a fused activation
        if (constant) {
          // The chain: constant ops each reading only the previous one's output.
          q.chain = {last};
          while (static_cast<std::size_t>(last) + 1 < g.nodes.size()) {
            const model::Node& next = g.nodes[last + 1];
            const int prev_out = g.nodes[last].output;
            if (!is_constant_op(next) || next.inputs[0] != prev_out || consumers[prev_out] != 1 ||
                prev_out == g.output)
              break;
            q.chain.push_back(++last);
          }
          const AffineConstants c = compose_affine(g, q.chain);
          if (is_step_scale(c)) {
            q.kind = QOpKind::StepScale;
          } else {
            bool keeps_sign = true;  // a >= 0 and b >= 0 everywhere: non-negative in, out
            for (std::size_t k = 0; k < c.scale.size(); ++k)
              keeps_sign = keeps_sign && c.scale[k] >= 0.0 && c.shift[k] >= 0.0;
            non_neg = keeps_sign && all_inputs_non_negative();
          }
          q.output = g.nodes[last].output;
          i = static_cast<std::size_t>(last);
        }
        if (q.kind == QOpKind::StepScale) {
          non_neg = all_inputs_non_negative();
          break;  // no rounding to fold a Relu/Clip into: it stays a Clamp op
        }
        if (q.kind == QOpKind::Add) non_neg = all_inputs_non_negative();
        if (i + 1 < g.nodes.size()) {
          const model::Node& next = g.nodes[i + 1];
          const int out = g.nodes[i].output;
          if (is_activation(next) && next.inputs[0] == out && consumers[out] == 1 &&
              out != g.output) {
            q.fused_act = static_cast<int>(i + 1);
            q.output = next.output;
            non_neg = non_neg || activation_non_negative(next);
            ++i;
          }
        }
        break;
      }
      case model::Op::MaxPool:
        q.kind = QOpKind::MaxPool;
        own_scale = false;
        non_neg = all_inputs_non_negative();
        break;
      case model::Op::AveragePool:
        q.kind = QOpKind::AvgPool;
        non_neg = all_inputs_non_negative();
        break;
      case model::Op::GlobalAveragePool:
        q.kind = QOpKind::GlobalAvgPool;
        non_neg = all_inputs_non_negative();
        break;
      case model::Op::Reshape:
        q.kind = QOpKind::Reshape;
        own_scale = false;
        non_neg = all_inputs_non_negative();
        break;
      case model::Op::Concat:
        q.kind = QOpKind::Concat;
        non_neg = all_inputs_non_negative();
        break;
      case model::Op::Pad:
        q.kind = QOpKind::Pad;
        own_scale = false;
        non_neg = all_inputs_non_negative() && n.pad_value >= 0.0f;
        break;
      case model::Op::Relu:
      case model::Op::Clip:
        q.kind = QOpKind::Clamp;
        own_scale = false;
        non_neg = all_inputs_non_negative() || activation_non_negative(n);
        break;
      default:
        fail_input(g.source, "node '" + n.name + "' (" + n.onnx_op +
                                 ") has no integer form (the integer path runs Conv, Gemm, Add, "
                                 "constant Add/Sub/Mul/Div, pools, Reshape, Concat, Pad, Relu, "
                                 "Clip)");
    }
    plan.scale_source[q.output] = own_scale ? q.output : plan.scale_source[n.inputs[0]];
    plan.non_negative[q.output] = non_neg;
    if (q.kind == QOpKind::Gemm) plan.layer_ops.push_back(static_cast<int>(plan.ops.size()));
    plan.ops.push_back(q);
  }
  if (plan.scale_source[g.output] < 0)
    fail_input(g.source, "the network output is computed on the host only; nothing to quantize");
  return plan;
}

}  // namespace tilescale::quant
