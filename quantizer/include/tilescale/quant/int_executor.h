// The golden integer executor: the specification every simulator and RTL block is checked against.
// All arithmetic follows int_arith.h, op by op in int_kernels.h; the only float steps are the host
// pre-processing before the first Quantize and the final conversion of the logits to real numbers.
// Conv/Gemm layers run int_gemm_fast.h's folded double GEMM where its exactness bound holds (the
// same codes as int_kernels.h's conv_gemm_blocks, which runs elsewhere).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "tilescale/quant/adc.h"
#include "tilescale/quant/int_cim.h"
#include "tilescale/quant/int_gemm_fast.h"
#include "tilescale/quant/int_kernels.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// The kernel view of a Conv/Gemm layer of `model` (kernels::conv_gemm_blocks); it points into
// `model` and `layer`.
kernels::GemmLayer gemm_layer_of(const QuantizedModel& model, const LayerQuant& layer);

// How Conv/Gemm layers compute their block sums. Both give the same codes (int_gemm_fast.h proves
// it); Reference exists so tests and benchmarks can compare the two.
enum class IntGemm {
  Fast,       // kernels::conv_gemm (the int16 route, else the folded double GEMM, where their
              // bounds hold, else conv_gemm_blocks) and kernels::add_fast
  Reference,  // kernels::conv_gemm_blocks and kernels::add only
};

class IntExecutor {
 public:
  // Throws InputError naming the graph's file if one sample per thread would not fit the memory
  // budget (core/memory_budget.h); runs fewer than 8 samples per chunk if 8 would not.
  // With `adc`, every Conv/Gemm layer runs on a CIM macro of those numerics (adc.h, int_cim.h):
  // each crossbar row tile's partial sum passes the bit-serial inputs, bit slices and ADCs, and
  // `gemm` is not used. Throws InputError naming the layer if a layer cannot take them.
  explicit IntExecutor(const QuantizedModel& model, int threads = 0, IntGemm gemm = IntGemm::Fast,
                       std::optional<AdcNumerics> adc = std::nullopt);

  // Real-valued network output for n NCHW float32 samples: [n][output size]. For a final Gemm this
  // is acc * 2^-F * s_y (no requantization), else the output codes times their step.
  void run(const float* input, int64_t n, float* output) const;

  // The integer value of every tensor the plan computes: codes[v] is [n][size] for every value that
  // is an op output (the logits of a final Gemm hold the int64 accumulator with F fractional bits);
  // empty for host-only values and values folded away by fusion. Throws InputError if n samples
  // would not fit the memory budget.
  std::vector<std::vector<int64_t>> run_codes(const float* input, int64_t n) const;

  // Computes a Conv/Gemm layer of one sample in place of the kernels: (index into model.layers,
  // the layer input's codes (CHW), the output buffer to fill ([groups * n][m] codes, or the int64
  // accumulators with F fractional bits of a float output)).
  using GemmHook = std::function<void(std::size_t layer, const int64_t* input, int64_t* output)>;
  // run_codes for one sample with every Conv/Gemm layer computed by `gemm` (a simulator) and every
  // other op (Quantize, Add, Affine, StepScale, pools, Concat, Pad, Clamp, Reshape) by this
  // executor's own kernels, so a simulated network is chained exactly as the golden one runs.
  std::vector<std::vector<int64_t>> run_codes_chained(const float* input,
                                                      const GemmHook& gemm) const;

  int threads() const { return threads_; }
  int64_t chunk() const { return chunk_; }  // samples per chunk in run()
  // Layers whose folded weights exist (fold bound S < 2^53); each still checks its inputs per call.
  int64_t folded_layers() const;
  // How many Conv/Gemm calls (one per layer and chunk) each route of kernels::conv_gemm took so far
  // (IntGemm::Reference: all Blocks).
  int64_t path_calls(kernels::GemmPath path) const;

 private:
  struct Workspace;
  void run_chunk(const float* input, int64_t n, Workspace& ws) const;
  void run_op(std::size_t op, int64_t n, Workspace& ws) const;
  void real_output(const Workspace& ws, int64_t n, float* out) const;

  const QuantizedModel& model_;
  int threads_;
  int64_t chunk_ = 8;  // samples a worker runs through the network at a time
  double
      bytes_per_sample_;  // int64 codes of every value + the im2col of the largest Conv (doubles)
  std::vector<int> layer_of_op_;             // per plan op: index into model.layers, or -1
  std::vector<kernels::FoldedGemm> folded_;  // per layer; empty with IntGemm::Reference or an ADC
  bool fast_ = true;                         // IntGemm::Fast: also the vectorised Add
  // Calls per GemmPath (Int16, Folded, Blocks); shared so the executor stays copyable.
  std::shared_ptr<std::array<std::atomic<int64_t>, 3>> path_calls_ =
      std::make_shared<std::array<std::atomic<int64_t>, 3>>();
  std::vector<kernels::CimGemm> cim_;  // per layer with an ADC, else empty
};

}  // namespace tilescale::quant
