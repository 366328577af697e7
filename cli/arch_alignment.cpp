#include "arch_alignment.h"

#include <string>
#include <vector>

#include "tilescale/core/error.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"
#include "tilescale/quant/auto_granularity.h"

namespace tilescale::cli {

quant::Granularity resolve_xbar_granularity(const map::ArchConfig& arch, int w_bits) {
  if (arch.kind != map::ArchKind::Cim)
    fail_input("--granularity", "xbar takes its crossbar from a cim --arch config, and " +
                                    arch.source + " is of kind '" +
                                    map::kArchKindNames.name(arch.kind) + "'");
  quant::Granularity g;
  g.kind = quant::GranularityKind::Xbar;
  g.block_out = std::max(1, arch.xbar_cols / arch.weight_slices(w_bits));
  g.run = arch.xbar_rows;
  return g;
}

void check_arch_alignment(const model::Graph& graph, const quant::QuantOptions& options,
                          const map::ArchConfig& arch) {
  const bool cim = arch.kind == map::ArchKind::Cim;
  if (!cim && arch.dataflow == map::Dataflow::OS) return;
  const quant::QuantPlan plan = quant::make_quant_plan(graph);
  std::vector<quant::Granularity> per_layer;
  for (int op : plan.layer_ops)
    per_layer.push_back(options.granularity_of(graph.nodes[plan.ops[op].node].name));
  const quant::QuantizedModel skeleton = quant::granularity_skeleton(graph, options, per_layer);
  const int64_t rows = cim ? arch.xbar_rows : arch.rows;
  for (const map::LayerWorkload& w : map::workloads_from_model(skeleton)) {
    map::reduction_folds(w, rows, map::Align::Strict);  // AlignError names layer, fold, blocks
    if (!cim) continue;
    const int64_t per_xbar = arch.xbar_cols / arch.weight_slices(w.w_bits);
    int64_t bo = 0;  // output channels of the first column group
    while (bo < static_cast<int64_t>(w.out_group.size()) && w.out_group[bo] == w.out_group[0]) ++bo;
    if (bo >= w.n || bo % per_xbar == 0 || per_xbar % bo == 0) continue;
    throw map::AlignError("layer '" + w.name + "': column groups of " + std::to_string(bo) +
                          " output channels (granularity " + w.granularity + ") split unevenly " +
                          "over crossbars of " + std::to_string(per_xbar) + " channels (" +
                          std::to_string(arch.xbar_cols) + " columns, " +
                          std::to_string(arch.weight_slices(w.w_bits)) + " per " +
                          std::to_string(w.w_bits) + "-bit weight); use a multiple or a " +
                          "divisor of " + std::to_string(per_xbar) + " output channels");
  }
}

}  // namespace tilescale::cli
