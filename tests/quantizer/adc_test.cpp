// The CIM ADC numerics (quant/adc.h) and their fast kernel (quant/int_cim.h): bit slicing and
// reassembly, input steps, the ADC rule at both ends of its range, row tiles, the reference tile
// sum against hand-computed values, and conv_gemm_cim against the reference on seeded random
// layers (clipping and lossless ADCs) and against conv_gemm_blocks when the ADC is lossless.
// Seeds are fixed and printed on failure; TILESCALE_TEST_SEED overrides them all.
#include "tilescale/quant/adc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../support/expect_input_error.h"
#include "int_test_support.h"
#include "tilescale/quant/granularity.h"
#include "tilescale/quant/int_cim.h"

namespace tilescale::quant {
namespace {

using test::Random;
namespace layout = model::layout;

AdcNumerics numerics(int rows, int cell_bits, int input_bits, int adc_bits,
                     AdcRange range = AdcRange::Clip) {
  AdcNumerics a;
  a.xbar_rows = rows;
  a.cell_bits = cell_bits;
  a.input_bits_per_cycle = input_bits;
  a.adc_bits = adc_bits;
  a.range = range;
  return a;
}

TEST(Adc, WeightSlicesReassembleEveryWeightWithPadding) {
  for (int w_bits = 1; w_bits <= 8; ++w_bits)
    for (int cb = 1; cb <= 4; ++cb) {
      const int slices = weight_slices(w_bits, cb), wide = slices * cb;
      EXPECT_GE(wide, w_bits);
      EXPECT_LT(wide - cb, w_bits);  // no whole slice of padding
      for (int64_t w = signed_range(w_bits).lo; w <= signed_range(w_bits).hi; ++w) {
        int64_t u = 0;
        for (int s = 0; s < slices; ++s) {
          const int64_t slice = weight_slice(w, wide, cb, s);
          ASSERT_GE(slice, 0);
          ASSERT_LT(slice, int64_t{1} << cb);
          u += slice << (s * cb);
        }
        EXPECT_EQ(u - (int64_t{1} << (wide - 1)), w) << "w_bits " << w_bits << " cell " << cb;
      }
    }
}

TEST(Adc, InputStepsReassembleEveryCode) {
  for (int a_bits = 1; a_bits <= 8; ++a_bits)
    for (int ib = 1; ib <= 4; ++ib)
      for (const bool sgn : {false, true}) {
        if (sgn && a_bits < 2) continue;
        const auto steps = input_steps(a_bits, sgn, ib);
        const IntRange r = sgn ? signed_range(a_bits) : unsigned_range(a_bits);
        for (int64_t x = r.lo; x <= r.hi; ++x) {
          const uint64_t pattern = static_cast<uint64_t>(x) & ((uint64_t{1} << a_bits) - 1);
          int64_t back = 0;
          for (const InputStep& st : steps) {
            ASSERT_LE(st.bits, ib);
            const int64_t d = static_cast<int64_t>(pattern >> st.bit0) & ((1 << st.bits) - 1);
            back += (st.negative ? -d : d) * (int64_t{1} << st.bit0);
          }
          EXPECT_EQ(back, x) << a_bits << " bits, ib " << ib << (sgn ? " signed" : "");
        }
      }
  // The sign bit of a signed code gets its own step; an unsigned code none.
  EXPECT_EQ(input_steps(8, true, 1).size(), 8u);
  EXPECT_EQ(input_steps(8, true, 2).size(), 5u);  // 7 low bits in 4 steps + the sign
  EXPECT_TRUE(input_steps(8, true, 2).back().negative);
  EXPECT_EQ(input_steps(8, false, 3).size(), 3u);
}

TEST(Adc, ClipRuleSaturatesAtFullScaleAndIsExactBelow) {
  for (int bits = 1; bits <= 16; ++bits) {
    const int64_t full = (int64_t{1} << bits) - 1;
    EXPECT_EQ(adc_convert(0, 0, bits), 0);
    EXPECT_EQ(adc_convert(1, 0, bits), 1);
    EXPECT_EQ(adc_convert(full, 0, bits), full);
    EXPECT_EQ(adc_convert(full + 1, 0, bits), full);
    EXPECT_EQ(adc_convert(full * 1000, 0, bits), full);
  }
}

TEST(Adc, RowsRuleRoundsHalfUpAndNeverSaturates) {
  // 128 rows x 3 x 1 = 384 at most; a 6-bit ADC (63) needs e = 3 (63 * 8 = 504 >= 384).
  const AdcNumerics a = numerics(128, 2, 1, 6, AdcRange::Rows);
  EXPECT_EQ(adc_shift(a), 3);
  EXPECT_EQ(adc_shift(numerics(128, 2, 1, 9, AdcRange::Rows)), 0);  // 511 >= 384
  EXPECT_EQ(adc_shift(numerics(128, 2, 1, 9, AdcRange::Clip)), 0);
  EXPECT_EQ(adc_convert(3, 3, 6), 0);  // 3/8 rounds to 0
  EXPECT_EQ(adc_convert(4, 3, 6), 8);  // 4/8 = 0.5 rounds half up to 1
  EXPECT_EQ(adc_convert(11, 3, 6), 8);
  EXPECT_EQ(adc_convert(12, 3, 6), 16);
  EXPECT_EQ(adc_convert(384, 3, 6), 384);  // full scale of the rows: exact multiple of 8
  for (int64_t s = 0; s <= 384; ++s) EXPECT_LE(adc_convert(s, 3, 6), 63 * 8);
}

TEST(Adc, LosslessExactlyWhenTheWorstSumFits) {
  EXPECT_TRUE(adc_lossless(numerics(128, 2, 1, 9), 128));   // 384 <= 511
  EXPECT_FALSE(adc_lossless(numerics(128, 2, 1, 8), 128));  // 384 > 255
  EXPECT_TRUE(adc_lossless(numerics(128, 2, 1, 6), 21));    // 63 <= 63
  EXPECT_FALSE(adc_lossless(numerics(128, 2, 1, 6), 22));
  EXPECT_FALSE(adc_lossless(numerics(128, 2, 1, 6, AdcRange::Rows), 1));  // e = 3
}

TEST(Adc, NumericsOutsideTheirRangesAreRefused) {
  EXPECT_NO_THROW(numerics(128, 2, 1, 16).validate());
  EXPECT_INPUT_ERROR(numerics(128, 2, 1, 0).validate(), "adc_bits", "0 is outside 1..16");
  EXPECT_INPUT_ERROR(numerics(128, 2, 1, 17).validate(), "adc_bits", "17 is outside 1..16");
  EXPECT_INPUT_ERROR(numerics(5000, 2, 1, 8).validate(), "xbar_rows", "5000 is outside");
  EXPECT_INPUT_ERROR(numerics(128, 0, 1, 8).validate(), "cell_bits", "0 is outside 1..8");
}

TEST(Adc, RowTilesCutRunsOfOneGroupAtTheRowLimit) {
  // Groups 0 0 0 0 0 | 1 1 | 0 0 with 2 rows: [0,2) [2,4) [4,5) | [5,7) | [7,9).
  const auto t = crossbar_row_tiles({0, 0, 0, 0, 0, 1, 1, 0, 0}, 2);
  ASSERT_EQ(t.size(), 5u);
  const int64_t want[5][3] = {{0, 2, 0}, {2, 2, 0}, {4, 1, 0}, {5, 2, 1}, {7, 2, 0}};
  for (std::size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].k0, want[i][0]);
    EXPECT_EQ(t[i].length, want[i][1]);
    EXPECT_EQ(t[i].red_group, want[i][2]);
  }
  EXPECT_EQ(crossbar_row_tiles(std::vector<int64_t>(300, 0), 128).size(), 3u);
}

