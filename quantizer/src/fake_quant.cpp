#include "tilescale/quant/fake_quant.h"

namespace tilescale::quant {

model::Graph make_fake_quant_graph(const QuantizedModel& model) {
  const model::Graph& src = model.graph;
  const QuantPlan& plan = model.plan;
  model::Graph g;
  g.source = src.source;
  g.opset = src.opset;
  g.values = src.values;
  g.input = src.input;
  g.output = src.output;

  std::vector<int> layer_of_node(src.nodes.size(), -1);
  for (std::size_t l = 0; l < model.layers.size(); ++l)
    layer_of_node[plan.ops[model.layers[l].op].node] = static_cast<int>(l);

  // Values that get a FakeQuant after them: own-scale integer tensors, clamps, non-zero pads.
  std::vector<bool> grid_after(src.values.size(), false);
  for (const QOp& op : plan.ops) {
    const ActQuant& a = model.act_of(op.output);
    if (a.is_float()) continue;
    const bool own = plan.scale_source[op.output] == op.output;
    const bool clamp = op.kind == QOpKind::Clamp;
    const bool pad = op.kind == QOpKind::Pad && src.nodes[op.node].pad_value != 0.0f;
    if (own || clamp || pad) grid_after[op.output] = true;
  }

  std::vector<int> rename(src.values.size());
  for (std::size_t v = 0; v < rename.size(); ++v) rename[v] = static_cast<int>(v);
  auto emit_fake_quant = [&](int v) {
    const ActQuant& a = model.act_of(v);
    const IntRange r = a.range();
    model::Node fq;
    fq.op = model::Op::FakeQuant;
    fq.name = src.values[v].name + "/fq";
    fq.onnx_op = "FakeQuant";
    fq.inputs = {v};
    fq.output = static_cast<int>(g.values.size());
    fq.fq_step = a.scale;
    fq.fq_lo = static_cast<float>(r.lo);
    fq.fq_hi = static_cast<float>(r.hi);
    g.values.push_back(model::Value{src.values[v].name + "/fq", src.values[v].shape});
    rename[v] = fq.output;
    g.nodes.push_back(std::move(fq));
  };

  // The Quantize ops' inputs (host outputs, or the network input) come first.
  for (const QOp& op : plan.ops)
    if (op.kind == QOpKind::Quantize && grid_after[op.output] && op.output == src.input)
      emit_fake_quant(op.output);
  for (std::size_t i = 0; i < src.nodes.size(); ++i) {
    model::Node n = src.nodes[i];
    for (int& v : n.inputs) v = rename[v];
    if (layer_of_node[i] >= 0)
      n.weight.data = realized_weight(model, model.layers[layer_of_node[i]]);
    const int out = n.output;
    g.nodes.push_back(std::move(n));
    if (grid_after[out]) emit_fake_quant(out);
  }
  g.output = rename[src.output];
  return g;
}

}  // namespace tilescale::quant
