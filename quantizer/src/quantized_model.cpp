#include "tilescale/quant/quantized_model.h"

#include <algorithm>
#include <cmath>

#include "tilescale/core/error.h"
#include "tilescale/quant/affine.h"
#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant {

namespace {
// The automatic lower grid edge by weight bits (index = bits). Measured weight-MSE optima of
// resnet8 block:16x16 (docs/search.md): below 0.5 x min-max for most blocks at W2 and a third at
// W3, none below 0.2; so W2/W3 start at 0.15, W4 at 0.3, wider grids at 0.5 as before.
constexpr double kAutoGridLo[9] = {0.5, 0.5, 0.15, 0.15, 0.3, 0.5, 0.5, 0.5, 0.5};
constexpr double kAutoGridLoMax = 0.5;
}  // namespace

double weight_grid_lo(const QuantOptions& options, int w_bits) {
  if (options.grid_lo > 0.0) return options.grid_lo;
  return kAutoGridLo[std::clamp(w_bits, 0, 8)];
}

double activation_grid_lo(const QuantOptions& options) {
  return options.grid_lo > 0.0 ? options.grid_lo : 0.5;
}

double GridUse::quantile(double q) const {
  if (factors.empty()) return 0.0;
  const std::size_t i = static_cast<std::size_t>(std::lround(q * double(factors.size() - 1)));
  return factors[std::min(i, factors.size() - 1)];
}

const char* field_name(QuantCheck c) {
  switch (c) {
    case QuantCheck::WBits:
      return "w_bits";
    case QuantCheck::ABits:
      return "a_bits";
    case QuantCheck::FirstLast:
      return "first_last_bits";
    case QuantCheck::ScaleBits:
      return "scale_bits";
    case QuantCheck::GridPoints:
      return "grid_points";
    case QuantCheck::GridRange:
      return "grid_lo, grid_hi";
    case QuantCheck::Rounds:
      return "rounds";
    case QuantCheck::CalibImages:
      return "calib_images";
    case QuantCheck::CalibPositions:
      return "calib_positions";
    case QuantCheck::Threads:
      return "threads";
  }
  return "?";
}

void QuantOptions::check(QuantCheck c) const {
  auto fail = [](const std::string& problem) { throw InputError(problem); };
  switch (c) {
    case QuantCheck::WBits:
      if (w_bits < 2 || w_bits > 8) fail(std::to_string(w_bits) + " is outside 2..8");
      return;
    case QuantCheck::ABits:
      if (!((a_bits >= 4 && a_bits <= 8) || a_bits == 32))
        fail(std::to_string(a_bits) + " is outside 4..8 (or 32 for float activations)");
      return;
    case QuantCheck::FirstLast:
      if (first_last_bits != 0 && (first_last_bits < 2 || first_last_bits > 8))
        fail(std::to_string(first_last_bits) + " is outside 2..8 (0 = off)");
      return;
    case QuantCheck::ScaleBits:
      if (scale_bits < 1 || scale_bits > 24) fail(std::to_string(scale_bits) + " is outside 1..24");
      return;
    case QuantCheck::GridPoints:
      if (grid_points < 1 || grid_points > 10000) fail("points must be in 1..10000");
      return;
    case QuantCheck::GridRange:
      if (!(grid_lo >= 0.0) || !(grid_hi >= std::max(grid_lo, kAutoGridLoMax)))
        fail("needs 0 <= lo <= hi (lo 0 = by bit width, then hi >= " +
             std::to_string(kAutoGridLoMax).substr(0, 3) + ")");
      return;
    case QuantCheck::Rounds:
      if (rounds < 1 || rounds > 20) fail("must be in 1..20");
      return;
    case QuantCheck::CalibImages:
      if (calib_images < 1) fail("the calibration set is empty (need at least 1 image)");
      return;
    case QuantCheck::CalibPositions:
      if (calib_positions < 1) fail("must be >= 1");
      return;
    case QuantCheck::Threads:
      if (threads < 0) fail("must be >= 0");
      return;
  }
}

Granularity QuantOptions::granularity_of(const std::string& name) const {
  const auto it = layer_granularity.find(name);
  if (it == layer_granularity.end()) return granularity;
  Granularity g = it->second;
  g.vsq_bits = granularity.vsq_bits;
  return g;
}

void QuantOptions::validate() const {
  for (QuantCheck c : kQuantChecks) with_source(field_name(c), [&] { check(c); });
  if (adc) {
    with_source("adc", [&] { adc->validate(); });
    if (a_bits == 32)
      throw InputError("adc: the ADC-aware search needs integer activations (a_bits 4..8)");
  }
}

