#include "tilescale/quant/fake_quant.h"

#include "tilescale/model/layout.h"

namespace tilescale::quant {

namespace {

// The realised factor of one rescale into the output grid, relative to the ideal one: the integer
// path multiplies a code of step `step_in` by M = to_fixed_multiplier(step_in / (s_y * divisor),
// bits), where the float path computes x / divisor on real values x = q * step_in. Multiplying
// the float value by M * s_y * divisor / step_in gives q * M * s_y: the integer path's value
// before its rounding, on the real axis. Built with exactly the integer kernels' double
// expressions (int_kernels.h), so both paths use the same multiplier bits.
double realised_factor(double step_in, double step_out, double divisor, int bits) {
  const FixedMultiplier f = to_fixed_multiplier(step_in / (step_out * divisor), bits);
  return f.value() * step_out * divisor / step_in;
}

// Per output element of an AveragePool (one plane; the same for every channel), the divisor the
// integer kernel folds into its multiplier (kernels::avg_pool): the window's count.
std::vector<int64_t> avg_pool_counts(const model::Node& node, const model::Value& in,
                                     const model::Value& out) {
  const model::layout::ConvShape s = model::layout::conv_shape(node, in, out);
  std::vector<int64_t> counts(static_cast<std::size_t>(s.ho * s.wo), 0);
  for (int64_t oy = 0; oy < s.ho; ++oy)
    for (int64_t ox = 0; ox < s.wo; ++ox) {
      int64_t inside = 0;
      model::layout::for_each_tap(s, oy, ox, [&](int64_t, int64_t) { ++inside; });
      counts[oy * s.wo + ox] = node.count_include_pad ? s.padded_window_count(oy, ox) : inside;
    }
  return counts;
}

// Builds the fake-quant graph node by node; see make_fake_quant_graph.
class Builder {
 public:
  explicit Builder(const QuantizedModel& model) : model_(model), src_(model.graph) {
    g_.source = src_.source;
    g_.opset = src_.opset;
    g_.values = src_.values;
    g_.input = src_.input;
    rename_.resize(src_.values.size());
    for (std::size_t v = 0; v < rename_.size(); ++v) rename_[v] = static_cast<int>(v);
  }

  model::Graph take(int output) {
    g_.output = rename_[output];
    return std::move(g_);
  }

  // A FakeQuant after value v (its current name), which then names the FakeQuant's output.
  void fake_quant(int v) {
    const ActQuant& a = model_.act_of(v);
    const IntRange r = a.range();
    model::Node fq;
    fq.op = model::Op::FakeQuant;
    fq.name = src_.values[v].name + "/fq";
    fq.onnx_op = "FakeQuant";
    fq.inputs = {rename_[v]};
    fq.fq_step = a.scale;
    fq.fq_lo = static_cast<float>(r.lo);
    fq.fq_hi = static_cast<float>(r.hi);
    rename_[v] = push(std::move(fq), src_.values[v].name + "/fq", src_.values[v].shape);
  }

  // The source node, inputs renamed, with the realised rescales of its plan op `op` (nullptr for
  // nodes the integer path runs without a rescale).
  void node(model::Node n, const QOp* op) {
    for (int& v : n.inputs) v = rename_[v];
    if (!op || model_.act_of(op->output).is_float()) {
      g_.nodes.push_back(std::move(n));
      return;
    }
    const double s_y = model_.act_of(op->output).scale;
    const int bits = model_.options.scale_bits;
    auto step = [&](std::size_t i) -> double { return model_.act_of(op->inputs[i]).scale; };
    switch (op->kind) {
      case QOpKind::Add:
      case QOpKind::Concat:
        // Each input moves to the output grid by its own multiplier: scale it before the op.
        for (std::size_t i = 0; i < n.inputs.size(); ++i)
          n.inputs[i] = scale_value(n.inputs[i], n.name + "/rescale" + std::to_string(i),
                                    {static_cast<float>(realised_factor(step(i), s_y, 1.0, bits))});
        g_.nodes.push_back(std::move(n));
        return;
      case QOpKind::GlobalAvgPool: {
        const model::Value& in = src_.values[op->inputs[0]];
        const double hw = static_cast<double>(in.size() / in.shape[0]);
        after_pool(std::move(n), {static_cast<float>(realised_factor(step(0), s_y, hw, bits))});
        return;
      }
      case QOpKind::AvgPool: {
        std::vector<float> per_count;
        for (int64_t c : avg_pool_counts(n, src_.values[op->inputs[0]], src_.values[n.output]))
          per_count.push_back(
              c > 0 ? static_cast<float>(realised_factor(step(0), s_y, double(c), bits)) : 1.0f);
        after_pool(std::move(n), per_count);
        return;
      }
      default:
        g_.nodes.push_back(std::move(n));
    }
  }

