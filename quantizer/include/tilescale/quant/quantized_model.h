// A quantized network: the (possibly channel-permuted) float graph, its integer plan, activation
// grids, and per Conv/Gemm layer the integer weights, block scales and the fixed-point multipliers
// the hardware uses. This is what a bundle stores and what every executor reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/adc.h"
#include "tilescale/quant/granularity.h"
#include "tilescale/quant/int_arith.h"
#include "tilescale/quant/int_kernels.h"
#include "tilescale/quant/layer_granularity.h"
#include "tilescale/quant/quant_plan.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::quant {

enum class SearchMethod { Minmax, Wmse, Output };
inline constexpr auto kSearchMethodNames =
    make_enum_names<SearchMethod>("search method", {{SearchMethod::Minmax, "minmax"},
                                                    {SearchMethod::Wmse, "wmse"},
                                                    {SearchMethod::Output, "output"}});
enum class SearchMetric { L2, Cosine };
inline constexpr auto kSearchMetricNames = make_enum_names<SearchMetric>(
    "search metric", {{SearchMetric::L2, "l2"}, {SearchMetric::Cosine, "cosine"}});
// Bias correction (LayerQuant::bias_correction), on by default: measured to help at W2-W4 on
// MobileNet and at W2-W3 on resnet8 (docs/search.md).
enum class BiasCorrection { On, Off };
inline constexpr auto kBiasCorrectionNames = make_enum_names<BiasCorrection>(
    "bias correction", {{BiasCorrection::On, "on"}, {BiasCorrection::Off, "off"}});

enum class CalibInput { Float, Quantized };
inline constexpr auto kCalibInputNames = make_enum_names<CalibInput>(
    "calibration input", {{CalibInput::Float, "float"}, {CalibInput::Quantized, "quantized"}});

// The range checks of QuantOptions, one per option (grid_lo and grid_hi together).
enum class QuantCheck {
  WBits,
  ABits,
  FirstLast,
  ScaleBits,
  GridPoints,
  GridRange,
  Rounds,
  CalibImages,
  CalibPositions,
  Threads
};
inline constexpr QuantCheck kQuantChecks[] = {QuantCheck::WBits,          QuantCheck::ABits,
                                              QuantCheck::FirstLast,      QuantCheck::ScaleBits,
                                              QuantCheck::GridPoints,     QuantCheck::GridRange,
                                              QuantCheck::Rounds,         QuantCheck::CalibImages,
                                              QuantCheck::CalibPositions, QuantCheck::Threads};

// The checked field as QuantOptions and the bundle manifest name it ("w_bits", "grid_lo, grid_hi").
const char* field_name(QuantCheck c);

struct QuantOptions {
  Granularity granularity;  // weight scale sharing of every layer not in layer_granularity
  LayerGranularity layer_granularity;  // per-layer overrides, by Conv/Gemm node name
  int w_bits = 4;                      // weight bits, 2..8
  int a_bits = 8;                      // activation bits, 4..8, or 32 for float activations
  int first_last_bits = 0;             // 0: none; else w and a bits of the first and last layer
  int scale_bits = 16;  // mantissa bits of the fixed-point multipliers (1 = shift only)
  SearchMethod search = SearchMethod::Output;
  SearchMetric metric = SearchMetric::L2;
  CalibInput calib_input = CalibInput::Float;
  int grid_points = 100;      // step candidates per block
  double grid_lo = 0.0;       // smallest candidate / start step; 0 = by bit width (grid_lo_for)
  double grid_hi = 1.2;       // largest candidate / start step
  int rounds = 2;             // alternating weight / activation rounds
  int64_t calib_images = 32;  // calibration images from the train split
  int64_t calib_positions = 2048;  // output positions per layer sampled for the search objective
  uint64_t seed = 0;               // calibration sampling and reorder
  ReorderMethod reorder = ReorderMethod::None;  // channel reordering
  // Fold the expected output shift of each layer's weight quantization, measured on the
  // calibration inputs, into its bias (LayerQuant::bias_correction).
  BiasCorrection bias_correction = BiasCorrection::On;
  int threads = 0;  // 0 = all cores
  // The CIM macro the search is for (ADC-aware search, docs/search.md): when set, the output
  // search scores each layer's output through adc.h's numerics (crossbar row tiles, bit slices,
  // bit-serial inputs, the ADC) instead of the ideal integer product. Needs integer activations.
  // Built by the CLI from a cim arch config (the quantizer knows no arch config).
  std::optional<AdcNumerics> adc;

