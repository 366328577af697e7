// The ONNX importer's elementwise and shape ops: Add/Sub/Mul/Div (with broadcast constants), Clip,
// Reshape, Concat, Pad and QuantizeLinear/DequantizeLinear pairs.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "onnx_importer.h"

namespace tilescale::model::onnx_detail {
namespace {

// Broadcasts a constant (numpy rules, against [batch] + per-sample shape) to the per-sample shape.
Tensor broadcast_to(const Constant& c, const std::vector<int64_t>& shape, const std::string& what,
                    const std::function<void(const std::string&)>& fail) {
  std::vector<int64_t> cs = c.shape;
  const std::size_t full_rank = shape.size() + 1;
  if (cs.size() > full_rank)
    fail(what + " constant " + shape_str(c.shape) + " has more axes than the activation");
  if (cs.size() == full_rank) {
    if (cs[0] != 1) fail(what + " constant " + shape_str(c.shape) + " varies along the batch axis");
    cs.erase(cs.begin());
  }
  while (cs.size() < shape.size()) cs.insert(cs.begin(), 1);
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (cs[i] != 1 && cs[i] != shape[i])
      fail(what + " constant " + shape_str(c.shape) + " does not broadcast to per-sample shape " +
           shape_str(shape));
  Tensor t;
  t.shape = shape;
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  t.data.resize(static_cast<std::size_t>(total));
  // Strides of the constant, zero along broadcast axes.
  std::vector<int64_t> stride(shape.size(), 0);
  int64_t st = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    stride[i] = cs[i] == 1 ? 0 : st;
    st *= cs[i];
  }
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t src = 0;
    for (std::size_t i = 0; i < shape.size(); ++i) src += idx[i] * stride[i];
    t.data[flat] = static_cast<float>(c.data[src]);
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return t;
}

// a * b of two float constants with numpy broadcasting, each product rounded to float32 as a
// runtime's float Mul computes it (an exported weight's code times its step).
Constant multiply_constants(const Constant& a, const Constant& b,
                            const std::function<void(const std::string&)>& fail) {
  const std::size_t rank = std::max(a.shape.size(), b.shape.size());
  std::vector<int64_t> as(rank, 1), bs(rank, 1), out(rank, 1);
  std::copy(a.shape.begin(), a.shape.end(), as.begin() + (rank - a.shape.size()));
  std::copy(b.shape.begin(), b.shape.end(), bs.begin() + (rank - b.shape.size()));
  int64_t total = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    if (as[i] != bs[i] && as[i] != 1 && bs[i] != 1)
      fail("constants " + shape_str(a.shape) + " and " + shape_str(b.shape) + " do not broadcast");
    out[i] = std::max(as[i], bs[i]);
    if (out[i] != 0 && total > kMaxTensorElements / out[i])
      fail("the product of two constants would exceed " + std::to_string(kMaxTensorElements) +
           " elements");
    total *= out[i];
  }
  std::vector<int64_t> sa(rank, 0), sb(rank, 0);
  for (int64_t i = static_cast<int64_t>(rank) - 1, ta = 1, tb = 1; i >= 0; --i) {
    sa[i] = as[i] == 1 ? 0 : ta;
    sb[i] = bs[i] == 1 ? 0 : tb;
    ta *= as[i];
    tb *= bs[i];
  }
  Constant c;
  c.type = onnx::TensorProto::FLOAT;
  c.shape = out;
  c.data.resize(static_cast<std::size_t>(total));
  std::vector<int64_t> idx(rank, 0);
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t ia = 0, ib = 0;
    for (std::size_t i = 0; i < rank; ++i) {
      ia += idx[i] * sa[i];
      ib += idx[i] * sb[i];
    }
    c.data[flat] = static_cast<float>(a.data[ia]) * static_cast<float>(b.data[ib]);
    for (int64_t i = static_cast<int64_t>(rank) - 1; i >= 0; --i) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return c;
}

}  // namespace

