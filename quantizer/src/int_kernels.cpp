#include "tilescale/quant/int_kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>

namespace tilescale::quant::kernels {

namespace layout = model::layout;

void quantize_f32(const float* x, int64_t count, double step, IntRange r, int64_t* q) {
  for (int64_t i = 0; i < count; ++i) q[i] = quantize_to_grid(x[i], step, r);
}

IntRange activation_range(const model::Node& act, double step, IntRange base) {
  IntRange r = base;
  if (act.op == model::Op::Relu) {
    r.lo = std::max<int64_t>(r.lo, 0);
    return r;
  }
  if (std::isfinite(act.clip_min)) r.lo = std::max(r.lo, round_half_up(act.clip_min / step));
  if (std::isfinite(act.clip_max)) r.hi = std::min(r.hi, round_half_up(act.clip_max / step));
  return r;
}

void clamp(const int64_t* x, int64_t count, IntRange r, int64_t* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = saturate(x[i], r);
}

void requantize(const int64_t* acc, int64_t count, int frac_bits, IntRange r, int64_t* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = saturate(round_shift_half_up(acc[i], frac_bits), r);
}

namespace {

// Adds one reduction group's block partial sums of group gi, scaled and aligned to F fractional
// bits, into the accumulators. `cols` are the ONNX reduction indices of the reduction group.
void accumulate_reduction_group(const GemmLayer& L, int64_t rg, int64_t gi,
                                const std::vector<int64_t>& cols, int64_t width, GemmScratch& ws) {
  const BlockGrid& grid = *L.grid;
  const int64_t k = L.shape.k(), cout_g = L.out_channels / L.groups;
  const int64_t kb = static_cast<int64_t>(cols.size());
  ws.wq.resize(static_cast<std::size_t>(cout_g * kb));
  for (int64_t o = 0; o < cout_g; ++o)
    for (int64_t i = 0; i < kb; ++i) ws.wq[o * kb + i] = L.weight[(gi * cout_g + o) * k + cols[i]];
  ws.xb.resize(static_cast<std::size_t>(kb * width));
  for (int64_t i = 0; i < kb; ++i)
    std::copy_n(ws.col.begin() + (gi * k + cols[i]) * width, width, ws.xb.begin() + i * width);
  ws.part.resize(static_cast<std::size_t>(cout_g * width));
  // |partial sum| < 2^31 (checked by finalize_multipliers): exact in double.
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(cout_g),
              static_cast<int>(width), static_cast<int>(kb), 1.0, ws.wq.data(),
              static_cast<int>(kb), ws.xb.data(), static_cast<int>(width), 0.0, ws.part.data(),
              static_cast<int>(width));
  const int F = L.frac_bits;
  for (int64_t o = 0; o < cout_g; ++o) {
    const int64_t oc = gi * cout_g + o;
    const FixedMultiplier& f = L.multiplier[grid.out_group[oc] * grid.red_groups + rg];
    if (f.m == 0) continue;
    // (P * m) << (F - r), written as a multiplication: left shifts of negatives are UB.
    const int64_t scale = f.m * (int64_t{1} << (F - f.r));
    int64_t* a = ws.acc.data() + oc * width;
    const double* pp = ws.part.data() + o * width;
    for (int64_t j = 0; j < width; ++j) a[j] += static_cast<int64_t>(pp[j]) * scale;
  }
}

}  // namespace

void conv_gemm_blocks(const GemmLayer& L, int64_t n, const int64_t* x, int64_t* y,
                      GemmScratch& ws) {
  const layout::ConvShape& s = L.shape;
  const int64_t k = s.k(), P = s.positions(), width = n * P, cout = L.out_channels;
  const int64_t cin = s.cin_g * L.groups, plane = s.h * s.w;
  // The n samples' patch matrices side by side, one GEMM per group and reduction group.
  ws.col.resize(static_cast<std::size_t>(L.groups * k * width));
  for (int64_t gi = 0; gi < L.groups; ++gi)
    for (int64_t i = 0; i < n; ++i)
      layout::im2col_onnx(s, x + (i * cin + gi * s.cin_g) * plane,
                          ws.col.data() + gi * k * width + i * P, width);
  ws.acc.resize(static_cast<std::size_t>(cout * width));
  for (int64_t o = 0; o < cout; ++o) std::fill_n(ws.acc.begin() + o * width, width, L.bias_q[o]);
  const auto cols = L.grid->onnx_columns();
  for (int64_t rg = 0; rg < L.grid->red_groups; ++rg)
    for (int64_t gi = 0; gi < L.groups; ++gi)
      accumulate_reduction_group(L, rg, gi, cols[rg], width, ws);
  // [Cout][n][P] accumulators to [n][Cout][P] outputs.
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t* acc = ws.acc.data() + o * width + i * P;
      int64_t* dst = y + (i * cout + o) * P;
      if (L.keep_acc)
        std::copy_n(acc, P, dst);
      else
        requantize(acc, P, L.frac_bits, L.range, dst);
    }
}

