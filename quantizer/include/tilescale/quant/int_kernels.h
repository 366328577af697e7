// The golden integer executor's operations, one function per op kind. Together they are the
// specification of tilescale's numerics: the SystemC model, the RTL and any faster path must match
// them bit for bit. Notation and the rounding primitives are int_arith.h's: codes q on grids of
// step s, multipliers M ~ m * 2^-r (to_fixed_multiplier), round_shift_half_up, saturate.
//
// Conventions of every kernel: tensors are int64 codes (the accumulators of a final Gemm aside,
// codes fit the grid's a_bits), per sample in C order (NCHW or [features]), n samples back to back;
// n = 1 runs one image. All arithmetic after the host's quantize_f32 is exact integer arithmetic:
// the only rounding is the one named in each function, always half up (toward +infinity, so -2.5
// -> -2 and 2.5 -> 3), always followed by saturation (never wrap-around) to the output range.
// Whenever an op moves codes from the grids of its inputs to its output grid, its multipliers are
// built with `scale_bits` mantissa bits from the steps given (double precision), exactly as written
// next to each function.
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/model/graph.h"
#include "tilescale/model/layout.h"
#include "tilescale/quant/granularity.h"
#include "tilescale/quant/int_arith.h"

namespace tilescale::quant::kernels {

// The grid an op writes.
struct OutGrid {
  double step = 1.0;    // s_y, real value per output code
  int scale_bits = 16;  // mantissa bits of the multipliers into this grid (1 = shift only)
  IntRange range;       // codes kept: the grid's range, intersected with any fused Relu/Clip
};

// One code moved onto another grid: saturate(round_shift_half_up(x * m, r), range).
inline int64_t rescale(int64_t x, const FixedMultiplier& f, IntRange range) {
  return saturate(round_shift_half_up(x * f.m, f.r), range);
}

// --- host boundary and ranges -------------------------------------------------------------------

// Host float -> code: q = saturate(round_half_up(x / step), r) (quantize_to_grid, the division in
// double precision). The only float -> integer step of a network run.
void quantize_f32(const float* x, int64_t count, double step, IntRange r, int64_t* q);

// The codes a Relu or Clip `act` keeps on a grid of step `step`, intersected with `base`:
// Relu: lo = max(lo, 0). Clip: for each finite bound b, round_half_up(b / step) (double), with lo
// raised and hi lowered to it.
IntRange activation_range(const model::Node& act, double step, IntRange base);

// --- Clamp and requantize -----------------------------------------------------------------------

// y = saturate(x, r) per element: a standalone Relu/Clip on codes (r from activation_range over
// the whole int64 range), which needs no rounding because the grid does not change.
void clamp(const int64_t* x, int64_t count, IntRange r, int64_t* y);

// y = saturate(round_shift_half_up(acc, F), r) per element: the one rounding of a Conv/Gemm layer,
// from the accumulator with F = frac_bits fractional bits to the next layer's grid.
void requantize(const int64_t* acc, int64_t count, int frac_bits, IntRange r, int64_t* y);

// --- Conv and Gemm by scale blocks --------------------------------------------------------------

// One Conv or Gemm layer in the terms of int_arith.h. The views point into a LayerQuant (or a
// test's plain arrays) and must outlive the call.
struct GemmLayer {
  model::layout::ConvShape shape;   // one group's geometry; a Gemm is 1x1 with cin_g = K
  int64_t groups = 1;               // Conv groups (depthwise: one per channel)
  int64_t out_channels = 0;         // Cout over all groups
  const BlockGrid* grid = nullptr;  // which weights share a block: out_group[o], red_group[k_hw]
  const int8_t* weight = nullptr;   // q_w, ONNX layout [Cout][cin_g][kh][kw]
  const FixedMultiplier* multiplier = nullptr;  // [out_groups * red_groups] m[blk], r[blk]
  const int64_t* bias_q = nullptr;              // [Cout] round_half_up(b / s_y * 2^F)
  int frac_bits = 0;                            // F = max r[blk]
  bool keep_acc = false;  // write acc itself (float logits, F fractional bits): no requantization
  IntRange range;         // output codes kept (output grid intersected with a fused Relu/Clip)
};

// Buffers of conv_gemm_blocks, grown on demand; one per thread.
struct GemmScratch {
  std::vector<double> col;     // im2col of the n samples, [groups][k][n * positions]
  std::vector<double> wq;      // one group's weights of one reduction group (folded GEMM: B panel)
  std::vector<double> xb;      // the matching rows of col (folded GEMM: the input as doubles)
  std::vector<double> part;    // block partial sums of one group
  std::vector<int64_t> acc;    // [Cout][n * positions] wide accumulators
  std::vector<int16_t> x16;    // int16 route: the input codes as int16
  std::vector<int16_t> col16;  // int16 route: im2col of a slice of samples
  std::vector<int16_t> panel16;        // int16 route: one column panel, reduction pairs interleaved
  std::vector<int16_t> pad16;          // int16 route: one sample's zero-padded input planes
  std::vector<const int16_t*> rows16;  // int16 route: the patch-matrix row of each pair slot
  std::vector<uint8_t> cim_rows;       // CIM: one sample's patch rows [positions][k], hardware
                                       // order, as a_bits two's complement patterns
  std::vector<uint8_t> cim_hwc;        // CIM: one sample's group input patterns [h][w][cin_g]
};

// y = the layer on x, x [n][Cin][h][w] (Gemm: [n][K]), y [n][Cout][ho][wo] (Gemm: [n][Cout]).
// Padding taps read code 0. Per output (o, pixel) and block blk = (out_group[o], reduction group):
//   P[blk] = sum of q_x * q_w over the block's (input, weight) pairs, exact (|P| < 2^31, checked
//            by finalize_multipliers, so the double GEMM that computes it is exact too);
//   acc    = bias_q[o] + sum over blk of P[blk] * m[blk] * 2^(F - r[blk]), exact in int64; a block
//            with m = 0 contributes nothing;
//   y      = keep_acc ? acc : saturate(round_shift_half_up(acc, F), range).
// Neither the order of the sums nor n changes any bit.
void conv_gemm_blocks(const GemmLayer& layer, int64_t n, const int64_t* x, int64_t* y,
                      GemmScratch& scratch);

// --- elementwise Add ----------------------------------------------------------------------------

// y = a + b on the output grid, per element. With M_a = to_fixed_multiplier(step_a / s_y, bits),
// M_b likewise and F = max(r_a, r_b):
//   acc = a * m_a * 2^(F - r_a) + b * m_b * 2^(F - r_b)  (exact),
//   y   = saturate(round_shift_half_up(acc, F), range)    (one rounding for the sum).
// Refused with std::overflow_error rather than wrapped: |F| or a shift F - r above kMaxShift, or
// max|a| * m_a * 2^(F - r_a) + max|b| * m_b * 2^(F - r_b) >= 2^62 (the accumulator's bound, from
// the codes given), which only input grids of wildly different steps or corrupt codes reach.
void add(const int64_t* a, double step_a, const int64_t* b, double step_b, int64_t count,
         const OutGrid& out, int64_t* y);

// --- constant affine ops (Affine: a chain of Add/Sub/Mul/Div with constants, an unfolded BN) -----

// One element's map y = a * x + b (real values) on codes: x = q * s_x, y = q_y * s_y.
struct AffineTerm {
  FixedMultiplier mul;    // |a| * s_x / s_y as m * 2^-r (m = 0 when a = 0)
  bool negative = false;  // a < 0: the code is negated before the multiply
  int frac_bits = 0;      // F = max(r, 0): fractional bits of the accumulator
  int64_t offset = 0;     // round_half_up(b / s_y * 2^F)
};

// The term of factor a and offset b from grid step_x to grid step_y with `bits` mantissa bits:
// mul = to_fixed_multiplier(|a| * step_x / step_y, bits), F = max(r, 0),
// offset = round_half_up(b / step_y * 2^F) (double). Refused with std::overflow_error rather than
// wrapped, so affine() never overflows: F > kMaxShift (|a| too small for the grids),
// |b / step_y * 2^F| >= 2^62 or not finite, or max_abs_x * m * 2^(F - r) + |offset| >= 2^62
// (max_abs_x = the largest input code magnitude).
AffineTerm affine_term(double a, double b, double step_x, double step_y, int bits,
                       int64_t max_abs_x);

// y = saturate(round_shift_half_up(acc, F), range) per element, one rounding, with
// acc = (negative ? -q : q) * m * 2^(F - r) + offset, exact in int64 (affine_term's bound).
// Element i of each sample (`size` codes per sample, n samples) uses terms[(i / run) % count].
void affine(const int64_t* x, int64_t n, int64_t size, const AffineTerm* terms, int64_t count,
            int64_t run, IntRange range, int64_t* y);

// --- pools --------------------------------------------------------------------------------------

// MaxPool of `planes` = n * C planes [h][w] -> [ho][wo] on the same grid: the largest code among
// the window's taps inside the input (padding never wins); 0 for a window wholly in the padding.
// No rounding, no saturation.
void max_pool(const model::layout::ConvShape& shape, int64_t planes, const int64_t* x, int64_t* y);

// AveragePool of n * C planes: sum = the codes of the taps inside the input; count = the number of
// those taps, or with count_include_pad the window's elements inside input plus declared padding
// (ConvShape::padded_window_count); y = rescale(sum, to_fixed_multiplier(step_x / (s_y * count),
// bits), range), so the division by count is folded into the multiplier; y = 0 when count <= 0.
void avg_pool(const model::layout::ConvShape& shape, bool count_include_pad, int64_t planes,
              const int64_t* x, double step_x, const OutGrid& out, int64_t* y);

// GlobalAveragePool of `planes` planes of `hw` codes each to one code per plane:
// y = rescale(sum of the plane, to_fixed_multiplier(step_x / (s_y * hw), bits), range).
void global_avg_pool(int64_t planes, int64_t hw, const int64_t* x, double step_x,
                     const OutGrid& out, int64_t* y);

// --- data movement ------------------------------------------------------------------------------

// One input of concat.
struct ConcatInput {
  const int64_t* codes = nullptr;  // [n][size]
  int64_t size = 0;                // elements per sample
  double step = 1.0;               // its grid's step
};

// Concat along a per-sample axis with `outer` = the product of the output dims before the axis:
// per sample and outer index, each input's run of size / outer codes in turn, every code moved to
// the output grid by rescale(q, to_fixed_multiplier(step_i / s_y, bits), range) (one rounding).
void concat(const std::vector<ConcatInput>& inputs, int64_t n, int64_t outer, const OutGrid& out,
            int64_t* y);

// Constant Pad on the input's grid: each code moved by `pads` (layout::place_padded), every other
// element the code of pad_value, quantize_to_grid(pad_value, step, range) (its only rounding).
void pad(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
         const std::vector<int64_t>& pads, double pad_value, double step, IntRange range, int64_t n,
         const int64_t* x, int64_t* y);

}  // namespace tilescale::quant::kernels
