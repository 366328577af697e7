#include "tilescale/model/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/memory_budget.h"

namespace tilescale::model {
namespace {

// Largest constant tensor accepted (elements); a header claiming more is refused before allocating.
constexpr int64_t kMaxTensorElements = int64_t{1} << 30;
// Largest activation per sample (elements).
constexpr int64_t kMaxValueElements = int64_t{1} << 30;
// Largest kernel size, stride, dilation or pad (a window's, or Pad's). Bounding them keeps the
// int64 shape arithmetic of hostile files from overflowing, which is undefined behaviour.
constexpr int64_t kMaxWindowExtent = int64_t{1} << 30;
// Largest magnitude of an integer read from a tensor (shapes, pads); every such integer is held in
// a double (Constant::data), which is exact up to 2^53, and converting a larger or non-finite
// double to int64 is undefined behaviour.
constexpr double kMaxIntValue = 9007199254740992.0;  // 2^53
constexpr int kMinOpset = 9;
constexpr int kMaxOpset = 17;

// A constant known at import time: initializers, Constant nodes, and shape inputs.
struct Constant {
  std::vector<int64_t> shape;
  std::vector<double>
      data;          // double holds both float weights and int64 shape values exactly enough
  int32_t type = 0;  // onnx::TensorProto element type (tells uint8 from int8 zero points)
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

class Importer {
 public:
  explicit Importer(std::string source) : source_(std::move(source)) {}

  Graph run(const std::string& bytes);

 private:
  [[noreturn]] void fail(const std::string& problem) const { fail_input(source_, problem); }
  [[noreturn]] void fail_node(const onnx::NodeProto& n, const std::string& problem) const {
    fail_input(source_, "node '" + node_label(n) + "' (" + n.op_type() + "): " + problem);
  }
  std::string node_label(const onnx::NodeProto& n) const {
    return n.name().empty() ? n.op_type() + "_" + std::to_string(node_index_) : n.name();
  }

  Constant read_tensor(const onnx::TensorProto& t, const std::string& what) const;
  void read_input(const onnx::GraphProto& g);
  void import_node(const onnx::NodeProto& n);

  // Helpers over a node's inputs.
  bool is_const(const std::string& name) const { return constants_.count(name) != 0; }
  const Constant& constant(const onnx::NodeProto& n, int i) const;
  double scalar(const onnx::NodeProto& n, int i) const;
  std::vector<int64_t> int_values(const onnx::NodeProto& n, int i) const;
  int value_of(const onnx::NodeProto& n, int i) const;
  // Counts `elements` floats of constants expanded to a per-sample shape (a broadcast operand, an
  // unfolded BN's scale and shift) and refuses the file before allocating them if all of them
  // together would not fit the memory budget: a small file can ask for gigabytes this way.
  void reserve_expanded(const onnx::NodeProto& n, double elements);
  int add_value(const std::string& name, std::vector<int64_t> shape);
  int readers(int value) const;
  Node& add_node(const onnx::NodeProto& n, Op op, std::vector<int> inputs,
                 std::vector<int64_t> out_shape);

  void import_conv(const onnx::NodeProto& n);
  void import_gemm(const onnx::NodeProto& n, bool matmul);
  void import_batchnorm(const onnx::NodeProto& n);
  void import_binary(const onnx::NodeProto& n, Op op);
  void import_clip(const onnx::NodeProto& n);
  void import_pool(const onnx::NodeProto& n, Op op);
  void import_reshape(const onnx::NodeProto& n);
  void import_concat(const onnx::NodeProto& n);
  void import_pad(const onnx::NodeProto& n);
  void import_qdq(const onnx::NodeProto& n);
  Window read_window(const onnx::NodeProto& n, int64_t in_h, int64_t in_w, int64_t kh, int64_t kw,
                     bool allow_ceil, bool* ceil_mode) const;
  std::vector<int64_t> window_output(const onnx::NodeProto& n, const Window& w, int64_t channels,
                                     int64_t in_h, int64_t in_w, bool ceil_mode) const;

