#include "tilescale/quant/int_gemm_fast.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>

namespace tilescale::quant::kernels {

namespace layout = model::layout;

namespace {

using u128 = unsigned __int128;
constexpr u128 kInt64Max = static_cast<u128>(std::numeric_limits<int64_t>::max());

// Per block, the integer scale s[b] = m[b] * 2^(F - r[b]) (0 for m = 0), or -1 when it cannot be
// formed in int64 (F - r[b] < 0 cannot happen for F = max r, but a hand-made layer may say so).
std::vector<int64_t> block_scales(const GemmLayer& L) {
  std::vector<int64_t> scale(static_cast<std::size_t>(L.grid->num_blocks()), -1);
  for (std::size_t b = 0; b < scale.size(); ++b) {
    const FixedMultiplier& f = L.multiplier[b];
    const int shift = L.frac_bits - f.r;
    if (f.m == 0) {
      scale[b] = 0;
    } else if (f.m > 0 && shift >= 0 && shift <= 62) {
      const u128 s = static_cast<u128>(f.m) << shift;
      if (s <= kInt64Max) scale[b] = static_cast<int64_t>(s);
    }
  }
  return scale;
}

}  // namespace

FoldedGemm fold_gemm(const GemmLayer& L) {
  FoldedGemm folded;
  const BlockGrid& grid = *L.grid;
  const int64_t k = L.shape.k(), cout = L.out_channels;
  // The reduction group of each ONNX column (the weight's and im2col's reduction order).
  std::vector<int64_t> group_of(static_cast<std::size_t>(k), 0);
  const auto cols = grid.onnx_columns();
  for (int64_t rg = 0; rg < grid.red_groups; ++rg)
    for (int64_t c : cols[static_cast<std::size_t>(rg)]) group_of[static_cast<std::size_t>(c)] = rg;
  const std::vector<int64_t> scale = block_scales(L);
  // S in 128-bit integers: |q_w| <= 2^7 and s < 2^63, so a term is < 2^70 and no sum of fewer
  // than 2^57 terms wraps; any sum above 2^63 - 1 saturates S.
  u128 worst = 0;
  for (int64_t o = 0; o < cout; ++o) {
    u128 sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t w = L.weight[o * k + i];
      if (w == 0) continue;
      const int64_t s = scale[static_cast<std::size_t>(grid.out_group[o] * grid.red_groups +
                                                       group_of[static_cast<std::size_t>(i)])];
      if (s < 0) return folded;
      sum += static_cast<u128>(std::llabs(w)) * static_cast<u128>(s);
      if (sum > kInt64Max) return folded;
    }
    worst = std::max(worst, sum);
  }
  folded.bound = static_cast<int64_t>(worst);
  if (folded.bound >= kExactDoubleLimit) return folded;
  // |W'| <= S < 2^53: the int64 product and its double are exact.
  folded.weight.resize(static_cast<std::size_t>(cout * k));
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < k; ++i) {
      const int64_t s = scale[static_cast<std::size_t>(grid.out_group[o] * grid.red_groups +
                                                       group_of[static_cast<std::size_t>(i)])];
      folded.weight[static_cast<std::size_t>(o * k + i)] =
          static_cast<double>(int64_t{L.weight[o * k + i]} * std::max<int64_t>(s, 0));
    }
  return folded;
}

bool fold_exact(const FoldedGemm& folded, int64_t a_max) {
  if (folded.weight.empty()) return false;
  const u128 a = static_cast<u128>(std::max<int64_t>(a_max, 1));
  return a * static_cast<u128>(folded.bound) < static_cast<u128>(kExactDoubleLimit);
}

int64_t max_abs(const int64_t* x, int64_t count) {
  int64_t lo = 0, hi = 0;  // two reductions the compiler vectorises; |lo| taken once at the end
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (lo == std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::max();
  return std::max(-lo, hi);
}

void conv_gemm_folded(const GemmLayer& L, const FoldedGemm& folded, int64_t n, const int64_t* x,
                      int64_t* y, GemmScratch& ws) {
  const layout::ConvShape& s = L.shape;
  const int64_t k = s.k(), P = s.positions(), width = n * P, cout = L.out_channels;
  const int64_t cout_g = cout / L.groups, cin = s.cin_g * L.groups, plane = s.h * s.w;
  // The n samples' patch matrices side by side (as conv_gemm_blocks), one GEMM per group.
  ws.col.resize(static_cast<std::size_t>(L.groups * k * width));
  for (int64_t gi = 0; gi < L.groups; ++gi)
    for (int64_t i = 0; i < n; ++i)
      layout::im2col_onnx(s, x + (i * cin + gi * s.cin_g) * plane,
                          ws.col.data() + gi * k * width + i * P, width);
  ws.part.resize(static_cast<std::size_t>(cout * width));
  for (int64_t gi = 0; gi < L.groups; ++gi)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(cout_g),
                static_cast<int>(width), static_cast<int>(k), 1.0,
                folded.weight.data() + gi * cout_g * k, static_cast<int>(k),
                ws.col.data() + gi * k * width, static_cast<int>(width), 0.0,
                ws.part.data() + gi * cout_g * width, static_cast<int>(width));
  // [Cout][n][P] exact integer sums to [n][Cout][P] outputs; the bias and the one rounding in
  // int64, exactly as conv_gemm_blocks.
  const int F = L.frac_bits;
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < n; ++i) {
      const double* part = ws.part.data() + o * width + i * P;
      int64_t* dst = y + (i * cout + o) * P;
      const int64_t bias = L.bias_q[o];
      if (L.keep_acc) {
        for (int64_t j = 0; j < P; ++j) dst[j] = bias + static_cast<int64_t>(part[j]);
      } else {
        for (int64_t j = 0; j < P; ++j)
          dst[j] = saturate(round_shift_half_up(bias + static_cast<int64_t>(part[j]), F), L.range);
      }
    }
}

GemmPath conv_gemm(const GemmLayer& L, const FoldedGemm* folded, int64_t n, const int64_t* x,
                   int64_t* y, GemmScratch& ws) {
  const int64_t in_count = n * L.shape.cin_g * L.groups * L.shape.h * L.shape.w;
  if (folded && fold_exact(*folded, max_abs(x, in_count))) {
    conv_gemm_folded(L, *folded, n, x, y, ws);
    return GemmPath::Folded;
  }
  conv_gemm_blocks(L, n, x, y, ws);
  return GemmPath::Blocks;
}

}  // namespace tilescale::quant::kernels
