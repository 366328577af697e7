#include "tilescale/model/graph.h"

#include <algorithm>

namespace tilescale::model {

const char* op_name(Op op) {
  switch (op) {
    case Op::Conv:
      return "Conv";
    case Op::Gemm:
      return "Gemm";
    case Op::Relu:
      return "Relu";
    case Op::Clip:
      return "Clip";
    case Op::Add:
      return "Add";
    case Op::Sub:
      return "Sub";
    case Op::Mul:
      return "Mul";
    case Op::Div:
      return "Div";
    case Op::MaxPool:
      return "MaxPool";
    case Op::AveragePool:
      return "AveragePool";
    case Op::GlobalAveragePool:
      return "GlobalAveragePool";
    case Op::Reshape:
      return "Reshape";
    case Op::Concat:
      return "Concat";
    case Op::Pad:
      return "Pad";
    case Op::FakeQuant:
      return "FakeQuant";
  }
  return "?";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Value::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const Node& node : nodes) {
    if (node.op == Op::Conv || node.op == Op::Gemm) n += node.weight.numel() + node.bias.numel();
  }
  return n;
}

int64_t Graph::macs_per_sample() const {
  int64_t macs = 0;
  for (const Node& node : nodes) {
    if (node.op == Op::Conv) {
      // Every output element reduces over Cin/groups x kh x kw weights.
      const Value& out = values[node.output];
      macs += out.size() * (node.weight.numel() / node.weight.shape[0]);
    } else if (node.op == Op::Gemm) {
      macs += node.weight.numel();
    }
  }
  return macs;
}

double Graph::activation_elements_per_sample() const {
  double n = 0;
  for (const Value& v : values) n += static_cast<double>(v.size());
  return n;
}

double Graph::largest_im2col_elements_per_sample() const {
  double most = 0;
  for (const Node& node : nodes) {
    if (node.op != Op::Conv || node.weight.shape.empty() || node.weight.shape[0] < 1) continue;
    const double k = static_cast<double>(node.weight.numel() / node.weight.shape[0]);
    const Value& out = values[node.output];
    if (out.shape.empty() || out.shape[0] < 1) continue;
    const double positions = static_cast<double>(out.size() / out.shape[0]);
    most = std::max(most, k * positions * static_cast<double>(node.window.groups));
  }
  return most;
}

}  // namespace tilescale::model
