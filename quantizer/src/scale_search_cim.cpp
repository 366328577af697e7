// The ADC-aware part of the scale search (QuantOptions::adc, docs/search.md): a layer's output on
// the sampled calibration positions computed through the CIM numerics of adc.h, with the golden
// executor's own tile kernel (kernels::cim_tile_sum_planes), so the error the search minimises is
// the one the macro makes. Inputs are the search's float columns quantized to the layer's input
// grid; output = s_x * sum over blocks of s_blk * (sum of the block's tiles' digital sums D), the
// float form of int_arith.h's accumulation (multiplier rounding and the output requantization are
// left out, as in the search without ADCs).
#include <algorithm>

#include "scale_search.h"
#include "tilescale/model/layout.h"

namespace tilescale::quant {
namespace {

struct BlockSumArgs {
  const kernels::CimGemm* c;
  const std::vector<int64_t>* tiles;  // the block's tiles
  const uint64_t* xplanes;            // group g's planes: [positions][a_bits][words]
  const kernels::StepInfo* info;      // group g's: [positions][tiles][steps]
  const uint64_t* w;                  // [wide][words]
  int64_t positions;
  double* out;
};

[[gnu::always_inline]] inline void block_sums_body(const BlockSumArgs& a) {
  const kernels::CimGemm& c = *a.c;
  const int64_t words = c.words(), ab = c.a_bits;
  const std::size_t nt = c.tiles.size(), ns = c.steps.size();
  for (int64_t p = 0; p < a.positions; ++p) {
    const uint64_t* xm = a.xplanes + p * ab * words;
    const kernels::StepInfo* info = a.info + static_cast<std::size_t>(p) * nt * ns;
    int64_t sum = 0;
    for (int64_t t : *a.tiles) {
      const int64_t w0 = c.word0[t], tw = c.word0[t + 1] - w0;
      sum += kernels::cim_tile_sum_planes(c, xm + w0, a.w + w0, words, tw, info + t * ns);
    }
    a.out[p] = static_cast<double>(sum);
  }
}

// The popcount instruction where the CPU has it (as int_cim.cpp), chosen at run time.
[[gnu::target("popcnt"), gnu::optimize("O3")]] void block_sums_popcnt(const BlockSumArgs& a) {
  block_sums_body(a);
}
[[gnu::optimize("O3")]] void block_sums_portable(const BlockSumArgs& a) { block_sums_body(a); }

}  // namespace

void ScaleSearch::init_cim(std::size_t l) {
  const LayerQuant& layer = m_.layers[l];
  const BlockGrid& grid = layer.grid;
  const ActQuant& in = m_.act_of(m_.plan.ops[layer.op].inputs[0]);
  CimData& cd = cim_[l];
  kernels::CimGemm& c = cd.c;
  c.adc = *m_.options.adc;
  c.a_bits = in.bits;
  c.a_signed = in.is_signed;
  c.w_bits = layer.w_bits;
  c.wide = weight_slices(layer.w_bits, c.adc.cell_bits) * c.adc.cell_bits;
  c.shift = adc_shift(c.adc);
  c.steps = input_steps(in.bits, in.is_signed, c.adc.input_bits_per_cycle);
  c.tiles = crossbar_row_tiles(grid.red_group, c.adc.xbar_rows);
  c.word0.assign(1, 0);
  cd.tile_rows.assign(c.tiles.size(), {});
  cd.rg_tiles.assign(static_cast<std::size_t>(grid.red_groups), {});
  for (std::size_t t = 0; t < c.tiles.size(); ++t) {
    const RowTile& tile = c.tiles[t];
    c.word0.push_back(c.word0.back() + (tile.length + 63) / 64);
    for (int64_t r = 0; r < tile.length; ++r) {
      const int64_t hw = tile.k0 + r;
      cd.tile_rows[t].push_back(
          model::layout::onnx_reduction_index(grid.kernel, hw % grid.cin_g, hw / grid.cin_g));
    }
    cd.rg_tiles[static_cast<std::size_t>(tile.red_group)].push_back(static_cast<int64_t>(t));
  }
  cd.x_step = -1.0;
}

void ScaleSearch::cim_planes(std::size_t l, double step) {
  CimData& cd = cim_[l];
  if (cd.x_step == step) return;
  const LayerData& d = data_[l];
  const kernels::CimGemm& c = cd.c;
  const IntRange r = m_.act_of(m_.plan.ops[m_.layers[l].op].inputs[0]).range();
  const int64_t words = c.words(), P = d.positions, ab = c.a_bits;
  const std::size_t nt = c.tiles.size(), ns = c.steps.size();
  const uint64_t mask = (uint64_t{1} << ab) - 1;
  cd.xplanes.assign(static_cast<std::size_t>(d.groups * P * ab * words), 0);
  cd.info.assign(static_cast<std::size_t>(d.groups * P) * nt * ns, kernels::StepInfo{});
  for (int64_t g = 0; g < d.groups; ++g)
    for (std::size_t t = 0; t < nt; ++t) {
      const std::vector<int64_t>& rows = cd.tile_rows[t];
      for (std::size_t ri = 0; ri < rows.size(); ++ri) {
        const float* xr = d.x.data() + (g * d.k + rows[ri]) * P;
        const int64_t word = c.word0[t] + static_cast<int64_t>(ri / 64);
        const uint64_t bit = uint64_t{1} << (ri % 64);
        for (int64_t p = 0; p < P; ++p) {
          uint64_t* xm = cd.xplanes.data() + ((g * P + p) * ab) * words + word;
          for (uint64_t pat = static_cast<uint64_t>(quantize_to_grid(xr[p], step, r)) & mask;
               pat != 0; pat &= pat - 1)
            xm[__builtin_ctzll(pat) * words] |= bit;
        }
      }
    }
  // R_t per (position, tile, step); a step with no row driven contributes 0 and is skipped.
  for (int64_t gp = 0; gp < d.groups * P; ++gp)
    for (std::size_t t = 0; t < nt; ++t) {
      const uint64_t* xm = cd.xplanes.data() + gp * ab * words + c.word0[t];
      const int64_t tw = c.word0[t + 1] - c.word0[t];
      for (std::size_t si = 0; si < ns; ++si) {
        kernels::StepInfo& info = cd.info[(static_cast<std::size_t>(gp) * nt + t) * ns + si];
        const InputStep& st = c.steps[si];
        for (int b = 0; b < st.bits; ++b) {
          int64_t ones = 0;
          for (int64_t v = 0; v < tw; ++v)
            ones += __builtin_popcountll(xm[(st.bit0 + b) * words + v]);
          info.row_count += ones << b;
        }
        info.planes = info.row_count > 0;
      }
    }
  cd.x_step = step;
}

void ScaleSearch::cim_weight_planes(std::size_t l, int64_t rg, const int8_t* q,
                                    std::vector<uint64_t>& w) const {
  const CimData& cd = cim_[l];
  const kernels::CimGemm& c = cd.c;
  const int64_t words = c.words();
  w.resize(static_cast<std::size_t>(c.wide * words));
  for (int64_t t : cd.rg_tiles[static_cast<std::size_t>(rg)]) {
    const int64_t w0 = c.word0[t], tw = c.word0[t + 1] - w0;
    for (int b = 0; b < c.wide; ++b) std::fill_n(w.begin() + b * words + w0, tw, 0);
    const std::vector<int64_t>& rows = cd.tile_rows[static_cast<std::size_t>(t)];
    for (std::size_t ri = 0; ri < rows.size(); ++ri) {
      const uint64_t bit = uint64_t{1} << (ri % 64);
      const int64_t word = w0 + static_cast<int64_t>(ri / 64);
      for (uint64_t u = static_cast<uint64_t>(q[rows[ri]] + (int64_t{1} << (c.wide - 1))); u != 0;
           u &= u - 1)
        w[__builtin_ctzll(u) * words + word] |= bit;
    }
  }
}

void ScaleSearch::cim_block_sums(std::size_t l, int64_t g, int64_t rg,
                                 const std::vector<uint64_t>& w, double* out) const {
  static const bool fast = __builtin_cpu_supports("popcnt");
  const CimData& cd = cim_[l];
  const int64_t P = data_[l].positions;
  const std::size_t nt = cd.c.tiles.size(), ns = cd.c.steps.size();
  const BlockSumArgs args{&cd.c,
                          &cd.rg_tiles[static_cast<std::size_t>(rg)],
                          cd.xplanes.data() + g * P * cd.c.a_bits * cd.c.words(),
                          cd.info.data() + static_cast<std::size_t>(g * P) * nt * ns,
                          w.data(),
                          P,
                          out};
  if (fast)
    block_sums_popcnt(args);
  else
    block_sums_portable(args);
}

std::vector<float> ScaleSearch::cim_output(std::size_t l, double x_step) {
  cim_planes(l, x_step);
  const LayerQuant& layer = m_.layers[l];
  const LayerData& d = data_[l];
  const BlockGrid& grid = layer.grid;
  const int64_t P = d.positions;
  std::vector<float> y(static_cast<std::size_t>(grid.out_channels * P), 0.0f);
  std::vector<uint64_t> w;
  std::vector<double> sums(static_cast<std::size_t>(P));
  for (int64_t o = 0; o < grid.out_channels; ++o) {
    const int64_t g = o / d.cout_g;
    float* yo = y.data() + o * P;
    for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
      const double s = x_step * block_step_[l][grid.out_group[o] * grid.red_groups + rg];
      cim_weight_planes(l, rg, layer.q_weight.data() + o * d.k, w);
      cim_block_sums(l, g, rg, w, sums.data());
      for (int64_t p = 0; p < P; ++p) yo[p] += static_cast<float>(s * sums[p]);
    }
  }
  return y;
}

}  // namespace tilescale::quant
