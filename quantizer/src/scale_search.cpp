#include "scale_search.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tilescale/model/float_executor.h"
#include "tilescale/model/layout.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

constexpr int64_t kMaxActSamples = 65536;

// Float fake-quantization with the integer path's rounding (int_arith.h).
inline float fq(float x, double step, IntRange r) {
  return static_cast<float>(quantize_to_grid(x, step, r) * step);
}

// Below this many multiplier bits the search works on realised steps (ScaleSearch::realised_step).
// From 16 bits on a multiplier is within 2^-17 of its real value: it moves a W8 weight by at most
// 2^-10 of a step, far below the grid's spacing (0.7% at 100 points), so the float steps are kept
// as they are and the default's bundles stay as they were.
constexpr int kRealisedStepBits = 16;

double weight_qmax_edge(int bits) { return std::ldexp(1.0, bits - 1) - 0.5; }

// Candidate indices to score, in stages. Small layers score the whole grid. A layer whose one
// output evaluation costs more than kFullGridMaxMacs multiply-accumulates scores every
// kCoarseStride-th point (and the last), then the points between the best coarse point's
// neighbours: 29 of 100 evaluations instead of 100. This assumes the error is unimodal at the
// coarse scale, which is what keeps ResNet-18-sized layers within minutes; the zoo's layers are all
// below the threshold and keep the exhaustive grid.
constexpr double kFullGridMaxMacs = 268435456.0;  // 2^28
constexpr int64_t kCoarseStride = 5;

std::vector<int64_t> coarse_indices(int64_t n) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; i += kCoarseStride) idx.push_back(i);
  if (idx.back() != n - 1) idx.push_back(n - 1);
  return idx;
}

std::vector<int64_t> refine_indices(int64_t n, int64_t best) {
  std::vector<int64_t> idx;
  for (int64_t i = std::max<int64_t>(0, best - kCoarseStride + 1);
       i <= std::min(n - 1, best + kCoarseStride - 1); ++i)
    if (i % kCoarseStride != 0 && i != n - 1) idx.push_back(i);
  return idx;
}

// C[m][n] = A[m][k] * B[k][n], row-major.
void gemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(n), 0.0f, c,
              static_cast<int>(n));
}

// Moves the current weights w_cur ([Cout][k]) and output Y ([Cout][P]) of `rows` to the weights
// of `cols` just quantized with step s: Y changes by (w_new - w_cur) times the input rows.
void apply_step(const LayerQuant& layer, const std::vector<int64_t>& rows,
                const std::vector<int64_t>& cols, float s, int64_t k, int64_t cout_g, int64_t P,
                const std::vector<float>& xq, std::vector<float>& w_cur, std::vector<float>& y) {
  const int64_t kb = static_cast<int64_t>(cols.size());
  for (int64_t o : rows) {
    const int64_t g = o / cout_g;
    std::vector<float> dw(static_cast<std::size_t>(kb));
    for (int64_t i = 0; i < kb; ++i) {
      const float nw = static_cast<float>(layer.q_weight[o * k + cols[i]] * s);
      dw[i] = nw - w_cur[o * k + cols[i]];
      w_cur[o * k + cols[i]] = nw;
    }
    float* yo = y.data() + o * P;
    for (int64_t i = 0; i < kb; ++i) {
      if (dw[i] == 0.0f) continue;
      const float* xr = xq.data() + (g * k + cols[i]) * P;
      for (int64_t p = 0; p < P; ++p) yo[p] += dw[i] * xr[p];
    }
  }
}

}  // namespace

ScaleSearch::ScaleSearch(QuantizedModel& model, const std::vector<std::vector<float>>& float_values,
                         int64_t images, const std::vector<float>& calib_input)
    : m_(model), images_(images), calib_input_(calib_input) {
  const std::size_t nv = m_.graph.values.size();
  act_peak_.assign(nv, 0.0f);
  act_samples_.assign(nv, {});
  for (std::size_t v = 0; v < nv; ++v) {
    if (m_.plan.scale_source[v] != static_cast<int>(v)) continue;
    const auto& vals = float_values[v];
    for (float x : vals) act_peak_[v] = std::max(act_peak_[v], std::fabs(x));
    const auto picks =
        sample_indices(static_cast<int64_t>(vals.size()), kMaxActSamples, m_.options.seed + v);
    for (int64_t i : picks) act_samples_[v].push_back(vals[i]);
  }
  step_scale_output_.assign(nv, false);
  for (const QOp& op : m_.plan.ops)
    if (op.kind == QOpKind::StepScale) step_scale_output_[op.output] = true;
  data_.resize(m_.layers.size());
  block_step_.resize(m_.layers.size());
  if (m_.options.adc) cim_.resize(m_.layers.size());
  for (std::size_t l = 0; l < m_.layers.size(); ++l) {
    sample_layer(l, float_values);
    if (m_.options.adc) init_cim(l);
    const int64_t blocks = m_.layers[l].grid.num_blocks();
    block_step_[l].resize(static_cast<std::size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) set_block(l, b, initial_step(l, b));
  }
}