  std::string source_;
  Graph graph_;
  int64_t opset_ = 0;
  int node_index_ = 0;
  int64_t static_batch_ = 0;  // batch dim of the input when the file fixes it, else 0
  std::unordered_map<std::string, Constant> constants_;
  double expanded_bytes_ = 0;  // reserve_expanded's running total
  std::unordered_map<std::string, int> value_ids_;
  std::vector<int> consumers_;  // consumer count per value id, for BN folding
  std::unordered_map<std::string, int> onnx_consumers_;  // how many node inputs name each tensor
  std::string output_name_;  // the graph's first output, which is read outside the graph
};

// --- attributes
// -----------------------------------------------------------------------------------

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t def) {
  const auto* a = find_attr(n, name);
  return a ? a->i() : def;
}

float attr_float(const onnx::NodeProto& n, const std::string& name, float def) {
  const auto* a = find_attr(n, name);
  return a ? a->f() : def;
}

std::string attr_string(const onnx::NodeProto& n, const std::string& name, const std::string& def) {
  const auto* a = find_attr(n, name);
  return a ? a->s() : def;
}

std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name) {
  const auto* a = find_attr(n, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// A double at full precision (17 significant digits), for messages about file values.
std::string number_str(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// --- tensors
// --------------------------------------------------------------------------------------

template <typename T>
void copy_raw(const std::string& raw, std::vector<double>& out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

Constant Importer::read_tensor(const onnx::TensorProto& t, const std::string& what) const {
  Constant c;
  c.type = t.data_type();
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) fail("tensor '" + what + "' has a negative dimension");
    if (d != 0 && n > kMaxTensorElements / d)
      fail("tensor '" + what + "' claims more than " + std::to_string(kMaxTensorElements) +
           " elements; refusing to allocate it");
    n *= d;
    c.shape.push_back(d);
  }
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    fail("tensor '" + what + "' uses external data files, which are not supported");
  std::size_t elem = 0;
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      elem = 4;
      break;
    case onnx::TensorProto::DOUBLE:
      elem = 8;
      break;
    case onnx::TensorProto::INT64:
      elem = 8;
      break;
    case onnx::TensorProto::INT32:
      elem = 4;
      break;
    case onnx::TensorProto::UINT8:
      elem = 1;
      break;  // QuantizeLinear zero points
    case onnx::TensorProto::INT8:
      elem = 1;
      break;
    default:
      fail("tensor '" + what + "' has unsupported element type " + std::to_string(t.data_type()));
  }
  const std::size_t count = static_cast<std::size_t>(n);
  if (t.has_raw_data()) {
    if (t.raw_data().size() != count * elem)
      fail("tensor '" + what + "' holds " + std::to_string(t.raw_data().size()) +
           " bytes of raw data, its shape " + shape_str(c.shape) + " needs " +
           std::to_string(count * elem));
    c.data.resize(count);
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT:
        copy_raw<float>(t.raw_data(), c.data);
        break;
      case onnx::TensorProto::DOUBLE:
        copy_raw<double>(t.raw_data(), c.data);
        break;
      case onnx::TensorProto::INT64:
        copy_raw<int64_t>(t.raw_data(), c.data);
        break;
      case onnx::TensorProto::UINT8:
        copy_raw<uint8_t>(t.raw_data(), c.data);
        break;
      case onnx::TensorProto::INT8:
        copy_raw<int8_t>(t.raw_data(), c.data);
        break;
      default:
        copy_raw<int32_t>(t.raw_data(), c.data);
        break;
    }
    return c;
  }
  auto take = [&](const auto& field) {
    if (static_cast<std::size_t>(field.size()) != count)
      fail("tensor '" + what + "' holds " + std::to_string(field.size()) + " values, its shape " +
           shape_str(c.shape) + " needs " + std::to_string(count));
    c.data.assign(field.begin(), field.end());
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      take(t.float_data());
      break;
    case onnx::TensorProto::DOUBLE:
      take(t.double_data());
      break;
    case onnx::TensorProto::INT64:
      take(t.int64_data());
      break;
    default:
      take(t.int32_data());
      break;
  }
  return c;
}

Tensor to_tensor(const Constant& c) {
  Tensor t;
  t.shape = c.shape;
  t.data.assign(c.data.begin(), c.data.end());
  return t;
}

// --- graph building
// -------------------------------------------------------------------------------

const Constant& Importer::constant(const onnx::NodeProto& n, int i) const {
  if (i >= n.input_size() || n.input(i).empty())
    fail_node(n, "input " + std::to_string(i) + " is missing");
  auto it = constants_.find(n.input(i));
  if (it == constants_.end())
    fail_node(n, "input '" + n.input(i) + "' must be a constant (initializer or Constant node)");
  return it->second;
}

// A constant input that must hold exactly one value (Clip's min and max, Pad's value). An empty
// tensor there made data.at(0) throw std::out_of_range, an internal error (found by fuzz_onnx).
double Importer::scalar(const onnx::NodeProto& n, int i) const {
  const Constant& c = constant(n, i);
  if (c.data.size() != 1)
    fail_node(n,
              "input '" + n.input(i) + "' must hold one value, it has shape " + shape_str(c.shape));
  return c.data[0];
}

// A constant input read as integers (Reshape's shape, Pad's pads); each value must be a whole
// number of magnitude at most 2^53.
std::vector<int64_t> Importer::int_values(const onnx::NodeProto& n, int i) const {
  std::vector<int64_t> out;
  for (double d : constant(n, i).data) {
    if (!(std::fabs(d) <= kMaxIntValue) || d != std::trunc(d))
      fail_node(n, "input '" + n.input(i) + "' holds " + number_str(d) +
                       ", not an integer of magnitude at most 2^53");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

int Importer::value_of(const onnx::NodeProto& n, int i) const {
  if (i >= n.input_size() || n.input(i).empty())
    fail_node(n, "input " + std::to_string(i) + " is missing");
  auto it = value_ids_.find(n.input(i));
  if (it == value_ids_.end()) {
    if (is_const(n.input(i)))
      fail_node(n, "input '" + n.input(i) + "' is a constant where an activation is expected");
    fail_node(n, "input '" + n.input(i) + "' is not produced by any earlier node");
  }
  return it->second;
}

// How many nodes read a value under any of its names (Identity, Dropout and folded
// BatchNormalization outputs alias it), counting the graph output as one reader. Every alias after
// the first was made by a node that read another alias, which is not counted.
int Importer::readers(int value) const {
  int total = 0, names = 0;
  for (const auto& [name, id] : value_ids_) {
    if (id != value) continue;
    ++names;
    const auto it = onnx_consumers_.find(name);
    if (it != onnx_consumers_.end()) total += it->second;
    if (name == output_name_) ++total;
  }
  return total - (names - 1);
}

int Importer::add_value(const std::string& name, std::vector<int64_t> shape) {
  int64_t size = 1;
  for (int64_t d : shape) {
    if (d <= 0) fail("tensor '" + name + "' would have shape " + shape_str(shape));
    if (size > kMaxValueElements / d) fail("tensor '" + name + "' is too large per sample");
    size *= d;
  }
  const int id = static_cast<int>(graph_.values.size());
  graph_.values.push_back(Value{name, std::move(shape)});
  value_ids_[name] = id;
  consumers_.push_back(0);
  return id;
}

Node& Importer::add_node(const onnx::NodeProto& n, Op op, std::vector<int> inputs,
                         std::vector<int64_t> out_shape) {
  if (n.output_size() < 1 || n.output(0).empty()) fail_node(n, "has no output");
  for (int v : inputs) consumers_[v]++;
  Node node;
  node.op = op;
  node.name = node_label(n);
  node.onnx_op = n.op_type();
  node.inputs = std::move(inputs);
  node.output = add_value(n.output(0), std::move(out_shape));
  graph_.nodes.push_back(std::move(node));
  return graph_.nodes.back();
}

void Importer::read_input(const onnx::GraphProto& g) {
  const onnx::ValueInfoProto* in = nullptr;
  for (const auto& vi : g.input()) {
    if (is_const(vi.name())) continue;  // older exporters list initializers as inputs too
    if (in)
      fail("the graph has more than one non-constant input ('" + in->name() + "', '" + vi.name() +
           "'); tilescale takes single-input networks");
    in = &vi;
  }
  if (!in) fail("the graph has no input");
  if (!in->type().has_tensor_type() || !in->type().tensor_type().has_shape())
    fail("input '" + in->name() + "' has no tensor shape");
  if (in->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
    fail("input '" + in->name() + "' must be float32");
  const auto& dims = in->type().tensor_type().shape().dim();
  if (dims.size() < 2)
    fail("input '" + in->name() + "' must have a batch axis and at least one more");
  std::vector<int64_t> shape;
  for (int i = 0; i < dims.size(); ++i) {
    if (i == 0) {
      static_batch_ = dims[0].has_dim_value() ? dims[0].dim_value() : 0;
      continue;
    }
    if (!dims[i].has_dim_value() || dims[i].dim_value() <= 0)
      fail("input '" + in->name() + "' has a dynamic dimension " + std::to_string(i) + " ('" +
           dims[i].dim_param() + "'); only the batch axis may be dynamic");
    shape.push_back(dims[i].dim_value());
  }
  graph_.input = add_value(in->name(), shape);
}

Graph Importer::run(const std::string& bytes) {
  onnx::ModelProto model;
  if (bytes.empty()) fail("empty file, not an ONNX model");
  if (!model.ParseFromString(bytes))
    fail("not a valid ONNX model (protobuf parse failed; truncated?)");
  if (!model.has_graph()) fail("ONNX model has no graph");
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
  }
  if (opset_ == 0 && model.opset_import_size() == 0) fail("ONNX model declares no opset");
  if (opset_ < kMinOpset || opset_ > kMaxOpset)
    fail("opset " + std::to_string(opset_) + " is not supported (opsets " +
         std::to_string(kMinOpset) + "-" + std::to_string(kMaxOpset) + ")");
  graph_.source = source_;
  graph_.opset = opset_;

  const onnx::GraphProto& g = model.graph();
  for (const auto& t : g.initializer()) constants_[t.name()] = read_tensor(t, t.name());
  read_input(g);
  for (const auto& n : g.node())
    for (const auto& name : n.input()) onnx_consumers_[name]++;
  if (g.output_size() > 0) output_name_ = g.output(0).name();
  for (const auto& n : g.node()) {
    import_node(n);
    ++node_index_;
  }
  if (g.output_size() < 1) fail("the graph has no output");
  auto out = value_ids_.find(g.output(0).name());
  if (out == value_ids_.end()) fail("graph output '" + g.output(0).name() + "' is never computed");
  graph_.output = out->second;
  if (graph_.output == graph_.input) fail("the graph computes nothing (output is the input)");
  return std::move(graph_);
}

void Importer::import_node(const onnx::NodeProto& n) {
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    fail_node(n, "operator domain '" + n.domain() + "' is not supported");
  const std::string& t = n.op_type();
  // Every supported op names its first output, and the code below reads n.output(0) freely:
  // protobuf's output(0) on a node without outputs is undefined behaviour (found by fuzz_onnx).
  if (n.output_size() < 1 || n.output(0).empty()) fail_node(n, "has no output");
  if (t == "Constant") {
    const auto* a = find_attr(n, "value");
    if (!a || !a->has_t()) fail_node(n, "only tensor-valued Constant nodes are supported");
    constants_[n.output(0)] = read_tensor(a->t(), n.output(0));
  } else if (t == "Identity" || t == "Dropout") {
    // Inference: both pass their input through; Dropout's mask output must be unused.
    if (n.output_size() > 1 && !n.output(1).empty() && onnx_consumers_[n.output(1)] > 0)
      fail_node(n, "the Dropout mask output is used; only inference graphs are supported");
    if (n.input_size() > 0 && is_const(n.input(0))) {  // else value_of() names the missing input
      constants_[n.output(0)] = constants_.at(n.input(0));
    } else {
      value_ids_[n.output(0)] = value_of(n, 0);
    }
  } else if (t == "Conv") {
    import_conv(n);
  } else if (t == "Gemm") {
    import_gemm(n, false);
  } else if (t == "MatMul") {
    import_gemm(n, true);
  } else if (t == "BatchNormalization") {
    import_batchnorm(n);
  } else if (t == "Relu") {
    const int in = value_of(n, 0);
    add_node(n, Op::Relu, {in}, graph_.values[in].shape);
  } else if (t == "Clip") {
    import_clip(n);
  } else if (t == "Add") {
    import_binary(n, Op::Add);
  } else if (t == "Sub") {
    import_binary(n, Op::Sub);
  } else if (t == "Mul") {
    import_binary(n, Op::Mul);
  } else if (t == "Div") {
    import_binary(n, Op::Div);
  } else if (t == "MaxPool") {
    import_pool(n, Op::MaxPool);
  } else if (t == "AveragePool") {
    import_pool(n, Op::AveragePool);
  } else if (t == "GlobalAveragePool") {
    const int in = value_of(n, 0);
    const auto& s = graph_.values[in].shape;
    if (s.size() != 3)
      fail_node(n, "expects a [C][H][W] input, got per-sample shape " + shape_str(s));
    add_node(n, Op::GlobalAveragePool, {in}, {s[0], 1, 1});
  } else if (t == "Flatten") {
    const int in = value_of(n, 0);
    int64_t axis = attr_int(n, "axis", 1);
    const int64_t rank = static_cast<int64_t>(graph_.values[in].shape.size()) + 1;
    if (axis < 0) axis += rank;
    if (axis != 1)
      fail_node(n, "Flatten axis " + std::to_string(axis) +
                       " would mix the batch axis; only axis 1 is supported");
    add_node(n, Op::Reshape, {in}, {graph_.values[in].size()});
  } else if (t == "Reshape") {
    import_reshape(n);
  } else if (t == "Concat") {
    import_concat(n);
  } else if (t == "Pad") {
    import_pad(n);
  } else if (t == "QuantizeLinear" || t == "DequantizeLinear") {
    import_qdq(n);
  } else {
    fail_node(n, "unsupported operator type '" + t + "'");
  }
}

// --- windows
// --------------------------------------------------------------------------------------

Window Importer::read_window(const onnx::NodeProto& n, int64_t in_h, int64_t in_w, int64_t kh,
                             int64_t kw, bool allow_ceil, bool* ceil_mode) const {
  Window w;
  w.kernel_h = kh;
  w.kernel_w = kw;
  auto strides = attr_ints(n, "strides");
  auto dil = attr_ints(n, "dilations");
  auto pads = attr_ints(n, "pads");
  if (!strides.empty()) {
    if (strides.size() != 2) fail_node(n, "strides must have 2 values (2-D only)");
    w.stride_h = strides[0];
    w.stride_w = strides[1];
  }
  if (!dil.empty()) {
    if (dil.size() != 2) fail_node(n, "dilations must have 2 values (2-D only)");
    w.dilation_h = dil[0];
    w.dilation_w = dil[1];
  }
  if (w.stride_h < 1 || w.stride_w < 1 || w.dilation_h < 1 || w.dilation_w < 1 || kh < 1 || kw < 1)
    fail_node(n, "kernel, strides and dilations must be positive");
  for (int64_t v : {w.stride_h, w.stride_w, w.dilation_h, w.dilation_w, kh, kw})
    if (v > kMaxWindowExtent)
      fail_node(
          n, "kernel, strides and dilations must be at most " + std::to_string(kMaxWindowExtent));
  *ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
  if (*ceil_mode && !allow_ceil) fail_node(n, "ceil_mode is not valid here");
  const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    if (!pads.empty()) {
      if (pads.size() != 4) fail_node(n, "pads must have 4 values (2-D only)");
      w.pad_top = pads[0];
      w.pad_left = pads[1];
      w.pad_bottom = pads[2];
      w.pad_right = pads[3];
      for (int64_t p : pads) {
        if (p < 0) fail_node(n, "negative pads are not supported");
        if (p > kMaxWindowExtent)
          fail_node(n, "pads must be at most " + std::to_string(kMaxWindowExtent));
      }
    }
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // Output = ceil(input / stride); the odd padding element goes after (UPPER) or before (LOWER).
    auto same = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t* lo, int64_t* hi) {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
      *lo = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      *hi = total - *lo;
    };
    same(in_h, kh, w.stride_h, w.dilation_h, &w.pad_top, &w.pad_bottom);
    same(in_w, kw, w.stride_w, w.dilation_w, &w.pad_left, &w.pad_right);
  } else if (auto_pad != "VALID") {
    fail_node(n, "unknown auto_pad '" + auto_pad + "'");
  }
  return w;
}

std::vector<int64_t> Importer::window_output(const onnx::NodeProto& n, const Window& w,
                                             int64_t channels, int64_t in_h, int64_t in_w,
                                             bool ceil_mode) const {
  auto out_dim = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo, int64_t hi) {
    const int64_t span = in + lo + hi - ((k - 1) * d + 1);
    if (span < 0)
      fail_node(n, "window " + std::to_string(k) + " is larger than the padded input " +
                       std::to_string(in + lo + hi));
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    // With ceil_mode the last window must still start inside the input or its leading padding.
    if (ceil_mode && (out - 1) * s >= in + lo) --out;
    return out;
  };
  return {channels, out_dim(in_h, w.kernel_h, w.stride_h, w.dilation_h, w.pad_top, w.pad_bottom),
          out_dim(in_w, w.kernel_w, w.stride_w, w.dilation_w, w.pad_left, w.pad_right)};
}

