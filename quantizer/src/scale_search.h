// The scale searches behind quantize(): min-max, weight MSE, and PTQ-SL's output-error coordinate
// descent over block steps alternating with activation steps (DESIGN.md section 3).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tilescale/quant/int_cim.h"
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
  // layer's crossbar numerics and the bit planes of its sampled input columns at one input step.
  struct CimData {
    kernels::CimGemm c;  // adc, a_bits, a_signed, w_bits, wide, shift, steps, tiles, word0
    std::vector<std::vector<int64_t>> tile_rows;  // per tile: ONNX reduction index of each row
    std::vector<std::vector<int64_t>> rg_tiles;   // per reduction group: its tiles
    double x_step = -1.0;                         // input step the planes below were built for
    std::vector<uint64_t> xplanes;                // [groups][positions][a_bits][words]
    std::vector<kernels::StepInfo> info;          // [groups][positions][tiles][steps]
  };
  void init_cim(std::size_t l);
  // Builds (or keeps, if already built for `step`) the input bit planes of layer l at `step`.
  void cim_planes(std::size_t l, double step);
  // Offset-binary weight planes [wide][words] of output channel o with codes q (ONNX reduction
  // order, length k) on the tiles of reduction group rg (other words left as they are).
  void cim_weight_planes(std::size_t l, int64_t rg, const int8_t* q,
                         std::vector<uint64_t>& w) const;
  // out[p] = sum over rg's tiles of adc.h's D at each sampled position p of group g.
  void cim_block_sums(std::size_t l, int64_t g, int64_t rg, const std::vector<uint64_t>& w,
                      double* out) const;
  // Layer output [Cout][positions] through the ADCs with the current codes and steps, at input
  // step x_step (the planes are rebuilt for it).
  std::vector<float> cim_output(std::size_t l, double x_step);

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