void ScaleSearch::sample_layer(std::size_t l, const std::vector<std::vector<float>>& values) {
  const QOp& op = m_.plan.ops[m_.layers[l].op];
  const model::Node& node = m_.graph.nodes[op.node];
  const model::Value& in_v = m_.graph.values[op.inputs[0]];
  LayerData& d = data_[l];
  const BlockGrid& grid = m_.layers[l].grid;
  d.k = grid.reduction();
  const int64_t cout = grid.out_channels;
  const std::vector<float>& x = values[op.inputs[0]];
  const uint64_t seed = m_.options.seed * 1000003ull + l;
  const model::layout::ConvShape shape =
      model::layout::conv_shape(node, in_v, m_.graph.values[node.output]);
  d.groups = node.op == model::Op::Conv ? node.window.groups : 1;
  d.cout_g = cout / d.groups;
  const int64_t P = shape.positions(), cin = shape.cin_g * d.groups, plane = shape.h * shape.w;
  const auto picks = sample_indices(images_ * P, m_.options.calib_positions, seed);
  d.positions = static_cast<int64_t>(picks.size());
  d.x.resize(static_cast<std::size_t>(d.groups * d.k * d.positions));
  for (int64_t p = 0; p < d.positions; ++p) {
    const int64_t img = picks[p] / P;
    for (int64_t g = 0; g < d.groups; ++g)
      model::layout::im2col_onnx_column(shape, x.data() + (img * cin + g * shape.cin_g) * plane,
                                        picks[p] % P, d.x.data() + g * d.k * d.positions + p,
                                        d.positions);
  }
  // Reference output with float weights and float inputs. The bias cancels in the L2 error and is
  // left out there; the cosine of two outputs depends on it, so it is in both sides for cosine
  // (add_cosine_bias).
  d.y_ref.resize(static_cast<std::size_t>(cout * d.positions));
  for (int64_t g = 0; g < d.groups; ++g)
    gemm(d.cout_g, d.positions, d.k, node.weight.data.data() + g * d.cout_g * d.k,
         d.x.data() + g * d.k * d.positions, d.y_ref.data() + g * d.cout_g * d.positions);
  add_cosine_bias(l, d.y_ref);
  d.block_cols = grid.onnx_columns();
}

// Adds the layer's float bias to an output [Cout][positions] when the metric is cosine.
void ScaleSearch::add_cosine_bias(std::size_t l, std::vector<float>& y) const {
  if (m_.options.metric != SearchMetric::Cosine) return;
  const model::Node& node = m_.graph.nodes[m_.plan.ops[m_.layers[l].op].node];
  const int64_t P = data_[l].positions;
  for (std::size_t o = 0; o < node.bias.data.size(); ++o)
    for (int64_t p = 0; p < P; ++p) y[o * P + p] += node.bias.data[o];
}

double ScaleSearch::initial_step(std::size_t l, int64_t block) const {
  const LayerQuant& layer = m_.layers[l];
  const model::Node& node = m_.graph.nodes[m_.plan.ops[layer.op].node];
  const BlockGrid& grid = layer.grid;
  const LayerData& d = data_[l];
  const int64_t og = block / grid.red_groups, rg = block % grid.red_groups;
  float peak = 0.0f;
  for (int64_t o = 0; o < grid.out_channels; ++o) {
    if (grid.out_group[o] != og) continue;
    for (int64_t k : d.block_cols[rg])
      peak = std::max(peak, std::fabs(node.weight.data[o * d.k + k]));
  }
  if (peak == 0.0f) return 1.0;  // an all-zero block: any step quantizes it exactly
  const double s0 = peak / weight_qmax_edge(layer.w_bits);
  switch (layer.granularity.kind) {
    case GranularityKind::Mx:
      return std::ldexp(1.0, static_cast<int>(std::ceil(std::log2(s0))));  // no clipping
    case GranularityKind::Vsq: {
      // Per-channel float step times an integer vector scale in [1, 2^vsq_bits - 1].
      float row_peak = 0.0f;
      for (int64_t o = 0; o < grid.out_channels; ++o)
        if (grid.out_group[o] == og)
          for (int64_t k = 0; k < d.k; ++k)
            row_peak = std::max(row_peak, std::fabs(node.weight.data[o * d.k + k]));
      const double levels = std::ldexp(1.0, layer.granularity.vsq_bits) - 1.0;
      const double s_ch = row_peak / weight_qmax_edge(layer.w_bits) / levels;
      return s_ch * std::clamp(std::ceil(s0 / s_ch - 1e-9), 1.0, levels);
    }
    default:
      return s0;
  }
}

// The factors of the min-max step a layer's blocks try: grid_points points evenly over
// [weight_grid_lo, grid_hi] (the lower edge by the layer's bit width unless --grid-lo is set).
std::vector<double> ScaleSearch::weight_factors(std::size_t l) const {
  const int n = m_.options.grid_points;
  const double lo = weight_grid_lo(m_.options, m_.layers[l].w_bits), hi = m_.options.grid_hi;
  std::vector<double> f(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) f[i] = n == 1 ? lo : lo + (hi - lo) * i / (n - 1);
  return f;
}