namespace {

// m * 2^(F - r) for the Add path, refused (std::overflow_error) when the shift or the product
// leaves int64: the two input grids are then too far apart for one exact accumulator.
int64_t aligned_multiplier(const FixedMultiplier& f, int F, double step, const OutGrid& out) {
  const int up = F - f.r;  // >= 0: F is the larger r
  if (up > kMaxShift || f.m > (std::numeric_limits<int64_t>::max() >> up))
    throw std::overflow_error("Add: input step " + std::to_string(step) + " into output step " +
                              std::to_string(out.step) + " needs m * 2^" + std::to_string(up) +
                              ", beyond int64 (input grids too far apart for scale_bits " +
                              std::to_string(out.scale_bits) + ")");
  return f.m * (int64_t{1} << up);
}

int64_t max_abs(const int64_t* x, int64_t count) {
  int64_t m = 0;
  for (int64_t i = 0; i < count; ++i) m = std::max(m, x[i] < 0 ? -x[i] : x[i]);
  return m;
}

}  // namespace

void add(const int64_t* a, double step_a, const int64_t* b, double step_b, int64_t count,
         const OutGrid& out, int64_t* y) {
  const FixedMultiplier ma = to_fixed_multiplier(step_a / out.step, out.scale_bits);
  const FixedMultiplier mb = to_fixed_multiplier(step_b / out.step, out.scale_bits);
  const int F = std::max(ma.r, mb.r);
  if (F > kMaxShift || F < -kMaxShift)
    throw std::overflow_error("Add: the sum needs a shift of " + std::to_string(F) +
                              " bits, outside -63..63 (steps " + std::to_string(step_a) + ", " +
                              std::to_string(step_b) + " into " + std::to_string(out.step) + ")");
  const int64_t sa = aligned_multiplier(ma, F, step_a, out);
  const int64_t sb = aligned_multiplier(mb, F, step_b, out);
  // |acc| <= max|a| * sa + max|b| * sb, checked in double against 2^62 (so the rounding offset
  // 2^(F-1) <= 2^62 fits as well): then no product or sum below can wrap.
  const double worst = static_cast<double>(max_abs(a, count)) * static_cast<double>(sa) +
                       static_cast<double>(max_abs(b, count)) * static_cast<double>(sb);
  if (worst >= std::ldexp(1.0, 62))
    throw std::overflow_error("Add: the accumulator could exceed int64 (|acc| up to " +
                              std::to_string(worst) + "); input codes or steps out of range");
  for (int64_t i = 0; i < count; ++i)
    y[i] = saturate(round_shift_half_up(a[i] * sa + b[i] * sb, F), out.range);
}

void max_pool(const layout::ConvShape& s, int64_t planes, const int64_t* x, int64_t* y) {
  const int64_t plane = s.h * s.w;
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        int64_t best = std::numeric_limits<int64_t>::min();
        bool any = false;
        layout::for_each_tap(s, oy, ox, [&](int64_t offset, int64_t) {
          best = std::max(best, x[pl * plane + offset]);
          any = true;
        });
        y[(pl * s.ho + oy) * s.wo + ox] = any ? best : 0;
      }
}