 private:
  int push(model::Node n, const std::string& name, const std::vector<int64_t>& shape) {
    n.output = static_cast<int>(g_.values.size());
    g_.values.push_back(model::Value{name, shape});
    g_.nodes.push_back(std::move(n));
    return static_cast<int>(g_.values.size()) - 1;
  }

  // A Mul of value v by a constant: `factor` has one element (for every element of v) or one per
  // element of a channel plane (repeated over the channels).
  model::Node mul_node(int v, const std::string& name, const std::vector<float>& factor) const {
    model::Node m;
    m.op = model::Op::Mul;
    m.name = name;
    m.onnx_op = "Mul";
    m.inputs = {v};
    const model::Value& val = g_.values[v];
    m.operand.shape = val.shape;
    m.operand.data.resize(static_cast<std::size_t>(val.size()));
    for (std::size_t i = 0; i < m.operand.data.size(); ++i)
      m.operand.data[i] = factor[i % factor.size()];
    return m;
  }

  int scale_value(int v, const std::string& name, const std::vector<float>& factor) {
    return push(mul_node(v, name, factor), name, g_.values[v].shape);
  }

  // The pool writes a new value and a Mul by its realised factor writes the pool's own value id,
  // so that id keeps meaning the value before its FakeQuant, as the integer path computes it.
  void after_pool(model::Node n, const std::vector<float>& factor) {
    const int out = n.output;
    const std::string name = n.name + "/unscaled";
    const int raw = push(std::move(n), name, src_.values[out].shape);
    model::Node m = mul_node(raw, src_.values[out].name + "/rescale", factor);
    m.output = out;
    g_.nodes.push_back(std::move(m));
  }

  const QuantizedModel& model_;
  const model::Graph& src_;
  model::Graph g_;
  std::vector<int> rename_;  // per source value id: the fake graph's value that carries it now
};

}  // namespace

model::Graph make_fake_quant_graph(const QuantizedModel& model) {
  const model::Graph& src = model.graph;
  const QuantPlan& plan = model.plan;

  std::vector<int> layer_of_node(src.nodes.size(), -1), op_of_node(src.nodes.size(), -1);
  for (std::size_t l = 0; l < model.layers.size(); ++l)
    layer_of_node[plan.ops[model.layers[l].op].node] = static_cast<int>(l);
  for (std::size_t i = 0; i < plan.ops.size(); ++i)
    if (plan.ops[i].node >= 0) op_of_node[plan.ops[i].node] = static_cast<int>(i);

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

  Builder b(model);
  // The Quantize ops' inputs (host outputs, or the network input) come first.
  for (const QOp& op : plan.ops)
    if (op.kind == QOpKind::Quantize && grid_after[op.output] && op.output == src.input)
      b.fake_quant(op.output);
  for (std::size_t i = 0; i < src.nodes.size(); ++i) {
    model::Node n = src.nodes[i];
    if (layer_of_node[i] >= 0)
      n.weight.data = realized_weight(model, model.layers[layer_of_node[i]]);
    const int out = n.output;
    b.node(std::move(n), op_of_node[i] >= 0 ? &plan.ops[op_of_node[i]] : nullptr);
    if (grid_after[out]) b.fake_quant(out);
  }
  return b.take(src.output);
}

}  // namespace tilescale::quant
