#include "tilescale/study/granularity_budget.h"

#include <regex>

#include "tilescale/core/error.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"

namespace tilescale::study {

Budget parse_budget(const std::string& text) {
  std::smatch m;
  Budget b;
  b.text = text;
  if (std::regex_match(text, m, std::regex(R"(scale-regs=(\d{1,9}))"))) {
    b.kind = Budget::Kind::ScaleRegs;
    b.limit = std::stod(m[1]);
    return b;
  }
  if (std::regex_match(text, m, std::regex(R"(scale-area-um2=(\d+(\.\d*)?([eE][+-]?\d+)?))"))) {
    b.kind = Budget::Kind::ScaleAreaUm2;
    b.limit = std::stod(m[1]);
    if (b.limit > 0.0) return b;
  }
  fail_input("--budget", "'" + text +
                             "': expected scale-regs=R (scale registers per fold, an "
                             "integer) or scale-area-um2=X (scale-path area, um^2, > 0)");
}

std::vector<std::vector<quant::GranularityCost>> granularity_costs(
    const model::Graph& graph, const quant::QuantOptions& options,
    const std::vector<quant::Granularity>& candidates, const map::ArchConfig& arch,
    const map::AreaTable& area, const Budget& budget) {
  const std::size_t layers = quant::make_quant_plan(graph).layer_ops.size();
  std::vector<std::vector<quant::GranularityCost>> cost(
      layers, std::vector<quant::GranularityCost>(candidates.size()));
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    const quant::QuantizedModel skeleton = quant::granularity_skeleton(
        graph, options, std::vector<quant::Granularity>(layers, candidates[k]));
    const std::vector<map::LayerWorkload> work = map::workloads_from_model(skeleton);
    for (std::size_t l = 0; l < layers; ++l) {
      quant::GranularityCost& c = cost[l][k];
      try {
        const map::NetworkMap net = map::map_network({work[l]}, arch, map::MapOptions{}, area, 48);
        c.scale_registers = net.scale_registers;
        c.scale_area_um2 = net.area.scale_units + net.area.scale_registers;
        c.cycles = net.cycles;
      } catch (const InputError& e) {
        c.why = std::string("the mapper refuses it: ") + e.what();
        continue;
      }
      if (budget.kind == Budget::Kind::ScaleRegs) {
        c.fits = static_cast<double>(c.scale_registers) <= budget.limit;
        if (!c.fits)
          c.why = std::to_string(c.scale_registers) + " scale registers per fold > " + budget.text;
      } else {
        c.fits = c.scale_area_um2 <= budget.limit;
        if (!c.fits)
          c.why = std::to_string(c.scale_area_um2) + " um^2 of scale path > " + budget.text;
      }
    }
  }
  return cost;
}

std::vector<quant::LayerGranularityChoice> choose_auto_granularity(
    const model::Graph& graph, quant::QuantOptions& options, const Dataset& calib,
    const map::ArchConfig& arch, const map::AreaTable& area, const Budget& budget) {
  const auto candidates = quant::default_granularity_candidates();
  const auto cost = granularity_costs(graph, options, candidates, arch, area, budget);
  auto choices = quant::choose_layer_granularity(graph, options, calib, candidates, cost);
  for (const auto& c : choices) options.layer_granularity[c.layer] = candidates[c.chosen];
  return choices;
}

}  // namespace tilescale::study
