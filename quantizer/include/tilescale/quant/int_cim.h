// The golden executor's Conv/Gemm kernel with the CIM ADCs in the loop: adc.h's rule, computed
// fast.
//
// Safe steps. For one pixel, tile and input step with R_t = sum_r d_t[r], every column sum is at
// most R_t * (2^cell_bits - 1). If that is <= 2^adc_bits - 1 and the ADC LSB is 1 (e = 0), no
// column of the step can clip, S' = S for all of them, and the step's part of D is exactly
// (+-2^bit0) * sum_r d_t[r] * w[r] (adc.h's identity). So the safe steps of a tile are summed as
// one exact dot product of w with x_safe[r] = sum over safe steps of (+-d_t[r] << bit0), int16 x
// int16 into int32; a tile that can never clip (adc_lossless for its rows) is that dot product of
// the whole codes. The executor (conv_gemm_cim) works on one pixel for all output channels at
// once: a tile's input bit planes give each step's R_t (popcounts) and its driven rows, and each
// driven row of a non-safe step adds its digit times its cells (the offset-binary slices, `cells`)
// to the step's column sums, which then go through adc_convert and the shift-add of adc.h; a step
// with R_t = 0 has every sum 0 and is skipped. The scale search scores single channels over many
// positions instead (cim_search.h): the same safe-step dot product, and the bit-plane form for the
// other steps (cim_tile_sum_planes: input codes and weights as bit masks, a column sum as AND +
// popcount per 64 rows). All paths are adc.h's arithmetic; the unit tests compare the executor
// (each of its instruction-set forms) and the search's tile sums with cim_tile_sum_reference and,
// with a lossless ADC, the executor with conv_gemm_blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/quant/adc.h"
#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant::kernels {

// The per-layer constants of conv_gemm_cim, built once per layer.
struct CimGemm {
  AdcNumerics adc;
  int a_bits = 8;                // input code bits
  bool a_signed = false;         // input grid signed
  int w_bits = 8;                // weight code bits
  int wide = 8;                  // W = slices * cell_bits, bits of the offset-binary weight code
  int shift = 0;                 // e of the ADC range rule
  std::vector<InputStep> steps;  // input_steps(a_bits, a_signed, input_bits_per_cycle)
  std::vector<RowTile> tiles;    // one group's row tiles (all groups share them)
  std::vector<int64_t> word0;    // [tiles + 1] first mask word of each tile (search's planes)
  std::vector<int16_t> cells;    // [groups][k][slices][Cout/groups] slice s of u, hardware order
  std::vector<int64_t> pair0;    // [tiles + 1] first row pair of each tile (pairs start per tile)
  std::vector<int16_t> wt2;      // [groups][pairs][Cout/groups][2] q_w of a tile's rows 2i and
                                 // 2i + 1 side by side (the safe-step dot product; odd tail 0)
  std::vector<int64_t> scale;    // [tiles][Cout] m * 2^(F - r) of the tile's block (0: m = 0)
  int64_t safe_count = 0;        // largest R_t with R_t * (2^cell_bits - 1) <= ADC full
                                 // scale (-1: none, e > 0)
  std::vector<char> tile_lossless;  // [tiles] adc_lossless(adc, length): every step safe
  bool narrow = true;  // every column sum fits int16: longest tile * (2^cell_bits - 1) *
                       // (2^input_bits - 1) <= 32767 (the executor's sums are int16, else int32)
  int64_t words() const { return word0.back(); }  // mask words covering one group's k rows
};

// Per-pixel facts of one tile and input step: the digital row count R_t, and whether the step
// takes the bit-plane path (some row driven and the step not safe; the safe steps are summed as
// one dot product instead).
struct StepInfo {
  int64_t row_count = 0;
  bool planes = false;
};

// adc.h's digital sum D of one tile for one output channel, over the steps whose info says
// `planes` (the others contribute 0 here). xm: the pixel's input bit planes (plane p at
// xm + p * words), wm: the channel's offset-binary weight planes (same stride), both offset to
// the tile's first word; tw: the tile's words; info: [steps]. Only c.adc, c.wide, c.shift and
// c.steps are read. The ADC-aware scale search calls this too, so the search scores exactly the
// executor's numerics.
[[gnu::always_inline]] inline int64_t cim_tile_sum_planes(const CimGemm& c, const uint64_t* xm,
                                                          const uint64_t* wm, int64_t words,
                                                          int64_t tw, const StepInfo* info) {
  const int cb = c.adc.cell_bits, slices = c.wide / cb;
  int64_t d = 0;
  for (std::size_t si = 0; si < c.steps.size(); ++si) {
    if (!info[si].planes) continue;  // in the safe dot product, or every digit 0
    const InputStep& st = c.steps[si];
    int64_t term = -info[si].row_count * (int64_t{1} << (c.wide - 1));
    for (int s = 0; s < slices; ++s) {
      int64_t sum = 0;
      for (int i = 0; i < st.bits; ++i) {
        const uint64_t* xp = xm + (st.bit0 + i) * words;
        for (int j = 0; j < cb; ++j) {
          const uint64_t* wp = wm + (s * cb + j) * words;
          int64_t cnt = 0;
          for (int64_t v = 0; v < tw; ++v) cnt += __builtin_popcountll(xp[v] & wp[v]);
          sum += cnt << (i + j);
        }
      }
      term += adc_convert(sum, c.shift, c.adc.adc_bits) * (int64_t{1} << (s * cb));
    }
    d += (st.negative ? -term : term) * (int64_t{1} << st.bit0);
  }
  return d;
}

// The CimGemm fields that depend only on the numerics and the row tiles (adc, a_bits, a_signed,
// w_bits, wide, shift, steps, tiles, word0, tile_lossless, safe_count), for the given row tiles of
// one group's reduction axis (hardware order; tiles cover it in order); the weight-dependent fields
// stay empty. make_cim_gemm starts from it; the ADC-aware search (cim_search.h) uses it alone.
// Throws InputError (naming nothing; the caller adds the layer) on an invalid AdcNumerics or bits
// outside 1..8.
CimGemm cim_gemm_numerics(const AdcNumerics& adc, int a_bits, bool a_signed, int w_bits,
                          std::vector<RowTile> tiles);

// Builds the constants; a_bits (1..8) / a_signed describe the layer's input grid, w_bits its
// weights.
// Throws InputError (naming nothing; the caller adds the layer) on an invalid AdcNumerics.
CimGemm make_cim_gemm(const GemmLayer& layer, const AdcNumerics& adc, int a_bits, bool a_signed,
                      int w_bits);

// The layer on x as conv_gemm_blocks defines it, except that each row tile's exact partial sum is
// replaced by adc.h's digital sum D. Input codes outside the a_bits grid throw std::out_of_range.
void conv_gemm_cim(const GemmLayer& layer, const CimGemm& cim, int64_t n, const int64_t* x,
                   int64_t* y, GemmScratch& scratch);

// The pixel kernel conv_gemm_cim uses: "avx512", "avx2" or "portable" (the same arithmetic in
// each). The best the CPU runs is the default, or the one TILESCALE_CIM_KERNEL names. Selecting
// one the CPU lacks returns false and changes nothing. Not thread-safe: tests and benchmarks
// select before running.
bool select_cim_kernel(const std::string& name);
const char* cim_kernel_name();

}  // namespace tilescale::quant::kernels
