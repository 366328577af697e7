// The ONNX importer's private interface, shared by onnx_import.cpp (tensors, graph building, the
// op dispatch) and the op families onnx_import_ops_layers.cpp (Conv, Gemm/MatMul,
// BatchNormalization, pools) and onnx_import_ops_tensor.cpp (elementwise, Clip, shape ops, QDQ).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tilescale/core/error.h"
#include "tilescale/model/graph.h"

namespace tilescale::model::onnx_detail {

// Largest constant tensor accepted (elements); a header claiming more is refused before allocating.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 30;
// Largest activation per sample (elements).
inline constexpr int64_t kMaxValueElements = int64_t{1} << 30;
// Largest kernel size, stride, dilation or pad (a window's, or Pad's). Bounding them keeps the
// int64 shape arithmetic of hostile files from overflowing, which is undefined behaviour.
inline constexpr int64_t kMaxWindowExtent = int64_t{1} << 30;
// Largest magnitude of an integer read from a tensor (shapes, pads); every such integer is held in
// a double (Constant::data), which is exact up to 2^53, and converting a larger or non-finite
// double to int64 is undefined behaviour.
inline constexpr double kMaxIntValue = 9007199254740992.0;  // 2^53
inline constexpr int kMinOpset = 9;
inline constexpr int kMaxOpset = 17;

// A constant known at import time: initializers, Constant nodes, and shape inputs.
struct Constant {
  std::vector<int64_t> shape;  // dims as the file states them (a leading batch axis included)
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
  bool fold_into_producer(const onnx::NodeProto& n, int in, const std::vector<double>& scale,
                          const std::vector<double>& shift);
  void import_binary(const onnx::NodeProto& n, Op op);
  bool fold_constant_op(const onnx::NodeProto& n, Op op, int in, const Tensor& operand,
                        bool operand_first);
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

// Attributes of a node, each with its default when absent.
const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name);
int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t def);
float attr_float(const onnx::NodeProto& n, const std::string& name, float def);
std::string attr_string(const onnx::NodeProto& n, const std::string& name, const std::string& def);
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name);

// "[2,3]", for messages.
std::string shape_str(const std::vector<int64_t>& s);
// A double at full precision (17 significant digits), for messages about file values.
std::string number_str(double d);

Tensor to_tensor(const Constant& c);

}  // namespace tilescale::model::onnx_detail
