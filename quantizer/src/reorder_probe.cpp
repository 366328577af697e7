#include "reorder_probe.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "tilescale/core/random.h"
#include "tilescale/model/layout.h"
#include "tilescale/quant/int_arith.h"

namespace tilescale::quant::reorder_detail {
namespace {

// Step factors a block may take: 0.3..1.0 x its min-max step. The lower end reaches the weight-MSE
// optimum of W2 blocks (well below 0.5, issue 14), so an order is not judged by a clipping choice
// that only suits wide weights.
constexpr int kFactors = 15;
constexpr double kFactorLo = 0.3;

// A layer whose float output is all zero on the sample still divides by something finite.
constexpr double kFloorEnergy = 1e-30;

}  // namespace

LayerProbe make_probe(const model::Graph& graph, const SpaceMap& map, int node_index,
                      const Granularity& granularity, int w_bits, int a_bits,
                      const std::vector<std::vector<float>>& values, int64_t images,
                      int64_t positions, uint64_t seed) {
  const model::Node& node = graph.nodes[node_index];
  LayerProbe p;
  p.node = node_index;
  p.axes = weight_axes(map, node);
  p.grid = make_block_grid(node, granularity);
  p.w_bits = w_bits;
  const model::Value& in_v = graph.values[node.inputs[0]];
  const model::layout::ConvShape shape =
      model::layout::conv_shape(node, in_v, graph.values[node.output]);
  p.groups = node.op == model::Op::Conv ? node.window.groups : 1;
  const int64_t cout = p.grid.out_channels;
  p.cout_g = cout / p.groups;
  p.k = p.grid.reduction();
  const std::vector<float>& x = values[node.inputs[0]];
  const int64_t P = shape.positions(), cin = shape.cin_g * p.groups, plane = shape.h * shape.w;
  const auto picks = sample_indices(images * P, positions, seed);
  p.positions = static_cast<int64_t>(picks.size());
  std::vector<float> xf(static_cast<std::size_t>(p.groups * p.k * p.positions));
  for (int64_t i = 0; i < p.positions; ++i) {
    const int64_t img = picks[i] / P;
    for (int64_t g = 0; g < p.groups; ++g)
      model::layout::im2col_onnx_column(shape, x.data() + (img * cin + g * shape.cin_g) * plane,
                                        picks[i] % P, xf.data() + g * p.k * p.positions + i,
                                        p.positions);
  }
  p.y_ref.assign(static_cast<std::size_t>(cout * p.positions), 0.0f);
  for (int64_t g = 0; g < p.groups; ++g)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(p.cout_g),
                static_cast<int>(p.positions), static_cast<int>(p.k), 1.0f,
                node.weight.data.data() + g * p.cout_g * p.k, static_cast<int>(p.k),
                xf.data() + g * p.k * p.positions, static_cast<int>(p.positions), 0.0f,
                p.y_ref.data() + g * p.cout_g * p.positions, static_cast<int>(p.positions));
  for (float y : p.y_ref) p.ref_energy += static_cast<double>(y) * y;
  p.ref_energy = std::max(p.ref_energy, kFloorEnergy);
  // Input grid: min-max over every calibration value of the tensor, as quantize() starts it.
  p.xq = std::move(xf);
  if (a_bits < 32) {
    float peak = 0.0f, lo = 0.0f;
    for (float v : x) {
      peak = std::max(peak, std::fabs(v));
      lo = std::min(lo, v);
    }
    const IntRange r = lo >= 0.0f ? unsigned_range(a_bits) : signed_range(a_bits);
    const double step = std::max(peak, 1e-8f) / (static_cast<double>(r.hi) + 0.5);
    for (float& v : p.xq) v = static_cast<float>(quantize_to_grid(v, step, r) * step);
  }
  return p;
}

double probe_error(const LayerProbe& p, const model::Node& node,
                   const std::vector<int64_t>& pos_rows, const std::vector<int64_t>& pos_cols) {
  const BlockGrid& grid = p.grid;
  const int64_t cout = grid.out_channels, row_len = p.k, kernel = grid.kernel;
  const int64_t rpc = pos_rows.empty() ? 1 : p.axes.rows.run / row_len;  // rows per space channel
  const int64_t crun = p.axes.cols.run;
  // Block of every weight element in the reordered frame.
  std::vector<int64_t> block(node.weight.data.size());
  std::vector<int64_t> col_block(static_cast<std::size_t>(row_len));
  for (int64_t i = 0; i < row_len; ++i) {
    const int64_t ni = pos_cols.empty() ? i : pos_cols[i / crun] * crun + i % crun;
    col_block[i] = grid.red_group[grid.hw_index(ni / kernel, ni % kernel)];
  }
  for (int64_t o = 0; o < cout; ++o) {
    const int64_t no = pos_rows.empty() ? o : pos_rows[o / rpc] * rpc + o % rpc;
    const int64_t og = grid.out_group[no];
    for (int64_t i = 0; i < row_len; ++i)
      block[o * row_len + i] = og * grid.red_groups + col_block[i];
  }
  // Per block: its peak, then the step with the least weight squared error.
  const int64_t nb = grid.num_blocks();
  std::vector<float> peak(static_cast<std::size_t>(nb), 0.0f);
  const std::vector<float>& w = node.weight.data;
  for (std::size_t e = 0; e < w.size(); ++e)
    peak[block[e]] = std::max(peak[block[e]], std::fabs(w[e]));
  const IntRange r = signed_range(p.w_bits);
  const double edge = std::ldexp(1.0, p.w_bits - 1) - 0.5;
  std::vector<double> best_err(static_cast<std::size_t>(nb), -1.0), best_step(nb, 1.0);
  for (int f = 0; f < kFactors; ++f) {
    const double factor = 1.0 - (1.0 - kFactorLo) * f / (kFactors - 1);
    std::vector<double> err(static_cast<std::size_t>(nb), 0.0);
    for (std::size_t e = 0; e < w.size(); ++e) {
      const int64_t b = block[e];
      if (peak[b] == 0.0f) continue;
      const double s = static_cast<float>(peak[b] / edge * factor);
      const double d = quantize_to_grid(w[e], s, r) * s - w[e];
      err[b] += d * d;
    }
    for (int64_t b = 0; b < nb; ++b)
      if (best_err[b] < 0.0 || err[b] < best_err[b]) {
        best_err[b] = err[b];
        best_step[b] = static_cast<float>(peak[b] / edge * factor);
      }
  }
  std::vector<float> wq(w.size());
  for (std::size_t e = 0; e < w.size(); ++e) {
    const double s = best_step[block[e]];
    wq[e] = peak[block[e]] == 0.0f ? 0.0f : static_cast<float>(quantize_to_grid(w[e], s, r) * s);
  }
  std::vector<float> y(p.y_ref);  // y = Q(W) xq - y_ref
  for (int64_t g = 0; g < p.groups; ++g)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(p.cout_g),
                static_cast<int>(p.positions), static_cast<int>(p.k), 1.0f,
                wq.data() + g * p.cout_g * p.k, static_cast<int>(p.k),
                p.xq.data() + g * p.k * p.positions, static_cast<int>(p.positions), -1.0f,
                y.data() + g * p.cout_g * p.positions, static_cast<int>(p.positions));
  double sum = 0.0;
  for (float v : y) sum += static_cast<double>(v) * v;
  return sum / p.ref_energy;
}

}  // namespace tilescale::quant::reorder_detail