// Records block b's choice (candidate index `pick` of n) for the grid report; the last search
// round's choice stands.
void ScaleSearch::note_choice(std::size_t l, int64_t b, int64_t pick, int64_t n) {
  const GranularityKind kind = m_.options.granularity.kind;
  if (kind == GranularityKind::Mx || kind == GranularityKind::Vsq) return;
  if (choice_.size() != m_.layers.size()) choice_.assign(m_.layers.size(), {});
  auto& c = choice_[l];
  if (c.empty()) c.assign(block_step_[l].size(), {-1, 0});
  c[b] = {pick, n};
}

void ScaleSearch::summarize_grid_use() {
  m_.grid_use.clear();
  for (std::size_t l = 0; l < choice_.size(); ++l) {
    if (choice_[l].empty()) continue;
    const int bits = m_.layers[l].w_bits;
    auto it = std::find_if(m_.grid_use.begin(), m_.grid_use.end(),
                           [&](const GridUse& g) { return g.w_bits == bits; });
    if (it == m_.grid_use.end()) {
      GridUse g;
      g.w_bits = bits;
      g.lo = weight_grid_lo(m_.options, bits);
      g.hi = m_.options.grid_hi;
      m_.grid_use.push_back(g);
      it = m_.grid_use.end() - 1;
    }
    const std::vector<double> f = weight_factors(l);
    for (const auto& [pick, n] : choice_[l]) {
      if (pick < 0) continue;
      ++it->blocks;
      it->at_lo += pick == 0 && n > 1;
      it->at_hi += pick == n - 1 && n > 1;
      it->factors.push_back(f[static_cast<std::size_t>(pick)]);
    }
  }
  std::sort(m_.grid_use.begin(), m_.grid_use.end(),
            [](const GridUse& a, const GridUse& b) { return a.w_bits < b.w_bits; });
  for (GridUse& g : m_.grid_use) std::sort(g.factors.begin(), g.factors.end());
}

std::vector<double> ScaleSearch::candidates(std::size_t l, int64_t block) const {
  const double s0 = initial_step(l, block);
  std::vector<double> c;
  switch (m_.layers[l].granularity.kind) {
    case GranularityKind::Mx:
      for (int e = -3; e <= 1; ++e) c.push_back(std::ldexp(s0, e));
      break;
    case GranularityKind::Vsq: {
      const double levels = std::ldexp(1.0, m_.layers[l].granularity.vsq_bits) - 1.0;
      // s0 = s_ch * v0; recover s_ch from the largest-vector step of this channel's grid.
      const LayerQuant& layer = m_.layers[l];
      const BlockGrid& grid = layer.grid;
      const model::Node& node = m_.graph.nodes[m_.plan.ops[layer.op].node];
      const int64_t og = block / grid.red_groups;
      float row_peak = 0.0f;
      for (int64_t o = 0; o < grid.out_channels; ++o)
        if (grid.out_group[o] == og)
          for (int64_t k = 0; k < data_[l].k; ++k)
            row_peak = std::max(row_peak, std::fabs(node.weight.data[o * data_[l].k + k]));
      const double s_ch = row_peak > 0 ? row_peak / weight_qmax_edge(layer.w_bits) / levels : 1.0;
      for (int v = 1; v <= static_cast<int>(levels); ++v) c.push_back(s_ch * v);
      break;
    }
    default:
      for (double f : weight_factors(l)) c.push_back(s0 * f);
  }
  // Each candidate is scored as the step the hardware applies, so the weights are quantized with
  // it too: a shift-only multiplier moves a float step by up to 41%, which a search on float steps
  // never sees. Candidates that realise the same step repeat; ties keep the first.
  for (double& step : c) step = realised_step(l, step);
  return c;
}

// The weight step block steps of layer l become in hardware: M = s_x * s / s_y rounded to
// --scale-bits (to_fixed_multiplier, as finalize_multipliers does with the float32 step), times
// s_y / s_x. A layer with float logits has s_y = s_x * (largest block step) (set_logit_steps).
// Identity at kRealisedStepBits bits and above, for float inputs, and for mx and vsq.
double ScaleSearch::realised_step(std::size_t l, double step) const {
  const int bits = m_.options.scale_bits;
  const QOp& op = m_.plan.ops[m_.layers[l].op];
  const ActQuant& in = m_.act_of(op.inputs[0]);
  const ActQuant& out = m_.act_of(op.output);
  // mx and vsq store their steps in a restricted form (E8M0, integer vector scales): kept.
  const GranularityKind kind = m_.layers[l].granularity.kind;
  if (bits >= kRealisedStepBits || kind == GranularityKind::Mx || kind == GranularityKind::Vsq ||
      in.is_float() || !(step > 0.0))
    return step;
  double s_y = out.scale;
  if (out.is_float()) {
    const float peak = *std::max_element(block_step_[l].begin(), block_step_[l].end());
    s_y = in.scale * peak;
  }
  const double s_x = in.scale;
  const FixedMultiplier f = to_fixed_multiplier(s_x * static_cast<float>(step) / s_y, bits);
  return f.m == 0 ? step : f.value() * s_y / s_x;
}

