// Builds small Graph IRs directly in C++ (no ONNX) with seeded random weights, for the reorder
// tests.
#pragma once

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::test {

class GraphBuilder {
 public:
  GraphBuilder(std::vector<int64_t> input_shape, uint64_t seed) : rng_(seed) {
    g_.source = "synthetic";
    g_.input = add_value(std::move(input_shape));
  }

  int input() const { return g_.input; }
  const model::Value& value(int v) const { return g_.values[v]; }
  // The node that produces value v.
  static model::Node& node_in(model::Graph& g, int v) {
    for (model::Node& n : g.nodes)
      if (n.output == v) return n;
    throw std::logic_error("no node produces value " + std::to_string(v));
  }
  static const model::Node& node_in(const model::Graph& g, int v) {
    return node_in(const_cast<model::Graph&>(g), v);
  }

  // Stride-1 "same" conv with a k x k kernel (k odd), random weights and bias.
  int conv(int in, int64_t cout, int64_t k, int64_t groups = 1) {
    const auto s = g_.values[in].shape;  // a copy: add_node grows g_.values
    model::Node& n = add_node(model::Op::Conv, {in}, {cout, s[1], s[2]});
    n.window.kernel_h = n.window.kernel_w = k;
    n.window.pad_top = n.window.pad_left = n.window.pad_bottom = n.window.pad_right = k / 2;
    n.window.groups = groups;
    n.weight = random_tensor({cout, s[0] / groups, k, k});
    n.bias = random_tensor({cout});
    return n.output;
  }
  int depthwise(int in, int64_t k) {
    return conv(in, g_.values[in].shape[0], k, g_.values[in].shape[0]);
  }

  int gemm(int in, int64_t nout) {
    const int64_t k = g_.values[in].size();
    model::Node& n = add_node(model::Op::Gemm, {in}, {nout});
    n.weight = random_tensor({nout, k});
    n.bias = random_tensor({nout});
    return n.output;
  }

  int relu(int in) { return add_node(model::Op::Relu, {in}, g_.values[in].shape).output; }
  int clip(int in, float lo, float hi) {
    model::Node& n = add_node(model::Op::Clip, {in}, g_.values[in].shape);
    n.clip_min = lo;
    n.clip_max = hi;
    return n.output;
  }

  // A per-tensor quantization grid: clamp(floor(x / step + 0.5), lo, hi) * step.
  int fake_quant(int in, float step, float lo, float hi) {
    model::Node& n = add_node(model::Op::FakeQuant, {in}, g_.values[in].shape);
    n.fq_step = step;
    n.fq_lo = lo;
    n.fq_hi = hi;
    return n.output;
  }

  // Two activations element by element.
  int binary(model::Op op, int a, int b) { return add_node(op, {a, b}, g_.values[a].shape).output; }

  // An activation and a per-channel constant (one value per axis-0 entry), broadcast over H and W.
  int binary_const(model::Op op, int in, const std::vector<float>& per_channel,
                   bool first = false) {
    const auto shape = g_.values[in].shape;
    model::Node& n = add_node(op, {in}, shape);
    n.operand.shape = shape;
    const int64_t plane = g_.values[in].size() / shape[0];
    for (float c : per_channel) n.operand.data.insert(n.operand.data.end(), plane, c);
    n.operand_first = first;
    return n.output;
  }

  int maxpool2(int in) {
    const auto& s = g_.values[in].shape;
    model::Node& n = add_node(model::Op::MaxPool, {in}, {s[0], s[1] / 2, s[2] / 2});
    n.window.kernel_h = n.window.kernel_w = 2;
    n.window.stride_h = n.window.stride_w = 2;
    return n.output;
  }

  // AveragePool k x k, stride `stride`, `pad` on every side: with count_include_pad false the
  // border windows divide by fewer taps than the inner ones.
  int avg_pool(int in, int64_t k, int64_t stride, int64_t pad, bool count_include_pad) {
    const auto s = g_.values[in].shape;
    const int64_t ho = (s[1] + 2 * pad - k) / stride + 1, wo = (s[2] + 2 * pad - k) / stride + 1;
    model::Node& n = add_node(model::Op::AveragePool, {in}, {s[0], ho, wo});
    n.window.kernel_h = n.window.kernel_w = k;
    n.window.stride_h = n.window.stride_w = stride;
    n.window.pad_top = n.window.pad_left = n.window.pad_bottom = n.window.pad_right = pad;
    n.count_include_pad = count_include_pad;
    return n.output;
  }

  int global_avg_pool(int in) {
    return add_node(model::Op::GlobalAveragePool, {in}, {g_.values[in].shape[0], 1, 1}).output;
  }

  int flatten(int in) { return add_node(model::Op::Reshape, {in}, {g_.values[in].size()}).output; }

  // Constant padding; pads = begin then end per per-sample axis.
  int pad(int in, const std::vector<int64_t>& pads, float value) {
    auto shape = g_.values[in].shape;
    for (std::size_t a = 0; a < shape.size(); ++a) shape[a] += pads[a] + pads[shape.size() + a];
    model::Node& n = add_node(model::Op::Pad, {in}, shape);
    n.pads = pads;
    n.pad_value = value;
    return n.output;
  }

  int concat_channels(const std::vector<int>& ins) {
    auto shape = g_.values[ins[0]].shape;
    shape[0] = 0;
    for (int v : ins) shape[0] += g_.values[v].shape[0];
    return add_node(model::Op::Concat, ins, shape).output;
  }

  model::Graph finish(int output) {
    g_.output = output;
    return g_;
  }

  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>(rng_() >> 40) * 0x1.0p-23f - 1.0f; }

 private:
  int add_value(std::vector<int64_t> shape) {
    model::Value v;
    v.name = "v" + std::to_string(g_.values.size());
    v.shape = std::move(shape);
    g_.values.push_back(v);
    return static_cast<int>(g_.values.size()) - 1;
  }

  model::Node& add_node(model::Op op, std::vector<int> inputs, std::vector<int64_t> out_shape) {
    model::Node n;
    n.op = op;
    n.name = std::string(model::op_name(op)) + "_" + std::to_string(g_.nodes.size());
    n.onnx_op = model::op_name(op);
    n.inputs = std::move(inputs);
    n.output = add_value(std::move(out_shape));
    g_.nodes.push_back(n);
    return g_.nodes.back();
  }

  model::Tensor random_tensor(std::vector<int64_t> shape) {
    model::Tensor t;
    t.shape = std::move(shape);
    t.data.resize(static_cast<std::size_t>(t.numel()));
    for (float& x : t.data) x = uniform();
    return t;
  }

  model::Graph g_;
  std::mt19937_64 rng_;
};

}  // namespace tilescale::test