// --- ops
// ------------------------------------------------------------------------------------------

void Importer::import_conv(const onnx::NodeProto& n) {
  const int in = value_of(n, 0);
  const auto& s = graph_.values[in].shape;
  if (s.size() != 3)
    fail_node(n, "only 2-D convolution is supported; input per-sample shape is " + shape_str(s));
  const Constant& wc = constant(n, 1);
  if (wc.shape.size() != 4)
    fail_node(n, "weight must be [Cout][Cin/groups][kh][kw], got " + shape_str(wc.shape));
  const int64_t groups = attr_int(n, "group", 1);
  const int64_t cout = wc.shape[0], cin_g = wc.shape[1];
  if (groups < 1 || s[0] % groups != 0 || cout % groups != 0 || cin_g * groups != s[0])
    fail_node(n, "weight " + shape_str(wc.shape) + " with group=" + std::to_string(groups) +
                     " does not fit an input of " + std::to_string(s[0]) + " channels");
  auto ks = attr_ints(n, "kernel_shape");
  if (!ks.empty() && (ks.size() != 2 || ks[0] != wc.shape[2] || ks[1] != wc.shape[3]))
    fail_node(n, "kernel_shape does not match the weight");
  bool ceil_mode = false;
  Window w = read_window(n, s[1], s[2], wc.shape[2], wc.shape[3], false, &ceil_mode);
  w.groups = groups;
  auto out_shape = window_output(n, w, cout, s[1], s[2], false);
  Tensor bias;
  bias.shape = {cout};
  bias.data.assign(static_cast<std::size_t>(cout), 0.0f);
  if (n.input_size() > 2 && !n.input(2).empty()) {
    const Constant& bc = constant(n, 2);
    if (bc.numel() != cout)
      fail_node(n, "bias has " + std::to_string(bc.numel()) + " values for " +
                       std::to_string(cout) + " output channels");
    bias.data.assign(bc.data.begin(), bc.data.end());
  }
  Node& node = add_node(n, Op::Conv, {in}, out_shape);
  node.window = w;
  node.weight = to_tensor(wc);
  node.bias = std::move(bias);
}