// Moves every block to its realised step (and requantizes its weights with it) once the
// activation grids are final: the activation search changes s_x and s_y after the weights were
// chosen, and minmax never searches weights at all. A float-logits layer's largest block has M = 1
// exactly, so its peak, and with it s_y, stays put.
void ScaleSearch::realise_steps() {
  if (m_.options.scale_bits >= kRealisedStepBits) return;
  set_logit_steps();
  for (std::size_t l = 0; l < m_.layers.size(); ++l) {
    std::vector<double> steps(block_step_[l].size());
    for (std::size_t b = 0; b < steps.size(); ++b) steps[b] = realised_step(l, block_step_[l][b]);
    for (std::size_t b = 0; b < steps.size(); ++b) set_block(l, static_cast<int64_t>(b), steps[b]);
  }
  set_logit_steps();
}

void ScaleSearch::set_block(std::size_t l, int64_t block, double step) {
  LayerQuant& layer = m_.layers[l];
  const model::Node& node = m_.graph.nodes[m_.plan.ops[layer.op].node];
  const BlockGrid& grid = layer.grid;
  const LayerData& d = data_[l];
  if (layer.q_weight.empty()) {
    layer.q_weight.assign(node.weight.data.size(), 0);
    layer.block_scale.assign(static_cast<std::size_t>(grid.num_blocks()), 0.0f);
  }
  // Stored as float32 (the bundle's precision); quantize with exactly the stored value.
  const float s = static_cast<float>(step);
  block_step_[l][block] = s;
  layer.block_scale[block] = s;
  const int64_t og = block / grid.red_groups, rg = block % grid.red_groups;
  const IntRange r = signed_range(layer.w_bits);
  for (int64_t o = 0; o < grid.out_channels; ++o) {
    if (grid.out_group[o] != og) continue;
    for (int64_t k : d.block_cols[rg])
      layer.q_weight[o * d.k + k] =
          static_cast<int8_t>(quantize_to_grid(node.weight.data[o * d.k + k], s, r));
  }
}

std::vector<float> ScaleSearch::quantized_columns(std::size_t l, double step) const {
  const LayerData& d = data_[l];
  const ActQuant& a = m_.act_of(m_.plan.ops[m_.layers[l].op].inputs[0]);
  if (a.is_float()) return d.x;
  std::vector<float> xq(d.x.size());
  const IntRange r = a.range();
  for (std::size_t i = 0; i < xq.size(); ++i) xq[i] = fq(d.x[i], step, r);
  return xq;
}

// Output error of layer l with its current quantized weights and the given input columns.
double ScaleSearch::layer_error(std::size_t l, const std::vector<float>& xq) const {
  const LayerQuant& layer = m_.layers[l];
  const LayerData& d = data_[l];
  const BlockGrid& grid = layer.grid;
  std::vector<float> w(static_cast<std::size_t>(grid.out_channels * d.k));
  for (int64_t o = 0; o < grid.out_channels; ++o)
    for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
      const double s = block_step_[l][grid.out_group[o] * grid.red_groups + rg];
      for (int64_t k : d.block_cols[rg])
        w[o * d.k + k] = static_cast<float>(layer.q_weight[o * d.k + k] * s);
    }
  std::vector<float> y(d.y_ref.size());
  for (int64_t g = 0; g < d.groups; ++g)
    gemm(d.cout_g, d.positions, d.k, w.data() + g * d.cout_g * d.k,
         xq.data() + g * d.k * d.positions, y.data() + g * d.cout_g * d.positions);
  return output_error(l, std::move(y));
}

// The search metric of a layer output y [Cout][positions] (without bias) against the reference.
double ScaleSearch::output_error(std::size_t l, std::vector<float> y) const {
  const LayerData& d = data_[l];
  add_cosine_bias(l, y);
  if (m_.options.metric == SearchMetric::L2) {
    double e = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i)
      e += (double(y[i]) - d.y_ref[i]) * (double(y[i]) - d.y_ref[i]);
    return e / static_cast<double>(y.size());
  }
  double dot = 0.0, ny = 0.0, nr = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    dot += double(y[i]) * d.y_ref[i];
    ny += double(y[i]) * y[i];
    nr += double(d.y_ref[i]) * d.y_ref[i];
  }
  return ny > 0 && nr > 0 ? 1.0 - dot / std::sqrt(ny * nr) : 1.0;
}

void ScaleSearch::search_weights_mse(std::size_t l) {
  const LayerQuant& layer = m_.layers[l];
  const model::Node& node = m_.graph.nodes[m_.plan.ops[layer.op].node];
  const BlockGrid& grid = layer.grid;
  const LayerData& d = data_[l];
  const IntRange r = signed_range(layer.w_bits);
  for (int64_t b = 0; b < grid.num_blocks(); ++b) {
    const int64_t og = b / grid.red_groups, rg = b % grid.red_groups;
    double best = std::numeric_limits<double>::infinity(), best_s = initial_step(l, b);
    const std::vector<double> cands = candidates(l, b);
    int64_t pick = -1;
    for (std::size_t ci = 0; ci < cands.size(); ++ci) {
      const double s = cands[ci];
      const float sf = static_cast<float>(s);
      double e = 0.0;
      for (int64_t o = 0; o < grid.out_channels; ++o) {
        if (grid.out_group[o] != og) continue;
        for (int64_t k : d.block_cols[rg]) {
          const float w = node.weight.data[o * d.k + k];
          const double diff = w - fq(w, sf, r);
          e += diff * diff;
        }
      }
      if (e < best) {
        best = e;
        best_s = s;
        pick = static_cast<int64_t>(ci);
      }
    }
    if (pick >= 0) note_choice(l, b, pick, static_cast<int64_t>(cands.size()));
    set_block(l, b, best_s);
  }
}

