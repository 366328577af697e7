// The ADC-aware part of the scale search (QuantOptions::adc, docs/search.md): a layer's output on
// the sampled calibration positions computed through the CIM numerics of adc.h, with the search's
// tile sums (quant/cim_search.h: safe steps as one exact dot product, the other steps through the
// golden executor's own bit-plane kernel), so the error the search minimises is the one the macro
// makes. Inputs are the search's float columns quantized to the layer's input grid;
// output = s_x * sum over blocks of s_blk * (sum of the block's tiles' digital sums D), the float
// form of int_arith.h's accumulation (multiplier rounding and the output requantization are left
// out, as in the search without ADCs).
#include <algorithm>
#include <thread>

#include "scale_search.h"
#include "tilescale/model/layout.h"

namespace tilescale::quant {

void ScaleSearch::init_cim(std::size_t l) {
  const LayerQuant& layer = m_.layers[l];
  const BlockGrid& grid = layer.grid;
  const ActQuant& in = m_.act_of(m_.plan.ops[layer.op].inputs[0]);
  CimData& cd = cim_[l];
  cd.c = kernels::cim_gemm_numerics(*m_.options.adc, in.bits, in.is_signed, layer.w_bits,
                                    crossbar_row_tiles(grid.red_group, m_.options.adc->xbar_rows));
  const kernels::CimGemm& c = cd.c;
  cd.onnx_index.assign(static_cast<std::size_t>(grid.reduction()), 0);
  cd.rg_tiles.assign(static_cast<std::size_t>(grid.red_groups), {});
  for (std::size_t t = 0; t < c.tiles.size(); ++t) {
    const RowTile& tile = c.tiles[t];
    for (int64_t hw = tile.k0; hw < tile.k0 + tile.length; ++hw)
      cd.onnx_index[static_cast<std::size_t>(hw)] =
          model::layout::onnx_reduction_index(grid.kernel, hw % grid.cin_g, hw / grid.cin_g);
    cd.rg_tiles[static_cast<std::size_t>(tile.red_group)].push_back(static_cast<int64_t>(t));
  }
  cd.x_step = -1.0;
}

int ScaleSearch::cim_threads() const {
  return m_.options.threads > 0
             ? m_.options.threads
             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void ScaleSearch::cim_planes(std::size_t l, double step) {
  CimData& cd = cim_[l];
  if (cd.x_step == step) return;
  const LayerData& d = data_[l];
  const IntRange r = m_.act_of(m_.plan.ops[m_.layers[l].op].inputs[0]).range();
  const int64_t P = d.positions, k = d.k;
  cd.in.resize(static_cast<std::size_t>(d.groups));
  // Groups are independent (depthwise layers have one per channel).
#pragma omp parallel num_threads(cim_threads())
  {
    std::vector<int32_t> codes(static_cast<std::size_t>(P * k));
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < d.groups; ++g) {
      for (int64_t hw = 0; hw < k; ++hw) {
        const float* xr = d.x.data() + (g * k + cd.onnx_index[hw]) * P;
        for (int64_t p = 0; p < P; ++p)
          codes[p * k + hw] = static_cast<int32_t>(quantize_to_grid(xr[p], step, r));
      }
      kernels::cim_search_inputs(cd.c, codes.data(), P, cd.in[static_cast<std::size_t>(g)]);
    }
  }
  cd.x_step = step;
}

void ScaleSearch::cim_block_sums(std::size_t l, int64_t g, int64_t rg, const int8_t* q,
                                 CimScratch& s, double* out) const {
  const CimData& cd = cim_[l];
  const kernels::CimGemm& c = cd.c;
  const kernels::CimSearchInputs& in = cd.in[static_cast<std::size_t>(g)];
  const std::vector<int64_t>& tiles = cd.rg_tiles[static_cast<std::size_t>(rg)];
  const int64_t k = data_[l].k;
  s.q.resize(static_cast<std::size_t>(k));
  s.w16.resize(static_cast<std::size_t>(k));
  s.wpl.resize(static_cast<std::size_t>(c.wide * c.words()));
  bool planes = false;
  for (int64_t t : tiles) {
    const RowTile& tile = c.tiles[static_cast<std::size_t>(t)];
    for (int64_t hw = tile.k0; hw < tile.k0 + tile.length; ++hw) s.q[hw] = q[cd.onnx_index[hw]];
    planes = planes || in.tile_planes[static_cast<std::size_t>(t)];
  }
  kernels::cim_search_weights(c, tiles, s.q.data(), planes, s.w16.data(), s.wpl.data());
  kernels::cim_search_sums(c, in, tiles, s.w16.data(), s.wpl.data(), out);
}

std::vector<float> ScaleSearch::cim_output(std::size_t l, double x_step) {
  cim_planes(l, x_step);
  const LayerQuant& layer = m_.layers[l];
  const LayerData& d = data_[l];
  const BlockGrid& grid = layer.grid;
  const int64_t P = d.positions;
  std::vector<float> y(static_cast<std::size_t>(grid.out_channels * P), 0.0f);
  // Channels are independent; each sums its blocks in order, as with one thread.
#pragma omp parallel num_threads(cim_threads())
  {
    CimScratch scratch;
    std::vector<double> sums(static_cast<std::size_t>(P));
#pragma omp for schedule(dynamic, 1)
    for (int64_t o = 0; o < grid.out_channels; ++o) {
      const int64_t g = o / d.cout_g;
      float* yo = y.data() + o * P;
      for (int64_t rg = 0; rg < grid.red_groups; ++rg) {
        const double s = x_step * block_step_[l][grid.out_group[o] * grid.red_groups + rg];
        cim_block_sums(l, g, rg, layer.q_weight.data() + o * d.k, scratch, sums.data());
        for (int64_t p = 0; p < P; ++p) yo[p] += static_cast<float>(s * sums[p]);
      }
    }
  }
  return y;
}

}  // namespace tilescale::quant