void Importer::import_gemm(const onnx::NodeProto& n, bool matmul) {
  const int in = value_of(n, 0);
  const auto& s = graph_.values[in].shape;
  if (s.size() != 1)
    fail_node(n, "expects a [batch][K] input, got per-sample shape " + shape_str(s) +
                     " (insert a Flatten)");
  const int64_t k = s[0];
  const Constant& bc = constant(n, 1);
  if (bc.shape.size() != 2) fail_node(n, "weight must be 2-D, got " + shape_str(bc.shape));
  const bool trans_a = !matmul && attr_int(n, "transA", 0) != 0;
  const bool trans_b = !matmul && attr_int(n, "transB", 0) != 0;
  if (trans_a) fail_node(n, "transA=1 would transpose the batch axis; not supported");
  const float alpha = matmul ? 1.0f : attr_float(n, "alpha", 1.0f);
  const float beta = matmul ? 1.0f : attr_float(n, "beta", 1.0f);
  const int64_t rows = trans_b ? bc.shape[1] : bc.shape[0];  // must equal K
  const int64_t nout = trans_b ? bc.shape[0] : bc.shape[1];
  if (rows != k)
    fail_node(n, "weight " + shape_str(bc.shape) + " does not fit an input of " +
                     std::to_string(k) + " features");
  Tensor w;
  w.shape = {nout, k};
  w.data.resize(static_cast<std::size_t>(nout * k));
  for (int64_t o = 0; o < nout; ++o)
    for (int64_t i = 0; i < k; ++i)
      w.data[o * k + i] =
          alpha * static_cast<float>(trans_b ? bc.data[o * k + i] : bc.data[i * nout + o]);
  Tensor bias;
  bias.shape = {nout};
  bias.data.assign(static_cast<std::size_t>(nout), 0.0f);
  if (!matmul && n.input_size() > 2 && !n.input(2).empty()) {
    const Constant& cc = constant(n, 2);
    const int64_t cn = cc.numel();
    if (cn != 1 && cn != nout)
      fail_node(n, "bias C of shape " + shape_str(cc.shape) +
                       " does not broadcast per sample to [" + std::to_string(nout) + "]");
    for (int64_t o = 0; o < nout; ++o)
      bias.data[o] = beta * static_cast<float>(cc.data[cn == 1 ? 0 : o]);
  }
  Node& node = add_node(n, Op::Gemm, {in}, {nout});
  node.weight = std::move(w);
  node.bias = std::move(bias);
}