TEST(Adc, ReferenceTileSumByHand) {
  // 3 rows, x = 1 (1-bit unsigned), w = 1 in W = 2 bits: u = 3, both 1-bit slices 1. Column sums
  // 3 and 3; a 1-bit ADC keeps 1 of each: T = 1 + (1 << 1) - (3 << 1) = -3, the exact sum is 3.
  const int64_t x[3] = {1, 1, 1}, w[3] = {1, 1, 1};
  EXPECT_EQ(cim_tile_sum_reference(x, w, 3, 1, false, 2, numerics(8, 1, 1, 1)), -3);
  EXPECT_EQ(cim_tile_sum_reference(x, w, 3, 1, false, 2, numerics(8, 1, 1, 2)), 3);
  // Signed 2-bit input -2 (pattern 10): the low step drives nothing, the sign step weighs -2.
  const int64_t xs[2] = {-2, 1}, ws[2] = {3, -4};  // exact: -6 - 4 = -10
  EXPECT_EQ(cim_tile_sum_reference(xs, ws, 2, 2, true, 3, numerics(8, 1, 1, 8)), -10);
  EXPECT_THROW(cim_tile_sum_reference(xs, ws, 2, 2, false, 3, numerics(8, 1, 1, 8)),
               std::out_of_range);
}

