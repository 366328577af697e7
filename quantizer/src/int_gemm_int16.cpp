// The int16 route of the fast Conv/Gemm path (int_gemm_fast.h, "the int16 route", proves it
// exact): block partial sums from int16 codes in int32 lanes, combined per block in double, in one
// register-blocked kernel per column panel, so no partial sum ever leaves the registers.
//
// Why int16 and not int8: vpdpbusd (VNNI) multiplies unsigned by signed bytes, so signed
// activations would need an offset and a correction term, and AVX2's vpmaddubsw saturates pairs at
// 16 bits; vpmaddwd (AVX2, AVX-512BW) and vpdpwssd (VNNI) never saturate on 8-bit codes, take
// signed and unsigned codes alike, and still do 4x (AVX2) to 8x (AVX-512) the multiply-adds per
// instruction of the double GEMM. The patch matrix in int16 is also a quarter of the double one.
//
// GCC 12 warns (-Wmaybe-uninitialized) inside avx512fintrin.h on the intrinsics that start from
// _mm512_undefined_*: a known false positive of the header, not of this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "int_gemm_detail.h"
#include "tilescale/quant/int_gemm_fast.h"

namespace tilescale::quant::kernels {

namespace layout = model::layout;

namespace {

// One group's GEMM over one run of columns: C[rows][cols] (doubles, rows ldc apart) = the exact
// sums over rg of P[rg] * scale[row][rg], P from A (weight pairs) and the patch matrix B, whose
// row of each pair slot starts at b[2 q + t] (nullptr: a row of zeros); only its columns
// 0 .. cols - 1 are read (a last, partial panel element by element).
struct Int16Args {
  int64_t rows, cols, pairs, red_groups, ldc;
  const int32_t* a;           // [rows][pairs] two int16 weights per int32
  const double* scale;        // [rows][red_groups]
  const int64_t* pair_begin;  // [red_groups + 1]
  const int16_t* const* b;    // [pairs][2] row starts
  double* c;
  int16_t* panel;  // [pairs][W][2] scratch
  // Fused finish (AVX-512 kernel only; y == nullptr: write C): instead of C, the output codes
  // y[row * ldy + p] of one sample, column j being output pixel p = (j / pitch) * wo + j % pitch
  // when j % pitch < wo (else dropped), each computed as in finish_folded's inline rounding:
  // v = (acc + bias[row] + half) >> F, then saturated to [lo, hi].
  int64_t* y = nullptr;
  const int64_t* bias = nullptr;
  int64_t ldy = 0, pitch = 0, wo = 0, half = 0, lo = 0, hi = 0;
  int F = 0;
};

// The panel of columns j0 .. j0 + valid - 1 (valid <= W, the rest zero): for each pair q and
// column j, the two codes of rows pair_rows[2q], pair_rows[2q + 1] side by side (the int32 lane
// vpmaddwd multiplies with the weight pair).
template <int W>
[[gnu::always_inline]] inline void pack_panel_scalar(const Int16Args& g, int64_t j0, int64_t valid,
                                                     int16_t* panel) {
  for (int64_t q = 0; q < g.pairs; ++q)
    for (int t = 0; t < 2; ++t) {
      int16_t* dst = panel + q * 2 * W + t;
      const int16_t* src = g.b[2 * q + t];
      for (int64_t j = 0; j < W; ++j) dst[2 * j] = src && j < valid ? src[j0 + j] : int16_t{0};
    }
}

// --- AVX-512 with VNNI: 16 columns per panel, vpdpwssd ----------------------------------------

#define TS_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,fma"

[[gnu::target(TS_AVX512 ",avx512vnni"), gnu::always_inline]] inline void pack16(const Int16Args& g,
                                                                                int64_t j0,
                                                                                int64_t valid,
                                                                                int16_t* panel) {
  if (valid < 16) {
    pack_panel_scalar<16>(g, j0, valid, panel);
    return;
  }
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t q = 0; q < g.pairs; ++q) {
    const int16_t *r0 = g.b[2 * q], *r1 = g.b[2 * q + 1];
    const __m256i x0 = r0 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + j0)) : zero;
    const __m256i x1 = r1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + j0)) : zero;
    // unpack interleaves within 128-bit lanes: lo = columns 0-3 | 8-11, hi = 4-7 | 12-15.
    const __m256i lo = _mm256_unpacklo_epi16(x0, x1), hi = _mm256_unpackhi_epi16(x0, x1);
    __m256i* dst = reinterpret_cast<__m256i*>(panel + q * 32);
    _mm256_storeu_si256(dst, _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

// The row loops carry "#pragma GCC unroll" so that the accumulator arrays become registers early.
template <int R>
[[gnu::target(TS_AVX512 ",avx512vnni"), gnu::noinline]] void tile16(const Int16Args& g, int64_t i0,
                                                                    int64_t j0, int64_t valid,
                                                                    const int16_t* panel,
                                                                    uint32_t keep, int64_t out0) {
  const int32_t* a = g.a + i0 * g.pairs;
  const double* scale = g.scale + i0 * g.red_groups;
  __m512d acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_pd();
  for (int64_t rg = 0; rg < g.red_groups; ++rg) {
    __m512i p[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) p[r] = _mm512_setzero_si512();
    // Walking pointers and a local stride: with a[r * g.pairs + q] GCC 12 keeps the
    // accumulators in memory or copies them around every instruction (seen in the disassembly).
    const int64_t q0 = g.pair_begin[rg], q1 = g.pair_begin[rg + 1], lda = g.pairs;
    const int16_t* pb = panel + q0 * 32;
    const int32_t* pa = a + q0;
    for (int64_t q = q0; q < q1; ++q, pb += 32, ++pa) {
      const __m512i b = _mm512_loadu_si512(pb);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        // p[r] += pairwise (weight pair broadcast) * b: vpdpwssd with the pair as an embedded
        // broadcast memory operand (one instruction instead of a broadcast and the multiply-add).
        // In inline assembly because the intrinsic's tied accumulator costs GCC 12 two register
        // copies per instruction here, and GCC does not fold the broadcast itself.
        __asm__("vpdpwssd %1%{1to16%}, %2, %0" : "+v"(p[r]) : "m"(pa[r * lda]), "v"(b));
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512d s = _mm512_set1_pd(scale[r * g.red_groups + rg]);
      acc[r][0] = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(p[r])), s, acc[r][0]);
      acc[r][1] =
          _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(p[r], 1)), s, acc[r][1]);
    }
  }
  if (g.y) {
    // The columns kept (bit t of keep: column j0 + t is a pixel inside the row) are consecutive
    // output pixels from out0 on, so each half is compressed and stored contiguously.
    const __m128i F = _mm_cvtsi64_si128(g.F);
    const __m512i lo = _mm512_set1_epi64(g.lo), hi = _mm512_set1_epi64(g.hi);
    const __mmask8 k0 = static_cast<__mmask8>(keep), k1 = static_cast<__mmask8>(keep >> 8);
    const int n0 = __builtin_popcount(keep & 0xffu), n1 = __builtin_popcount(keep >> 8);
    const __mmask8 s0 = static_cast<__mmask8>((1u << n0) - 1u);
    const __mmask8 s1 = static_cast<__mmask8>((1u << n1) - 1u);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i add = _mm512_set1_epi64(g.bias[i0 + r] + g.half);
      int64_t* dst = g.y + (i0 + r) * g.ldy + out0;
      // acc is an integer below 2^53: the truncating conversion is exact.
      __m512i v0 = _mm512_sra_epi64(_mm512_add_epi64(_mm512_cvttpd_epi64(acc[r][0]), add), F);
      __m512i v1 = _mm512_sra_epi64(_mm512_add_epi64(_mm512_cvttpd_epi64(acc[r][1]), add), F);
      v0 = _mm512_min_epi64(_mm512_max_epi64(v0, lo), hi);  // saturate (lo <= hi)
      v1 = _mm512_min_epi64(_mm512_max_epi64(v1, lo), hi);
      _mm512_mask_storeu_epi64(dst, s0, _mm512_maskz_compress_epi64(k0, v0));
      _mm512_mask_storeu_epi64(dst + n0, s1, _mm512_maskz_compress_epi64(k1, v1));
    }
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    double* c = g.c + (i0 + r) * g.ldc + j0;
    if (valid == 16) {
      _mm512_storeu_pd(c, acc[r][0]);
      _mm512_storeu_pd(c + 8, acc[r][1]);
    } else {
      alignas(64) double tmp[16];
      _mm512_store_pd(tmp, acc[r][0]);
      _mm512_store_pd(tmp + 8, acc[r][1]);
      std::copy_n(tmp, valid, c);
    }
  }
}

