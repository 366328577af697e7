// The scale searches behind quantize(): min-max, weight MSE, and PTQ-SL's output-error coordinate
// descent over block steps alternating with activation steps (DESIGN.md section 3).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tilescale/quant/cim_search.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

class ScaleSearch {
 public:
  // float_values: every graph value on the calibration images (FloatExecutor::run_all);
  // calib_input: those images, for refreshing inputs in CalibInput::Quantized mode.
  ScaleSearch(QuantizedModel& model, const std::vector<std::vector<float>>& float_values,
              int64_t images, const std::vector<float>& calib_input);
  void run();

 private:
  // One layer's search data: sampled im2col columns of its input and the float reference output.
  struct LayerData {
    int64_t groups = 1, cout_g = 0, k = 0, positions = 0;  // GEMM shape per group
    std::vector<float> x;      // [groups][k][positions] float input columns, ONNX reduction order
    std::vector<float> y_ref;  // [Cout][positions] float output (weights and inputs unquantized)
    std::vector<std::vector<int64_t>> block_cols;  // per reduction group: ONNX k indices
  };

  // The ADC-aware search's data of one layer (options.adc set, scale_search_cim.cpp): the
  // layer's crossbar numerics and what its sampled input columns give at one input step
  // (kernels::CimSearchInputs, quant/cim_search.h).
  struct CimData {
    kernels::CimGemm c;               // kernels::cim_gemm_numerics of the layer's row tiles
    std::vector<int64_t> onnx_index;  // per hardware reduction index: its ONNX index
    std::vector<std::vector<int64_t>> rg_tiles;  // per reduction group: its tiles
    double x_step = -1.0;                        // input step `in` was built for
    std::vector<kernels::CimSearchInputs> in;    // per group
  };
  // One thread's buffers for cim_block_sums.
  struct CimScratch {
    std::vector<int8_t> q;       // [k] codes in hardware order
    std::vector<int16_t> w16;    // [k]
    std::vector<uint64_t> wpl;   // [wide][words]
    std::vector<int32_t> codes;  // [positions][k] input codes (cim_planes)
  };
  void init_cim(std::size_t l);
  // Builds (or keeps, if already built for `step`) the inputs of layer l at `step`.
  void cim_planes(std::size_t l, double step);
  // out[p] = sum over reduction group rg's tiles of adc.h's D at each sampled position p of group
  // g, for output channel codes q (ONNX reduction order, length k).
  void cim_block_sums(std::size_t l, int64_t g, int64_t rg, const int8_t* q, CimScratch& s,
                      double* out) const;
  // Layer output [Cout][positions] through the ADCs with the current codes and steps, at input
  // step x_step (the inputs are rebuilt for it).
  std::vector<float> cim_output(std::size_t l, double x_step);
  // Threads of the ADC-aware search (options.threads, 0 = all cores).
  int cim_threads() const;

  void sample_layer(std::size_t l, const std::vector<std::vector<float>>& values);
  void refresh_quantized_inputs(std::size_t up_to_layer);
  std::vector<double> weight_factors(std::size_t l) const;
  std::vector<double> candidates(std::size_t l, int64_t block) const;
  void note_choice(std::size_t l, int64_t block, int64_t pick, int64_t n);
  void summarize_grid_use();
  void correct_biases();
  void add_cosine_bias(std::size_t l, std::vector<float>& y) const;
  double initial_step(std::size_t l, int64_t block) const;
  void set_block(std::size_t l, int64_t block, double step);
  void search_weights_output(std::size_t l);
  void search_weights_mse(std::size_t l);
  void search_activation(int value);
  std::vector<float> quantized_columns(std::size_t l, double step) const;
  double layer_error(std::size_t l, const std::vector<float>& xq) const;
  double output_error(std::size_t l, std::vector<float> y) const;
  void set_logit_steps();
  double realised_step(std::size_t l, double step) const;
  void realise_steps();

  QuantizedModel& m_;
  int64_t images_;
  const std::vector<float>& calib_input_;
  std::vector<LayerData> data_;
  std::vector<CimData> cim_;                     // per layer when options.adc is set, else empty
  std::vector<std::vector<double>> block_step_;  // [layer][block] current step
  std::vector<float> act_peak_;                  // per value: max |x| on the calibration set
  std::vector<bool> step_scale_output_;          // per value: a StepScale op's output
  std::vector<std::vector<float>> act_samples_;  // per value: up to 65536 calibration samples
  // per layer, per block: (chosen candidate index, candidates) of the weight search; empty = none
  std::vector<std::vector<std::pair<int64_t, int64_t>>> choice_;
};

}  // namespace tilescale::quant