// A random Conv/Gemm layer with its storage (view points into it).
struct Layer {
  BlockGrid grid;
  std::vector<int8_t> weight;
  std::vector<FixedMultiplier> mult;
  std::vector<int64_t> bias;
  kernels::GemmLayer view;
};

Layer make_layer(Random& rnd, const std::string& granularity, int64_t cin, int64_t cout,
                 int64_t groups, int64_t kernel, int w_bits) {
  Layer L;
  model::Node node;
  const int64_t cin_g = cin / groups;
  if (kernel == 0) {
    node.op = model::Op::Gemm;
    node.weight.shape = {cout, cin};
    L.view.shape = layout::conv_shape(node, model::Value{"x", {cin}}, model::Value{"y", {cout}});
  } else {
    node.op = model::Op::Conv;
    node.window.kernel_h = node.window.kernel_w = kernel;
    node.window.pad_top = node.window.pad_left = node.window.pad_bottom = node.window.pad_right =
        kernel / 2;
    node.window.groups = groups;
    node.weight.shape = {cout, cin_g, kernel, kernel};
    L.view.shape =
        layout::conv_shape(node, model::Value{"x", {cin, 5, 4}}, model::Value{"y", {cout, 5, 4}});
  }
  L.grid = make_block_grid(node, Granularity::parse(granularity));
  for (int64_t i = 0; i < cout * L.view.shape.k(); ++i)
    L.weight.push_back(
        static_cast<int8_t>(rnd.uniform(signed_range(w_bits).lo, signed_range(w_bits).hi)));
  int frac = 0;
  for (int64_t b = 0; b < L.grid.num_blocks(); ++b) {
    FixedMultiplier f;
    f.m = rnd.uniform(1 << 15, (1 << 16) - 1);
    f.r = static_cast<int>(rnd.uniform(18, 21));
    frac = std::max(frac, f.r);
    L.mult.push_back(f);
  }
  for (int64_t o = 0; o < cout; ++o) L.bias.push_back(rnd.uniform(-(1 << 20), 1 << 20));
  L.view.groups = groups;
  L.view.out_channels = cout;
  L.view.grid = &L.grid;
  L.view.weight = L.weight.data();
  L.view.multiplier = L.mult.data();
  L.view.bias_q = L.bias.data();
  L.view.frac_bits = frac;
  L.view.range = signed_range(8);
  return L;
}

