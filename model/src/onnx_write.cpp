#include "tilescale/model/onnx_write.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "tilescale/core/error.h"

namespace tilescale::model {
namespace {

// Hands out names that are unique within one namespace (ONNX tensor names, node names).
class Names {
 public:
  void reserve(const std::string& name) { used_.insert(name); }
  std::string unique(const std::string& base) {
    const std::string b = base.empty() ? "t" : base;
    if (used_.insert(b).second) return b;
    for (int i = 1;; ++i) {
      std::string candidate = b + "_" + std::to_string(i);
      if (used_.insert(candidate).second) return candidate;
    }
  }

 private:
  std::set<std::string> used_;
};

// Builds the GraphProto node by node.
class Exporter {
 public:
  Exporter(const Graph& graph, const OnnxWriteOptions& options, std::string source)
      : options_(options), source_(std::move(source)), g_(graph) {}

  onnx::ModelProto run();

 private:
  // Initializers: a float tensor of the given dims, a float scalar, an int64 vector, an 8-bit
  // scalar.
  std::string add_float(const std::string& base, const std::vector<int64_t>& dims,
                        const std::vector<float>& data);
  std::string add_float_scalar(const std::string& base, float v) {
    return add_float(base, {}, {v});
  }
  std::string add_int64(const std::string& base, const std::vector<int64_t>& data);
  std::string add_zero_point(const std::string& base, bool is_signed);
  std::string add_int8(const std::string& base, const std::vector<int64_t>& dims,
                       const std::vector<int8_t>& data);

  // The Conv/Gemm weight input: a float initializer, or (weight_codes set) the integer form.
  std::string weight_input(const Node& n);

  onnx::NodeProto* add_node(const std::string& op_type, const std::string& name,
                            const std::vector<std::string>& inputs, const std::string& output);
  void export_node(const Node& n);
  void export_fake_quant(const Node& n);
  void export_window(const Node& n, onnx::NodeProto* p, bool dilations, bool group);