[[gnu::target(TS_AVX512 ",avx512vnni")]] void run_avx512_vnni(const Int16Args& g) {
  int64_t ox = 0, oy = 0;  // the pixel of column j0 (fused finish)
  for (int64_t j0 = 0; j0 < g.cols; j0 += 16) {
    const int64_t valid = std::min<int64_t>(16, g.cols - j0);
    uint32_t keep = 0;
    int64_t out0 = 0;
    if (g.y) {
      for (int64_t t = 0; t < valid; ++t) {
        if (ox < g.wo) {
          if (keep == 0) out0 = oy * g.wo + ox;
          keep |= 1u << t;
        }
        if (++ox == g.pitch) {
          ox = 0;
          ++oy;
        }
      }
      if (keep == 0) continue;  // a run of padding columns only
    }
    pack16(g, j0, valid, g.panel);
    int64_t i = 0;
    for (; i + 8 <= g.rows; i += 8) tile16<8>(g, i, j0, valid, g.panel, keep, out0);
    for (; i + 4 <= g.rows; i += 4) tile16<4>(g, i, j0, valid, g.panel, keep, out0);
    for (; i + 2 <= g.rows; i += 2) tile16<2>(g, i, j0, valid, g.panel, keep, out0);
    for (; i < g.rows; ++i) tile16<1>(g, i, j0, valid, g.panel, keep, out0);
  }
}

