#include "tilescale/quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "scale_search.h"
#include "tilescale/core/error.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::quant {

namespace {

// Which layers take the first/last-layer bit override: the first and the last Gemm op.
bool is_first_or_last(const QuantPlan& plan, std::size_t layer) {
  return layer == 0 || layer + 1 == plan.layer_ops.size();
}

// Bits of each own-scale tensor: a_bits, the first/last override for the inputs of the first and
// last layers, 32 (float) for the logits of a final Gemm.
void init_act_bits(QuantizedModel& m) {
  const QuantOptions& o = m.options;
  m.acts.assign(m.graph.values.size(), ActQuant{});
  for (std::size_t v = 0; v < m.acts.size(); ++v) {
    m.acts[v].bits = o.a_bits;
    m.acts[v].is_signed = !m.plan.non_negative[v];
  }
  if (o.a_bits != 32 && o.first_last_bits > 0) {
    for (std::size_t l = 0; l < m.plan.layer_ops.size(); ++l) {
      if (!is_first_or_last(m.plan, l)) continue;
      const int src = m.plan.scale_source[m.plan.ops[m.plan.layer_ops[l]].inputs[0]];
      m.acts[src].bits = std::max(o.first_last_bits, 4);
    }
  }
  for (const QOp& op : m.plan.ops)
    if (op.kind == QOpKind::Gemm && op.output == m.graph.output) m.acts[op.output].bits = 32;
}

float max_abs(const std::vector<float>& x) {
  float m = 0.0f;
  for (float v : x) m = std::max(m, std::fabs(v));
  return m;
}

// Reorders channels so that similar ones share blocks; the block shape the order is cut for follows
// the granularity (per-channel granularities have one output channel per block).
void apply_reorder(QuantizedModel& m) {
  const QuantOptions& o = m.options;
  ReorderOptions r;
  r.method = o.reorder;
  if (r.method == ReorderMethod::None) return;
  r.seed = o.seed;
  switch (o.granularity.kind) {
    case GranularityKind::Layer:
      r.block_out = 0;
      r.block_in = 0;
      break;
    case GranularityKind::Channel:
      r.block_out = 1;
      r.block_in = 0;
      break;
    case GranularityKind::Block:
      r.block_out = o.granularity.block_out;
      r.block_in = o.granularity.block_in;
      break;
    case GranularityKind::Mx:
    case GranularityKind::Vsq:
      r.block_out = 1;
      r.block_in = o.granularity.run;
      break;
  }
  const auto perms = choose_permutations(m.graph, r);
  apply_permutations(m.graph, perms);
  for (const ChannelPermutation& p : perms) {
    bool identity = true;
    for (std::size_t i = 0; i < p.order.size(); ++i)
      identity = identity && p.order[i] == static_cast<int64_t>(i);
    if (identity) continue;
    for (int v : p.values) m.permutations[v] = p.order;
  }
}

}  // namespace

QuantizedModel quantize(const model::Graph& graph, const QuantOptions& options,
                        const Dataset& calib_set) {
  options.validate();
  check_granularity_fits(graph, options.granularity);
  const auto& in_shape = graph.input_value().shape;
  if (in_shape != std::vector<int64_t>{calib_set.channels, calib_set.height, calib_set.width})
    fail_input(calib_set.source, "calibration images do not have the model's input shape");
  if (calib_set.count < 1) fail_input(calib_set.source, "the calibration set is empty");

  QuantizedModel m;
  m.options = options;
  m.graph = graph;
  m.permutations.assign(graph.values.size(), {});
  apply_reorder(m);
  m.plan = make_quant_plan(m.graph);
  init_act_bits(m);

  // Calibration images: a seeded sample of the calibration set.
  const auto picks = sample_indices(calib_set.count, options.calib_images, options.seed);
  const int64_t n = static_cast<int64_t>(picks.size());
  std::vector<float> calib(static_cast<std::size_t>(n * calib_set.image_size()));
  for (int64_t i = 0; i < n; ++i)
    calib_set.fill_batch(picks[i], 1, calib.data() + i * calib_set.image_size());
  model::FloatExecutorOptions exec_opts{options.threads};
  auto float_values = model::FloatExecutor(m.graph, exec_opts).run_all(calib.data(), n);

  // Initial grids: activations min-max over the calibration set, weights min-max per block.
  for (std::size_t v = 0; v < m.acts.size(); ++v) {
    if (m.plan.scale_source[v] != static_cast<int>(v)) continue;
    ActQuant& a = m.acts[v];
    const float peak = std::max(max_abs(float_values[v]), 1e-8f);
    a.scale = a.is_float() ? peak / 127.0f : peak / (static_cast<float>(a.range().hi) + 0.5f);
  }
  for (std::size_t l = 0; l < m.plan.layer_ops.size(); ++l) {
    LayerQuant layer;
    layer.op = m.plan.layer_ops[l];
    const model::Node& node = m.graph.nodes[m.plan.ops[layer.op].node];
    layer.name = node.name;
    layer.w_bits = options.first_last_bits > 0 && is_first_or_last(m.plan, l)
                       ? options.first_last_bits
                       : options.w_bits;
    layer.grid = make_block_grid(node, options.granularity);
    for (float w : node.weight.data)
      if (!std::isfinite(w))
        fail_input(graph.source, "layer '" + node.name + "' has a NaN or Inf weight");
    for (float b : node.bias.data)
      if (!std::isfinite(b))
        fail_input(graph.source, "layer '" + node.name + "' has a NaN or Inf bias");
    m.layers.push_back(std::move(layer));
  }

  ScaleSearch search(m, float_values, n, calib);
  // The search has sampled what it needs; free the full activations before it runs, since
  // --calib-input quantized makes another run_all of the same size.
  std::vector<std::vector<float>>().swap(float_values);
  search.run();
  finalize_multipliers(m);
  return m;
}

}  // namespace tilescale::quant