IntRange QuantizedModel::output_range(const QOp& op) const {
  const ActQuant& out = act_of(op.output);
  if (op.fused_act < 0) return out.range();
  return kernels::activation_range(graph.nodes[op.fused_act], out.scale, out.range());
}

float QuantizedModel::output_step(const LayerQuant& layer) const {
  const QOp& op = plan.ops[layer.op];
  const ActQuant& out = act_of(op.output);
  return out.scale;
}

float layer_bias(const QuantizedModel& model, const LayerQuant& layer, std::size_t o) {
  const float b = model.graph.nodes[model.plan.ops[layer.op].node].bias.data[o];
  return layer.bias_correction.empty() ? b : b + layer.bias_correction[o];
}

namespace {
void finalize_affine(QuantizedModel& model);
}  // namespace

void finalize_multipliers(QuantizedModel& model) {
  for (LayerQuant& layer : model.layers) {
    const QOp& op = model.plan.ops[layer.op];
    const model::Node& node = model.graph.nodes[op.node];
    const ActQuant& in = model.act_of(op.inputs[0]);
    const ActQuant& out = model.act_of(op.output);
    const int64_t blocks = layer.grid.num_blocks();
    layer.multiplier.assign(static_cast<std::size_t>(blocks), FixedMultiplier{});
    layer.bias_q.assign(node.bias.data.size(), 0);
    layer.frac_bits = 0;
    if (in.is_float()) continue;  // float activations: no integer path
    const double s_x = in.scale, s_y = out.scale;
    int frac = std::numeric_limits<int>::min();
    for (int64_t b = 0; b < blocks; ++b) {
      const double M = s_x * static_cast<double>(layer.block_scale[b]) / s_y;
      layer.multiplier[b] = to_fixed_multiplier(M, model.options.scale_bits);
      if (layer.multiplier[b].m != 0) frac = std::max(frac, layer.multiplier[b].r);
    }
    if (frac == std::numeric_limits<int>::min()) frac = 0;
    // F is a shift of every accumulator (int_arith.h's kMaxShift bounds it): tiny block scales
    // in a bundle can ask for more.
    if (frac > kMaxShift || frac < -kMaxShift)
      fail_input(layer.name, "the accumulator needs F = " + std::to_string(frac) +
                                 " fractional bits, outside -63..63 (block scales too small or "
                                 "too large for the output step)");
    layer.frac_bits = frac;
    for (std::size_t o = 0; o < layer.bias_q.size(); ++o) {
      const double b = std::ldexp(layer_bias(model, layer, o) / s_y, frac);
      // Checked before rounding: converting a double beyond int64 (or NaN) to an integer is
      // undefined behaviour. Tiny block scales in a bundle make frac large (found by
      // fuzz_bundle_blob); such a bias would not fit the accumulator anyway.
      if (!(std::fabs(b) < std::ldexp(1.0, 62)))
        fail_input(layer.name, "the bias of output channel " + std::to_string(o) +
                                   " is not finite or exceeds 62 bits at the accumulator's scale " +
                                   "2^" + std::to_string(-frac) + " (block scales too small)");
      layer.bias_q[o] = round_half_up(b);
    }

    // Bound |acc| to prove int64 never overflows: each block's partial sum is at most
    // terms * max|q_x| * max|q_w|, shifted up by F - r.
    const IntRange xr = in.range();
    const double max_x = static_cast<double>(std::max(-xr.lo, xr.hi));
    const double max_w = static_cast<double>(int64_t{1} << (layer.w_bits - 1));
    std::vector<double> terms(static_cast<std::size_t>(layer.grid.red_groups), 0.0);
    for (int64_t k = 0; k < layer.grid.reduction(); ++k) terms[layer.grid.red_group[k]] += 1.0;
    double worst = 0.0;
    for (int64_t o = 0; o < layer.grid.out_channels; ++o) {
      double sum = std::fabs(static_cast<double>(layer.bias_q[o]));
      for (int64_t j = 0; j < layer.grid.red_groups; ++j) {
        const FixedMultiplier& f =
            layer.multiplier[layer.grid.out_group[o] * layer.grid.red_groups + j];
        if (terms[j] * max_x * max_w >= 2147483648.0)
          fail_input(layer.name, "a block partial sum could exceed int32");
        sum += terms[j] * max_x * max_w * static_cast<double>(f.m) * std::ldexp(1.0, frac - f.r);
      }
      worst = std::max(worst, sum);
    }
    if (worst >= std::ldexp(1.0, 62))
      fail_input(layer.name,
                 "the accumulator could exceed 62 bits (block scales span too wide a "
                 "range for scale_bits " +
                     std::to_string(model.options.scale_bits) + ")");
    // A negative F (every multiplier >= 2^bits) makes the requantization a left shift by -F:
    // the shifted accumulator must fit as well.
    if (frac < 0 && worst * std::ldexp(1.0, -frac) >= std::ldexp(1.0, 62))
      fail_input(layer.name, "the accumulator shifted left by -F = " + std::to_string(-frac) +
                                 " could exceed 62 bits (block multipliers too large)");
  }
  finalize_affine(model);
}