  // One range check: throws InputError describing the value and the allowed range ("9 is outside
  // 2..8") without saying where the value came from; the caller adds that with with_source (the
  // CLI its flag).
  void check(QuantCheck c) const;
  // Every check, each message prefixed with its field name ("w_bits: 9 is outside 2..8").
  void validate() const;
  // The granularity of layer `name`: its layer_granularity entry, else `granularity`. A vsq entry
  // takes granularity.vsq_bits.
  Granularity granularity_of(const std::string& name) const;
};

// Smallest weight-step candidate, as a factor of the block's min-max step, for a layer of w_bits
// bits: options.grid_lo when set, else kAutoGridLo by bit width. The weight-MSE and output-error
// optima of coarse blocks lie far below min-max at 2-3 bits (docs/search.md has the measured
// positions), so a fixed [0.5, 1.2] grid clipped them at its lower edge.
double weight_grid_lo(const QuantOptions& options, int w_bits);
// Smallest activation-step candidate: options.grid_lo when set, else 0.5.
double activation_grid_lo(const QuantOptions& options);

// How the weight-step search used its grid (reported by quantize, not stored in the bundle): per
// searched block, the chosen candidate's factor of the min-max step, and whether it sat on the
// grid's lower or upper edge (a sign that the grid is too narrow there). Layer-, channel- and
// block-granular searches only (mx and vsq have their own candidate sets).
struct GridUse {
  int w_bits = 0;                   // the layers' weight bits this entry counts
  double lo = 0.0, hi = 0.0;        // the grid (factors of the min-max step)
  int64_t blocks = 0;               // blocks searched
  int64_t at_lo = 0, at_hi = 0;     // chosen factor on the lower / upper edge
  std::vector<double> factors;      // chosen factor per block, ascending
  double quantile(double q) const;  // of factors (0 when empty)
};

// The grid of one quantized activation tensor.
struct ActQuant {
  float scale = 0.0f;     // step (real value per code)
  int bits = 8;           // 4..8, or 32 for float activations
  bool is_signed = true;  // signed two's complement or unsigned
  IntRange range() const { return is_signed ? signed_range(bits) : unsigned_range(bits); }
  bool is_float() const { return bits >= 32; }
};

struct LayerQuant {
  int op = -1;                     // index into QuantPlan::ops (a Gemm op)
  std::string name;                // graph node name
  int w_bits = 4;                  // weight bits of this layer
  Granularity granularity;         // its weight scale sharing (QuantOptions::granularity_of)
  BlockGrid grid;                  // which weights share a scale
  std::vector<int8_t> q_weight;    // integer weights, ONNX layout [Cout][Cin/g][kh][kw]
  std::vector<float> block_scale;  // [num_blocks] weight step s_w of each block
  // Hardware form, filled by finalize_multipliers(): M = s_x * s_w / s_y per block as m * 2^-r.
  std::vector<FixedMultiplier> multiplier;  // [num_blocks]
  int frac_bits = 0;                        // F = max r: fractional bits of the accumulator
  std::vector<int64_t> bias_q;              // [Cout] round_half_up(layer_bias / s_y * 2^F)
  // [Cout] added to the float bias before bias_q (bias correction: minus the mean of
  // (W_q - W) x over the calibration inputs); empty = none.
  std::vector<float> bias_correction;
};

// The integer form of an Affine plan op (kernels::affine), derived by finalize_multipliers() from
// the graph's constants (compose_affine) and the input and output grids; not stored in bundles.
struct AffineQuant {
  std::vector<kernels::AffineTerm> terms;  // one per entry of the composed constants
  int64_t run = 1;                         // elements per entry (AffineConstants::run)
};