void avg_pool(const layout::ConvShape& s, bool count_include_pad, int64_t planes, const int64_t* x,
              double step_x, const OutGrid& out, int64_t* y) {
  const int64_t plane = s.h * s.w;
  std::map<int64_t, FixedMultiplier> by_count;  // step_x / (s_y * count), built once per count
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        int64_t sum = 0, inside = 0;
        layout::for_each_tap(s, oy, ox, [&](int64_t offset, int64_t) {
          sum += x[pl * plane + offset];
          ++inside;
        });
        const int64_t count = count_include_pad ? s.padded_window_count(oy, ox) : inside;
        int64_t& dst = y[(pl * s.ho + oy) * s.wo + ox];
        if (count <= 0) {
          dst = 0;
          continue;
        }
        auto it = by_count.find(count);
        if (it == by_count.end())
          it = by_count
                   .emplace(count,
                            to_fixed_multiplier(step_x / (out.step * static_cast<double>(count)),
                                                out.scale_bits))
                   .first;
        dst = rescale(sum, it->second, out.range);
      }
}

void global_avg_pool(int64_t planes, int64_t hw, const int64_t* x, double step_x,
                     const OutGrid& out, int64_t* y) {
  const FixedMultiplier f =
      to_fixed_multiplier(step_x / (out.step * static_cast<double>(hw)), out.scale_bits);
  for (int64_t pl = 0; pl < planes; ++pl) {
    int64_t sum = 0;
    for (int64_t j = 0; j < hw; ++j) sum += x[pl * hw + j];
    y[pl] = rescale(sum, f, out.range);
  }
}

void concat(const std::vector<ConcatInput>& inputs, int64_t n, int64_t outer, const OutGrid& out,
            int64_t* y) {
  std::vector<FixedMultiplier> mult;
  for (const ConcatInput& in : inputs)
    mult.push_back(to_fixed_multiplier(in.step / out.step, out.scale_bits));
  for (int64_t s = 0; s < n; ++s)
    for (int64_t o = 0; o < outer; ++o)
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        const int64_t run = inputs[i].size / outer;
        const int64_t* src = inputs[i].codes + s * inputs[i].size + o * run;
        for (int64_t j = 0; j < run; ++j) *y++ = rescale(src[j], mult[i], out.range);
      }
}

void pad(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
         const std::vector<int64_t>& pads, double pad_value, double step, IntRange range, int64_t n,
         const int64_t* x, int64_t* y) {
  int64_t out_size = 1;
  for (int64_t d : out_shape) out_size *= d;
  std::fill(y, y + n * out_size, quantize_to_grid(pad_value, step, range));
  layout::place_padded(in_shape, out_shape, pads, n, x, y);
}

AffineTerm affine_term(double a, double b, double step_x, double step_y, int bits,
                       int64_t max_abs_x) {
  AffineTerm t;
  t.negative = a < 0.0;
  t.mul = to_fixed_multiplier(std::fabs(a) * step_x / step_y, bits);
  t.frac_bits = std::max(t.mul.r, 0);
  if (t.frac_bits > kMaxShift || t.mul.r < -kMaxShift)
    throw std::overflow_error("the factor " + std::to_string(a) + " needs a shift of " +
                              std::to_string(t.mul.r) + ", outside -63..63");
  const double off = std::ldexp(b / step_y, t.frac_bits);
  if (!(std::fabs(off) < std::ldexp(1.0, 62)))
    throw std::overflow_error("the offset " + std::to_string(b) +
                              " is not finite or exceeds 62 bits at the accumulator's scale");
  t.offset = round_half_up(off);
  const double worst = static_cast<double>(max_abs_x) * static_cast<double>(t.mul.m) *
                           std::ldexp(1.0, t.frac_bits - t.mul.r) +
                       std::fabs(static_cast<double>(t.offset));
  if (worst >= std::ldexp(1.0, 62))
    throw std::overflow_error("the accumulator of factor " + std::to_string(a) +
                              " could exceed 62 bits");
  return t;
}

void affine(const int64_t* x, int64_t n, int64_t size, const AffineTerm* terms, int64_t count,
            int64_t run, IntRange range, int64_t* y) {
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < size; ++i) {
      const AffineTerm& t = terms[(i / run) % count];
      const int64_t q = t.negative ? -x[s * size + i] : x[s * size + i];
      const int64_t acc = q * t.mul.m * (int64_t{1} << (t.frac_bits - t.mul.r)) + t.offset;
      y[s * size + i] = saturate(round_shift_half_up(acc, t.frac_bits), range);
    }
}

}  // namespace tilescale::quant::kernels
