#include "support/onnx_builder.h"

#include <cstring>
#include <stdexcept>

namespace tilescale::test {

onnx::AttributeProto attr_int(const std::string& name, int64_t v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
  return a;
}

onnx::AttributeProto attr_float(const std::string& name, float v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(v);
  return a;
}

onnx::AttributeProto attr_string(const std::string& name, const std::string& v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::STRING);
  a.set_s(v);
  return a;
}

onnx::AttributeProto attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
  return a;
}

OnnxBuilder::OnnxBuilder(int64_t opset) {
  model_.set_ir_version(7);
  model_.set_producer_name("tilescale-tests");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

OnnxBuilder& OnnxBuilder::input(const std::string& name, const std::vector<int64_t>& per_sample) {
  std::vector<int64_t> dims{0};
  std::vector<std::string> params{"N"};
  for (int64_t d : per_sample) {
    dims.push_back(d);
    params.emplace_back();
  }
  return input_dims(name, dims, params);
}

OnnxBuilder& OnnxBuilder::input_dims(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<std::string>& params) {
  if (dims.size() != params.size()) throw std::logic_error("input_dims: dims and params differ");
  auto* vi = graph().add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (params[i].empty())
      d->set_dim_value(dims[i]);
    else
      d->set_dim_param(params[i]);
  }
  return *this;
}

OnnxBuilder& OnnxBuilder::output(const std::string& name) {
  auto* vi = graph().add_output();
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return *this;
}

OnnxBuilder& OnnxBuilder::initializer(const std::string& name, const std::vector<int64_t>& dims,
                                      const std::vector<float>& data, bool typed) {
  auto* t = graph().add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  if (typed) {
    for (float v : data) t->add_float_data(v);
  } else {
    std::string raw(data.size() * sizeof(float), '\0');
    if (!data.empty()) std::memcpy(raw.data(), data.data(), raw.size());
    t->set_raw_data(raw);
  }
  return *this;
}

OnnxBuilder& OnnxBuilder::initializer_i64(const std::string& name, const std::vector<int64_t>& dims,
                                          const std::vector<int64_t>& data) {
  auto* t = graph().add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : data) t->add_int64_data(v);
  return *this;
}

onnx::NodeProto& OnnxBuilder::node(const std::string& op_type,
                                   const std::vector<std::string>& inputs,
                                   const std::vector<std::string>& outputs,
                                   const std::vector<onnx::AttributeProto>& attrs,
                                   const std::string& name) {
  auto* n = graph().add_node();
  n->set_op_type(op_type);
  if (!name.empty()) n->set_name(name);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  for (const auto& a : attrs) *n->add_attribute() = a;
  return *n;
}

std::string OnnxBuilder::bytes() const {
  std::string out;
  if (!model_.SerializeToString(&out))
    throw std::runtime_error("OnnxBuilder: serialization failed");
  return out;
}

}  // namespace tilescale::test
