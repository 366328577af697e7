#include "tilescale/quant/int_gemm_fast.h"

#include <algorithm>
#include <cstdlib>

#include "int_gemm_detail.h"

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

// --- the double GEMM ---------------------------------------------------------------------------
// Debian's OpenBLAS 0.3.21 does not recognise this Xeon (family 6 model 207) and runs its SSE3
// "Prescott" DGEMM (README, "Why oneDNN"), and oneDNN has no f64 GEMM on CPUs; so the folded GEMM
// has its own small kernel, compiled for AVX-512, AVX2 and the baseline and picked at run time.
// The order of its sums does not matter: every partial sum is an exact integer (the bound above).

using v8d = double __attribute__((vector_size(64), aligned(8)));  // unaligned 8-double vector

// C[R rows][16 columns] = A[R][K] * B[K][16 columns], B's rows ldb apart; A's rows lda apart.
template <int R>
[[gnu::always_inline]] inline void gemm_tile(const double* a, int64_t lda, const double* b,
                                             int64_t ldb, int64_t K, double* c, int64_t ldc) {
  v8d acc[R][2] = {};
  for (int64_t kk = 0; kk < K; ++kk) {
    const v8d b0 = *reinterpret_cast<const v8d*>(b + kk * ldb);
    const v8d b1 = *reinterpret_cast<const v8d*>(b + kk * ldb + 8);
    for (int r = 0; r < R; ++r) {
      const double s = a[r * lda + kk];
      acc[r][0] += s * b0;
      acc[r][1] += s * b1;
    }
  }
  for (int r = 0; r < R; ++r) {
    *reinterpret_cast<v8d*>(c + r * ldc) = acc[r][0];
    *reinterpret_cast<v8d*>(c + r * ldc + 8) = acc[r][1];
  }
}

// C[M][N] = A[M][K] * B[K][N], row-major; B's rows N apart, C's ldc apart. Panels of 16 columns
// of B are copied together once (pack, K * 16) when at least 8 rows of A reuse them.
struct GemmArgs {
  int64_t M, N, K, ldc;
  const double *A, *B;
  double *C, *pack;
};

[[gnu::always_inline]] inline void gemm_body(const GemmArgs& g) {
  const int64_t M = g.M, N = g.N, K = g.K, ldc = g.ldc;
  int64_t j = 0;
  for (; j + 16 <= N; j += 16) {
    const double* b = g.B + j;
    int64_t ldb = N;
    if (M >= 8) {
      for (int64_t kk = 0; kk < K; ++kk) {  // two vector moves, not a memmove call per row
        *reinterpret_cast<v8d*>(g.pack + kk * 16) = *reinterpret_cast<const v8d*>(g.B + kk * N + j);
        *reinterpret_cast<v8d*>(g.pack + kk * 16 + 8) =
            *reinterpret_cast<const v8d*>(g.B + kk * N + j + 8);
      }
      b = g.pack;
      ldb = 16;
    }
    int64_t i = 0;
    for (; i + 8 <= M; i += 8) gemm_tile<8>(g.A + i * K, K, b, ldb, K, g.C + i * ldc + j, ldc);
    for (; i + 4 <= M; i += 4) gemm_tile<4>(g.A + i * K, K, b, ldb, K, g.C + i * ldc + j, ldc);
    for (; i < M; ++i) gemm_tile<1>(g.A + i * K, K, b, ldb, K, g.C + i * ldc + j, ldc);
  }
  for (; j < N; ++j)
    for (int64_t i = 0; i < M; ++i) {
      double sum = 0.0;
      for (int64_t kk = 0; kk < K; ++kk) sum += g.A[i * K + kk] * g.B[kk * N + j];
      g.C[i * ldc + j] = sum;
    }
}

[[gnu::target("avx512f,fma"), gnu::optimize("fp-contract=fast")]] void gemm_avx512(
    const GemmArgs& g) {
  gemm_body(g);
}
[[gnu::target("avx2,fma"), gnu::optimize("fp-contract=fast")]] void gemm_avx2(const GemmArgs& g) {
  gemm_body(g);
}
void gemm_baseline(const GemmArgs& g) { gemm_body(g); }