// (AVX-512BW without VNNI, Skylake-X, runs the AVX2 kernel: a third variant would need the tile
// compiled without the VNNI target, and the gain is small next to the AVX2 kernel's.)

// --- AVX2: 8 columns per panel, vpmaddwd + vpaddd ------------------------------------------------

[[gnu::target("avx2,fma"), gnu::always_inline]] inline void pack8(const Int16Args& g, int64_t j0,
                                                                  int64_t valid, int16_t* panel) {
  if (valid < 8) {
    pack_panel_scalar<8>(g, j0, valid, panel);
    return;
  }
  const __m128i zero = _mm_setzero_si128();
  for (int64_t q = 0; q < g.pairs; ++q) {
    const int16_t *r0 = g.b[2 * q], *r1 = g.b[2 * q + 1];
    const __m128i x0 = r0 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + j0)) : zero;
    const __m128i x1 = r1 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + j0)) : zero;
    __m128i* dst = reinterpret_cast<__m128i*>(panel + q * 16);
    _mm_storeu_si128(dst, _mm_unpacklo_epi16(x0, x1));
    _mm_storeu_si128(dst + 1, _mm_unpackhi_epi16(x0, x1));
  }
}

template <int R>
[[gnu::target("avx2,fma"), gnu::noinline]] void tile8(const Int16Args& g, int64_t i0, int64_t j0,
                                                      int64_t valid, const int16_t* panel) {
  const int32_t* a = g.a + i0 * g.pairs;
  const double* scale = g.scale + i0 * g.red_groups;
  __m256d acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_pd();
  for (int64_t rg = 0; rg < g.red_groups; ++rg) {
    __m256i p[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) p[r] = _mm256_setzero_si256();
    const int64_t q0 = g.pair_begin[rg], q1 = g.pair_begin[rg + 1], lda = g.pairs;
    const int16_t* pb = panel + q0 * 16;
    const int32_t* pa = a + q0;
    for (int64_t q = q0; q < q1; ++q, pb += 16, ++pa) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        // p[r] += vpmaddwd(w, b) in inline assembly: from the intrinsics GCC 12 adds a register
        // copy of every accumulator per step (seen in the disassembly).
        __m256i t;
        __asm__("vpmaddwd %2, %3, %1\n\tvpaddd %1, %0, %0"
                : "+x"(p[r]), "=&x"(t)
                : "x"(b), "x"(_mm256_set1_epi32(pa[r * lda])));
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256d s = _mm256_set1_pd(scale[r * g.red_groups + rg]);
      acc[r][0] = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(p[r])), s, acc[r][0]);
      acc[r][1] =
          _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(p[r], 1)), s, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    double* c = g.c + (i0 + r) * g.ldc + j0;
    if (valid == 8) {
      _mm256_storeu_pd(c, acc[r][0]);
      _mm256_storeu_pd(c + 4, acc[r][1]);
    } else {
      alignas(32) double tmp[8];
      _mm256_store_pd(tmp, acc[r][0]);
      _mm256_store_pd(tmp + 4, acc[r][1]);
      std::copy_n(tmp, valid, c);
    }
  }
}

