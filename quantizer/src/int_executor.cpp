#include "tilescale/quant/int_executor.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <thread>

#include "tilescale/core/error.h"
#include "tilescale/core/memory_budget.h"
#include "tilescale/model/float_kernels.h"

namespace tilescale::quant {

struct IntExecutor::Workspace {
  std::vector<std::vector<float>> host;     // float values of host nodes [value][n * size]
  std::vector<std::vector<int64_t>> codes;  // integer values [value][n * size]
  std::vector<double> col, wq, part;        // im2col, weights, partial sums (exact in double)
};

namespace {

// Codes of a Relu/Clip folded into a requantization, intersected with the output grid.
IntRange output_clamp(const QuantizedModel& m, const QOp& op) {
  const ActQuant& out = m.act_of(op.output);
  IntRange r = out.range();
  if (op.fused_act < 0) return r;
  const model::Node& act = m.graph.nodes[op.fused_act];
  if (act.op == model::Op::Relu) {
    r.lo = std::max<int64_t>(r.lo, 0);
  } else {
    if (std::isfinite(act.clip_min))
      r.lo = std::max(r.lo, round_half_up(act.clip_min / double(out.scale)));
    if (std::isfinite(act.clip_max))
      r.hi = std::min(r.hi, round_half_up(act.clip_max / double(out.scale)));
  }
  return r;
}

// y = saturate(round_shift_half_up(x * m, r)): one input rescaled by a multiplier.
inline int64_t rescale(int64_t x, const FixedMultiplier& f, IntRange r) {
  return saturate(round_shift_half_up(x * f.m, f.r), r);
}

}  // namespace

IntExecutor::IntExecutor(const QuantizedModel& model, int threads) : model_(model) {
  threads_ =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(1);
  const model::Graph& g = model.graph;
  // Per sample: int64 codes (8 B) and float host values (at most 4 B) of every value; the largest
  // Conv's im2col twice in double (col and its reduction-group copy xb); int64 accumulators and
  // double partial sums of its output, bounded by the activations (8 + 8 B).
  const double elements = g.activation_elements_per_sample();
  bytes_per_sample_ = 28.0 * elements + 16.0 * g.largest_im2col_elements_per_sample();
  chunk_ = samples_within_budget(g.source,
                                 "running the integer network (codes, im2col and accumulators)",
                                 bytes_per_sample_, threads_, chunk_);
  layer_of_op_.assign(model.plan.ops.size(), -1);
  for (std::size_t l = 0; l < model.layers.size(); ++l)
    layer_of_op_[model.layers[l].op] = static_cast<int>(l);
  for (std::size_t v = 0; v < model.acts.size(); ++v)
    if (model.plan.scale_source[v] == static_cast<int>(v) && model.acts[v].is_float() &&
        static_cast<int>(v) != model.graph.output)
      fail_input(model.graph.source,
                 "the integer executor needs integer activations (--abits 4..8)");
}

void IntExecutor::run_chunk(const float* input, int64_t n, Workspace& ws) const {
  const model::Graph& g = model_.graph;
  const QuantPlan& plan = model_.plan;
  ws.host.resize(g.values.size());
  ws.codes.resize(g.values.size());
  auto size_of = [&](int v) { return g.values[v].size(); };

  // Host pre-processing in float, the same arithmetic as the float executor.
  ws.host[g.input].assign(input, input + n * size_of(g.input));
  for (int idx : plan.host_nodes) {
    const model::Node& node = g.nodes[idx];
    const int64_t size = size_of(node.output);
    const auto& a = ws.host[node.inputs[0]];
    auto& out = ws.host[node.output];
    out.resize(static_cast<std::size_t>(n * size));
    const float* c = node.operand.data.data();
    for (int64_t s = 0; s < n; ++s)
      for (int64_t i = 0; i < size; ++i)
        out[s * size + i] = node.operand_first
                                ? model::kernels::apply_binary(node.op, c[i], a[s * size + i])
                                : model::kernels::apply_binary(node.op, a[s * size + i], c[i]);
  }

  for (std::size_t oi = 0; oi < plan.ops.size(); ++oi) {
    const QOp& op = plan.ops[oi];
    const int64_t out_size = size_of(op.output);
    auto& out = ws.codes[op.output];
    out.assign(static_cast<std::size_t>(n * out_size), 0);
    const ActQuant& oq = model_.act_of(op.output);
    switch (op.kind) {
      case QOpKind::Quantize: {
        const auto& x = ws.host[op.inputs[0]];
        const IntRange r = oq.range();
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = quantize_to_grid(x[i], oq.scale, r);
        break;
      }
      case QOpKind::Gemm: {
        const LayerQuant& layer = model_.layers[layer_of_op_[oi]];
        const model::Node& node = g.nodes[op.node];
        const BlockGrid& grid = layer.grid;
        const auto& x = ws.codes[op.inputs[0]];
        const int64_t cout = grid.out_channels, k = grid.reduction();
        const bool conv = node.op == model::Op::Conv;
        const model::Value& in_v = g.values[op.inputs[0]];
        const model::Value& out_v = g.values[op.output];
        const int64_t groups = conv ? node.window.groups : 1;
        const int64_t cout_g = cout / groups;
        const int64_t P = conv ? out_v.shape[1] * out_v.shape[2] : 1;
        const int64_t cols = n * P;
        // im2col of the integer codes, ONNX reduction order, all samples side by side.
        ws.col.assign(static_cast<std::size_t>(groups * k * cols), 0.0);
        if (conv) {
          const model::Window& w = node.window;
          const int64_t cin = in_v.shape[0], h = in_v.shape[1], wd = in_v.shape[2];
          const int64_t wo = out_v.shape[2], cin_g = cin / groups;
          for (int64_t gi = 0; gi < groups; ++gi)
            for (int64_t c = 0; c < cin_g; ++c)
              for (int64_t ky = 0; ky < w.kernel_h; ++ky)
                for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                  double* row =
                      ws.col.data() + (gi * k + (c * w.kernel_h + ky) * w.kernel_w + kx) * cols;
                  for (int64_t s = 0; s < n; ++s)
                    for (int64_t p = 0; p < P; ++p) {
                      const int64_t iy = p / wo * w.stride_h - w.pad_top + ky * w.dilation_h;
                      const int64_t ix = p % wo * w.stride_w - w.pad_left + kx * w.dilation_w;
                      if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                      row[s * P + p] =
                          static_cast<double>(x[((s * cin + gi * cin_g + c) * h + iy) * wd + ix]);
                    }
                }
        } else {
          for (int64_t s = 0; s < n; ++s)
            for (int64_t i = 0; i < k; ++i)
              ws.col[i * cols + s] = static_cast<double>(x[s * k + i]);
        }
        // Accumulator: bias, then each reduction group's exact partial sums scaled by the block
        // multiplier and aligned to F fractional bits.
        std::vector<int64_t> acc(static_cast<std::size_t>(cout * cols));
        for (int64_t o = 0; o < cout; ++o)
          std::fill_n(acc.begin() + o * cols, cols, layer.bias_q[o]);
        const int F = layer.frac_bits;
        for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
          std::vector<int64_t> ks;
          for (int64_t c = 0; c < grid.cin_g; ++c)
            for (int64_t p = 0; p < grid.kernel; ++p)
              if (grid.red_group[grid.hw_index(c, p)] == rg) ks.push_back(c * grid.kernel + p);
          const int64_t kb = static_cast<int64_t>(ks.size());
          for (int64_t gi = 0; gi < groups; ++gi) {
            ws.wq.resize(static_cast<std::size_t>(cout_g * kb));
            for (int64_t o = 0; o < cout_g; ++o)
              for (int64_t i = 0; i < kb; ++i)
                ws.wq[o * kb + i] = layer.q_weight[(gi * cout_g + o) * k + ks[i]];
            std::vector<double> xb(static_cast<std::size_t>(kb * cols));
            for (int64_t i = 0; i < kb; ++i)
              std::copy_n(ws.col.begin() + (gi * k + ks[i]) * cols, cols, xb.begin() + i * cols);
            ws.part.resize(static_cast<std::size_t>(cout_g * cols));
            // |partial sum| < 2^31 (checked by finalize_multipliers), exact in double.
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(cout_g),
                        static_cast<int>(cols), static_cast<int>(kb), 1.0, ws.wq.data(),
                        static_cast<int>(kb), xb.data(), static_cast<int>(cols), 0.0,
                        ws.part.data(), static_cast<int>(cols));
            for (int64_t o = 0; o < cout_g; ++o) {
              const int64_t oc = gi * cout_g + o;
              const FixedMultiplier& f =
                  layer.multiplier[grid.out_group[oc] * grid.red_groups + rg];
              if (f.m == 0) continue;
              // (P * m) << (F - r), written as a multiplication: left shifts of negatives are UB.
              const int64_t scale = f.m * (int64_t{1} << (F - f.r));
              int64_t* a = acc.data() + oc * cols;
              const double* pp = ws.part.data() + o * cols;
              for (int64_t j = 0; j < cols; ++j) a[j] += static_cast<int64_t>(pp[j]) * scale;
            }
          }
        }
        // Requantize to the output grid (or keep the accumulator for float logits), NCHW order.
        const bool keep_acc = oq.is_float();
        const IntRange r = output_clamp(model_, op);
        for (int64_t o = 0; o < cout; ++o)
          for (int64_t s = 0; s < n; ++s)
            for (int64_t p = 0; p < P; ++p) {
              const int64_t v = acc[o * cols + s * P + p];
              out[(s * cout + o) * P + p] = keep_acc ? v : saturate(round_shift_half_up(v, F), r);
            }
        break;
      }
      case QOpKind::Add: {
        const ActQuant& qa = model_.act_of(op.inputs[0]);
        const ActQuant& qb = model_.act_of(op.inputs[1]);
        const int bits = model_.options.scale_bits;
        const FixedMultiplier ma = to_fixed_multiplier(double(qa.scale) / oq.scale, bits);
        const FixedMultiplier mb = to_fixed_multiplier(double(qb.scale) / oq.scale, bits);
        const int F = std::max(ma.r, mb.r);
        const IntRange r = output_clamp(model_, op);
        const auto& a = ws.codes[op.inputs[0]];
        const auto& b = ws.codes[op.inputs[1]];
        for (std::size_t i = 0; i < out.size(); ++i) {
          const int64_t acc =
              a[i] * ma.m * (int64_t{1} << (F - ma.r)) + b[i] * mb.m * (int64_t{1} << (F - mb.r));
          out[i] = saturate(round_shift_half_up(acc, F), r);
        }
        break;
      }
      case QOpKind::MaxPool:
      case QOpKind::AvgPool: {
        const model::Node& node = g.nodes[op.node];
        const model::Window& w = node.window;
        const model::Value& in_v = g.values[op.inputs[0]];
        const model::Value& out_v = g.values[op.output];
        const int64_t c = in_v.shape[0], h = in_v.shape[1], wd = in_v.shape[2];
        const int64_t ho = out_v.shape[1], wo = out_v.shape[2];
        const auto& x = ws.codes[op.inputs[0]];
        const ActQuant& iq = model_.act_of(op.inputs[0]);
        const IntRange r = oq.range();
        std::map<int64_t, FixedMultiplier> by_count;  // multiplier s_in / (s_out * count)
        for (int64_t sc = 0; sc < n * c; ++sc)
          for (int64_t oy = 0; oy < ho; ++oy)
            for (int64_t ox = 0; ox < wo; ++ox) {
              int64_t best = std::numeric_limits<int64_t>::min(), sum = 0, inside = 0;
              for (int64_t ky = 0; ky < w.kernel_h; ++ky) {
                const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
                if (iy < 0 || iy >= h) continue;
                for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                  const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
                  if (ix < 0 || ix >= wd) continue;
                  const int64_t v = x[(sc * h + iy) * wd + ix];
                  best = std::max(best, v);
                  sum += v;
                  ++inside;
                }
              }
              int64_t& dst = out[(sc * ho + oy) * wo + ox];
              if (op.kind == QOpKind::MaxPool) {
                dst = inside ? best : 0;
                continue;
              }
              int64_t count = inside;
              if (node.count_include_pad) {
                const int64_t y0 = oy * w.stride_h - w.pad_top, x0 = ox * w.stride_w - w.pad_left;
                count = (std::min(y0 + w.kernel_h, h + w.pad_bottom) - y0) *
                        (std::min(x0 + w.kernel_w, wd + w.pad_right) - x0);
              }
              if (count <= 0) continue;
              auto it = by_count.find(count);
              if (it == by_count.end())
                it = by_count
                         .emplace(count,
                                  to_fixed_multiplier(double(iq.scale) / (double(oq.scale) * count),
                                                      model_.options.scale_bits))
                         .first;
              dst = rescale(sum, it->second, r);
            }
        break;
      }
      case QOpKind::GlobalAvgPool: {
        const model::Value& in_v = g.values[op.inputs[0]];
        const int64_t c = in_v.shape[0], hw = in_v.size() / c;
        const auto& x = ws.codes[op.inputs[0]];
        const ActQuant& iq = model_.act_of(op.inputs[0]);
        const FixedMultiplier f = to_fixed_multiplier(double(iq.scale) / (double(oq.scale) * hw),
                                                      model_.options.scale_bits);
        for (int64_t sc = 0; sc < n * c; ++sc) {
          int64_t sum = 0;
          for (int64_t j = 0; j < hw; ++j) sum += x[sc * hw + j];
          out[sc] = rescale(sum, f, oq.range());
        }
        break;
      }
      case QOpKind::Reshape:
        out = ws.codes[op.inputs[0]];
        break;
      case QOpKind::Concat: {
        const model::Node& node = g.nodes[op.node];
        const auto& os = g.values[op.output].shape;
        int64_t outer = 1;
        for (int i = 0; i < node.axis; ++i) outer *= os[i];
        std::vector<FixedMultiplier> mult;
        for (int v : op.inputs)
          mult.push_back(to_fixed_multiplier(double(model_.act_of(v).scale) / oq.scale,
                                             model_.options.scale_bits));
        int64_t* dst = out.data();
        for (int64_t s = 0; s < n; ++s)
          for (int64_t o = 0; o < outer; ++o)
            for (std::size_t i = 0; i < op.inputs.size(); ++i) {
              const int64_t size = size_of(op.inputs[i]), run = size / outer;
              const int64_t* src = ws.codes[op.inputs[i]].data() + s * size + o * run;
              for (int64_t j = 0; j < run; ++j) *dst++ = rescale(src[j], mult[i], oq.range());
            }
        break;
      }
      case QOpKind::Pad: {
        const model::Node& node = g.nodes[op.node];
        const auto& is = g.values[op.inputs[0]].shape;
        const auto& os = g.values[op.output].shape;
        const int64_t in_size = size_of(op.inputs[0]);
        std::fill(out.begin(), out.end(), quantize_to_grid(node.pad_value, oq.scale, oq.range()));
        const auto& x = ws.codes[op.inputs[0]];
        std::vector<int64_t> idx(is.size(), 0);
        for (int64_t s = 0; s < n; ++s) {
          std::fill(idx.begin(), idx.end(), 0);
          for (int64_t i = 0; i < in_size; ++i) {
            int64_t d = 0;
            for (std::size_t a = 0; a < is.size(); ++a) d = d * os[a] + idx[a] + node.pads[a];
            out[s * out_size + d] = x[s * in_size + i];
            for (int a = static_cast<int>(is.size()) - 1; a >= 0; --a) {
              if (++idx[a] < is[a]) break;
              idx[a] = 0;
            }
          }
        }
        break;
      }
      case QOpKind::Clamp: {
        const model::Node& node = g.nodes[op.node];
        IntRange r{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
        if (node.op == model::Op::Relu) {
          r.lo = 0;
        } else {
          if (std::isfinite(node.clip_min)) r.lo = round_half_up(node.clip_min / double(oq.scale));
          if (std::isfinite(node.clip_max)) r.hi = round_half_up(node.clip_max / double(oq.scale));
        }
        const auto& x = ws.codes[op.inputs[0]];
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = saturate(x[i], r);
        break;
      }
    }
  }
}

