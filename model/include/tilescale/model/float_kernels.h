// Float32 kernels of the reference executor, one per graph op, over a chunk of n samples (NCHW).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::model::kernels {

// A clamp applied to Conv/Gemm outputs when a following Relu/Clip is fused into them.
struct Clamp {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
};
Clamp clamp_of(const Node& activation);

// a op b for Add, Sub, Mul, Div in float32; the host pre-processing of the integer path uses it
// too, so both paths quantize bit-identical inputs.
float apply_binary(Op op, float a, float b);  // Relu -> [0, inf), Clip -> [min, max]

// Per-thread temporary buffers, grown on demand.
struct Scratch {
  std::vector<float> col;   // im2col matrix [K][n * Ho * Wo]
  std::vector<float> gemm;  // GEMM result [Cout/groups][n * Ho * Wo]
};

// GlobalAveragePool of n samples of [hw][c] (NHWC) into [c]: per channel the same sum in the same
// order as the NCHW loop of run_node, so both give the same bits.
void global_average_pool_nhwc(int64_t n, int64_t c, int64_t hw, const float* in, float* out);

// Runs one node on n samples. ins[i] holds [n][size of input i]; out receives [n][output size].
void run_node(const Graph& g, const Node& node, int64_t n, const std::vector<const float*>& ins,
              float* out, const Clamp& clamp, Scratch& scratch);

}  // namespace tilescale::model::kernels