[[gnu::target("avx2,fma")]] void run_avx2(const Int16Args& g) {
  for (int64_t j0 = 0; j0 < g.cols; j0 += 8) {
    const int64_t valid = std::min<int64_t>(8, g.cols - j0);
    pack8(g, j0, valid, g.panel);
    int64_t i = 0;
    for (; i + 4 <= g.rows; i += 4) tile8<4>(g, i, j0, valid, g.panel);
    for (; i + 2 <= g.rows; i += 2) tile8<2>(g, i, j0, valid, g.panel);
    for (; i < g.rows; ++i) tile8<1>(g, i, j0, valid, g.panel);
  }
}

struct Kernel {
  void (*run)(const Int16Args&) = nullptr;
  int width = 0;  // columns per panel
  const char* name = "none";
};

bool has_avx512_vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
}
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

const Kernel kAvx512Vnni{run_avx512_vnni, 16, "avx512-vnni"}, kAvx2{run_avx2, 8, "avx2"}, kNone{};

const Kernel& best_kernel() {
  __builtin_cpu_init();
  return has_avx512_vnni() ? kAvx512Vnni : has_avx2() ? kAvx2 : kNone;
}

// The kernel a name selects ("auto": the best), or nullptr for an unknown name or a kernel this
// CPU cannot run.
const Kernel* kernel_named(const std::string& name) {
  if (name == "auto") return &best_kernel();
  if (name == "none") return &kNone;
  if (name == kAvx512Vnni.name && has_avx512_vnni()) return &kAvx512Vnni;
  if (name == kAvx2.name && has_avx2()) return &kAvx2;
  return nullptr;
}

// Starts as TILESCALE_INT16_KERNEL names it (for benchmarks: e.g. the AVX2 kernel on an AVX-512
// machine; an unusable name is ignored), else the best.
const Kernel*& current() {
  static const Kernel* k = [] {
    const char* env = std::getenv("TILESCALE_INT16_KERNEL");
    const Kernel* named = env ? kernel_named(env) : nullptr;
    return named ? named : &best_kernel();
  }();
  return k;
}

const Kernel& kernel() { return *current(); }

}  // namespace

bool select_int16_kernel(const std::string& name) {
  const Kernel* k = kernel_named(name);
  if (k) current() = k;
  return k != nullptr;
}

const char* int16_kernel_name() { return kernel().name; }

bool int16_exact(const FoldedGemm& folded, int64_t a_max) {
  constexpr int64_t kInt16Max = 32767, kInt32Max = 2147483647;
  if (!kernel().run || folded.weight_pairs.empty() || a_max < 0 || a_max > kInt16Max) return false;
  // a_max <= 2^15 and block_abs_sum <= k * 128: the product is formed in 128 bits.
  if (static_cast<unsigned __int128>(a_max) * static_cast<unsigned __int128>(folded.block_abs_sum) >
      static_cast<unsigned __int128>(kInt32Max))
    return false;
  return fold_exact(folded, a_max);
}

bool detail::int16_packed(const FoldedGemm& folded) {
  return kernel().run && !folded.weight_pairs.empty();
}