// adc.h's rule written out with cim_tile_sum_reference: per sample, output and pixel, the sum of
// the tiles' D times their block scales, then requantized (or kept).
std::vector<int64_t> reference_layer(const kernels::GemmLayer& L, const AdcNumerics& adc,
                                     int a_bits, bool a_signed, int w_bits, int64_t n,
                                     const std::vector<int64_t>& x) {
  const layout::ConvShape& s = L.shape;
  const int64_t k = s.k(), P = s.positions(), cout = L.out_channels, cout_g = cout / L.groups;
  const int64_t cin = s.cin_g * L.groups, plane = s.h * s.w;
  const auto tiles = crossbar_row_tiles(L.grid->red_group, adc.xbar_rows);
  std::vector<int64_t> rows(static_cast<std::size_t>(P * k)), w(static_cast<std::size_t>(k));
  std::vector<int64_t> y(static_cast<std::size_t>(n * cout * P));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t gi = 0; gi < L.groups; ++gi) {
      layout::im2col_hw(s, x.data() + (i * cin + gi * s.cin_g) * plane, rows.data());
      for (int64_t o = 0; o < cout_g; ++o) {
        const int64_t oc = gi * cout_g + o;
        for (int64_t c = 0; c < s.cin_g; ++c)
          for (int64_t p = 0; p < s.kernel(); ++p)
            w[layout::hw_reduction_index(s.cin_g, c, p)] =
                L.weight[oc * k + layout::onnx_reduction_index(s.kernel(), c, p)];
        for (int64_t m = 0; m < P; ++m) {
          int64_t acc = L.bias_q[oc];
          for (const RowTile& t : tiles) {
            const FixedMultiplier& f =
                L.multiplier[L.grid->out_group[oc] * L.grid->red_groups + t.red_group];
            const int64_t d = cim_tile_sum_reference(rows.data() + m * k + t.k0, w.data() + t.k0,
                                                     t.length, a_bits, a_signed, w_bits, adc);
            acc += d * f.m * (int64_t{1} << (L.frac_bits - f.r));
          }
          y[(i * cout + oc) * P + m] =
              L.keep_acc ? acc : saturate(round_shift_half_up(acc, L.frac_bits), L.range);
        }
      }
    }
  return y;
}

struct CimCase {
  std::string granularity;
  int64_t cin, cout, groups, kernel;
  int rows, cell_bits, input_bits, adc_bits;
  AdcRange range;
};

TEST(IntCim, RandomLayersMatchTheReferenceRule) {
  const std::string best = kernels::cim_kernel_name();
  std::printf("CIM pixel kernels tested: %s", best.c_str());
  for (const char* kernel : {"avx2", "portable"})
    if (best != kernel && kernels::select_cim_kernel(kernel)) std::printf(", %s", kernel);
  std::printf("\n");
  ASSERT_TRUE(kernels::select_cim_kernel(best));
  const CimCase cases[] = {
      {"layer", 12, 6, 1, 3, 128, 2, 1, 6, AdcRange::Clip},
      {"block:4x4", 12, 6, 1, 3, 8, 2, 1, 3, AdcRange::Clip},
      {"block:4x6", 12, 6, 1, 3, 7, 3, 2, 4, AdcRange::Clip},
      {"channel", 8, 8, 8, 3, 128, 1, 1, 2, AdcRange::Clip},
      {"block:16x16", 70, 10, 1, 0, 32, 2, 1, 4, AdcRange::Clip},
      {"layer", 70, 10, 1, 0, 64, 4, 3, 5, AdcRange::Rows},
      {"block:4x4", 12, 6, 1, 3, 128, 2, 1, 6, AdcRange::Rows},
      // Every tile lossless (4 rows x 3 <= 63): the executor's no-planes path.
      {"block:4x4", 12, 6, 1, 3, 128, 2, 1, 6, AdcRange::Clip},
      // Tiles of 32, 32 and 6 rows: two lossy, the partial last one lossless.
      {"layer", 70, 10, 1, 0, 32, 2, 1, 5, AdcRange::Clip},
      // 40 and 36 channels: vector chunks with partial tails on every instruction set.
      {"block:8x8", 24, 40, 1, 3, 64, 2, 1, 6, AdcRange::Clip},
      {"channel", 20, 36, 1, 1, 16, 1, 2, 3, AdcRange::Clip},
      // 600 x 15 x 15 > 32767: int32 column sums.
      {"layer", 600, 20, 1, 0, 600, 4, 4, 12, AdcRange::Clip},
  };
  int idx = 0;
  for (const CimCase& c : cases)
    for (const int w_bits : {3, 4, 8})
      for (const bool sgn : {false, true}) {
        Random rnd(2000 + static_cast<uint32_t>(idx++));
        const AdcNumerics adc = numerics(c.rows, c.cell_bits, c.input_bits, c.adc_bits, c.range);
        const int a_bits = sgn ? 6 : 8;
        SCOPED_TRACE(rnd.note() + "; " + c.granularity + " W" + std::to_string(w_bits) + " A" +
                     std::to_string(a_bits) + (sgn ? " signed " : " ") + adc.str());
        Layer L = make_layer(rnd, c.granularity, c.cin, c.cout, c.groups, c.kernel, w_bits);
        L.view.keep_acc = c.kernel == 0;
        const int64_t n = 2;
        const IntRange in = sgn ? signed_range(a_bits) : unsigned_range(a_bits);
        std::vector<int64_t> x = rnd.codes(n * c.cin * L.view.shape.h * L.view.shape.w, in);
        // Sparse inputs too, as after a ReLU: safe and bit-plane steps mixed within a pixel.
        for (std::size_t i = 0; i < x.size(); i += 3) x[i] = 0;
        const auto want = reference_layer(L.view, adc, a_bits, sgn, w_bits, n, x);
        const kernels::CimGemm cim = kernels::make_cim_gemm(L.view, adc, a_bits, sgn, w_bits);
        for (const char* kernel : {"avx512", "avx2", "portable"}) {
          if (!kernels::select_cim_kernel(kernel)) continue;  // the CPU lacks it
          SCOPED_TRACE(std::string("kernel ") + kernel);
          std::vector<int64_t> got(want.size(), -99);
          kernels::GemmScratch scratch;
          kernels::conv_gemm_cim(L.view, cim, n, x.data(), got.data(), scratch);
          ASSERT_EQ(got, want);
        }
        ASSERT_TRUE(kernels::select_cim_kernel(best));
      }
}