// A constant Add/Sub/Mul/Div right after a Conv/Gemm whose output it alone reads, with one value
// per output channel (uniform over H and W), is folded into that layer as BatchNormalization is
// (fold_into_producer): x + c, x - c, c - x, x * c and x / c are scale * x + shift per channel.
// c / x is not affine and stays a node.
bool Importer::fold_constant_op(const onnx::NodeProto& n, Op op, int in, const Tensor& operand,
                                bool operand_first) {
  if (graph_.nodes.empty() || graph_.nodes.back().output != in) return false;
  const Op prev = graph_.nodes.back().op;
  if ((prev != Op::Conv && prev != Op::Gemm) || (op == Op::Div && operand_first)) return false;
  const auto& shape = graph_.values[in].shape;
  const int64_t c = shape[0], plane = graph_.values[in].size() / c;
  std::vector<double> value(static_cast<std::size_t>(c));
  for (int64_t o = 0; o < c; ++o) {
    value[o] = operand.data[o * plane];
    for (int64_t j = 1; j < plane; ++j)
      if (operand.data[o * plane + j] != operand.data[o * plane]) return false;
  }
  std::vector<double> scale(value.size(), 1.0), shift(value.size(), 0.0);
  for (std::size_t o = 0; o < value.size(); ++o) {
    switch (op) {
      case Op::Add:
        shift[o] = value[o];
        break;
      case Op::Sub:
        scale[o] = operand_first ? -1.0 : 1.0;
        shift[o] = operand_first ? value[o] : -value[o];
        break;
      case Op::Mul:
        scale[o] = value[o];
        break;
      default:  // Div by the constant
        scale[o] = 1.0 / value[o];
    }
  }
  return fold_into_producer(n, in, scale, shift);
}

void Importer::import_binary(const onnx::NodeProto& n, Op op) {
  if (n.input_size() != 2) fail_node(n, "expects 2 inputs");
  const bool c0 = is_const(n.input(0)), c1 = is_const(n.input(1));
  if (c0 && c1) {
    // A Mul of two constants (an exported integer weight times its steps) is folded; other
    // arithmetic on constants is not.
    if (op != Op::Mul) fail_node(n, "both operands are constants; only a Mul of them is folded");
    const Constant& a = constants_.at(n.input(0));
    const Constant& b = constants_.at(n.input(1));
    if (a.type != onnx::TensorProto::FLOAT || b.type != onnx::TensorProto::FLOAT)
      fail_node(n, "a Mul of constants is folded only for float tensors");
    constants_[n.output(0)] =
        multiply_constants(a, b, [&](const std::string& p) { fail_node(n, p); });
    return;
  }
  auto node_fail = [&](const std::string& p) { fail_node(n, p); };
  if (c0 || c1) {
    const int in = value_of(n, c0 ? 1 : 0);
    const auto shape = graph_.values[in].shape;
    reserve_expanded(n, static_cast<double>(graph_.values[in].size()));
    Tensor operand = broadcast_to(constants_.at(n.input(c0 ? 0 : 1)), shape, "the", node_fail);
    if (fold_constant_op(n, op, in, operand, c0)) return;
    Node& node = add_node(n, op, {in}, shape);
    node.operand = std::move(operand);
    node.operand_first = c0;
    return;
  }
  const int a = value_of(n, 0), b = value_of(n, 1);
  if (graph_.values[a].shape != graph_.values[b].shape)
    fail_node(n, "operands have different per-sample shapes " + shape_str(graph_.values[a].shape) +
                     " and " + shape_str(graph_.values[b].shape) +
                     "; broadcasting between activations is not supported");
  add_node(n, op, {a, b}, graph_.values[a].shape);
}

void Importer::import_clip(const onnx::NodeProto& n) {
  const int in = value_of(n, 0);
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (opset_ < 11) {
    lo = attr_float(n, "min", lo);
    hi = attr_float(n, "max", hi);
  } else {
    if (n.input_size() > 1 && !n.input(1).empty()) lo = static_cast<float>(scalar(n, 1));
    if (n.input_size() > 2 && !n.input(2).empty()) hi = static_cast<float>(scalar(n, 2));
  }
  if (lo > hi) fail_node(n, "min is above max");
  Node& node = add_node(n, Op::Clip, {in}, graph_.values[in].shape);
  node.clip_min = lo;
  node.clip_max = hi;
}

