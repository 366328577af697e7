// ONNX import (Debian libonnx-dev protobufs): opsets 9-17, BatchNormalization folded, Identity and
// Dropout removed, Constant nodes turned into constants.
#pragma once

#include <string>

#include "tilescale/model/graph.h"

namespace tilescale::model {

// Reads an ONNX model file and returns the imported graph. Supported ops: Conv, Gemm, MatMul
// (constant right operand), BatchNormalization, Relu, Clip, Add, Sub, Mul, Div, MaxPool,
// AveragePool, GlobalAveragePool, Flatten, Reshape, Concat, Pad (constant), Identity, Dropout,
// Constant, and QuantizeLinear+DequantizeLinear pairs (per-tensor, zero point 0; read as one
// FakeQuant). Throws InputError naming the file (and the node and op type where one is at fault)
// for a missing or malformed file, an unsupported opset, an unknown op, or a shape it cannot
// resolve statically.
Graph import_onnx(const std::string& path);

// The same from bytes already in memory; source names them in messages.
Graph import_onnx_bytes(const std::string& bytes, const std::string& source);

}  // namespace tilescale::model