void gemm(GemmArgs g, std::vector<double>& pack) {
  static const auto kernel =
      __builtin_cpu_supports("avx512f")
          ? gemm_avx512
          : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? gemm_avx2
                                                                             : gemm_baseline);
  pack.resize(static_cast<std::size_t>(g.K * 16));
  g.pack = pack.data();
  kernel(g);
}

// --- conversions between int64 codes and exact doubles -------------------------------------------
// x86-64's baseline has no vector int64 <-> double conversion (AVX512DQ has), so these loops get
// an AVX512DQ build as well; the conversions are exact either way (|values| < 2^53).

// y = x as doubles, with lo/hi lowered/raised to x's extremes in the same pass over x.
[[gnu::always_inline]] inline void to_double_body(const int64_t* x, int64_t count, double* y,
                                                  int64_t& lo_out, int64_t& hi_out) {
  int64_t lo = lo_out, hi = hi_out;  // locals: through the references the loop would not vectorise
  for (int64_t i = 0; i < count; ++i) {
    y[i] = static_cast<double>(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo_out = lo;
  hi_out = hi;
}

// y[i][o][oy][ox] = the layer's output from the exact sums part[o][i * ho * pitch + oy * pitch +
// ox] (pitch >= wo; columns ox >= wo are skipped): the bias and the one rounding in int64, exactly
// as conv_gemm_blocks.
[[gnu::always_inline]] inline void finish_body(const GemmLayer& L, int64_t n, const double* part,
                                               int64_t* y, int64_t pitch) {
  const int64_t P = L.shape.positions(), cout = L.out_channels, ho = L.shape.ho, wo = L.shape.wo;
  // Rows of the output plane as one run when they are contiguous in part as well.
  const int64_t run = pitch == wo ? P : wo, runs = pitch == wo ? 1 : ho,
                step = pitch == wo ? P : pitch;
  const int64_t sample = ho * pitch, width = n * sample;
  const int F = L.frac_bits;
  const IntRange range = L.range;
  // round_shift_half_up(acc, F) inlined for the loop to vectorise, where it provably neither
  // throws nor wraps: F in 1..62 and |bias| <= 2^61 make |acc| < 2^61 + 2^53 < 2^62, so
  // acc + 2^(F-1) < 2^63; (acc + 2^(F-1)) >> F is then the function's own formula (an arithmetic
  // shift, as GCC defines >> on negative values). Otherwise the function itself runs.
  int64_t widest_bias = 0;
  for (int64_t o = 0; o < cout; ++o)
    widest_bias = std::max(widest_bias, L.bias_q[o] < 0 ? -(L.bias_q[o] + 1) : L.bias_q[o]);
  const bool inline_round = F >= 1 && F <= 62 && widest_bias < (int64_t{1} << 61);
  const int64_t half = inline_round ? int64_t{1} << (F - 1) : 0, lo = range.lo, hi = range.hi;
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < runs; ++r) {
        const double* src = part + o * width + i * sample + r * step;
        int64_t* dst = y + (i * cout + o) * P + r * run;
        const int64_t bias = L.bias_q[o];
        if (!L.keep_acc && inline_round) {
          for (int64_t j = 0; j < run; ++j) {
            const int64_t v = (bias + static_cast<int64_t>(src[j]) + half) >> F;
            dst[j] = v < lo ? lo : (v > hi ? hi : v);  // saturate
          }
        } else if (L.keep_acc) {
          for (int64_t j = 0; j < run; ++j) dst[j] = bias + static_cast<int64_t>(src[j]);
        } else {
          for (int64_t j = 0; j < run; ++j)
            dst[j] = saturate(round_shift_half_up(bias + static_cast<int64_t>(src[j]), F), range);
        }
      }
}

[[gnu::target("avx512f,avx512dq")]] void to_double_avx512(const int64_t* x, int64_t count,
                                                          double* y, int64_t& lo, int64_t& hi) {
  to_double_body(x, count, y, lo, hi);
}
void to_double_baseline(const int64_t* x, int64_t count, double* y, int64_t& lo, int64_t& hi) {
  to_double_body(x, count, y, lo, hi);
}
[[gnu::target("avx512f,avx512dq")]] void finish_avx512(const GemmLayer& L, int64_t n,
                                                       const double* part, int64_t* y,
                                                       int64_t pitch) {
  finish_body(L, n, part, y, pitch);
}
void finish_baseline(const GemmLayer& L, int64_t n, const double* part, int64_t* y, int64_t pitch) {
  finish_body(L, n, part, y, pitch);
}

// Two reductions the compiler vectorises (64-bit min/max need AVX-512F or SSE4.2).
[[gnu::always_inline]] inline void min_max_body(const int64_t* x, int64_t count, int64_t& lo_out,
                                                int64_t& hi_out) {
  int64_t lo = lo_out, hi = hi_out;  // locals: through the references the loop would not vectorise
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo_out = lo;
  hi_out = hi;
}
[[gnu::target("avx512f,avx512dq")]] void min_max_avx512(const int64_t* x, int64_t count,
                                                        int64_t& lo, int64_t& hi) {
  min_max_body(x, count, lo, hi);
}
void min_max_baseline(const int64_t* x, int64_t count, int64_t& lo, int64_t& hi) {
  min_max_body(x, count, lo, hi);
}

bool has_avx512dq() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return yes;
}

