// The ADC-aware scale search's tile sums (scale_search_cim.cpp): adc.h's digital sum D of one
// output channel's row tiles at many sampled input positions, scored once per candidate step.
//
// The search fixes the inputs (one input step) and scores many weight candidates, so everything
// that depends on the inputs alone is built once (cim_search_inputs) and a candidate costs
// (cim_search_sums):
// - Safe steps (int_cim.h): a (position, tile, step) with R_t <= safe_count cannot clip, so its
//   part of D is exactly (+-2^bit0) * sum_r d_t[r] * w[r]. All safe steps of a (position, tile)
//   are summed as one dot product of the candidate's weight codes with
//   x_safe[r] = sum over safe steps of (+-d_t[r] << bit0), int16 x int16 into int32 (exact: at
//   most 4096 rows x 255 x 128 < 2^31). A lossless tile (adc_lossless) has only safe steps, so
//   it is a plain dot product of the codes.
// - The other steps (some row driven, not safe) take the executor's bit-plane path,
//   kernels::cim_tile_sum_planes: AND + popcount per input bit x weight bit, then adc_convert.
// Both are adc.h's exact integer arithmetic; AdcSearch tests compare the sums with
// cim_tile_sum_reference on seeded random tiles with safe, clipping and lossless steps.
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/quant/int_cim.h"

namespace tilescale::quant::kernels {

// What one group's sampled positions contribute for one input step, independent of the weights.
struct CimSearchInputs {
  int64_t positions = 0;
  std::vector<uint64_t> xplanes;  // [positions][a_bits][words] input bit planes over the tiles
  std::vector<StepInfo> info;     // [positions][tiles][steps]; planes = driven and not safe
  std::vector<int16_t> xsafe;     // [positions][k] x_safe of each hardware row (0: no safe step)
  std::vector<char> tile_planes;  // [tiles] some position has a bit-plane step in the tile
  std::vector<char> tile_dot;     // [tiles] some position has a safe step with a row driven
};

// Builds `in` from the input codes x [positions][k] (hardware reduction order, each in the a_bits
// grid of c; not checked). k = the sum of the tile lengths.
void cim_search_inputs(const CimGemm& c, const int32_t* x, int64_t positions, CimSearchInputs& in);

// A channel's weight codes on the rows of `tiles` (hardware order; other rows left as they are):
// w16 [k] the codes, wplanes [wide][words] their offset-binary bit planes (only built when
// with_planes).
void cim_search_weights(const CimGemm& c, const std::vector<int64_t>& tiles, const int8_t* q_hw,
                        bool with_planes, int16_t* w16, uint64_t* wplanes);

// out[p] = sum over `tiles` of adc.h's D of the channel (w16, wplanes as cim_search_weights
// builds them) at position p of `in`, for every position. Exact int64 sums, as doubles.
void cim_search_sums(const CimGemm& c, const CimSearchInputs& in, const std::vector<int64_t>& tiles,
                     const int16_t* w16, const uint64_t* wplanes, double* out);

}  // namespace tilescale::quant::kernels
