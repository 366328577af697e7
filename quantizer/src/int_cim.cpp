#include "tilescale/quant/int_cim.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "tilescale/core/error.h"
#include "tilescale/model/layout.h"

namespace tilescale::quant::kernels {

namespace layout = model::layout;

CimGemm make_cim_gemm(const GemmLayer& L, const AdcNumerics& adc, int a_bits, bool a_signed,
                      int w_bits) {
  adc.validate();
  if (a_bits < 1 || a_bits > 8)
    throw InputError("input bits " + std::to_string(a_bits) + " outside 1..8");
  if (w_bits < 1 || w_bits > 8)
    throw InputError("weight bits " + std::to_string(w_bits) + " outside 1..8");
  CimGemm c;
  c.adc = adc;
  c.a_bits = a_bits;
  c.a_signed = a_signed;
  c.w_bits = w_bits;
  c.wide = weight_slices(w_bits, adc.cell_bits) * adc.cell_bits;
  c.shift = adc_shift(adc);
  c.steps = input_steps(a_bits, a_signed, adc.input_bits_per_cycle);
  const BlockGrid& grid = *L.grid;
  c.tiles = crossbar_row_tiles(grid.red_group, adc.xbar_rows);
  const int64_t k = L.shape.k(), kernel = L.shape.kernel(), cin_g = L.shape.cin_g;
  c.word0.assign(1, 0);
  std::vector<int64_t> tile_of(static_cast<std::size_t>(k));
  for (std::size_t t = 0; t < c.tiles.size(); ++t) {
    c.word0.push_back(c.word0.back() + (c.tiles[t].length + 63) / 64);
    for (int64_t r = 0; r < c.tiles[t].length; ++r)
      tile_of[static_cast<std::size_t>(c.tiles[t].k0 + r)] = static_cast<int64_t>(t);
  }
  const int64_t words = c.words(), cout = L.out_channels;
  const IntRange wr = signed_range(w_bits);
  c.wplanes.assign(static_cast<std::size_t>(cout * c.wide * words), 0);
  c.w16.assign(static_cast<std::size_t>(cout * k), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t ch = 0; ch < cin_g; ++ch)
      for (int64_t p = 0; p < kernel; ++p) {
        const int64_t w = L.weight[o * k + layout::onnx_reduction_index(kernel, ch, p)];
        if (w < wr.lo || w > wr.hi)
          throw InputError("weight code " + std::to_string(w) + " outside its " +
                           std::to_string(w_bits) + "-bit grid");
        const int64_t hw = layout::hw_reduction_index(cin_g, ch, p);
        c.w16[static_cast<std::size_t>(o * k + hw)] = static_cast<int16_t>(w);
        const RowTile& tile = c.tiles[static_cast<std::size_t>(tile_of[hw])];
        const int64_t r = hw - tile.k0, word = c.word0[tile_of[hw]] + r / 64;
        const uint64_t u = static_cast<uint64_t>(w + (int64_t{1} << (c.wide - 1)));
        for (int q = 0; q < c.wide; ++q)
          if ((u >> q) & 1u)
            c.wplanes[static_cast<std::size_t>((o * c.wide + q) * words + word)] |= uint64_t{1}
                                                                                    << (r % 64);
      }
  c.safe_count =
      c.shift == 0 ? ((int64_t{1} << adc.adc_bits) - 1) / ((int64_t{1} << adc.cell_bits) - 1) : -1;
  const int F = L.frac_bits;
  c.scale.assign(static_cast<std::size_t>(cout) * c.tiles.size(), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (std::size_t t = 0; t < c.tiles.size(); ++t) {
      const FixedMultiplier& f =
          L.multiplier[grid.out_group[o] * grid.red_groups + c.tiles[t].red_group];
      // m = 0: the block contributes nothing (int_kernels.h); F >= r by construction of F.
      if (f.m != 0) c.scale[o * c.tiles.size() + t] = f.m * (int64_t{1} << (F - f.r));
    }
  return c;
}

namespace {

struct PixelArgs {
  const GemmLayer* L;
  const CimGemm* c;
  int64_t gi;             // group
  const int16_t* xsafe;   // [k] the safe steps' part of each input code
  const uint64_t* masks;  // [a_bits][words]
  const StepInfo* info;   // [tiles][steps]
  int64_t* acc;           // accumulator of output channel (gi * cout_g), stride acc_stride
  int64_t acc_stride;
};

[[gnu::always_inline]] inline void pixel_body(const PixelArgs& a) {
  const CimGemm& c = *a.c;
  const int64_t cout_g = a.L->out_channels / a.L->groups, words = c.words(), k = a.L->shape.k();
  const std::size_t nt = c.tiles.size();
  for (int64_t o = 0; o < cout_g; ++o) {
    const int64_t oc = a.gi * cout_g + o;
    const uint64_t* wbase = c.wplanes.data() + oc * c.wide * words;
    const int16_t* w16 = c.w16.data() + oc * k;
    const int64_t* scale = c.scale.data() + oc * static_cast<int64_t>(nt);
    int64_t total = 0;
    for (std::size_t t = 0; t < nt; ++t) {
      if (scale[t] == 0) continue;
      const RowTile& tile = c.tiles[t];
      // |x_safe| <= 255, |w| <= 128, rows <= 4096: the dot product fits int32.
      int32_t dot = 0;
      for (int64_t r = tile.k0; r < tile.k0 + tile.length; ++r)
        dot += static_cast<int32_t>(a.xsafe[r]) * static_cast<int32_t>(w16[r]);
      const int64_t w0 = c.word0[t], tw = c.word0[t + 1] - w0;
      total += (dot + cim_tile_sum_planes(c, a.masks + w0, wbase + w0, words, tw,
                                          a.info + t * c.steps.size())) *
               scale[t];
    }
    a.acc[o * a.acc_stride] += total;
  }
}

// AVX2 (vectorized int16 dot products) and the popcount instruction where the CPU has them, chosen
// at run time so one portable build is fast; the arithmetic is the same either way.
[[gnu::target("avx2,popcnt"), gnu::optimize("O3")]] void pixel_avx2(const PixelArgs& a) {
  pixel_body(a);
}
[[gnu::optimize("O3")]] void pixel_portable(const PixelArgs& a) { pixel_body(a); }

}  // namespace

void conv_gemm_cim(const GemmLayer& L, const CimGemm& c, int64_t n, const int64_t* x, int64_t* y,
                   GemmScratch& ws) {
  const layout::ConvShape& s = L.shape;
  const int64_t k = s.k(), P = s.positions(), width = n * P, cout = L.out_channels;
  const int64_t cout_g = cout / L.groups, cin = s.cin_g * L.groups, plane = s.h * s.w;
  const int64_t words = c.words();
  const std::size_t nt = c.tiles.size(), ns = c.steps.size();
  const IntRange xr = c.a_signed ? signed_range(c.a_bits) : unsigned_range(c.a_bits);
  const uint64_t pattern_mask = (uint64_t{1} << c.a_bits) - 1;
  static const bool fast = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  ws.acc.resize(static_cast<std::size_t>(cout * width));
  for (int64_t o = 0; o < cout; ++o) std::fill_n(ws.acc.begin() + o * width, width, L.bias_q[o]);
  ws.rows.resize(static_cast<std::size_t>(P * k));
  ws.masks.resize(static_cast<std::size_t>(c.a_bits * words));
  ws.xsafe.resize(static_cast<std::size_t>(k));
  std::vector<StepInfo> info(nt * ns);
  for (int64_t gi = 0; gi < L.groups; ++gi)
    for (int64_t i = 0; i < n; ++i) {
      layout::im2col_hw(s, x + (i * cin + gi * s.cin_g) * plane, ws.rows.data());
      for (int64_t m = 0; m < P; ++m) {
        const int64_t* xrow = ws.rows.data() + m * k;
        std::fill(ws.masks.begin(), ws.masks.end(), 0);
        std::fill(info.begin(), info.end(), StepInfo{});
        for (std::size_t t = 0; t < nt; ++t) {
          const RowTile& tile = c.tiles[t];
          StepInfo* ti = info.data() + t * ns;
          const int64_t w0 = c.word0[t], tw = c.word0[t + 1] - w0;
          // The input bit planes of the tile.
          for (int64_t r = 0; r < tile.length; ++r) {
            const int64_t v = xrow[tile.k0 + r];
            if (v < xr.lo || v > xr.hi)
              throw std::out_of_range("conv_gemm_cim: input code " + std::to_string(v) +
                                      " outside its " + std::to_string(c.a_bits) + "-bit grid");
            for (uint64_t pattern = static_cast<uint64_t>(v) & pattern_mask; pattern != 0;
                 pattern &= pattern - 1)
              ws.masks[__builtin_ctzll(pattern) * words + w0 + r / 64] |= uint64_t{1} << (r % 64);
          }
          // R_t from the planes; the safe steps' bits go to x_safe, the others stay planes.
          uint64_t safe_bits = 0;
          for (std::size_t si = 0; si < ns; ++si) {
            const InputStep& st = c.steps[si];
            for (int b = 0; b < st.bits; ++b) {
              int64_t ones = 0;
              for (int64_t v = 0; v < tw; ++v)
                ones += __builtin_popcountll(ws.masks[(st.bit0 + b) * words + w0 + v]);
              ti[si].row_count += ones << b;
            }
            ti[si].planes = ti[si].row_count > c.safe_count;  // row_count 0 is always safe
            if (!ti[si].planes) safe_bits |= ((uint64_t{1} << st.bits) - 1) << st.bit0;
          }
          const uint64_t sign = c.a_signed ? uint64_t{1} << (c.a_bits - 1) : 0;
          for (int64_t r = 0; r < tile.length; ++r) {
            const uint64_t p = static_cast<uint64_t>(xrow[tile.k0 + r]) & pattern_mask & safe_bits;
            ws.xsafe[tile.k0 + r] = static_cast<int16_t>(static_cast<int64_t>(p & ~sign) -
                                                         static_cast<int64_t>(p & sign));
          }
        }
        const PixelArgs args{&L,
                             &c,
                             gi,
                             ws.xsafe.data(),
                             ws.masks.data(),
                             info.data(),
                             ws.acc.data() + gi * cout_g * width + i * P + m,
                             width};
        if (fast)
          pixel_avx2(args);
        else
          pixel_portable(args);
      }
    }
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t* acc = ws.acc.data() + o * width + i * P;
      int64_t* dst = y + (i * cout + o) * P;
      if (L.keep_acc)
        std::copy_n(acc, P, dst);
      else
        requantize(acc, P, L.frac_bits, L.range, dst);
    }
}

}  // namespace tilescale::quant::kernels