// PTQ-SL coordinate descent: for each block in turn, the candidate step that minimises the layer's
// output error with all other blocks fixed. The error change of a candidate is computed on the
// block's rows only: delta_Y[o] = (w_cand[o, cols] - w_cur[o, cols]) * Xq[cols, :].
void ScaleSearch::search_weights_output(std::size_t l) {
  LayerQuant& layer = m_.layers[l];
  const model::Node& node = m_.graph.nodes[m_.plan.ops[layer.op].node];
  const BlockGrid& grid = layer.grid;
  const LayerData& d = data_[l];
  const ActQuant& in = m_.act_of(m_.plan.ops[layer.op].inputs[0]);
  const std::vector<float> xq = quantized_columns(l, in.scale);
  const int64_t P = d.positions, cout = grid.out_channels;
  const IntRange r = signed_range(layer.w_bits);
  const bool cosine = m_.options.metric == SearchMetric::Cosine;
  // Through the ADCs a step that may clip costs one popcount per input bit x weight bit x 64 rows
  // (cim_search.h), so the ADC-aware search always takes the two-stage scan (29 of 100
  // candidates); the safe-step dot product made it cheaper since, but switching to the full grid
  // would change the bundles it writes.
  const bool coarse = !cim_.empty() || static_cast<double>(cout) * d.k * P > kFullGridMaxMacs;

  // Current output Y and its error E = Y - Y_ref.
  std::vector<float> w_cur(static_cast<std::size_t>(cout * d.k));
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
      const double s = block_step_[l][grid.out_group[o] * grid.red_groups + rg];
      for (int64_t k : d.block_cols[rg])
        w_cur[o * d.k + k] = static_cast<float>(layer.q_weight[o * d.k + k] * s);
    }
  std::vector<float> y(static_cast<std::size_t>(cout * P));
  // ADC-aware: each (channel, reduction group)'s current part of Y through the ADCs,
  // s_x * s_blk * (sum of its tiles' D), [Cout][red_groups][P]; Y is their sum.
  const bool adc = !cim_.empty();
  const int64_t nrg = grid.red_groups;
  std::vector<double> part;
  // Sets part and Y of channel o, block column rg, to the block's current codes and step.
  auto refresh_part = [&](int64_t o, int64_t rg, CimScratch& scratch, std::vector<double>& sums) {
    const double s = in.scale * block_step_[l][grid.out_group[o] * nrg + rg];
    sums.resize(static_cast<std::size_t>(P));
    cim_block_sums(l, o / d.cout_g, rg, layer.q_weight.data() + o * d.k, scratch, sums.data());
    double* po = part.data() + (o * nrg + rg) * P;
    float* yo = y.data() + o * P;
    for (int64_t p = 0; p < P; ++p) {
      const double v = s * sums[p];
      yo[p] = static_cast<float>(yo[p] + (v - po[p]));
      po[p] = v;
    }
  };
  // The ADC-aware search runs the rows of a block (and the channels here) on threads: each row's
  // numbers are its own and are summed in row order afterwards, so any thread count gives the
  // same bundle.
  const int threads = adc ? cim_threads() : 1;
  if (adc) {
    cim_planes(l, in.scale);
    part.assign(static_cast<std::size_t>(cout * nrg * P), 0.0);
#pragma omp parallel num_threads(threads)
    {
      CimScratch scratch;
      std::vector<double> sums;
#pragma omp for schedule(dynamic, 1)
      for (int64_t o = 0; o < cout; ++o)
        for (int64_t rg = 0; rg < nrg; ++rg) refresh_part(o, rg, scratch, sums);
    }
  } else {
    for (int64_t g = 0; g < d.groups; ++g)
      gemm(d.cout_g, P, d.k, w_cur.data() + g * d.cout_g * d.k, xq.data() + g * d.k * P,
           y.data() + g * d.cout_g * P);
  }
  add_cosine_bias(l, y);
  double dot = 0.0, ny = 0.0, nr = 0.0;  // for the cosine metric
  for (std::size_t i = 0; i < y.size(); ++i) {
    dot += double(y[i]) * d.y_ref[i];
    ny += double(y[i]) * y[i];
    nr += double(d.y_ref[i]) * d.y_ref[i];
  }

  std::vector<float> xb, delta, z;
  // With the L2 metric a block's choice depends only on its own output group's rows, so the
  // ADC-aware search gives each thread whole output groups (blocks of a group in order, as
  // serially): one parallel region per layer instead of one per block. The cosine metric sums over
  // all rows and keeps the serial block order, with threads inside each block.
  const int64_t n_og = grid.num_blocks() / nrg;
  const bool by_group = adc && !cosine && threads > 1 && n_og > 1;
  const int inner = by_group ? 1 : threads;
  note_choice(l, 0, -1, 0);  // allocates the choice table before the threads write to it
