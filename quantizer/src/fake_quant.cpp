#include "tilescale/quant/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tilescale/model/layout.h"

namespace tilescale::quant {

namespace {

// One rescale into the output grid as the float path carries it out. The integer path multiplies
// a code of step `step_in` by M = to_fixed_multiplier(step_in / (s_y * divisor), bits) = m * 2^-r,
// where the float path computes x / divisor on real values x = q * step_in:
//   factor  M * s_y * divisor / step_in turns the float value into q * M * s_y, the integer
//           path's value before its rounding, on the real axis;
//   offset  a quarter of the resolution 2^-r of q * M, in real units (0 when r <= 0: q * M is then
//           an integer and nothing rounds). q * M is often an exact half (always a multiple of
//           2^-r), which the integer path rounds up; float rounding puts such a tie a few ulp to
//           either side. The offset puts every tie on the side the integer path takes, and moves no
//           other value across a rounding boundary (those lie at least 2^-r away).
// Built with exactly the integer kernels' double expressions (int_kernels.h), so both paths use
// the same multiplier bits.
struct Realised {
  double factor = 1.0;
  double offset = 0.0;
  int r = 0;
};

double tie_offset(int r, double step_out) { return r > 0 ? std::ldexp(0.25, -r) * step_out : 0.0; }

Realised realised(double step_in, double step_out, double divisor, int bits) {
  const FixedMultiplier f = to_fixed_multiplier(step_in / (step_out * divisor), bits);
  return {f.value() * step_out * divisor / step_in, tie_offset(f.r, step_out), f.r};
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

// A Conv/Gemm layer's bias as the integer path adds it, bias_q * 2^-F * s_y (rounded to the
// accumulator's resolution), plus the tie offset of its requantization (none for float logits,
// which are not rounded). Float-activation layers keep their float bias (layer_bias: with its
// bias correction).
void realise_bias(const QuantizedModel& model, const LayerQuant& layer, std::vector<float>& bias) {
  const QOp& op = model.plan.ops[layer.op];
  if (model.act_of(op.inputs[0]).is_float()) {
    for (std::size_t o = 0; o < bias.size(); ++o) bias[o] = layer_bias(model, layer, o);
    return;
  }
  const ActQuant& out = model.act_of(op.output);
  const double s_y = model.output_step(layer);
  const double tie = out.is_float() ? 0.0 : tie_offset(layer.frac_bits, s_y);
  for (std::size_t o = 0; o < bias.size(); ++o)
    bias[o] = static_cast<float>(std::ldexp(double(layer.bias_q[o]), -layer.frac_bits) * s_y + tie);
}

// The layer's codes and per-weight steps as the node's integer weight form (for the ONNX writer),
// the steps stored once per (output, input channel) when they are constant over the kernel window
// (every granularity but mx, whose runs cut through windows).
void set_integer_form(const LayerQuant& layer, std::vector<float> step, model::Node& n) {
  n.weight_codes = layer.q_weight;
  n.weight_step.shape = n.weight.shape;
  const int64_t kernel = layer.grid.kernel;
  bool per_window = kernel > 1 && n.weight.shape.size() == 4;
  for (std::size_t i = 0; per_window && i < step.size(); ++i)
    per_window = step[i] == step[i - i % kernel];
  if (per_window) {
    for (std::size_t i = 0; i * kernel < step.size(); ++i) step[i] = step[i * kernel];
    step.resize(step.size() / kernel);
    n.weight_step.shape[2] = n.weight_step.shape[3] = 1;
  }
  n.weight_step.data = std::move(step);
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

  // An Affine op (its chain of constant nodes) as the integer path computes it: a Mul by the
  // realised factor (+-m * 2^-r * s_y / s_x per element: q * s_x times it is the integer path's
  // +-q * m * 2^-r in units of s_y) and an Add of the realised offset (offset * 2^-F * s_y) plus
  // the tie offset of its rounding, 2^-(F+2) * s_y. Writes the chain's last output value.
  void affine(const QOp& op, const AffineQuant& q) {
    const model::Node& first = src_.nodes[op.chain.front()];
    const int last = src_.nodes[op.chain.back()].output;
    const double s_x = model_.act_of(op.inputs[0]).scale, s_y = model_.act_of(op.output).scale;
    const int64_t size = src_.values[last].size();
    std::vector<double> factor(static_cast<std::size_t>(size)), offset(factor.size());
    for (int64_t i = 0; i < size; ++i) {
      const kernels::AffineTerm& t = q.terms[(i / q.run) % q.terms.size()];
      factor[i] = (t.negative ? -1.0 : 1.0) * t.mul.value() * s_y / s_x;
      offset[i] = std::ldexp(double(t.offset), -t.frac_bits) * s_y + tie_offset(t.frac_bits, s_y);
    }
    const int scaled =
        with_const(model::Op::Mul, rename_[op.inputs[0]], first.name + "/affine_scale", factor);
    model::Node a = const_node(model::Op::Add, scaled, first.name + "/affine_shift", offset);
    a.output = last;
    g_.nodes.push_back(std::move(a));
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
      case QOpKind::Add: {
        // Each input moves to the output grid by its own multiplier before the one rounding of
        // the sum, whose resolution is 2^-F with F = max r.
        int F = std::numeric_limits<int>::min();
        for (std::size_t i = 0; i < n.inputs.size(); ++i) {
          const Realised q = realised(step(i), s_y, 1.0, bits);
          F = std::max(F, q.r);
          n.inputs[i] = with_const(model::Op::Mul, n.inputs[i],
                                   n.name + "/rescale" + std::to_string(i), {q.factor});
        }
        then_offset(std::move(n), {tie_offset(F, s_y)});
        return;
      }
      case QOpKind::Concat:
        for (std::size_t i = 0; i < n.inputs.size(); ++i) {
          const Realised q = realised(step(i), s_y, 1.0, bits);
          const std::string name = n.name + "/rescale" + std::to_string(i);
          n.inputs[i] = with_const(model::Op::Mul, n.inputs[i], name, {q.factor});
          if (q.offset != 0.0)
            n.inputs[i] = with_const(model::Op::Add, n.inputs[i], name + "/tie", {q.offset});
        }
        g_.nodes.push_back(std::move(n));
        return;
      case QOpKind::GlobalAvgPool: {
        const model::Value& in = src_.values[op->inputs[0]];
        const Realised q = realised(step(0), s_y, double(in.size() / in.shape[0]), bits);
        after_pool(std::move(n), {q.factor}, {q.offset});
        return;
      }
      case QOpKind::AvgPool: {
        std::vector<double> factor, offset;
        for (int64_t c : avg_pool_counts(n, src_.values[op->inputs[0]], src_.values[n.output])) {
          const Realised q = c > 0 ? realised(step(0), s_y, double(c), bits) : Realised{};
          factor.push_back(q.factor);
          offset.push_back(q.offset);
        }
        after_pool(std::move(n), factor, offset);
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

  // v op a constant: `c` has one element (for every element of v) or one per element of a
  // channel plane (repeated over the channels).
  model::Node const_node(model::Op op, int v, const std::string& name,
                         const std::vector<double>& c) const {
    model::Node m;
    m.op = op;
    m.name = name;
    m.onnx_op = model::op_name(op);
    m.inputs = {v};
    const model::Value& val = g_.values[v];
    m.operand.shape = val.shape;
    m.operand.data.resize(static_cast<std::size_t>(val.size()));
    for (std::size_t i = 0; i < m.operand.data.size(); ++i)
      m.operand.data[i] = static_cast<float>(c[i % c.size()]);
    return m;
  }

  int with_const(model::Op op, int v, const std::string& name, const std::vector<double>& c) {
    return push(const_node(op, v, name, c), name, g_.values[v].shape);
  }

  // n, then + offset when any is non-zero; the last node writes n's own value id, so that id keeps
  // meaning the value before its FakeQuant, as the integer path computes it.
  void then_offset(model::Node n, const std::vector<double>& offset) {
    if (std::all_of(offset.begin(), offset.end(), [](double o) { return o == 0.0; })) {
      g_.nodes.push_back(std::move(n));
      return;
    }
    const int out = n.output;
    const int raw = push(std::move(n), src_.values[out].name + "/untied", src_.values[out].shape);
    model::Node a = const_node(model::Op::Add, raw, src_.values[out].name + "/tie", offset);
    a.output = out;
    g_.nodes.push_back(std::move(a));
  }

  // The pool, times its realised factor, plus its tie offset.
  void after_pool(model::Node n, const std::vector<double>& factor,
                  const std::vector<double>& offset) {
    const int out = n.output;
    const int raw = push(std::move(n), src_.values[out].name + "/unscaled", src_.values[out].shape);
    model::Node m = const_node(model::Op::Mul, raw, src_.values[out].name + "/rescale", factor);
    m.output = out;
    then_offset(std::move(m), offset);
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

  // Affine ops with integer grids replace their chain of constant nodes (Builder::affine).
  std::vector<int> affine_of_node(src.nodes.size(), -1);
  std::vector<bool> in_chain(src.nodes.size(), false);
  for (std::size_t i = 0; i < plan.ops.size(); ++i) {
    const QOp& op = plan.ops[i];
    if (op.kind != QOpKind::Affine || model.act_of(op.output).is_float() ||
        model.act_of(op.inputs[0]).is_float())
      continue;
    affine_of_node[op.chain.front()] = static_cast<int>(i);
    for (int c : op.chain) in_chain[c] = true;
  }

  Builder b(model);
  // The Quantize ops' inputs (host outputs, or the network input) come first.
  for (const QOp& op : plan.ops)
    if (op.kind == QOpKind::Quantize && grid_after[op.output] && op.output == src.input)
      b.fake_quant(op.output);
  for (std::size_t i = 0; i < src.nodes.size(); ++i) {
    if (in_chain[i]) {
      if (affine_of_node[i] >= 0)
        b.affine(plan.ops[affine_of_node[i]], model.affine[affine_of_node[i]]);
      if (grid_after[src.nodes[i].output]) b.fake_quant(src.nodes[i].output);
      continue;
    }
    model::Node n = src.nodes[i];
    if (layer_of_node[i] >= 0) {
      const LayerQuant& layer = model.layers[layer_of_node[i]];
      n.weight.data = realized_weight(model, layer);
      set_integer_form(layer, realized_weight_step(model, layer), n);
      realise_bias(model, layer, n.bias.data);
    }
    const int out = n.output;
    b.node(std::move(n), op_of_node[i] >= 0 ? &plan.ops[op_of_node[i]] : nullptr);
    if (grid_after[out]) b.fake_quant(out);
  }
  return b.take(src.output);
}

}  // namespace tilescale::quant