namespace {

void finalize_affine(QuantizedModel& model) {
  model.affine.assign(model.plan.ops.size(), AffineQuant{});
  for (std::size_t i = 0; i < model.plan.ops.size(); ++i) {
    const QOp& op = model.plan.ops[i];
    if (op.kind != QOpKind::Affine) continue;
    const ActQuant& in = model.act_of(op.inputs[0]);
    const ActQuant& out = model.act_of(op.output);
    if (in.is_float() || out.is_float()) continue;  // float activations: no integer path
    const AffineConstants c = compose_affine(model.graph, op.chain);
    const IntRange xr = in.range();
    const int64_t max_x = std::max(-xr.lo, xr.hi);
    AffineQuant& q = model.affine[i];
    q.run = c.run;
    const std::string& name = model.graph.nodes[op.node].name;
    for (std::size_t k = 0; k < c.scale.size(); ++k) {
      try {
        q.terms.push_back(kernels::affine_term(c.scale[k], c.shift[k], in.scale, out.scale,
                                               model.options.scale_bits, max_x));
      } catch (const std::overflow_error& e) {
        fail_input(name, std::string("integer form of the constant op: ") + e.what());
      }
    }
  }
}

}  // namespace

double step_scale_factor(const QuantizedModel& model, const QOp& op) {
  return compose_affine(model.graph, op.chain).scale[0];
}

void derive_step_scales(QuantizedModel& model) {
  for (const QOp& op : model.plan.ops) {
    if (op.kind != QOpKind::StepScale) continue;
    const ActQuant& in = model.act_of(op.inputs[0]);
    ActQuant& out = model.acts[op.output];
    out.bits = in.bits;
    out.is_signed = in.is_signed;
    out.scale = static_cast<float>(double(in.scale) * step_scale_factor(model, op));
  }
}

QuantSummary summarize(const QuantizedModel& model) {
  QuantSummary s;
  for (const LayerQuant& layer : model.layers) {
    const Granularity& g = layer.granularity;
    const int64_t n = static_cast<int64_t>(layer.q_weight.size());
    const int64_t blocks = layer.grid.num_blocks();
    s.weights += n;
    s.weight_bits += static_cast<double>(n) * layer.w_bits;
    switch (g.kind) {
      case GranularityKind::Mx:
        s.scales += blocks;
        s.scale_bits += 8.0 * blocks;
        break;
      case GranularityKind::Vsq:
        s.scales += blocks + layer.grid.out_groups;
        s.scale_bits += static_cast<double>(g.vsq_bits) * blocks + 32.0 * layer.grid.out_groups;
        break;
      default:
        s.scales += blocks;
        s.scale_bits += 32.0 * blocks;
    }
  }
  return s;
}

std::vector<float> realized_weight_step(const QuantizedModel& model, const LayerQuant& layer) {
  const QOp& op = model.plan.ops[layer.op];
  const ActQuant& in = model.act_of(op.inputs[0]);
  const ActQuant& out = model.act_of(op.output);
  const BlockGrid& grid = layer.grid;
  const int64_t cout = grid.out_channels, cin_g = grid.cin_g, kernel = grid.kernel;
  std::vector<float> step(layer.q_weight.size());
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t c = 0; c < cin_g; ++c)
      for (int64_t p = 0; p < kernel; ++p) {
        const int64_t b = grid.block_of(o, grid.hw_index(c, p));
        const double s = in.is_float() ? double(layer.block_scale[b])
                                       : layer.multiplier[b].value() * out.scale / in.scale;
        step[(o * cin_g + c) * kernel + p] = static_cast<float>(s);
      }
  return step;
}

std::vector<float> realized_weight(const QuantizedModel& model, const LayerQuant& layer) {
  std::vector<float> w = realized_weight_step(model, layer);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(layer.q_weight[i]) * w[i];
  return w;
}

}  // namespace tilescale::quant