#pragma omp parallel for schedule(dynamic, 1) num_threads(by_group ? threads : 1)
  for (int64_t og = 0; og < n_og; ++og)
    for (int64_t rg = 0; rg < nrg; ++rg) {
      const int64_t b = og * nrg + rg;
      const auto& cols = d.block_cols[rg];
      const int64_t kb = static_cast<int64_t>(cols.size());
      const std::vector<double> cands = candidates(l, b);
      const int64_t nc_all = static_cast<int64_t>(cands.size());
      std::vector<double> l2(static_cast<std::size_t>(nc_all), 0.0), ddot(nc_all, 0.0),
          dny(nc_all, 0.0);
      std::vector<int64_t> rows;
      for (int64_t o = 0; o < cout; ++o)
        if (grid.out_group[o] == og) rows.push_back(o);
      const int64_t nrows = static_cast<int64_t>(rows.size());
      // Adds row o's error terms of candidate which[c], whose change of the row's output is zc [P].
      auto add_row_score = [&](int64_t o, const float* zc, double* rs) {
        const float* yo = y.data() + o * P;
        const float* ro = d.y_ref.data() + o * P;
        double e = 0.0, dd = 0.0, dn = 0.0;
        for (int64_t p = 0; p < P; ++p) {
          const double yn = double(yo[p]) + zc[p];
          e += (yn - ro[p]) * (yn - ro[p]);
          if (cosine) {
            dd += double(zc[p]) * ro[p];
            dn += yn * yn - double(yo[p]) * yo[p];
          }
        }
        rs[0] = e;
        rs[1] = dd;
        rs[2] = dn;
      };
      // Through the ADCs, per (row, candidate): the block's codes, the digital sums of the pairs
      // whose codes differ from the previous candidate's (the others share them), then the scores,
      // each pair on its own (threads over pairs: channelwise blocks have one row), summed in row
      // and candidate order afterwards. Rows go in chunks that bound the sums' memory.
      auto score_adc = [&](const std::vector<int64_t>& which) {
        const int64_t nc = static_cast<int64_t>(which.size());
        const int64_t chunk =
            std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, nc * P));
        for (int64_t r0 = 0; r0 < nrows; r0 += chunk) {
          const int64_t nr = std::min(chunk, nrows - r0), pairs = nr * nc;
          std::vector<int8_t> codes(static_cast<std::size_t>(pairs * kb));
          std::vector<int64_t> src(static_cast<std::size_t>(pairs));
          for (int64_t i = 0; i < pairs; ++i) {
            const int64_t o = rows[r0 + i / nc], c = i % nc;
            const float s = static_cast<float>(cands[which[c]]);
            int8_t* q = codes.data() + i * kb;
            for (int64_t j = 0; j < kb; ++j)
              q[j] =
                  static_cast<int8_t>(quantize_to_grid(node.weight.data[o * d.k + cols[j]], s, r));
            src[i] = c > 0 && std::equal(q, q + kb, q - kb) ? src[i - 1] : i;
          }
          std::vector<double> sums(static_cast<std::size_t>(pairs * P));
          std::vector<double> rs(static_cast<std::size_t>(pairs * 3));
#pragma omp parallel num_threads(inner)
          {
            CimScratch scratch;
            std::vector<int8_t> qrow;
            std::vector<float> zc(static_cast<std::size_t>(P));
#pragma omp for schedule(dynamic, 1)
            for (int64_t i = 0; i < pairs; ++i) {
              if (src[i] != i) continue;
              const int64_t o = rows[r0 + i / nc];
              qrow.assign(layer.q_weight.begin() + o * d.k, layer.q_weight.begin() + (o + 1) * d.k);
              for (int64_t j = 0; j < kb; ++j) qrow[cols[j]] = codes[i * kb + j];
              cim_block_sums(l, o / d.cout_g, rg, qrow.data(), scratch, sums.data() + i * P);
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t i = 0; i < pairs; ++i) {
              const int64_t o = rows[r0 + i / nc];
              const double sx =
                  in.scale * static_cast<double>(static_cast<float>(cands[which[i % nc]]));
              const double* si = sums.data() + src[i] * P;
              const double* po = part.data() + (o * nrg + rg) * P;
              for (int64_t p = 0; p < P; ++p) zc[p] = static_cast<float>(sx * si[p] - po[p]);
              add_row_score(o, zc.data(), rs.data() + i * 3);
            }
          }
          for (int64_t i = 0; i < pairs; ++i) {
            l2[which[i % nc]] += rs[i * 3];
            ddot[which[i % nc]] += rs[i * 3 + 1];
            dny[which[i % nc]] += rs[i * 3 + 2];
          }
        }
      };
      // Scores the candidates `which` (indices into cands) over the block's rows.
      auto score = [&](const std::vector<int64_t>& which) {
        if (adc) {
          score_adc(which);
          return;
        }
        const int64_t nc = static_cast<int64_t>(which.size());
        double rs[3];
        for (int64_t o : rows) {
          const int64_t g = o / d.cout_g;
          xb.resize(static_cast<std::size_t>(kb * P));
          for (int64_t i = 0; i < kb; ++i)
            std::copy_n(xq.begin() + (g * d.k + cols[i]) * P, P, xb.begin() + i * P);
          delta.resize(static_cast<std::size_t>(nc * kb));
          for (int64_t c = 0; c < nc; ++c) {
            const float s = static_cast<float>(cands[which[c]]);
            for (int64_t i = 0; i < kb; ++i) {
              const float w = node.weight.data[o * d.k + cols[i]];
              delta[c * kb + i] = fq(w, s, r) - w_cur[o * d.k + cols[i]];
            }
          }
          z.resize(static_cast<std::size_t>(nc * P));
          gemm(nc, P, kb, delta.data(), xb.data(), z.data());
          for (int64_t c = 0; c < nc; ++c) {
            add_row_score(o, z.data() + c * P, rs);
            l2[which[c]] += rs[0];
            ddot[which[c]] += rs[1];
            dny[which[c]] += rs[2];
          }
        }
      };
      auto value = [&](int64_t c) {
        return cosine ? -(dot + ddot[c]) / std::sqrt(std::max(ny + dny[c], 1e-30) * nr) : l2[c];
      };
      auto best_of = [&](const std::vector<int64_t>& which, int64_t best) {
        for (int64_t c : which)
          if (best < 0 || value(c) < value(best)) best = c;
        return best;
      };
      int64_t best = -1;
      if (!coarse || nc_all <= 2 * kCoarseStride) {
        std::vector<int64_t> all(static_cast<std::size_t>(nc_all));
        for (int64_t c = 0; c < nc_all; ++c) all[c] = c;
        score(all);
        best = best_of(all, -1);
      } else {
        const auto first = coarse_indices(nc_all);
        score(first);
        best = best_of(first, -1);
        const auto second = refine_indices(nc_all, best);
        score(second);
        // Ties keep the smaller index, as the exhaustive scan does.
        for (int64_t c : second)
          if (value(c) < value(best) || (value(c) == value(best) && c < best)) best = c;
      }
      set_block(l, b, cands[best]);
      note_choice(l, b, best, nc_all);
      // Update w_cur, Y and the cosine sums for the chosen step.
      if (adc) {
#pragma omp parallel num_threads(inner)
        {
          CimScratch scratch;
          std::vector<double> sums;
#pragma omp for schedule(dynamic, 1)
          for (int64_t ri = 0; ri < nrows; ++ri) refresh_part(rows[ri], rg, scratch, sums);
        }
      } else {
        apply_step(layer, rows, cols, static_cast<float>(block_step_[l][b]), d.k, d.cout_g, P, xq,
                   w_cur, y);
      }
      if (cosine) {
        dot += ddot[best];
        ny += dny[best];
      }
    }
}