namespace {

// y = x truncated to int16 (exact where |x| <= 2^15 - 1, the only case it is used in), lo/hi
// lowered/raised to x's extremes, in one pass the compiler vectorises.
[[gnu::always_inline]] inline void narrow_body(const int64_t* x, int64_t count, int16_t* y,
                                               int64_t& lo_out, int64_t& hi_out) {
  int64_t lo = lo_out, hi = hi_out;  // locals: through the references the loop would not vectorise
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    y[i] = static_cast<int16_t>(x[i]);
  }
  lo_out = lo;
  hi_out = hi;
}
[[gnu::target(TS_AVX512)]] void narrow_avx512(const int64_t* x, int64_t count, int16_t* y,
                                              int64_t& lo, int64_t& hi) {
  narrow_body(x, count, y, lo, hi);
}
[[gnu::target("avx2")]] void narrow_avx2(const int64_t* x, int64_t count, int16_t* y, int64_t& lo,
                                         int64_t& hi) {
  narrow_body(x, count, y, lo, hi);
}

// layout::im2col_onnx for int16 codes, the same matrix: the per-row std::fill/std::copy calls
// there cost more than the 7..28-element runs they move here, so the runs are plain loops the
// compiler vectorises inline.
[[gnu::always_inline]] inline void im2col_body(const layout::ConvShape& s, const int16_t* in,
                                               int16_t* col, int64_t ld) {
  const int64_t kh = s.win.kernel_h, kw = s.win.kernel_w, wo = s.wo, ho = s.ho;
  for (int64_t c = 0; c < s.cin_g; ++c) {
    const int16_t* plane = in + c * s.h * s.w;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        int16_t* row = col + layout::onnx_reduction_index(s.kernel(), c, ky * kw + kx) * ld;
        const int64_t x0 = s.input_x(0, kx), sx = s.win.stride_w;
        // Output columns lo..hi-1 read inside the input row: ox * sx + x0 in [0, w).
        int64_t lo = 0, hi = wo;
        while (lo < wo && lo * sx + x0 < 0) ++lo;
        while (hi > lo && (hi - 1) * sx + x0 >= s.w) --hi;
        for (int64_t oy = 0; oy < ho; ++oy) {
          const int64_t iy = s.input_y(oy, ky);
          int16_t* dst = row + oy * wo;
          if (iy < 0 || iy >= s.h) {
            for (int64_t j = 0; j < wo; ++j) dst[j] = 0;
            continue;
          }
          const int16_t* src = plane + iy * s.w + x0;
          for (int64_t j = 0; j < lo; ++j) dst[j] = 0;
          if (sx == 1)
            for (int64_t j = lo; j < hi; ++j) dst[j] = src[j];
          else
            for (int64_t j = lo; j < hi; ++j) dst[j] = src[j * sx];
          for (int64_t j = hi; j < wo; ++j) dst[j] = 0;
        }
      }
  }
}
[[gnu::target(TS_AVX512)]] void im2col_avx512(const layout::ConvShape& s, const int16_t* in,
                                              int16_t* col, int64_t ld) {
  im2col_body(s, in, col, ld);
}
[[gnu::target("avx2")]] void im2col_avx2(const layout::ConvShape& s, const int16_t* in,
                                         int16_t* col, int64_t ld) {
  im2col_body(s, in, col, ld);
}

}  // namespace

