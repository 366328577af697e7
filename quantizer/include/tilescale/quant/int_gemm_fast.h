// Fast exact routes for Conv/Gemm layers of the golden integer executor: the same codes as
// kernels::conv_gemm_blocks (int_kernels.h, the reference and the last fallback). conv_gemm tries
// the int16 route first (int16 block sums, combined in double; "the int16 route" below), then the
// folded double GEMM (one double GEMM per layer group instead of one GEMM and one int64
// scale-and-add pass per reduction group), then the reference; each route's bound is checked per
// call on the actual input codes.
//
// The folded double GEMM.
// Why it is exact. conv_gemm_blocks computes, per output o and pixel,
//   acc = bias_q[o] + sum over blocks b of P[b] * m[b] * 2^(F - r[b]),  P[b] = sum q_x * q_w.
// The block scale s[b] = m[b] * 2^(F - r[b]) is an integer (F = max r), so
//   acc - bias_q[o] = sum over k of q_x[k] * W'[o][k],   W'[o][k] = q_w[o][k] * s[block of (o, k)],
// one dot product of integers. Let S = max over o of sum_k |W'[o][k]| (fold_bound) and A the
// largest |q_x| of the input. Every product, every partial sum in any order and the result have
// magnitude at most A * S; if A * S < 2^53 they are all integers a double holds exactly, so a
// double GEMM (any blocking, any FMA use, any thread count) returns the exact sum. The bound is
// checked per call on the actual codes (fold_exact), so no metadata about the input grid has to be
// trusted; outside it conv_gemm falls back to conv_gemm_blocks.
//
// Why not fp32 per block: a block partial sum fits fp32 only while K_blk * max|q_x| * max|q_w| <
// 2^24, and even then each reduction group needs its own int64 multiply-add pass over the
// accumulators; with block:16 that pass costs as much as the GEMM itself. Folding the integer
// scales into the weights removes the per-block pass and the per-block GEMM launches altogether.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant::kernels {

// 2^53: every integer of magnitude <= 2^53 is a double, 2^53 + 1 is the first one that is not.
inline constexpr int64_t kExactDoubleLimit = int64_t{1} << 53;
static_assert(std::numeric_limits<double>::radix == 2 && std::numeric_limits<double>::digits == 53,
              "the folded GEMM's bound assumes IEEE binary64 doubles");
static_assert(static_cast<int64_t>(static_cast<double>(kExactDoubleLimit - 1)) ==
                  kExactDoubleLimit - 1,
              "integers below 2^53 round-trip through double");

// The layer's weights with the block scales folded in, for conv_gemm_folded.
struct FoldedGemm {
  // S = max over o of sum_k |q_w[o][k]| * m[b] * 2^(F - r[b]); saturates at INT64_MAX when a term
  // cannot be formed (F - r[b] < 0 or > 62) or the sum passes 2^63.
  int64_t bound = std::numeric_limits<int64_t>::max();
  // [Cout][k] W' in ONNX order (group gi's rows gi * Cout/groups ...); empty unless bound < 2^53,
  // which makes every W' an exact double.
  std::vector<double> weight;

  // The int16 route (conv_gemm_int16), built with `weight`: the reduction indices of one group
  // ordered by reduction group and taken in pairs, each group's run padded to an even length with a
  // zero slot; `pair_rows[2 q + t]` is slot t of pair q (an ONNX reduction index, -1 for padding).
  std::vector<int32_t> pair_rows;
  std::vector<int64_t> pair_begin;  // [red_groups + 1] first pair of each reduction group
  // [Cout][pairs] q_w of each pair's two slots as int16 (slot 0 in the low half), 0 for padding.
  std::vector<int32_t> weight_pairs;
  // [Cout][red_groups] s[block of (o, rg)] as a double, 0 where row o has no nonzero weight in rg
  // (then |s| <= S < 2^53 wherever it is used, so every factor is exact).
  std::vector<double> row_scale;
  // B = max over (o, rg) of sum over rg's reduction indices of |q_w[o][k]|: every block partial
  // sum, in any order, is at most A * B in magnitude.
  int64_t block_abs_sum = std::numeric_limits<int64_t>::max();
};

