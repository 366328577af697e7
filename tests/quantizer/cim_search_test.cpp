// The ADC-aware search's tile sums (quant/cim_search.h: safe steps as one dot product, lossless
// tiles as plain dot products, the other steps through the bit planes) against adc.h's
// cim_tile_sum_reference, tile by tile and summed over a block's tiles, on seeded random tiles.
// Each case also drives exactly safe_count and safe_count + 1 rows of all-ones digits against
// all-ones cells, so a safe rule off by one row (or a clipping step taken as safe) fails.
#include "tilescale/quant/cim_search.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "int_test_support.h"

namespace tilescale::quant {
namespace {

using test::Random;

struct Case {
  int rows, cell_bits, input_bits, adc_bits;
  AdcRange range;
  int a_bits;
  bool a_signed;
  int w_bits;
  std::vector<int64_t> lengths;  // the row tiles, one reduction group each
};

TEST(AdcSearch, TileSumsMatchTheReferenceRule) {
  const Case cases[] = {
      // 128-row tiles on 6-bit ADCs (cim128_2b): safe_count 21, most steps clip-prone.
      {128, 2, 1, 6, AdcRange::Clip, 8, false, 4, {128, 128, 40}},
      // 16-row tiles are lossless there (16 x 3 <= 63), the 40-row one is not.
      {128, 2, 1, 6, AdcRange::Clip, 8, false, 4, {16, 16, 40, 3}},
      {64, 2, 1, 5, AdcRange::Clip, 7, true, 8, {64, 64, 9}},
      {32, 1, 2, 4, AdcRange::Clip, 8, false, 3, {32, 17}},
      {64, 3, 2, 7, AdcRange::Clip, 6, true, 4, {64, 30, 1}},
      // LSB 2^e: no step is safe, every driven step takes the planes.
      {128, 2, 1, 6, AdcRange::Rows, 8, false, 4, {128, 100}},
      // Lossless ADC: every tile a plain dot product.
      {128, 2, 1, 9, AdcRange::Clip, 8, true, 4, {128, 70}},
  };
  Random rnd(4100);
  std::printf("seed %u\n", rnd.seed());
  SCOPED_TRACE(rnd.note());
  int64_t safe_steps = 0, plane_steps = 0, lossless_tiles = 0, clipped = 0, boundary_clips = 0;
  for (const Case& cs : cases) {
    AdcNumerics adc;
    adc.xbar_rows = cs.rows;
    adc.cell_bits = cs.cell_bits;
    adc.input_bits_per_cycle = cs.input_bits;
    adc.adc_bits = cs.adc_bits;
    adc.range = cs.range;
    SCOPED_TRACE(adc.str() + " A" + std::to_string(cs.a_bits) + (cs.a_signed ? "s" : "u") + " W" +
                 std::to_string(cs.w_bits));
    std::vector<RowTile> tiles;
    int64_t k = 0;
    for (std::size_t t = 0; t < cs.lengths.size(); ++t) {
      tiles.push_back({k, cs.lengths[t], static_cast<int64_t>(t)});
      k += cs.lengths[t];
    }
    const kernels::CimGemm c =
        kernels::cim_gemm_numerics(adc, cs.a_bits, cs.a_signed, cs.w_bits, tiles);
    for (std::size_t t = 0; t < tiles.size(); ++t) lossless_tiles += c.tile_lossless[t];
    const IntRange xr = cs.a_signed ? signed_range(cs.a_bits) : unsigned_range(cs.a_bits);
    const IntRange wr = signed_range(cs.w_bits);
    // The all-ones input digit pattern: every step drives the row with its largest digit.
    const int64_t ones_code = cs.a_signed ? -1 : xr.hi;
    const int64_t P = 48;
    std::vector<int32_t> x(static_cast<std::size_t>(P * k));
    for (int64_t p = 0; p < P; ++p) {
      const double density = p % 3 == 0 ? 0.05 : p % 3 == 1 ? 0.3 : 1.0;
      for (int64_t i = 0; i < k; ++i)
        x[p * k + i] =
            rnd.real(0, 1) < density ? static_cast<int32_t>(rnd.uniform(xr.lo, xr.hi)) : 0;
    }
    // Boundary positions: exactly safe_count (exact) or safe_count + 1 (clips against all-ones
    // cells) rows driven with all-ones digits in every tile long enough.
    std::vector<int64_t> boundary(P, -1);
    if (c.safe_count >= 0)
      for (int64_t p = 0; p < 8; ++p) {
        const int64_t n = c.safe_count + (p % 2);
        boundary[p] = n;
        for (const RowTile& t : tiles)
          for (int64_t r = 0; r < t.length; ++r)
            x[p * k + t.k0 + r] = r < n ? static_cast<int32_t>(ones_code) : 0;
      }
    kernels::CimSearchInputs in;
    kernels::cim_search_inputs(c, x.data(), P, in);
    for (std::size_t i = 0; i < in.info.size(); ++i) {
      const std::size_t t = (i / c.steps.size()) % tiles.size();
      if (in.info[i].planes)
        ++plane_steps;
      else if (in.info[i].row_count > 0 && !c.tile_lossless[t])
        ++safe_steps;
    }
    // Channels: random codes, and all-ones offset-binary cells (the largest code when the weight
    // fills its slices), where a step of safe_count + 1 rows must clip.
    const int64_t max_code = (int64_t{1} << (c.wide - 1)) - 1;
    for (int ch = 0; ch < 6; ++ch) {
      std::vector<int8_t> q(static_cast<std::size_t>(k));
      for (int64_t i = 0; i < k; ++i)
        q[i] = static_cast<int8_t>(ch == 0 && max_code <= wr.hi ? max_code
                                                                : rnd.uniform(wr.lo, wr.hi));
      std::vector<int16_t> w16(static_cast<std::size_t>(k), -7);
      std::vector<uint64_t> wpl(static_cast<std::size_t>(c.wide * c.words()), ~uint64_t{0});
      std::vector<int64_t> all;
      for (std::size_t t = 0; t < tiles.size(); ++t) all.push_back(static_cast<int64_t>(t));
      kernels::cim_search_weights(c, all, q.data(), true, w16.data(), wpl.data());
      std::vector<double> got(static_cast<std::size_t>(P)), total(static_cast<std::size_t>(P));
      kernels::cim_search_sums(c, in, all, w16.data(), wpl.data(), total.data());
      std::vector<int64_t> want_total(static_cast<std::size_t>(P), 0);
      for (std::size_t t = 0; t < tiles.size(); ++t) {
        kernels::cim_search_sums(c, in, {static_cast<int64_t>(t)}, w16.data(), wpl.data(),
                                 got.data());
        const RowTile& tile = tiles[t];
        for (int64_t p = 0; p < P; ++p) {
          std::vector<int64_t> xt(static_cast<std::size_t>(tile.length)), wt(xt.size());
          int64_t exact = 0;
          for (int64_t r = 0; r < tile.length; ++r) {
            xt[r] = x[p * k + tile.k0 + r];
            wt[r] = q[tile.k0 + r];
            exact += xt[r] * wt[r];
          }
          const int64_t want = cim_tile_sum_reference(xt.data(), wt.data(), tile.length, cs.a_bits,
                                                      cs.a_signed, cs.w_bits, adc);
          want_total[p] += want;
          if (want != exact) {
            ++clipped;
            if (boundary[p] == c.safe_count + 1 && ch == 0) ++boundary_clips;
          }
          ASSERT_EQ(static_cast<int64_t>(got[p]), want)
              << "tile " << t << " (" << tile.length << " rows) channel " << ch << " position "
              << p;
        }
      }
      for (int64_t p = 0; p < P; ++p)
        ASSERT_EQ(static_cast<int64_t>(total[p]), want_total[p]) << "position " << p;
    }
  }
  std::printf(
      "steps: %lld safe (dot product), %lld bit planes; %lld lossless tiles; %lld tile "
      "sums clipped, %lld of them at safe_count + 1 rows\n",
      static_cast<long long>(safe_steps), static_cast<long long>(plane_steps),
      static_cast<long long>(lossless_tiles), static_cast<long long>(clipped),
      static_cast<long long>(boundary_clips));
  // The cases must exercise every path, or the comparisons above prove little.
  EXPECT_GT(safe_steps, 0);
  EXPECT_GT(plane_steps, 0);
  EXPECT_GT(lossless_tiles, 0);
  EXPECT_GT(clipped, 0);
  EXPECT_GT(boundary_clips, 0);
}

}  // namespace
}  // namespace tilescale::quant
