#include "tilescale/model/onnx_import.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "onnx_importer.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/memory_budget.h"

namespace tilescale::model {
namespace onnx_detail {

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

std::string number_str(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// --- tensors
// --------------------------------------------------------------------------------------

namespace {

template <typename T>
void copy_raw(const std::string& raw, std::vector<double>& out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

}  // namespace

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

void Importer::reserve_expanded(const onnx::NodeProto& n, double elements) {
  expanded_bytes_ += 4.0 * elements;
  check_memory_budget(source_,
                      "node '" + node_label(n) + "' (" + n.op_type() +
                          "): the constants expanded to per-sample shapes up to this node",
                      expanded_bytes_);
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

}  // namespace onnx_detail

Graph import_onnx_bytes(const std::string& bytes, const std::string& source) {
  return onnx_detail::Importer(source).run(bytes);
}

Graph import_onnx(const std::string& path) { return import_onnx_bytes(read_file(path), path); }

}  // namespace tilescale::model
