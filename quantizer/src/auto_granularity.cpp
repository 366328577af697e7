#include "tilescale/quant/auto_granularity.h"

#include <algorithm>

#include "quantize_detail.h"
#include "reorder_probe.h"
#include "reorder_spaces.h"
#include "tilescale/core/error.h"
#include "tilescale/core/random.h"
#include "tilescale/model/float_executor.h"

namespace tilescale::quant {

std::vector<Granularity> default_granularity_candidates() {
  std::vector<Granularity> c{Granularity::parse("channel")};
  for (const char* b : {"block:4x4", "block:8x8", "block:8x16", "block:16x8", "block:16x16",
                        "block:16x32", "block:32x16", "block:32x32", "block:64x64"})
    c.push_back(Granularity::parse(b));
  c.push_back(Granularity::parse("layer"));
  return c;
}

QuantizedModel granularity_skeleton(const model::Graph& graph, const QuantOptions& options,
                                    const std::vector<Granularity>& granularity) {
  QuantizedModel m;
  m.options = options;
  m.graph = graph;
  m.plan = make_quant_plan(graph);
  m.permutations.assign(graph.values.size(), {});
  init_act_bits(m);
  if (granularity.size() != m.plan.layer_ops.size())
    throw std::invalid_argument("granularity_skeleton: one granularity per layer expected");
  for (std::size_t l = 0; l < m.plan.layer_ops.size(); ++l) {
    LayerQuant layer;
    layer.op = m.plan.layer_ops[l];
    const model::Node& node = graph.nodes[m.plan.ops[layer.op].node];
    layer.name = node.name;
    layer.w_bits = layer_w_bits(options, m.plan, l);
    layer.granularity = granularity[l];
    layer.granularity.vsq_bits = options.granularity.vsq_bits;
    layer.grid = make_block_grid(node, layer.granularity);
    m.layers.push_back(std::move(layer));
  }
  return m;
}

std::vector<LayerGranularityChoice> choose_layer_granularity(
    const model::Graph& graph, const QuantOptions& options, const Dataset& calib_set,
    const std::vector<Granularity>& candidates,
    const std::vector<std::vector<GranularityCost>>& cost) {
  options.validate();
  const QuantPlan plan = make_quant_plan(graph);
  const std::size_t layers = plan.layer_ops.size();
  if (candidates.empty() || cost.size() != layers)
    throw std::invalid_argument("choose_layer_granularity: cost must be [layer][candidate]");
  // The calibration draw quantize() makes.
  const auto picks = sample_indices(calib_set.count, options.calib_images, options.seed);
  const int64_t n = static_cast<int64_t>(picks.size());
  std::vector<float> calib(static_cast<std::size_t>(n * calib_set.image_size()));
  for (int64_t i = 0; i < n; ++i)
    calib_set.fill_batch(picks[i], 1, calib.data() + i * calib_set.image_size());
  const auto values = model::FloatExecutor(graph, model::FloatExecutorOptions{options.threads})
                          .run_all(calib.data(), n);
  const reorder_detail::SpaceMap map = reorder_detail::analyze_spaces(graph);

  std::vector<LayerGranularityChoice> out(layers);
  for (std::size_t l = 0; l < layers; ++l) {
    const int node = plan.ops[plan.layer_ops[l]].node;
    LayerGranularityChoice& c = out[l];
    c.layer = graph.nodes[node].name;
    c.cost = cost[l];
    if (c.cost.size() != candidates.size())
      throw std::invalid_argument("choose_layer_granularity: cost must be [layer][candidate]");
    std::string reasons;
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      // One sample per layer: the seed does not depend on the candidate, so every candidate is
      // scored on the same positions.
      const reorder_detail::LayerProbe probe = reorder_detail::make_probe(
          graph, map, node, candidates[k], layer_w_bits(options, plan, l), options.a_bits, values,
          n, options.calib_positions, splitmix64(options.seed * 1000003ull + l));
      c.error.push_back(reorder_detail::probe_error(probe, graph.nodes[node], {}, {}));
      if (!c.cost[k].fits) reasons += "; " + candidates[k].str() + ": " + c.cost[k].why;
    }
    // A refinement can use the steps of the granularity it refines, so the quantizer (output
    // search, bias correction, reordering) reaches at least that error with it; the probe's
    // weight-MSE steps without reordering are only a proxy whose noise can score a coarser block
    // below a finer one (resnet8 W3: 16x16 under 8x16 on 4 of 10 layers, and 0.5 point lost on
    // the network). So a fitting candidate is scored by the least error among itself and the
    // fitting candidates it refines.
    c.score.assign(candidates.size(), 0.0);
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      c.score[k] = c.error[k];
      for (std::size_t j = 0; j < candidates.size(); ++j)
        if (j != k && c.cost[j].fits && granularity_refines(candidates[k], candidates[j]))
          c.score[k] = std::min(c.score[k], c.error[j]);
    }
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      if (!c.cost[k].fits) continue;
      const int best = c.chosen;
      // Ties: the refinement (it can do what the other does), then fewer scale registers, then
      // the earlier candidate.
      if (best < 0 || c.score[k] < c.score[best] ||
          (c.score[k] == c.score[best] &&
           (granularity_refines(candidates[k], candidates[best]) ||
            (!granularity_refines(candidates[best], candidates[k]) &&
             c.cost[k].scale_registers < c.cost[best].scale_registers))))
        c.chosen = static_cast<int>(k);
    }
    if (c.chosen < 0)
      fail_input("budget", "no candidate granularity fits layer '" + c.layer + "'" + reasons);
  }
  return out;
}

bool granularity_refines(const Granularity& fine, const Granularity& coarse) {
  using K = GranularityKind;
  if (coarse.kind == K::Layer) return fine.kind != K::Layer;
  if (fine.kind == K::Block && coarse.kind == K::Block)
    return (fine.block_out != coarse.block_out || fine.block_in != coarse.block_in) &&
           coarse.block_out % fine.block_out == 0 && coarse.block_in % fine.block_in == 0;
  if (fine.kind == K::Block && coarse.kind == K::Channel) return fine.block_out == 1;
  return false;
}

}  // namespace tilescale::quant
