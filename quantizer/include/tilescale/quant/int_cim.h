// The golden executor's Conv/Gemm kernel with the CIM ADCs in the loop: adc.h's rule, computed
// fast.
//
// Safe steps. For one pixel, tile and input step with R_t = sum_r d_t[r], every column sum is at
// most R_t * (2^cell_bits - 1). If that is <= 2^adc_bits - 1 and the ADC LSB is 1 (e = 0), no
// column of the step can clip, S' = S for all of them, and the step's part of D is exactly
// (+-2^bit0) * sum_r d_t[r] * w[r] (adc.h's identity). So the safe steps of a tile are summed as
// one exact dot product of w with x_safe[r] = sum over safe steps of (+-d_t[r] << bit0), int16 x
// int16 into int32. The other steps take the bit-plane path: the input codes as a_bits bit masks,
// the weights' offset-binary codes as W bit masks, a column sum as AND + popcount per 64 rows, then
// adc_convert and the shift-add of adc.h. Both paths are adc.h's arithmetic; the unit tests
// compare this kernel with cim_tile_sum_reference and, with a lossless ADC, with conv_gemm_blocks.
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/quant/adc.h"
#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant::kernels {

// The per-layer constants of conv_gemm_cim, built once per layer.
struct CimGemm {
  AdcNumerics adc;
  int a_bits = 8;                 // input code bits
  bool a_signed = false;          // input grid signed
  int w_bits = 8;                 // weight code bits
  int wide = 8;                   // W = slices * cell_bits, bits of the offset-binary weight code
  int shift = 0;                  // e of the ADC range rule
  std::vector<InputStep> steps;   // input_steps(a_bits, a_signed, input_bits_per_cycle)
  std::vector<RowTile> tiles;     // one group's row tiles (all groups share them)
  std::vector<int64_t> word0;     // [tiles + 1] first mask word of each tile in a mask row
  std::vector<uint64_t> wplanes;  // [Cout][wide][words]: bit p of u over each tile's rows
  std::vector<int16_t> w16;       // [Cout][k] q_w in hardware order (the safe-step dot product)
  std::vector<int64_t> scale;     // [Cout][tiles] m * 2^(F - r) of the tile's block
  int64_t safe_count = 0;         // largest R_t with R_t * (2^cell_bits - 1) <= ADC full
                                  // scale (-1: none, e > 0)
  int64_t words() const { return word0.back(); }  // mask words covering one group's k rows
};

// Builds the constants; a_bits (1..8) / a_signed describe the layer's input grid, w_bits its
// weights.
// Throws InputError (naming nothing; the caller adds the layer) on an invalid AdcNumerics.
CimGemm make_cim_gemm(const GemmLayer& layer, const AdcNumerics& adc, int a_bits, bool a_signed,
                      int w_bits);

// The layer on x as conv_gemm_blocks defines it, except that each row tile's exact partial sum is
// replaced by adc.h's digital sum D. Input codes outside the a_bits grid throw std::out_of_range.
void conv_gemm_cim(const GemmLayer& layer, const CimGemm& cim, int64_t n, const int64_t* x,
                   int64_t* y, GemmScratch& scratch);

}  // namespace tilescale::quant::kernels