void Importer::import_reshape(const onnx::NodeProto& n) {
  const int in = value_of(n, 0);
  const Value& v = graph_.values[in];
  std::vector<int64_t> target;
  if (opset_ < 5 || n.input_size() < 2) {
    target = attr_ints(n, "shape");
  } else {
    target = int_values(n, 1);
  }
  if (target.empty()) fail_node(n, "has no target shape");
  const bool allow_zero = attr_int(n, "allowzero", 0) == 0;
  // The first target dim must keep the batch: 0 (copy), -1 (infer), or the file's fixed batch size.
  const int64_t t0 = target[0];
  if (!((t0 == 0 && allow_zero) || t0 == -1 || (static_batch_ > 0 && t0 == static_batch_)))
    fail_node(n, "target shape " + shape_str(target) +
                     " changes the batch axis; only per-sample reshapes are supported");
  std::vector<int64_t> out;
  int64_t known = 1, infer = -1;
  for (std::size_t i = 1; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && allow_zero) {
      if (i - 1 >= v.shape.size()) fail_node(n, "target 0 copies an axis the input does not have");
      d = v.shape[i - 1];
    }
    if (d == -1) {
      if (infer >= 0 || t0 == -1)
        fail_node(n, "more than one -1 in target shape " + shape_str(target));
      infer = static_cast<int64_t>(out.size());
      out.push_back(1);
      continue;
    }
    if (d <= 0) fail_node(n, "invalid target dimension " + std::to_string(d));
    // Checked before multiplying, so that known cannot overflow.
    if (d > v.size() / known)
      fail_node(n, "target shape " + shape_str(target) +
                       " has more elements per sample than the input's " +
                       std::to_string(v.size()));
    known *= d;
    out.push_back(d);
  }
  if (infer >= 0) {
    if (v.size() % known != 0) fail_node(n, "cannot infer -1 in " + shape_str(target));
    out[infer] = v.size() / known;
  } else if (t0 == -1 && known != v.size()) {
    fail_node(n, "target shape " + shape_str(target) + " changes the batch axis");
  }
  if (out.empty()) out.push_back(1);
  int64_t total = 1;
  for (int64_t d : out) total *= d;
  if (total != v.size())
    fail_node(n, "target shape " + shape_str(target) + " has " + std::to_string(total) +
                     " elements per sample, input has " + std::to_string(v.size()));
  add_node(n, Op::Reshape, {in}, out);
}

void Importer::import_concat(const onnx::NodeProto& n) {
  std::vector<int> ins;
  for (int i = 0; i < n.input_size(); ++i) ins.push_back(value_of(n, i));
  if (ins.empty()) fail_node(n, "has no inputs");
  const auto& s0 = graph_.values[ins[0]].shape;
  int64_t axis = attr_int(n, "axis", 1);
  const int64_t rank = static_cast<int64_t>(s0.size()) + 1;
  if (axis < 0) axis += rank;
  if (axis <= 0 || axis >= rank)
    fail_node(n, "axis " + std::to_string(axis) + " is the batch axis or out of range");
  auto out = s0;
  out[axis - 1] = 0;
  for (int v : ins) {
    const auto& s = graph_.values[v].shape;
    if (s.size() != s0.size()) fail_node(n, "inputs have different ranks");
    for (std::size_t i = 0; i < s.size(); ++i)
      if (static_cast<int64_t>(i) != axis - 1 && s[i] != s0[i])
        fail_node(n, "inputs differ off the concat axis");
    out[axis - 1] += s[axis - 1];
  }
  Node& node = add_node(n, Op::Concat, ins, out);
  node.axis = static_cast<int>(axis - 1);
}

void Importer::import_pad(const onnx::NodeProto& n) {
  const int in = value_of(n, 0);
  const auto s = graph_.values[in].shape;
  if (attr_string(n, "mode", "constant") != "constant")
    fail_node(n, "only constant padding is supported");
  std::vector<int64_t> pads;
  float value = 0.0f;
  if (opset_ < 11) {
    pads = attr_ints(n, "pads");
    value = attr_float(n, "value", 0.0f);
  } else {
    pads = int_values(n, 1);
    if (n.input_size() > 2 && !n.input(2).empty()) value = static_cast<float>(scalar(n, 2));
    if (n.input_size() > 3 && !n.input(3).empty()) fail_node(n, "the axes input is not supported");
  }
  const std::size_t rank = s.size() + 1;
  if (pads.size() != 2 * rank)
    fail_node(n, "pads must have " + std::to_string(2 * rank) + " values");
  if (pads[0] != 0 || pads[rank] != 0) fail_node(n, "padding the batch axis is not supported");
  std::vector<int64_t> per_sample, out = s;
  for (std::size_t i = 1; i < rank; ++i) per_sample.push_back(pads[i]);
  for (std::size_t i = 1; i < rank; ++i) per_sample.push_back(pads[rank + i]);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (per_sample[i] < 0 || per_sample[s.size() + i] < 0)
      fail_node(n, "negative pads (cropping) are not supported");
    if (per_sample[i] > kMaxWindowExtent || per_sample[s.size() + i] > kMaxWindowExtent)
      fail_node(n, "pads must be at most " + std::to_string(kMaxWindowExtent));
    out[i] += per_sample[i] + per_sample[s.size() + i];
  }
  Node& node = add_node(n, Op::Pad, {in}, out);
  node.pads = per_sample;
  node.pad_value = value;
}