// Computes S (exactly, in 128-bit integers) and, when S < 2^53, the folded weights.
FoldedGemm fold_gemm(const GemmLayer& layer);

// True iff inputs with max |q_x| <= a_max keep every partial sum of the folded GEMM below 2^53:
// a_max * S < 2^53 (a_max is taken as at least 1 so that W' itself is bounded too).
bool fold_exact(const FoldedGemm& folded, int64_t a_max);

// The largest |x[i]| of count codes.
int64_t max_abs(const int64_t* x, int64_t count);

// conv_gemm_blocks' result by one double GEMM per group. Requires fold_exact(folded, max |x|).
void conv_gemm_folded(const GemmLayer& layer, const FoldedGemm& folded, int64_t n, const int64_t* x,
                      int64_t* y, GemmScratch& scratch);

// --- the int16 route ---------------------------------------------------------------------------
// Why it is exact. Per reduction group rg and output (o, pixel) the block partial sum
// P = sum q_x * q_w is formed in int32 lanes from int16 operands (vpmaddwd / vpdpwssd: pairs of
// int16 products summed into int32, then added across pairs). Every operand is exact as int16 when
// A = max |q_x| <= 2^15 - 1 (q_w has at most 8 bits), and every intermediate sum, in any order, is
// at most A * B (block_abs_sum) in magnitude, so A * B <= 2^31 - 1 rules out any int32 wrap.
// The blocks are then combined in double: acc - bias_q[o] = sum over rg of P[rg] * s[rg], where
// |P[rg] * s[rg]| <= A * sum_{k in rg} |q_w| s[rg] and every partial sum over rg is at most
// A * S (S = FoldedGemm::bound); with A * S < 2^53 (fold_exact) every product and sum is an
// integer below 2^53, which double arithmetic (FMA or not) represents exactly. The conversion back
// to int64, the bias and the one rounding are conv_gemm_blocks' (as in conv_gemm_folded).
// The kernels need AVX2 (vpmaddwd, 8 lanes) or AVX-512 VNNI (vpdpwssd, 16 lanes); on other CPUs
// int16_exact is false and conv_gemm takes the folded GEMM instead.

// True iff this CPU has an int16 kernel, the layer was packed for it, a_max <= 2^15 - 1,
// a_max * block_abs_sum <= 2^31 - 1 and fold_exact(folded, a_max).
bool int16_exact(const FoldedGemm& folded, int64_t a_max);

// The name of the int16 kernel in use: "avx512-vnni" (vpdpwssd, 16 columns), "avx2" (vpmaddwd,
// 8 columns; also on AVX-512 CPUs without VNNI) or "none".
const char* int16_kernel_name();

// Picks the int16 kernel: "auto" (the best this CPU has, the default), "avx512-vnni", "avx2" or
// "none" (no int16 route: conv_gemm goes on to the folded GEMM). Returns false, changing nothing,
// for an unknown name or a kernel this CPU cannot run. Process-wide and not synchronised: for
// tests and benchmarks, called before any executor runs. The environment variable
// TILESCALE_INT16_KERNEL sets the initial choice the same way (an unusable name is ignored).
bool select_int16_kernel(const std::string& name);

// conv_gemm_blocks' result by the int16 route. Requires int16_exact(folded, max |x|).
void conv_gemm_int16(const GemmLayer& layer, const FoldedGemm& folded, int64_t n, const int64_t* x,
                     int64_t* y, GemmScratch& scratch);

enum class GemmPath { Int16, Folded, Blocks };

// The layer on x, as conv_gemm_blocks defines it: conv_gemm_int16 when `folded` is given and
// int16_exact holds for these n samples, else conv_gemm_folded when fold_exact holds, else
// conv_gemm_blocks. Returns the path taken; the codes are the same in every case.
GemmPath conv_gemm(const GemmLayer& layer, const FoldedGemm* folded, int64_t n, const int64_t* x,
                   int64_t* y, GemmScratch& scratch);

}  // namespace tilescale::quant::kernels