  const OnnxWriteOptions& options_;
  std::string source_;
  const Graph& g_;
  onnx::GraphProto* graph_ = nullptr;
  Names tensors_;  // value and initializer names share one namespace
  Names nodes_;
  std::vector<std::string> value_name_;  // per value id
};

void add_attr(onnx::NodeProto* p, const std::string& name, int64_t v) {
  auto* a = p->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void add_attr(onnx::NodeProto* p, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = p->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void add_attr(onnx::NodeProto* p, const std::string& name, const std::string& v) {
  auto* a = p->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

// A float tensor type [batch][dims...] with a symbolic batch dimension.
void set_batched_type(onnx::ValueInfoProto* vi, const std::vector<int64_t>& dims) {
  auto* t = vi->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

std::string Exporter::add_float(const std::string& base, const std::vector<int64_t>& dims,
                                const std::vector<float>& data) {
  auto* t = graph_->add_initializer();
  t->set_name(tensors_.unique(base));
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  // raw_data is little-endian by the ONNX spec, as is every machine tilescale builds on.
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
  return t->name();
}

std::string Exporter::add_int64(const std::string& base, const std::vector<int64_t>& data) {
  auto* t = graph_->add_initializer();
  t->set_name(tensors_.unique(base));
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(data.size()));
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(int64_t)));
  return t->name();
}

std::string Exporter::add_zero_point(const std::string& base, bool is_signed) {
  auto* t = graph_->add_initializer();
  t->set_name(tensors_.unique(base));
  t->set_data_type(is_signed ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8);
  t->set_raw_data(std::string(1, '\0'));
  return t->name();
}

std::string Exporter::add_int8(const std::string& base, const std::vector<int64_t>& dims,
                               const std::vector<int8_t>& data) {
  auto* t = graph_->add_initializer();
  t->set_name(tensors_.unique(base));
  t->set_data_type(onnx::TensorProto::INT8);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size()));
  return t->name();
}

// Integer weights as DequantizeLinear(codes int8, scale 1, zero point 0) -> Mul(step), the step
// tensor broadcast over the weight (per block, so any granularity fits). Why this form and not a
// float initializer or a per-axis DequantizeLinear: docs/export.md ("Weights"). The product is
// checked against `weight` element by element, so the file computes exactly what the executors
// compute.
std::string Exporter::weight_input(const Node& n) {
  const std::string base = n.name + "/W";
  if (n.weight_codes.empty()) return add_float(base, n.weight.shape, n.weight.data);
  const auto& ws = n.weight.shape;
  const auto& ss = n.weight_step.shape;
  bool fits = n.weight_codes.size() == n.weight.data.size() && ss.size() == ws.size();
  for (std::size_t i = 0; fits && i < ws.size(); ++i) fits = ss[i] == ws[i] || ss[i] == 1;
  if (!fits || n.weight_step.data.size() != static_cast<std::size_t>(n.weight_step.numel()))
    fail_input(source_, "node '" + n.name + "': integer weight form does not match the weight");
  // Strides of the step tensor, zero along its broadcast axes.
  std::vector<int64_t> stride(ws.size(), 0);
  for (int64_t i = static_cast<int64_t>(ws.size()) - 1, st = 1; i >= 0; --i) {
    stride[i] = ss[i] == 1 ? 0 : st;
    st *= ss[i];
  }
  std::vector<int64_t> idx(ws.size(), 0);
  for (std::size_t flat = 0; flat < n.weight.data.size(); ++flat) {
    int64_t at = 0;
    for (std::size_t i = 0; i < ws.size(); ++i) at += idx[i] * stride[i];
    const float w = static_cast<float>(n.weight_codes[flat]) * n.weight_step.data[at];
    if (std::memcmp(&w, &n.weight.data[flat], sizeof(float)) != 0)
      fail_input(source_, "node '" + n.name + "': weight " + std::to_string(flat) +
                              " is not its code times its step");
    for (int64_t i = static_cast<int64_t>(ws.size()) - 1; i >= 0; --i) {
      if (++idx[i] < ws[i]) break;
      idx[i] = 0;
    }
  }
  const std::string codes = add_int8(base + "/codes", ws, n.weight_codes);
  const std::string dq = tensors_.unique(base + "/codes_f");
  add_node("DequantizeLinear", base + "/dequantize",
           {codes, add_float_scalar(base + "/one", 1.0f), add_zero_point(base + "/zero", true)},
           dq);
  const std::string w = tensors_.unique(base);
  add_node("Mul", base + "/scale", {dq, add_float(base + "/step", ss, n.weight_step.data)}, w);
  return w;
}

onnx::NodeProto* Exporter::add_node(const std::string& op_type, const std::string& name,
                                    const std::vector<std::string>& inputs,
                                    const std::string& output) {
  auto* p = graph_->add_node();
  p->set_op_type(op_type);
  p->set_name(nodes_.unique(name));
  for (const auto& in : inputs) p->add_input(in);
  p->add_output(output);
  return p;
}

// Window attributes of Conv and the pooling ops. ceil_mode is not stored in the graph: it is
// recovered from the output size the importer computed.
void Exporter::export_window(const Node& n, onnx::NodeProto* p, bool dilations, bool group) {
  const Window& w = n.window;
  add_attr(p, "kernel_shape", std::vector<int64_t>{w.kernel_h, w.kernel_w});
  add_attr(p, "strides", std::vector<int64_t>{w.stride_h, w.stride_w});
  add_attr(p, "pads", std::vector<int64_t>{w.pad_top, w.pad_left, w.pad_bottom, w.pad_right});
  if (dilations) add_attr(p, "dilations", std::vector<int64_t>{w.dilation_h, w.dilation_w});
  if (group) add_attr(p, "group", w.groups);
  if (n.op == Op::MaxPool || n.op == Op::AveragePool) {
    const auto& in = g_.values[n.inputs[0]].shape;
    const auto& out = g_.values[n.output].shape;
    auto floor_out = [](int64_t size, int64_t k, int64_t s, int64_t d, int64_t lo, int64_t hi) {
      return (size + lo + hi - ((k - 1) * d + 1)) / s + 1;
    };
    const bool ceil =
        out[1] != floor_out(in[1], w.kernel_h, w.stride_h, w.dilation_h, w.pad_top, w.pad_bottom) ||
        out[2] != floor_out(in[2], w.kernel_w, w.stride_w, w.dilation_w, w.pad_left, w.pad_right);
    if (ceil) add_attr(p, "ceil_mode", int64_t{1});
  }
}

// FakeQuant clamp(round(x / s), lo, hi) * s as QuantizeLinear -> DequantizeLinear (zero point 0,
// the 8-bit type that holds [lo, hi]), and a Clip when [lo, hi] is narrower than that type.
void Exporter::export_fake_quant(const Node& n) {
  const int64_t lo = static_cast<int64_t>(n.fq_lo), hi = static_cast<int64_t>(n.fq_hi);
  bool is_signed;
  if (lo >= 0 && hi <= 255) {
    is_signed = false;
  } else if (lo >= -128 && hi <= 127) {
    is_signed = true;
  } else {
    fail_input(source_, "node '" + n.name + "': activation grid [" + std::to_string(lo) + ", " +
                            std::to_string(hi) +
                            "] does not fit 8 bits; ONNX QuantizeLinear "
                            "cannot express it");
  }
  if (!(n.fq_step > 0.0f) || !std::isfinite(n.fq_step))
    fail_input(source_, "node '" + n.name + "': activation step must be positive and finite");
  const int64_t type_lo = is_signed ? -128 : 0, type_hi = is_signed ? 127 : 255;
  const std::string base = n.name;
  const std::string scale = add_float_scalar(base + "/scale", n.fq_step);
  const std::string zero = add_zero_point(base + "/zero_point", is_signed);
  const std::string q = tensors_.unique(base + "/q");
  add_node("QuantizeLinear", base + "/quantize", {value_name_[n.inputs[0]], scale, zero}, q);
  const std::string& out = value_name_[n.output];
  if (lo == type_lo && hi == type_hi) {
    add_node("DequantizeLinear", base + "/dequantize", {q, scale, zero}, out);
    return;
  }
  // DequantizeLinear gives float(code) * step in float; the bounds are the same products, so the
  // Clip lands exactly on the grid's end codes.
  const std::string dq = tensors_.unique(base + "/dq");
  add_node("DequantizeLinear", base + "/dequantize", {q, scale, zero}, dq);
  const float clip_lo = static_cast<float>(lo) * n.fq_step;
  const float clip_hi = static_cast<float>(hi) * n.fq_step;
  add_node("Clip", base + "/saturate",
           {dq, add_float_scalar(base + "/min", clip_lo), add_float_scalar(base + "/max", clip_hi)},
           out);
}

void Exporter::export_node(const Node& n) {
  const std::string& out = value_name_[n.output];
  auto in = [&](std::size_t i) { return value_name_[n.inputs[i]]; };
  switch (n.op) {
    case Op::Conv: {
      const std::string w = weight_input(n);
      auto* p = add_node("Conv", n.name,
                         {in(0), w, add_float(n.name + "/B", n.bias.shape, n.bias.data)}, out);
      export_window(n, p, true, true);
      break;
    }
    case Op::Gemm: {
      const std::string w = weight_input(n);
      auto* p = add_node("Gemm", n.name,
                         {in(0), w, add_float(n.name + "/B", n.bias.shape, n.bias.data)}, out);
      add_attr(p, "transB", int64_t{1});
      break;
    }
    case Op::Relu:
      add_node("Relu", n.name, {in(0)}, out);
      break;
    case Op::Clip: {
      // An infinite bound is an omitted input.
      const std::string lo =
          std::isinf(n.clip_min) ? "" : add_float_scalar(n.name + "/min", n.clip_min);
      const std::string hi =
          std::isinf(n.clip_max) ? "" : add_float_scalar(n.name + "/max", n.clip_max);
      std::vector<std::string> ins = {in(0), lo, hi};
      while (ins.back().empty()) ins.pop_back();  // trailing optional inputs are left out
      add_node("Clip", n.name, ins, out);
      break;
    }
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div: {
      const char* type = n.op == Op::Add   ? "Add"
                         : n.op == Op::Sub ? "Sub"
                         : n.op == Op::Mul ? "Mul"
                                           : "Div";
      if (n.inputs.size() == 2) {
        add_node(type, n.name, {in(0), in(1)}, out);
        break;
      }
      // The constant, broadcast to the per-sample shape on import; a uniform one becomes a scalar.
      const auto& d = n.operand.data;
      bool uniform = !d.empty();
      for (float v : d) uniform = uniform && std::memcmp(&v, &d[0], sizeof(float)) == 0;
      const std::string c = uniform ? add_float_scalar(n.name + "/operand", d[0])
                                    : add_float(n.name + "/operand", n.operand.shape, d);
      add_node(
          type, n.name,
          n.operand_first ? std::vector<std::string>{c, in(0)} : std::vector<std::string>{in(0), c},
          out);
      break;
    }
    case Op::MaxPool: {
      auto* p = add_node("MaxPool", n.name, {in(0)}, out);
      const bool dilated = n.window.dilation_h != 1 || n.window.dilation_w != 1;
      export_window(n, p, dilated, false);
      break;
    }
    case Op::AveragePool: {
      auto* p = add_node("AveragePool", n.name, {in(0)}, out);
      export_window(n, p, false, false);
      add_attr(p, "count_include_pad", int64_t{n.count_include_pad ? 1 : 0});
      break;
    }
    case Op::GlobalAveragePool:
      add_node("GlobalAveragePool", n.name, {in(0)}, out);
      break;
    case Op::Reshape: {
      // 0 copies the batch dimension (opset 13 has no allowzero); a flatten is [0, -1].
      const auto& s = g_.values[n.output].shape;
      std::vector<int64_t> target = {0};
      if (s.size() == 1) {
        target.push_back(-1);
      } else {
        target.insert(target.end(), s.begin(), s.end());
      }
      add_node("Reshape", n.name, {in(0), add_int64(n.name + "/shape", target)}, out);
      break;
    }
    case Op::Concat: {
      std::vector<std::string> ins;
      for (std::size_t i = 0; i < n.inputs.size(); ++i) ins.push_back(in(i));
      auto* p = add_node("Concat", n.name, ins, out);
      add_attr(p, "axis", int64_t{n.axis + 1});
      break;
    }
    case Op::Pad: {
      // Opset 13 form: pads [begin per axis..., end per axis...] over [batch] + per-sample axes.
      const std::size_t r = n.pads.size() / 2;
      std::vector<int64_t> pads = {0};
      pads.insert(pads.end(), n.pads.begin(), n.pads.begin() + r);
      pads.push_back(0);
      pads.insert(pads.end(), n.pads.begin() + r, n.pads.end());
      auto* p = add_node("Pad", n.name,
                         {in(0), add_int64(n.name + "/pads", pads),
                          add_float_scalar(n.name + "/value", n.pad_value)},
                         out);
      add_attr(p, "mode", std::string("constant"));
      break;
    }
    case Op::FakeQuant:
      export_fake_quant(n);
      break;
  }
}

onnx::ModelProto Exporter::run() {
  onnx::ModelProto m;
  m.set_ir_version(kWriteIrVersion);
  m.set_producer_name("tilescale");
  m.set_producer_version(options_.producer_version);
  m.set_doc_string(options_.doc_string);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(kWriteOpset);
  for (const auto& [k, v] : options_.metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }

  graph_ = m.mutable_graph();
  graph_->set_name(options_.graph_name);
  // The network's input and output get fixed names; every other value keeps its own, made unique.
  tensors_.reserve(options_.input_name);
  tensors_.reserve(options_.output_name);
  value_name_.resize(g_.values.size());
  for (std::size_t v = 0; v < g_.values.size(); ++v) {
    if (static_cast<int>(v) == g_.input) {
      value_name_[v] = options_.input_name;
    } else if (static_cast<int>(v) == g_.output) {
      value_name_[v] = options_.output_name;
    } else {
      value_name_[v] = tensors_.unique(g_.values[v].name);
    }
  }
  set_batched_type(graph_->add_input(), g_.input_value().shape);
  graph_->mutable_input(0)->set_name(options_.input_name);
  set_batched_type(graph_->add_output(), g_.output_value().shape);
  graph_->mutable_output(0)->set_name(options_.output_name);
  for (const Node& n : g_.nodes) export_node(n);
  return m;
}

}  // namespace

std::string graph_onnx_bytes(const Graph& graph, const OnnxWriteOptions& options,
                             const std::string& source) {
  const onnx::ModelProto m = Exporter(graph, options, source).run();
  std::string bytes;
  if (!m.SerializeToString(&bytes))
    fail_input(source, "cannot serialize the ONNX model (over 2 GiB?)");
  return bytes;
}

}  // namespace tilescale::model