// A QuantizeLinear whose only reader is a DequantizeLinear with the same constant per-tensor scale
// s and integer zero point z is one FakeQuant: clamp(round(x / s), qmin - z, qmax - z) * s, with
// [qmin, qmax] the uint8 or int8 range of the zero point's type. The QuantizeLinear becomes the
// FakeQuant node and the DequantizeLinear an alias of it. FakeQuant rounds half up where ONNX
// rounds half to even: the two differ only where x / s is an exact tie (docs/export.md).
void Importer::import_qdq(const onnx::NodeProto& n) {
  if (n.input_size() < 2 || n.input_size() > 3) fail_node(n, "expects 2 or 3 inputs");
  const Constant& scale = constant(n, 1);
  if (scale.numel() != 1) fail_node(n, "only a per-tensor (scalar) scale is supported");
  const float step = static_cast<float>(scale.data[0]);
  if (!(step > 0.0f) || !std::isfinite(step)) fail_node(n, "scale must be positive and finite");
  bool is_signed = false;  // no zero point: uint8, 0
  double zero = 0.0;
  if (n.input_size() > 2 && !n.input(2).empty()) {
    const Constant& zp = constant(n, 2);
    if (zp.numel() != 1) fail_node(n, "only a per-tensor (scalar) zero point is supported");
    if (zp.type != onnx::TensorProto::UINT8 && zp.type != onnx::TensorProto::INT8)
      fail_node(n, "zero point must be uint8 or int8");
    is_signed = zp.type == onnx::TensorProto::INT8;
    zero = zp.data[0];
  }
  const float lo = static_cast<float>((is_signed ? -128.0 : 0.0) - zero);
  const float hi = static_cast<float>((is_signed ? 127.0 : 255.0) - zero);
  if (n.op_type() == "DequantizeLinear" && is_const(n.input(0))) {
    // Integer weights (the exporter's form): float(code - zero point) * scale, in float32 as ONNX
    // defines it; the codes' type must be the zero point's.
    const Constant& codes = constants_.at(n.input(0));
    const bool has_zero = n.input_size() > 2 && !n.input(2).empty();
    const bool int8 = codes.type == onnx::TensorProto::INT8;
    if ((!int8 && codes.type != onnx::TensorProto::UINT8) || (has_zero && int8 != is_signed))
      fail_node(n, "constant input must be int8 or uint8, of the zero point's type");
    Constant c;
    c.type = onnx::TensorProto::FLOAT;
    c.shape = codes.shape;
    c.data.resize(codes.data.size());
    for (std::size_t i = 0; i < c.data.size(); ++i)
      c.data[i] = static_cast<float>(codes.data[i] - zero) * step;
    constants_[n.output(0)] = std::move(c);
    return;
  }
  if (n.op_type() == "QuantizeLinear") {
    if (n.output_size() < 1 || onnx_consumers_[n.output(0)] != 1 || n.output(0) == output_name_)
      fail_node(n, "its integer output must be read by exactly one DequantizeLinear");
    const int in = value_of(n, 0);
    Node& node = add_node(n, Op::FakeQuant, {in}, graph_.values[in].shape);
    node.fq_step = step;
    node.fq_lo = lo;
    node.fq_hi = hi;
    return;
  }
  const auto it = value_ids_.find(n.input(0));
  const Node* q = nullptr;
  if (it != value_ids_.end())
    for (const Node& node : graph_.nodes)
      if (node.output == it->second && node.onnx_op == "QuantizeLinear") q = &node;
  if (!q || graph_.values[q->output].name != n.input(0))
    fail_node(n, "only DequantizeLinear right after a QuantizeLinear (a QDQ pair) is supported");
  if (q->fq_step != step || q->fq_lo != lo || q->fq_hi != hi)
    fail_node(n, "scale and zero point differ from those of QuantizeLinear '" + q->name + "'");
  if (n.output_size() < 1 || n.output(0).empty()) fail_node(n, "has no output");
  value_ids_[n.output(0)] = it->second;
  graph_.values[it->second].name = n.output(0);
}

}  // namespace tilescale::model::onnx_detail