int64_t magnitude(int64_t lo, int64_t hi) {
  if (lo == std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::max();
  return std::max(-lo, hi);
}

// The input's codes as doubles in ws.xb; returns their largest magnitude.
int64_t input_to_double(const GemmLayer& L, int64_t n, const int64_t* x, GemmScratch& ws) {
  const int64_t count = n * L.shape.cin_g * L.groups * L.shape.h * L.shape.w;
  ws.xb.resize(static_cast<std::size_t>(count));
  int64_t lo = 0, hi = 0;
  (has_avx512dq() ? to_double_avx512 : to_double_baseline)(x, count, ws.xb.data(), lo, hi);
  return magnitude(lo, hi);
}

// conv_gemm_folded after input_to_double.
void folded_from_doubles(const GemmLayer& L, const FoldedGemm& folded, int64_t n, int64_t* y,
                         GemmScratch& ws);

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
  // The int16 route's operands: reduction indices by reduction group, in pairs.
  folded.pair_begin.push_back(0);
  for (const std::vector<int64_t>& members : cols) {
    for (int64_t c : members) folded.pair_rows.push_back(static_cast<int32_t>(c));
    if (members.size() % 2) folded.pair_rows.push_back(-1);
    folded.pair_begin.push_back(static_cast<int64_t>(folded.pair_rows.size() / 2));
  }
  const int64_t pairs = folded.pair_begin.back(), red = grid.red_groups;
  auto code = [&](int64_t o, int32_t c) -> uint32_t {
    return c < 0 ? 0u : static_cast<uint16_t>(static_cast<int16_t>(L.weight[o * k + c]));
  };
  folded.weight_pairs.resize(static_cast<std::size_t>(cout * pairs));
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t q = 0; q < pairs; ++q)
      folded.weight_pairs[static_cast<std::size_t>(o * pairs + q)] = static_cast<int32_t>(
          code(o, folded.pair_rows[2 * q]) | (code(o, folded.pair_rows[2 * q + 1]) << 16));
  folded.row_scale.assign(static_cast<std::size_t>(cout * red), 0.0);
  int64_t widest = 0;
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t rg = 0; rg < red; ++rg) {
      int64_t sum = 0;  // at most k * 128
      for (int64_t c : cols[static_cast<std::size_t>(rg)]) sum += std::llabs(L.weight[o * k + c]);
      widest = std::max(widest, sum);
      // A used scale is at most S < 2^53 (its row has a nonzero weight), so the double is exact.
      if (sum > 0)
        folded.row_scale[static_cast<std::size_t>(o * red + rg)] =
            static_cast<double>(scale[static_cast<std::size_t>(grid.out_group[o] * red + rg)]);
    }
  folded.block_abs_sum = widest;
  return folded;
}

