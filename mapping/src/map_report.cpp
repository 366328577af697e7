// `tilescale map` output: the JSON report and the human table.
#include <cstdio>
#include <sstream>

#include "tilescale/map/mapper.h"

namespace tilescale::map {

nlohmann::json to_json(const NetworkMap& net) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerMap& l : net.layers) {
    nlohmann::json j = {{"name", l.name},
                        {"gemm", {{"groups", l.groups}, {"m", l.m}, {"n", l.n}, {"k", l.k}}},
                        {"macs", l.macs},
                        {"folds", l.folds},
                        {"cycles", l.cycles},
                        {"stalls", l.stalls},
                        {"utilization", l.utilization},
                        {"mapping_utilization", l.mapping_utilization},
                        {"scale_registers", l.scale_registers},
                        {"scale_loads", l.scale_loads},
                        {"scale_ops", l.scale_ops},
                        {"padded_rows", l.padded_rows},
                        {"psum_bits", l.psum_bits},
                        {"acc_words", l.acc_words},
                        {"sram",
                         {{"ifmap_reads", l.ifmap_reads},
                          {"weight_reads", l.weight_reads},
                          {"psum_writes", l.psum_writes},
                          {"ofmap_writes", l.ofmap_writes}}}};
    if (net.cycle_model == CycleModel::ScaleSim) {
      j["scalesim_mapping_efficiency_pct"] = l.scalesim_mapping_eff;
      j["scalesim_compute_util_pct"] = l.scalesim_compute_util;
    }
    if (l.adc_clips) j["adc_clips"] = true;
    layers.push_back(std::move(j));
  }
  const AreaBreakdown& a = net.area;
  return {{"arch", net.arch},
          {"cycle_model", kCycleModelNames.name(net.cycle_model)},
          {"granularity", net.granularity},
          {"layers", layers},
          {"total",
           {{"cycles", net.cycles},
            {"stalls", net.stalls},
            {"macs", net.macs},
            {"utilization", net.utilization},
            {"scale_registers", net.scale_registers},
            {"scale_ops", net.scale_ops},
            {"wide_acc_bits", net.wide_acc_bits},
            {"acc_words", net.acc_words},
            {"acc_words_needed", net.acc_words_needed},
            {"area_um2", a.total()},
            {"area_breakdown_um2",
             {{"pe_array", a.pe_array},
              {"adcs", a.adcs},
              {"shift_add", a.shift_add},
              {"scale_units", a.scale_units},
              {"accumulators", a.accumulators},
              {"requant", a.requant},
              {"scale_registers", a.scale_registers},
              {"acc_storage", a.acc_storage},
              {"sram", a.sram}}},
            {"area_sources", net.area_sources}}}};
}

std::string to_table(const NetworkMap& net) {
  std::ostringstream o;
  char line[512];
  o << "arch " << net.arch << ", cycle model " << kCycleModelNames.name(net.cycle_model)
    << ", granularity " << net.granularity << "\n";
  std::snprintf(line, sizeof line, "%-24s %16s %6s %10s %7s %6s %6s %6s %10s %6s\n", "layer",
                "GEMM g:MxNxK", "folds", "cycles", "stalls", "util", "map", "sregs", "scale ops",
                "pad");
  o << line;
  for (const LayerMap& l : net.layers) {
    const std::string shape = (l.groups > 1 ? std::to_string(l.groups) + ":" : std::string()) +
                              std::to_string(l.m) + "x" + std::to_string(l.n) + "x" +
                              std::to_string(l.k);
    std::snprintf(line, sizeof line,
                  "%-24.24s %16s %6lld %10lld %7lld %5.1f%% %5.1f%% %6lld %10lld %6lld%s\n",
                  l.name.c_str(), shape.c_str(), static_cast<long long>(l.folds),
                  static_cast<long long>(l.cycles), static_cast<long long>(l.stalls),
                  100.0 * l.utilization, 100.0 * l.mapping_utilization,
                  static_cast<long long>(l.scale_registers), static_cast<long long>(l.scale_ops),
                  static_cast<long long>(l.padded_rows), l.adc_clips ? "  ADC clips" : "");
    o << line;
  }
  std::snprintf(line, sizeof line, "%-24s %16s %6s %10lld %7lld %5.1f%% %6s %6lld %10lld\n",
                "total", "", "", static_cast<long long>(net.cycles),
                static_cast<long long>(net.stalls), 100.0 * net.utilization, "",
                static_cast<long long>(net.scale_registers), static_cast<long long>(net.scale_ops));
  o << line;
  const AreaBreakdown& a = net.area;
  std::snprintf(line, sizeof line,
                "area um^2: total %.0f = PEs/cells %.0f + ADCs %.0f + shift-add %.0f + scale units "
                "%.0f + accumulators %.0f + requant %.0f + scale registers %.0f + accumulator "
                "storage %.0f + SRAM %.0f (wide accumulator %d bits)\n",
                a.total(), a.pe_array, a.adcs, a.shift_add, a.scale_units, a.accumulators,
                a.requant, a.scale_registers, a.acc_storage, a.sram,
                net.wide_acc_bits <= 48 ? 48 : 64);
  o << line;
  if (net.acc_words > 0) {
    std::snprintf(
        line, sizeof line, "accumulator storage: %lld of %lld words per column used (ofmap SRAM)\n",
        static_cast<long long>(net.acc_words_needed), static_cast<long long>(net.acc_words));
    o << line;
  }
  o << "area from " << net.area_sources << "\n";
  return o.str();
}

}  // namespace tilescale::map