void Importer::import_batchnorm(const onnx::NodeProto& n) {
  if (n.output_size() > 1) {
    for (int i = 1; i < n.output_size(); ++i)
      if (!n.output(i).empty() && onnx_consumers_[n.output(i)] > 0)
        fail_node(n,
                  "training-mode outputs (running mean/var) are used; only inference is supported");
  }
  if (attr_int(n, "training_mode", 0) != 0) fail_node(n, "training_mode=1 is not supported");
  const int in = value_of(n, 0);
  const auto s = graph_.values[in].shape;  // a copy: add_node below grows graph_.values
  const int64_t c = s[0];
  const Constant& gamma = constant(n, 1);
  const Constant& beta = constant(n, 2);
  const Constant& mean = constant(n, 3);
  const Constant& var = constant(n, 4);
  for (const Constant* p : {&gamma, &beta, &mean, &var})
    if (p->numel() != c)
      fail_node(n, "parameters must have one value per channel (" + std::to_string(c) + ")");
  const double eps = attr_float(n, "epsilon", 1e-5f);
  std::vector<double> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = gamma.data[i] / std::sqrt(var.data[i] + eps);
    shift[i] = beta.data[i] - mean.data[i] * scale[i];
  }
  // Fold into the producing Conv/Gemm when this BN is that output's only consumer.
  if (!graph_.nodes.empty()) {
    Node& prev = graph_.nodes.back();
    if ((prev.op == Op::Conv || prev.op == Op::Gemm) && prev.output == in && readers(in) == 1) {
      const int64_t per_out = prev.weight.numel() / c;
      for (int64_t o = 0; o < c; ++o) {
        for (int64_t j = 0; j < per_out; ++j)
          prev.weight.data[o * per_out + j] =
              static_cast<float>(prev.weight.data[o * per_out + j] * scale[o]);
        prev.bias.data[o] = static_cast<float>(prev.bias.data[o] * scale[o] + shift[o]);
      }
      value_ids_[n.output(0)] = in;
      graph_.values[in].name = n.output(0);
      return;
    }
  }
  // Otherwise a per-channel affine: Mul by scale then Add shift, both broadcast over H and W.
  const int64_t per_c = graph_.values[in].size() / c;
  reserve_expanded(n, 2.0 * static_cast<double>(c) * static_cast<double>(per_c));
  Tensor sc, sh;
  sc.shape = sh.shape = s;
  sc.data.resize(static_cast<std::size_t>(c * per_c));
  sh.data.resize(sc.data.size());
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < per_c; ++j) {
      sc.data[i * per_c + j] = static_cast<float>(scale[i]);
      sh.data[i * per_c + j] = static_cast<float>(shift[i]);
    }
  onnx::NodeProto mul_proto = n;
  mul_proto.set_output(0, n.output(0) + "/scale");
  mul_proto.set_name(node_label(n) + "/scale");
  Node& mul = add_node(mul_proto, Op::Mul, {in}, s);
  mul.operand = std::move(sc);
  const int mid = mul.output;
  onnx::NodeProto add_proto = n;
  add_proto.set_name(node_label(n) + "/shift");
  Node& add = add_node(add_proto, Op::Add, {mid}, s);
  add.operand = std::move(sh);
}

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