int64_t detail::input_to_int16(const GemmLayer& L, int64_t n, const int64_t* x, GemmScratch& ws) {
  const int64_t count = n * L.shape.cin_g * L.groups * L.shape.h * L.shape.w;
  ws.x16.resize(static_cast<std::size_t>(count));
  int64_t lo = 0, hi = 0;
  (kernel().width == 16 ? narrow_avx512 : narrow_avx2)(x, count, ws.x16.data(), lo, hi);
  if (lo == std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::max();
  return std::max(-lo, hi);
}

void conv_gemm_int16(const GemmLayer& L, const FoldedGemm& f, int64_t n, const int64_t* x,
                     int64_t* y, GemmScratch& ws) {
  if (!detail::int16_packed(f))
    throw std::logic_error("conv_gemm_int16: no int16 kernel on this CPU or no packed weights");
  detail::input_to_int16(L, n, x, ws);
  detail::int16_from_converted(L, f, n, y, ws);
}

void detail::int16_from_converted(const GemmLayer& L, const FoldedGemm& f, int64_t n, int64_t* y,
                                  GemmScratch& ws) {
  const Kernel& kern = kernel();
  const layout::ConvShape& s = L.shape;
  const model::Window& win = s.win;
  const int64_t k = s.k(), P = s.positions(), cout = L.out_channels;
  const int64_t cout_g = cout / L.groups, cin = s.cin_g * L.groups, plane = s.h * s.w;
  const int64_t pairs = f.pair_begin.back(), red = L.grid->red_groups, kernel = s.kernel();
  ws.panel16.resize(static_cast<std::size_t>(pairs * kern.width * 2));
  ws.rows16.resize(static_cast<std::size_t>(2 * pairs));
  // |q_x| <= 2^15 - 1 (int16_exact): ws.x16 holds the codes exactly.
  const int64_t hp = s.h + win.pad_top + win.pad_bottom, wp = s.w + win.pad_left + win.pad_right;
  const int64_t sh = win.stride_h, sw = win.stride_w, kh = win.kernel_h, kw = win.kernel_w;
  const bool direct = P > 1 && win.dilation_h == 1 && win.dilation_w == 1 && sh >= 1 && sw >= 1 &&
                      hp >= kh && wp >= kw && s.ho == (hp - kh) / sh + 1 &&
                      s.wo == (wp - kw) / sw + 1;
  if (direct) {
    // Convolutions without im2col. Split the zero-padded input plane (hp x wp) into sh * sw phase
    // planes of hq x wq, phase (u, v) holding the padded elements (Y, X) with Y % sh = u and
    // X % sw = v at (Y / sh, X / sw). Tap (ky, kx) of output pixel (oy, ox) reads padded element
    // (oy * sh + ky, ox * sw + kx), i.e. element (oy + ky / sh, ox + kx / sw) of phase
    // (ky % sh, kx % sw); so over the output pixels taken with pitch wq (ox running past wo) each
    // tap is one contiguous run of its phase plane, starting at (ky / sh) * wq + kx / sw, and each
    // patch-matrix row is read straight from the planes. The GEMM computes ho * wq columns per
    // sample and finish_folded skips the wq - wo extra ones of each row (their reads stay inside
    // the buffer: the last rows' runs pass the planes by at most (kw - 1) / sw + the panel width,
    // the slack). Stride 1 is a single phase, the padded plane itself.
    const int64_t hq = (hp + sh - 1) / sh, wq = (wp + sw - 1) / sw, phase = hq * wq;
    const int64_t per_channel = sh * sw * phase, cols = s.ho * wq, sample = cols;
    ws.pad16.assign(static_cast<std::size_t>(s.cin_g * per_channel + wq + 2 * kern.width), 0);
    // The finish fused into the AVX-512 kernel's tiles where finish_folded would take its inline
    // rounding (the same conditions and formula, proven there) and saturation is min/max.
    int64_t widest_bias = 0;
    for (int64_t o = 0; o < cout; ++o)
      widest_bias = std::max(widest_bias, L.bias_q[o] < 0 ? -(L.bias_q[o] + 1) : L.bias_q[o]);
    const int F = L.frac_bits;
    const bool fused = kern.width == 16 && !L.keep_acc && F >= 1 && F <= 62 &&
                       widest_bias < (int64_t{1} << 61) && L.range.lo <= L.range.hi;
    if (!fused) ws.part.resize(static_cast<std::size_t>(cout * n * sample));
    for (int64_t q = 0; q < 2 * pairs; ++q) {
      const int32_t r = f.pair_rows[static_cast<std::size_t>(q)];
      const int64_t c = r / kernel, ky = (r % kernel) / kw, kx = (r % kernel) % kw;
      ws.rows16[static_cast<std::size_t>(q)] = r < 0 ? nullptr
                                                     : ws.pad16.data() + c * per_channel +
                                                           ((ky % sh) * sw + kx % sw) * phase +
                                                           (ky / sh) * wq + kx / sw;
    }
    std::vector<int64_t> first(static_cast<std::size_t>(sw)), start(first.size());
    for (int64_t v = 0; v < sw; ++v) {
      first[static_cast<std::size_t>(v)] = ((v - win.pad_left) % sw + sw) % sw;
      start[static_cast<std::size_t>(v)] = (first[static_cast<std::size_t>(v)] + win.pad_left) / sw;
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t gi = 0; gi < L.groups; ++gi) {
        // This sample's and group's channels into the planes; the padding stays zero. Padded
        // row Y = yy + pad_top goes to phase row Y / sh of phases Y % sh, padded column
        // X = xx + pad_left to phase X % sw at X / sw (first[v], start[v]: the first input column
        // of phase v and its place), all stepped without a division per row or element.
        const int16_t* src = ws.x16.data() + (i * cin + gi * s.cin_g) * plane;
        for (int64_t c = 0; c < s.cin_g; ++c) {
          int64_t u = win.pad_top % sh, yq = win.pad_top / sh;
          for (int64_t yy = 0; yy < s.h; ++yy) {
            const int16_t* row = src + (c * s.h + yy) * s.w;
            int16_t* dst = ws.pad16.data() + c * per_channel + u * sw * phase + yq * wq;
            if (sw == 1) {
              std::copy_n(row, s.w, dst + win.pad_left);
            } else {
              for (int64_t v = 0; v < sw; ++v) {
                int16_t* to = dst + v * phase + start[static_cast<std::size_t>(v)];
                for (int64_t xx = first[static_cast<std::size_t>(v)]; xx < s.w; xx += sw)
                  *to++ = row[xx];
              }
            }
            if (++u == sh) {
              u = 0;
              ++yq;
            }
          }
        }
        Int16Args args{
            cout_g, cols, pairs, red, n * sample, f.weight_pairs.data() + gi * cout_g * pairs,
            f.row_scale.data() + gi * cout_g * red, f.pair_begin.data(), ws.rows16.data(),
            // (no part buffer when fused: no pointer into it is formed)
            fused ? nullptr : ws.part.data() + gi * cout_g * n * sample + i * sample,
            ws.panel16.data()};
        if (fused) {
          args.y = y + (i * cout + gi * cout_g) * P;
          args.bias = L.bias_q + gi * cout_g;
          args.ldy = P;
          args.pitch = wq;
          args.wo = s.wo;
          args.half = int64_t{1} << (F - 1);
          args.lo = L.range.lo;
          args.hi = L.range.hi;
          args.F = F;
        }
        kern.run(args);
      }
    if (!fused) detail::finish_folded(L, n, ws.part.data(), y, wq);
    return;
  }
  // Otherwise (dilation, Gemm) by im2col, in slices of whole samples of about 512
  // columns, so that a slice's int16 patch matrix stays in the core's L2 cache between its im2col
  // and its panels.
  const int64_t width = n * P;
  const int64_t slice = std::max<int64_t>(1, std::min<int64_t>(512 / P, n));
  ws.col16.resize(static_cast<std::size_t>(k * slice * P + 2 * kern.width));
  ws.part.resize(static_cast<std::size_t>(cout * width));
  for (int64_t first = 0; first < n; first += slice) {
    const int64_t ns = std::min(slice, n - first), cols = ns * P;
    for (int64_t q = 0; q < 2 * pairs; ++q) {
      const int32_t r = f.pair_rows[static_cast<std::size_t>(q)];
      ws.rows16[static_cast<std::size_t>(q)] = r < 0 ? nullptr : ws.col16.data() + r * cols;
    }
    for (int64_t gi = 0; gi < L.groups; ++gi) {
      for (int64_t i = 0; i < ns; ++i)
        (kern.width == 16 ? im2col_avx512 : im2col_avx2)(
            s, ws.x16.data() + ((first + i) * cin + gi * s.cin_g) * plane, ws.col16.data() + i * P,
            cols);
      kern.run({cout_g, cols, pairs, red, width, f.weight_pairs.data() + gi * cout_g * pairs,
                f.row_scale.data() + gi * cout_g * red, f.pair_begin.data(), ws.rows16.data(),
                ws.part.data() + gi * cout_g * width + first * P, ws.panel16.data()});
    }
  }
  detail::finish_folded(L, n, ws.part.data(), y, s.wo);
}

}  // namespace tilescale::quant::kernels