void IntExecutor::real_output(const Workspace& ws, int64_t n, float* out) const {
  const int v = model_.graph.output;
  const int64_t size = model_.graph.values[v].size();
  const ActQuant& q = model_.act_of(v);
  double unit = q.scale;
  if (q.is_float()) {
    for (const LayerQuant& layer : model_.layers)
      if (model_.plan.ops[layer.op].output == v)
        unit = std::ldexp(double(q.scale), -layer.frac_bits);
  }
  const auto& codes = ws.codes[v];
  for (int64_t i = 0; i < n * size; ++i)
    out[i] = static_cast<float>(static_cast<double>(codes[i]) * unit);
}

void IntExecutor::run(const float* input, int64_t n, float* output) const {
  const int64_t in_size = model_.graph.input_value().size();
  const int64_t out_size = model_.graph.output_value().size();
  const int64_t chunks = (n + chunk_ - 1) / chunk_;
  std::vector<Workspace> spaces(static_cast<std::size_t>(threads_));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
  for (int64_t c = 0; c < chunks; ++c) {
    Workspace& ws = spaces[static_cast<std::size_t>(omp_get_thread_num())];
    const int64_t first = c * chunk_, m = std::min(chunk_, n - first);
    run_chunk(input + first * in_size, m, ws);
    real_output(ws, m, output + first * out_size);
  }
}

std::vector<std::vector<int64_t>> IntExecutor::run_codes(const float* input, int64_t n) const {
  check_memory_budget(model_.graph.source,
                      "the integer codes of " + std::to_string(n) + " samples at once",
                      static_cast<double>(n) * bytes_per_sample_);
  Workspace ws;
  run_chunk(input, n, ws);
  return std::move(ws.codes);
}

}  // namespace tilescale::quant