void Importer::reserve_expanded(const onnx::NodeProto& n, double elements) {
  expanded_bytes_ += 4.0 * elements;
  check_memory_budget(source_,
                      "node '" + node_label(n) + "' (" + n.op_type() +
                          "): the constants expanded to per-sample shapes up to this node",
                      expanded_bytes_);
}

void Importer::import_binary(const onnx::NodeProto& n, Op op) {
  if (n.input_size() != 2) fail_node(n, "expects 2 inputs");
  const bool c0 = is_const(n.input(0)), c1 = is_const(n.input(1));
  if (c0 && c1) fail_node(n, "both operands are constants; constant folding is not supported");
  auto node_fail = [&](const std::string& p) { fail_node(n, p); };
  if (c0 || c1) {
    const int in = value_of(n, c0 ? 1 : 0);
    const auto shape = graph_.values[in].shape;
    reserve_expanded(n, static_cast<double>(graph_.values[in].size()));
    Tensor operand = broadcast_to(constants_.at(n.input(c0 ? 0 : 1)), shape, "the", node_fail);
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

void Importer::import_pool(const onnx::NodeProto& n, Op op) {
  const int in = value_of(n, 0);
  const auto s = graph_.values[in].shape;
  if (s.size() != 3)
    fail_node(n, "only 2-D pooling is supported; input per-sample shape is " + shape_str(s));
  if (n.output_size() > 1 && !n.output(1).empty() && onnx_consumers_[n.output(1)] > 0)
    fail_node(n, "the Indices output is not supported");
  auto ks = attr_ints(n, "kernel_shape");
  if (ks.size() != 2) fail_node(n, "kernel_shape must have 2 values");
  bool ceil_mode = false;
  Window w = read_window(n, s[1], s[2], ks[0], ks[1], true, &ceil_mode);
  if (op == Op::AveragePool && (w.dilation_h != 1 || w.dilation_w != 1))
    fail_node(n, "dilated AveragePool is not supported");
  auto out = window_output(n, w, s[0], s[1], s[2], ceil_mode);
  Node& node = add_node(n, op, {in}, out);
  node.window = w;
  node.count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
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

}  // namespace

Graph import_onnx_bytes(const std::string& bytes, const std::string& source) {
  return Importer(source).run(bytes);
}

Graph import_onnx(const std::string& path) { return import_onnx_bytes(read_file(path), path); }

}  // namespace tilescale::model
