// ONNX writer: a Graph as a standard ONNX model (default-domain opset 13, IR version 7) that any
// ONNX runtime can run. The quantizer's export (tilescale/quant/onnx_export.h) builds on it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::model {

inline constexpr int kWriteOpset = 13;     // default-domain opset of written models
inline constexpr int kWriteIrVersion = 7;  // ONNX IR version that introduced opset 13

struct OnnxWriteOptions {
  std::string graph_name = "tilescale";  // GraphProto name
  std::string doc_string;                // ModelProto doc_string
  std::string producer_version;          // ModelProto producer_version (producer: "tilescale")
  std::string input_name = "input";      // the network input: [batch][per-sample shape] float32
  std::string output_name = "output";    // the network output: [batch][per-sample shape] float32
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props, in this order
};

// The serialized ModelProto of `graph`, batch axis symbolic ("N"). Ops map one to one (Conv and
// Gemm with their weights and biases as initializers, Gemm with transB=1; a weight with an integer
// form (Node::weight_codes) becomes DequantizeLinear(int8 codes, 1, 0) -> Mul(weight_step), checked
// to reproduce `weight` bit for bit; Relu, Clip,
// Add/Sub/Mul/Div, MaxPool/AveragePool, GlobalAveragePool, Reshape, Concat, Pad); a FakeQuant
// becomes QuantizeLinear + DequantizeLinear with a float scalar scale and a uint8 (unsigned grid)
// or int8 (signed grid) zero point of 0, and a grid narrower than 8 bits gets a Clip at [lo * step,
// hi * step] after the DequantizeLinear, so it saturates at its own codes. Every other value keeps
// its name, made unique. Throws InputError naming `source` for a graph it cannot express (a grid
// wider than 8 bits, a non-positive step, an integer weight form that does not give the weight).
std::string graph_onnx_bytes(const Graph& graph, const OnnxWriteOptions& options,
                             const std::string& source);

}  // namespace tilescale::model
