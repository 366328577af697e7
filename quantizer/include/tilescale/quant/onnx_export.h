// Export of the fake-quant path as a standard ONNX model (opset 13) that any ONNX runtime can run.
// Format, numerics and how to check it with ONNX Runtime: docs/export.md.
#pragma once

#include <string>

#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

inline constexpr int kExportOpset = 13;               // default-domain opset of the exported model
inline constexpr int kExportIrVersion = 7;            // ONNX IR version that introduced opset 13
inline constexpr const char* kExportInput = "input";  // [batch][C][H][W] float32, batch symbolic
inline constexpr const char* kExportOutput = "logits";  // [batch][classes] float32

// The ONNX model of make_fake_quant_graph(model), serialized (a ModelProto):
//   Conv/Gemm weights are int8 codes -> DequantizeLinear(1, 0) -> Mul by the realised block steps
//   (realized_weight_step: the hardware's fixed-point block multipliers, channel permutations
//   applied), which computes realized_weight() bit for bit and which ONNX Runtime's QDQ
//   transformers leave alone (a float weight initializer they would re-quantize); Gemm with
//   transB=1; every FakeQuant becomes QuantizeLinear + DequantizeLinear with a float scalar scale
//   and a uint8 (unsigned grid) or int8 (signed grid) zero point of 0; a grid narrower than 8 bits
//   gets a Clip at [lo * step, hi * step] after the DequantizeLinear, so it saturates at its own
//   codes.
// The other ops map one to one (Relu, Clip, Add/Sub/Mul/Div, MaxPool/AveragePool,
// GlobalAveragePool, Reshape, Concat, Pad). ONNX rounds half to even where tilescale rounds half
// up: the two agree except where x / step falls on (or within float rounding of) a tie. Throws
// InputError naming `source` for a graph it cannot express (a grid wider than 8 bits).
std::string fake_quant_onnx_bytes(const QuantizedModel& model, const std::string& source);

// Writes fake_quant_onnx_bytes(model, path) to path atomically (tilescale/core/atomic_file.h): the
// file appears complete or not at all. Throws InputError naming path on any failure.
void export_fake_quant_onnx(const QuantizedModel& model, const std::string& path);

}  // namespace tilescale::quant
