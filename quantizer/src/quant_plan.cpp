#include "tilescale/quant/quant_plan.h"

#include "tilescale/core/error.h"

namespace tilescale::quant {
namespace {

bool is_constant_binary(const model::Node& n) {
  return (n.op == model::Op::Add || n.op == model::Op::Sub || n.op == model::Op::Mul ||
          n.op == model::Op::Div) &&
         n.inputs.size() == 1;
}

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
    if (!is_constant_binary(n) || !host[n.inputs[0]]) break;
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
      case model::Op::Add: {
        if (n.op == model::Op::Add && n.inputs.size() != 2)
          fail_input(g.source,
                     "node '" + n.name +
                         "' (Add with a constant) comes after the first "
                         "quantized layer; the integer path takes constant elementwise ops "
                         "only as input pre-processing");
        q.kind = n.op == model::Op::Add ? QOpKind::Add : QOpKind::Gemm;
        non_neg = n.op == model::Op::Add && all_inputs_non_negative();
        if (i + 1 < g.nodes.size()) {
          const model::Node& next = g.nodes[i + 1];
          if (is_activation(next) && next.inputs[0] == n.output && consumers[n.output] == 1 &&
              n.output != g.output) {
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
                                 ") comes after the first quantized layer; the integer path takes "
                                 "constant elementwise ops only as input pre-processing");
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
