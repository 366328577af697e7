// Builds small onnx::ModelProto graphs in memory for importer and executor tests: one float input
// with a symbolic batch dim "N", initializers, nodes with attributes, serialized with bytes().
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tilescale::test {

// Attribute factories, so a node reads as node("Conv", {...}, {...}, {ints("pads", {1, 1, 1, 1})}).
onnx::AttributeProto attr_int(const std::string& name, int64_t v);
onnx::AttributeProto attr_float(const std::string& name, float v);
onnx::AttributeProto attr_string(const std::string& name, const std::string& v);
onnx::AttributeProto attr_ints(const std::string& name, const std::vector<int64_t>& v);

class OnnxBuilder {
 public:
  // opset: version of the default ("") domain the model declares.
  explicit OnnxBuilder(int64_t opset = 13);

  // The network input: [N] + per_sample, N symbolic. Call once.
  OnnxBuilder& input(const std::string& name, const std::vector<int64_t>& per_sample);
  // An input whose every dim is given as is: a positive value is static, "" marks it symbolic.
  OnnxBuilder& input_dims(const std::string& name, const std::vector<int64_t>& dims,
                          const std::vector<std::string>& params);
  // Declares a graph output (the first one is the network's logits).
  OnnxBuilder& output(const std::string& name);

  // A float32 initializer, stored as raw_data (what exporters write) or float_data when typed.
  OnnxBuilder& initializer(const std::string& name, const std::vector<int64_t>& dims,
                           const std::vector<float>& data, bool typed = false);
  // An int64 initializer (shapes, pads), stored in int64_data.
  OnnxBuilder& initializer_i64(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& data);

  // Appends a node; name empty leaves the NodeProto unnamed. Returns it for further edits.
  onnx::NodeProto& node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs,
                        const std::vector<onnx::AttributeProto>& attrs = {},
                        const std::string& name = "");

  onnx::ModelProto& model() { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }
  std::string bytes() const;

 private:
  onnx::ModelProto model_;
};

}  // namespace tilescale::test