// How quantize() decided a reorder (docs/reorder.md): the spaces the error-driven choice moved and
// the network-level check against the same quantization without reordering. Not stored in bundles.
struct ReorderCheck {
  int spaces_reordered = 0;     // spaces whose chosen order is not the identity
  bool checked = false;         // the network-level check ran (some space was reordered)
  int64_t images = 0;           // check images (a seeded draw from the calibration split)
  int64_t agree_reordered = 0;  // check images whose integer-path top-1 is the float one's
  int64_t agree_identity = 0;   // the same without reordering
  double kl_reordered = 0.0;    // mean KL(float || integer path) on the check images, reordered
  double kl_identity = 0.0;     // the same without reordering
  bool kept = false;            // reordered kept: more agreement, or as much and a lower KL
};

struct QuantizedModel {
  QuantOptions options;
  ReorderCheck reorder_check;  // filled by quantize(), not stored
  std::string model_sha256;    // of the source ONNX file
  model::Graph graph;          // float graph with permutations applied
  QuantPlan plan;
  std::vector<ActQuant> acts;      // per value id (meaningful where plan.scale_source[v] == v)
  std::vector<LayerQuant> layers;  // one per plan.layer_ops entry, same order
  std::vector<std::vector<int64_t>> permutations;  // per value id: channel order, empty = identity
  std::vector<GridUse>
      grid_use;  // per weight bit width searched (wmse/output), ascending; report only
  std::vector<AffineQuant> affine;  // per plan op: Affine ops' terms (finalize_multipliers)

  const ActQuant& act_of(int value) const { return acts[plan.scale_source[value]]; }
  // Codes a plan op writes: its output grid intersected with the Relu/Clip fused into it
  // (kernels::activation_range).
  IntRange output_range(const QOp& op) const;
  // Output step of a Gemm layer's grid: its output tensor's scale, or for the logits layer a step
  // chosen so that every block multiplier is <= 1 (logits are then acc * 2^-F * step).
  float output_step(const LayerQuant& layer) const;
};

// The float bias of output channel o as the quantized layer uses it: the graph's bias plus the
// layer's bias correction, rounded to float32.
float layer_bias(const QuantizedModel& model, const LayerQuant& layer, std::size_t o);

// Storage cost of a quantized model's Conv/Gemm weights.
struct QuantSummary {
  int64_t weights = 0;       // quantized weights
  int64_t scales = 0;        // weight scales (blocks; vsq counts vectors, plus channels)
  double weight_bits = 0.0;  // sum of code bits
  double scale_bits = 0.0;   // sum of scale storage bits: float32 per scale, E8M0 (8) for mx, vsq
                             // vsq_bits per vector plus a float32 per channel
  double bits_per_weight() const { return weights ? (weight_bits + scale_bits) / weights : 0.0; }
};
QuantSummary summarize(const QuantizedModel& model);

// Recomputes every LayerQuant's multipliers, F and bias_q from scales and the float biases, and
// every Affine op's terms (kernels::affine_term) from the graph's constants and its grids.
// Throws InputError if a layer's accumulator could exceed 62 bits or its F lies outside
// -kMaxShift..kMaxShift (int_arith.h), or an Affine op's term is refused (naming the node).
void finalize_multipliers(QuantizedModel& model);

// The factor of a StepScale op (its chain's one positive constant).
double step_scale_factor(const QuantizedModel& model, const QOp& op);
// Sets the grid of every StepScale op's output from its input's: step = float(s_x * factor), the
// same bits and signedness, so the codes pass unchanged (exact: no rounding). In plan order, so a
// StepScale of a StepScale follows.
void derive_step_scales(QuantizedModel& model);

// Per weight (ONNX layout), the step the hardware realises for its block: (m * 2^-r) * s_y / s_x
// computed in double and rounded once to float32 (the block scale s_w with float activations).
std::vector<float> realized_weight_step(const QuantizedModel& model, const LayerQuant& layer);
// Dequantized weight of a layer as the hardware realises it: float(q) * realized_weight_step, one
// float32 product per weight, so the float fake-quant path carries the same multiplier rounding as
// the integer path and the exported ONNX (DequantizeLinear then Mul) computes the same bits.
std::vector<float> realized_weight(const QuantizedModel& model, const LayerQuant& layer);

}  // namespace tilescale::quant