bool fold_exact(const FoldedGemm& folded, int64_t a_max) {
  if (folded.weight.empty()) return false;
  const u128 a = static_cast<u128>(std::max<int64_t>(a_max, 1));
  return a * static_cast<u128>(folded.bound) < static_cast<u128>(kExactDoubleLimit);
}

int64_t max_abs(const int64_t* x, int64_t count) {
  int64_t lo = 0, hi = 0;
  (has_avx512dq() ? min_max_avx512 : min_max_baseline)(x, count, lo, hi);
  return magnitude(lo, hi);
}

void conv_gemm_folded(const GemmLayer& L, const FoldedGemm& folded, int64_t n, const int64_t* x,
                      int64_t* y, GemmScratch& ws) {
  input_to_double(L, n, x, ws);
  folded_from_doubles(L, folded, n, y, ws);
}

namespace {

void folded_from_doubles(const GemmLayer& L, const FoldedGemm& folded, int64_t n, int64_t* y,
                         GemmScratch& ws) {
  const layout::ConvShape& s = L.shape;
  const int64_t k = s.k(), P = s.positions(), width = n * P, cout = L.out_channels;
  const int64_t cout_g = cout / L.groups, cin = s.cin_g * L.groups, plane = s.h * s.w;
  // From the input as doubles (xb), patch matrices by plain copies; one GEMM per group and slice
  // into the sums part [Cout][n * P].
  // Slices of whole samples, about 512 columns each, so that a slice's patch matrix stays in the
  // core's L2 cache between its im2col and its GEMM.
  const int64_t slice = std::max<int64_t>(1, std::min<int64_t>(512 / P, n));
  ws.col.resize(static_cast<std::size_t>(k * slice * P));
  ws.part.resize(static_cast<std::size_t>(cout * width));
  for (int64_t first = 0; first < n; first += slice) {
    const int64_t ns = std::min(slice, n - first), cols = ns * P;
    for (int64_t gi = 0; gi < L.groups; ++gi) {
      for (int64_t i = 0; i < ns; ++i)
        layout::im2col_onnx(s, ws.xb.data() + ((first + i) * cin + gi * s.cin_g) * plane,
                            ws.col.data() + i * P, cols);
      gemm({cout_g, cols, k, width, folded.weight.data() + gi * cout_g * k, ws.col.data(),
            ws.part.data() + gi * cout_g * width + first * P, nullptr},
           ws.wq);
    }
  }
  detail::finish_folded(L, n, ws.part.data(), y, L.shape.wo);
}

}  // namespace

void detail::finish_folded(const GemmLayer& L, int64_t n, const double* part, int64_t* y,
                           int64_t pitch) {
  (has_avx512dq() ? finish_avx512 : finish_baseline)(L, n, part, y, pitch);
}

GemmPath conv_gemm(const GemmLayer& L, const FoldedGemm* folded, int64_t n, const int64_t* x,
                   int64_t* y, GemmScratch& ws) {
  if (folded && detail::int16_packed(*folded) &&
      int16_exact(*folded, detail::input_to_int16(L, n, x, ws))) {
    detail::int16_from_converted(L, *folded, n, y, ws);
    return GemmPath::Int16;
  }
  // The conversion to doubles finds max |q_x| on the way; on the fallback it is wasted, once.
  if (folded && !folded->weight.empty() && fold_exact(*folded, input_to_double(L, n, x, ws))) {
    folded_from_doubles(L, *folded, n, y, ws);
    return GemmPath::Folded;
  }
  conv_gemm_blocks(L, n, x, y, ws);
  return GemmPath::Blocks;
}

}  // namespace tilescale::quant::kernels