// The step of one activation grid: candidates around min-max, scored by the output error of every
// layer that reads the tensor (or the tensor's own MSE when no layer reads it directly).
void ScaleSearch::search_activation(int value) {
  ActQuant& a = m_.acts[value];
  if (a.is_float()) return;
  // A StepScale output's step follows its input's (searched before it: value ids are in
  // topological order).
  if (step_scale_output_[value]) {
    derive_step_scales(m_);
    return;
  }
  std::vector<std::size_t> readers;
  for (std::size_t l = 0; l < m_.layers.size(); ++l)
    if (m_.plan.scale_source[m_.plan.ops[m_.layers[l].op].inputs[0]] == value) readers.push_back(l);
  const double s0 = std::max(act_peak_[value], 1e-8f) / (static_cast<double>(a.range().hi) + 0.5);
  const int n = m_.options.search == SearchMethod::Minmax ? 1 : m_.options.grid_points;
  const double lo = activation_grid_lo(m_.options), hi = m_.options.grid_hi;
  const bool by_output = m_.options.search == SearchMethod::Output && !readers.empty();
  double cost = 0.0;  // multiply-accumulates of one candidate's evaluation
  for (std::size_t l : readers)
    cost += static_cast<double>(m_.layers[l].grid.out_channels) * data_[l].k * data_[l].positions;
  auto step = [&](int64_t i) {
    const double f = n == 1 ? 1.0 : lo + (hi - lo) * i / (n - 1);
    return static_cast<float>(s0 * f);
  };
  std::vector<double> err(static_cast<std::size_t>(n), -1.0);
  auto eval = [&](int64_t i) {
    if (err[i] >= 0.0) return err[i];
    const float s = step(i);
    double v = 0.0;
    if (by_output) {
      for (std::size_t l : readers)
        v += cim_.empty() ? layer_error(l, quantized_columns(l, s))
                          : output_error(l, cim_output(l, s));
    } else {
      for (float x : act_samples_[value]) {
        const double diff = x - fq(x, s, a.range());
        v += diff * diff;
      }
    }
    return err[i] = v;
  };
  // Scans in index order and keeps the first minimum, so the two-stage scan picks what the
  // exhaustive one would whenever the minimum lies between the best coarse point's neighbours.
  auto scan = [&](const std::vector<int64_t>& which, int64_t best) {
    for (int64_t i : which)
      if (best < 0 || eval(i) < eval(best) || (eval(i) == eval(best) && i < best)) best = i;
    return best;
  };
  int64_t best = -1;
  if (by_output && (cost > kFullGridMaxMacs || !cim_.empty()) && n > 2 * kCoarseStride) {
    best = scan(coarse_indices(n), -1);
    best = scan(refine_indices(n, best), best);
  } else {
    std::vector<int64_t> all(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[i] = i;
    best = scan(all, -1);
  }
  a.scale = step(best);
}

void ScaleSearch::set_logit_steps() {
  for (const LayerQuant& layer : m_.layers) {
    const QOp& op = m_.plan.ops[layer.op];
    ActQuant& out = m_.acts[m_.plan.scale_source[op.output]];
    const ActQuant& in = m_.act_of(op.inputs[0]);
    if (!out.is_float() || in.is_float()) continue;
    const float peak = *std::max_element(layer.block_scale.begin(), layer.block_scale.end());
    out.scale = in.scale * peak;  // every block multiplier is then <= 1
  }
}

void ScaleSearch::refresh_quantized_inputs(std::size_t up_to_layer) {
  set_logit_steps();
  finalize_multipliers(m_);
  const model::Graph fq_graph = make_fake_quant_graph(m_);
  const auto values =
      model::FloatExecutor(fq_graph, model::FloatExecutorOptions{m_.options.threads})
          .run_all(calib_input_.data(), images_);
  // Keep the float reference output; only the inputs change.
  std::vector<float> keep = data_[up_to_layer].y_ref;
  sample_layer(up_to_layer, values);
  data_[up_to_layer].y_ref = std::move(keep);
  if (!cim_.empty()) cim_[up_to_layer].x_step = -1.0;  // new columns: rebuild the planes
}

void ScaleSearch::run() {
  const SearchMethod method = m_.options.search;
  std::vector<int> own;
  for (std::size_t v = 0; v < m_.acts.size(); ++v)
    if (m_.plan.scale_source[v] == static_cast<int>(v)) own.push_back(static_cast<int>(v));
  if (method == SearchMethod::Minmax) {
    for (int v : own) search_activation(v);
  } else if (method == SearchMethod::Wmse) {
    for (std::size_t l = 0; l < m_.layers.size(); ++l) search_weights_mse(l);
    for (int v : own) search_activation(v);
  } else {
    for (int round = 0; round < m_.options.rounds; ++round) {
      for (std::size_t l = 0; l < m_.layers.size(); ++l) {
        if (m_.options.calib_input == CalibInput::Quantized) refresh_quantized_inputs(l);
        search_weights_output(l);
      }
      for (int v : own) search_activation(v);
    }
  }
  set_logit_steps();
  derive_step_scales(m_);
  realise_steps();
  summarize_grid_use();
  if (m_.options.bias_correction == BiasCorrection::On) correct_biases();
}

// Bias correction: quantizing the weights moves each output channel's mean by
// sum_k (W_q - W)[o][k] * E[x_k]; E[x_k] is the mean of the layer's sampled input columns (the
// float model's inputs, or the quantized model's with --calib-input quantized; padding included as
// the zeros it is). Subtracting that shift from the bias restores the float model's output mean.
// W_q is the realised weight (code times the realised block step). Runs after the search, on the
// final steps; the search itself scores output error without the correction.
void ScaleSearch::correct_biases() {
  for (std::size_t l = 0; l < m_.layers.size(); ++l) {
    LayerQuant& layer = m_.layers[l];
    const model::Node& node = m_.graph.nodes[m_.plan.ops[layer.op].node];
    const LayerData& d = data_[l];
    const BlockGrid& grid = layer.grid;
    if (d.positions == 0) continue;
    std::vector<double> mean(static_cast<std::size_t>(d.groups * d.k), 0.0);
    for (std::size_t r = 0; r < mean.size(); ++r) {
      double sum = 0.0;
      for (int64_t p = 0; p < d.positions; ++p) sum += d.x[r * d.positions + p];
      mean[r] = sum / static_cast<double>(d.positions);
    }
    layer.bias_correction.assign(static_cast<std::size_t>(grid.out_channels), 0.0f);
    for (int64_t o = 0; o < grid.out_channels; ++o) {
      const int64_t g = o / d.cout_g;
      double shift = 0.0;
      for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
        const double s = block_step_[l][grid.out_group[o] * grid.red_groups + rg];
        for (int64_t k : d.block_cols[rg]) {
          const double wq = static_cast<float>(layer.q_weight[o * d.k + k] * s);
          shift += (wq - node.weight.data[o * d.k + k]) * mean[g * d.k + k];
        }
      }
      layer.bias_correction[o] = static_cast<float>(-shift);
    }
  }
}

}  // namespace tilescale::quant
