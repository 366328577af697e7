// A tiny valid ONNX classifier built with the protobuf API, so the CLI tests need no trained model
// and no Python: x [N,1,28,28] -> Flatten -> Gemm(784 -> 10) -> y [N,10].
//
// Weight W[p][k] = 1 when pixel p lies in rows 2k, 2k+1 (the "band" of class k), else 0; bias b[k]
// = 0.01 k. An image whose band c is bright and whose other rows 0..19 are dark is classified as c.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tilescale::test {

inline constexpr int kSide = 28;
inline constexpr int kPixels = kSide * kSide;
inline constexpr int kClasses = 10;

inline float tiny_weight(int pixel, int cls) { return pixel / kSide / 2 == cls ? 1.0f : 0.0f; }
inline float tiny_bias(int cls) { return 0.01f * static_cast<float>(cls); }

// Reference logits of the tiny model for one image of uint8 pixels (the model sees pixel / 255).
inline std::vector<double> tiny_logits(const uint8_t* image) {
  std::vector<double> y(kClasses);
  for (int k = 0; k < kClasses; ++k) {
    double s = tiny_bias(k);
    for (int p = 0; p < kPixels; ++p) s += tiny_weight(p, k) * (image[p] / 255.0);
    y[k] = s;
  }
  return y;
}

inline void set_tensor_type(onnx::ValueInfoProto* v, const std::string& name,
                            const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  shape->add_dim()->set_dim_param("N");  // dynamic batch
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// The serialized model. With unknown_op, the logits pass through one more node of an op type no
// importer knows ("FrobnicateV2", node name "mystery").
inline std::string tiny_model_bytes(bool unknown_op = false) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("tilescale tests");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);

  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("tiny");
  set_tensor_type(g->add_input(), "x", {1, kSide, kSide});

  onnx::TensorProto* w = g->add_initializer();
  w->set_name("W");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(kPixels);
  w->add_dims(kClasses);
  std::vector<float> wdata(kPixels * kClasses);
  for (int p = 0; p < kPixels; ++p)
    for (int k = 0; k < kClasses; ++k) wdata[p * kClasses + k] = tiny_weight(p, k);
  w->set_raw_data(std::string(reinterpret_cast<const char*>(wdata.data()), wdata.size() * 4));

  onnx::TensorProto* b = g->add_initializer();
  b->set_name("B");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(kClasses);
  for (int k = 0; k < kClasses; ++k) b->add_float_data(tiny_bias(k));

  onnx::NodeProto* flatten = g->add_node();
  flatten->set_op_type("Flatten");
  flatten->set_name("flatten");
  flatten->add_input("x");
  flatten->add_output("f");
  auto* axis = flatten->add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(1);

  onnx::NodeProto* gemm = g->add_node();
  gemm->set_op_type("Gemm");
  gemm->set_name("fc");
  gemm->add_input("f");
  gemm->add_input("W");
  gemm->add_input("B");
  gemm->add_output("y");

  std::string out = "y";
  if (unknown_op) {
    onnx::NodeProto* n = g->add_node();
    n->set_op_type("FrobnicateV2");
    n->set_name("mystery");
    n->add_input("y");
    n->add_output("z");
    out = "z";
  }
  set_tensor_type(g->add_output(), out, {kClasses});

  std::string bytes;
  model.SerializeToString(&bytes);
  return bytes;
}

}  // namespace tilescale::test