TEST(IntCim, LosslessAdcGivesTheIdealIntegerCodes) {
  int idx = 0;
  for (const char* g : {"layer", "channel", "block:4x4", "block:16x16"})
    for (const int w_bits : {2, 4, 8}) {
      Random rnd(3000 + static_cast<uint32_t>(idx++));
      SCOPED_TRACE(rnd.note() + "; " + g + " W" + std::to_string(w_bits));
      Layer L = make_layer(rnd, g, 24, 12, 1, 3, w_bits);
      L.view.keep_acc = true;  // compare accumulators: saturated codes could hide a difference
      // 24 rows x 15 (4-bit cells) x 1 = 360 <= 511: a 9-bit ADC never clips.
      const AdcNumerics adc = numerics(24, 4, 1, 9);
      const int64_t n = 2;
      const auto x = rnd.codes(n * 24 * L.view.shape.h * L.view.shape.w, unsigned_range(8));
      std::vector<int64_t> want(static_cast<std::size_t>(n * 12 * L.view.shape.positions()));
      std::vector<int64_t> got(want.size(), -99);
      kernels::GemmScratch scratch;
      kernels::conv_gemm_blocks(L.view, n, x.data(), want.data(), scratch);
      kernels::conv_gemm_cim(L.view, kernels::make_cim_gemm(L.view, adc, 8, false, w_bits), n,
                             x.data(), got.data(), scratch);
      ASSERT_EQ(got, want);
      // A 4-bit ADC (15) clips the dense inputs' column sums somewhere.
      kernels::conv_gemm_cim(
          L.view, kernels::make_cim_gemm(L.view, numerics(24, 4, 1, 4), 8, false, w_bits), n,
          x.data(), got.data(), scratch);
      EXPECT_NE(got, want);
    }
}

TEST(IntCim, InputCodesOutsideTheGridAreRefused) {
  Random rnd(4000);
  Layer L = make_layer(rnd, "layer", 4, 2, 1, 1, 4);
  const auto cim = kernels::make_cim_gemm(L.view, numerics(8, 2, 1, 6), 4, false, 4);
  std::vector<int64_t> x(static_cast<std::size_t>(4 * 20), 16), y(2 * 20);  // 16 > 15
  kernels::GemmScratch scratch;
  EXPECT_THROW(kernels::conv_gemm_cim(L.view, cim, 1, x.data(), y.data(), scratch),
               std::out_of_range);
}

}  // namespace
}  // namespace tilescale::quant
