#include "tilescale/quant/int_cim.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "tilescale/core/error.h"
#include "tilescale/model/layout.h"

namespace tilescale::quant::kernels {

namespace layout = model::layout;

CimGemm cim_gemm_numerics(const AdcNumerics& adc, int a_bits, bool a_signed, int w_bits,
                          std::vector<RowTile> tiles) {
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
  c.tiles = std::move(tiles);
  c.word0.assign(1, 0);
  for (const RowTile& t : c.tiles) {
    c.word0.push_back(c.word0.back() + (t.length + 63) / 64);
    c.tile_lossless.push_back(adc_lossless(adc, t.length) ? 1 : 0);
  }
  // The largest R_t whose worst column sum fits the ADC at LSB 1 (int_cim.h, safe steps).
  c.safe_count =
      c.shift == 0 ? ((int64_t{1} << adc.adc_bits) - 1) / ((int64_t{1} << adc.cell_bits) - 1) : -1;
  return c;
}

CimGemm make_cim_gemm(const GemmLayer& L, const AdcNumerics& adc, int a_bits, bool a_signed,
                      int w_bits) {
  const BlockGrid& grid = *L.grid;
  CimGemm c = cim_gemm_numerics(adc, a_bits, a_signed, w_bits,
                                crossbar_row_tiles(grid.red_group, adc.xbar_rows));
  const int64_t k = L.shape.k(), kernel = L.shape.kernel(), cin_g = L.shape.cin_g;
  std::vector<int64_t> tile_of(static_cast<std::size_t>(k));
  for (std::size_t t = 0; t < c.tiles.size(); ++t) {
    for (int64_t r = 0; r < c.tiles[t].length; ++r)
      tile_of[static_cast<std::size_t>(c.tiles[t].k0 + r)] = static_cast<int64_t>(t);
  }
  const int64_t cout = L.out_channels, cout_g = cout / L.groups;
  const int slices = c.wide / adc.cell_bits;
  const IntRange wr = signed_range(w_bits);
  c.cells.assign(static_cast<std::size_t>(cout * k * slices), 0);
  c.pair0.assign(1, 0);
  for (const RowTile& t : c.tiles) c.pair0.push_back(c.pair0.back() + (t.length + 1) / 2);
  const int64_t pairs = c.pair0.back();
  c.wt2.assign(static_cast<std::size_t>(L.groups * pairs * cout_g * 2), 0);
  const uint64_t cell_mask = (uint64_t{1} << adc.cell_bits) - 1;
  for (int64_t o = 0; o < cout; ++o) {
    const int64_t gi = o / cout_g, og = o % cout_g;
    for (int64_t ch = 0; ch < cin_g; ++ch)
      for (int64_t p = 0; p < kernel; ++p) {
        const int64_t w = L.weight[o * k + layout::onnx_reduction_index(kernel, ch, p)];
        if (w < wr.lo || w > wr.hi)
          throw InputError("weight code " + std::to_string(w) + " outside its " +
                           std::to_string(w_bits) + "-bit grid");
        const int64_t hw = layout::hw_reduction_index(cin_g, ch, p);
        const int64_t row = gi * k + hw;  // the row's place in the row-major copies
        const RowTile& tile = c.tiles[static_cast<std::size_t>(tile_of[hw])];
        const int64_t r = hw - tile.k0;
        const int64_t pair = gi * pairs + c.pair0[tile_of[hw]] + r / 2;
        c.wt2[static_cast<std::size_t>((pair * cout_g + og) * 2 + r % 2)] = static_cast<int16_t>(w);
        const uint64_t u = static_cast<uint64_t>(w + (int64_t{1} << (c.wide - 1)));
        for (int s = 0; s < slices; ++s)
          c.cells[static_cast<std::size_t>((row * slices + s) * cout_g + og)] =
              static_cast<int16_t>((u >> (s * adc.cell_bits)) & cell_mask);
      }
  }
  int64_t longest = 0;
  for (const RowTile& t : c.tiles) longest = std::max(longest, t.length);
  c.narrow =
      longest * static_cast<int64_t>(cell_mask) * ((int64_t{1} << adc.input_bits_per_cycle) - 1) <=
      std::numeric_limits<int16_t>::max();
  const int F = L.frac_bits;
  c.scale.assign(static_cast<std::size_t>(cout) * c.tiles.size(), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (std::size_t t = 0; t < c.tiles.size(); ++t) {
      const FixedMultiplier& f =
          L.multiplier[grid.out_group[o] * grid.red_groups + c.tiles[t].red_group];
      // m = 0: the block contributes nothing (int_kernels.h); F >= r by construction of F.
      if (f.m != 0) c.scale[t * cout + o] = f.m * (int64_t{1} << (F - f.r));
    }
  return c;
}

namespace {

// One pixel of one group: x8 its hardware-order input patterns [k] (the code's a_bits two's
// complement bits), acc the accumulator of its first output channel, stride
// acc_stride. Sum is the column-sum type: int16 where CimGemm::narrow says the sums fit.
struct PixelArgs {
  const GemmLayer* L;
  const CimGemm* c;
  int64_t gi;
  const uint8_t* x8;
  int64_t* acc;
  int64_t acc_stride;
};

// Per-thread buffers of the pixel kernel, sized once per call.
struct PixelBuffers {
  std::vector<int32_t> dot;      // [cout_g] the tile's safe-step dot product
  std::vector<int64_t> d;        // [cout_g] the tile's digital sum D
  std::vector<int64_t> term;     // [cout_g] one step's T
  std::vector<int64_t> total;    // [cout_g] sum over tiles of D * scale
  std::vector<int32_t> sums32;   // [slices][cout_g] one step's column sums (wide)
  std::vector<int16_t> sums16;   // [slices][cout_g] one step's column sums (narrow)
  std::vector<uint64_t> planes;  // [a_bits][plane_words] one tile's input bit planes
  int64_t plane_words = 0;
  std::vector<const int16_t*> pair_w;     // [tile rows / 2] the safe dot's driven row pairs
  std::vector<int32_t> xpair;             // [tile rows / 2] and their two inputs as int16 halves
  std::vector<const int16_t*> row_cells;  // [tile rows] one plane's driven rows' cells
};

}  // namespace

// The pixel kernel (int_cim_pixel.inc) compiled three times: for AVX-512, for AVX2 and portable,
// chosen at run time so one build is fast on any x86-64; the arithmetic is the same in all three.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,popcnt,bmi")
#pragma GCC optimize("O3")
namespace cim_avx512 {
#define TS_CIM_ISA 2
#include "int_cim_pixel.inc"
#undef TS_CIM_ISA
}  // namespace cim_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,popcnt,bmi")
#pragma GCC optimize("O3")
namespace cim_avx2 {
#define TS_CIM_ISA 1
#include "int_cim_pixel.inc"
#undef TS_CIM_ISA
}  // namespace cim_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC optimize("O3")
namespace cim_portable {
#define TS_CIM_ISA 0
#include "int_cim_pixel.inc"
#undef TS_CIM_ISA
}  // namespace cim_portable
#pragma GCC pop_options

namespace {

using PixelFn = void (*)(const PixelArgs&, PixelBuffers&);
struct PixelKernel {
  const char* name;
  PixelFn fn;
  bool usable;
};

const PixelKernel* kernel_named(const std::string& name) {
  static const PixelKernel kernels[] = {
      {"avx512", cim_avx512::pixel,
       __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi")},
      {"avx2", cim_avx2::pixel,
       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
           __builtin_cpu_supports("bmi")},
      {"portable", cim_portable::pixel, true},
  };
  for (const PixelKernel& k : kernels)
    if (name == k.name) return k.usable ? &k : nullptr;
  return nullptr;
}

// The best usable kernel, or the one TILESCALE_CIM_KERNEL names (for benchmarks; an unusable
// name is ignored).
const PixelKernel*& current_kernel() {
  static const PixelKernel* k = [] {
    const char* env = std::getenv("TILESCALE_CIM_KERNEL");
    if (const PixelKernel* named = env ? kernel_named(env) : nullptr) return named;
    for (const char* name : {"avx512", "avx2"})
      if (const PixelKernel* usable = kernel_named(name)) return usable;
    return kernel_named("portable");
  }();
  return k;
}

}  // namespace

void conv_gemm_cim(const GemmLayer& L, const CimGemm& c, int64_t n, const int64_t* x, int64_t* y,
                   GemmScratch& ws) {
  const layout::ConvShape& s = L.shape;
  const int64_t k = s.k(), P = s.positions(), width = n * P, cout = L.out_channels;
  const int64_t cout_g = cout / L.groups, cin = s.cin_g * L.groups, plane = s.h * s.w;
  const IntRange xr = c.a_signed ? signed_range(c.a_bits) : unsigned_range(c.a_bits);
  const PixelFn pixel = current_kernel()->fn;
  // The input grid check once for the whole input (padding taps read 0, which is on every grid).
  const int64_t count = n * cin * plane;
  for (int64_t i = 0; i < count; ++i)
    if (x[i] < xr.lo || x[i] > xr.hi)
      throw std::out_of_range("conv_gemm_cim: input code " + std::to_string(x[i]) +
                              " outside its " + std::to_string(c.a_bits) + "-bit grid");
  ws.acc.resize(static_cast<std::size_t>(cout * width));
  for (int64_t o = 0; o < cout; ++o) std::fill_n(ws.acc.begin() + o * width, width, L.bias_q[o]);
  ws.cim_rows.resize(static_cast<std::size_t>(P * k));
  ws.cim_hwc.resize(static_cast<std::size_t>(plane * s.cin_g));
  const int slices = c.wide / c.adc.cell_bits;
  PixelBuffers b;
  b.dot.resize(static_cast<std::size_t>(cout_g));
  b.d.resize(static_cast<std::size_t>(cout_g));
  b.term.resize(static_cast<std::size_t>(cout_g));
  b.total.resize(static_cast<std::size_t>(cout_g));
  const std::size_t sums = static_cast<std::size_t>(slices * cout_g);
  (c.narrow ? b.sums16.resize(sums) : b.sums32.resize(sums));
  for (const RowTile& t : c.tiles) b.plane_words = std::max(b.plane_words, (t.length + 63) / 64);
  b.planes.resize(static_cast<std::size_t>(c.a_bits * b.plane_words));
  b.pair_w.resize(static_cast<std::size_t>(b.plane_words * 32));
  b.xpair.resize(static_cast<std::size_t>(b.plane_words * 32));
  b.row_cells.resize(static_cast<std::size_t>(b.plane_words * 64));
  const uint8_t pattern_mask = static_cast<uint8_t>((1u << c.a_bits) - 1);
  for (int64_t gi = 0; gi < L.groups; ++gi)
    for (int64_t i = 0; i < n; ++i) {
      // The sample's input patterns channels last ([h][w][cin_g]), so that one tap of a patch
      // row (hardware order p * cin_g + c, layout.h) is one copy: im2col_hw's rows, faster.
      uint8_t* hwc = ws.cim_hwc.data();
      for (int64_t ch = 0; ch < s.cin_g; ++ch) {
        const int64_t* src = x + (i * cin + gi * s.cin_g + ch) * plane;
        for (int64_t px = 0; px < plane; ++px)
          hwc[px * s.cin_g + ch] =
              static_cast<uint8_t>(static_cast<uint8_t>(src[px]) & pattern_mask);
      }
      uint8_t* rows = ws.cim_rows.data();
      for (int64_t m = 0; m < P; ++m) {
        uint8_t* row = rows + m * k;
        std::fill_n(row, k, uint8_t{0});
        if (s.cin_g == 1)  // depthwise: one byte per tap, not worth a memcpy call
          layout::for_each_tap(s, m / s.wo, m % s.wo,
                               [&](int64_t offset, int64_t p) { row[p] = hwc[offset]; });
        else
          layout::for_each_tap(s, m / s.wo, m % s.wo, [&](int64_t offset, int64_t p) {
            std::memcpy(row + p * s.cin_g, hwc + offset * s.cin_g,
                        static_cast<std::size_t>(s.cin_g));
          });
      }
      for (int64_t m = 0; m < P; ++m)
        pixel(PixelArgs{&L, &c, gi, rows + m * k, ws.acc.data() + gi * cout_g * width + i * P + m,
                        width},
              b);
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

bool select_cim_kernel(const std::string& name) {
  const PixelKernel* k = kernel_named(name);
  if (k) current_kernel() = k;
  return k != nullptr;
}

const char* cim_kernel_name() { return current_kernel()->name; }

}  // namespace tilescale::quant::kernels
