// `tilescale map` output: the JSON report and the human table.
#include <cstdio>
#include <sstream>

#include "tilescale/map/mapper.h"

namespace tilescale::map {
namespace {

// The synthesized ts_top beside the composed estimate, part by part, so the difference explains
// itself: the composed area sizes each block for this network from per-block syntheses and adds
// SRAM estimates; the synthesized top is the RTL as built (skew and de-skew registers, control,
// its accumulator and scale banks sized by the config, not by the network), SRAM black-boxed.
nlohmann::json synthesized_json(const SynthesizedTop& s, const AreaBreakdown& a) {
  auto part = [&](const char* m) {
    auto it = s.parts_um2.find(m);
    return it == s.parts_um2.end() ? 0.0 : it->second;
  };
  // The accumulator storage is the ofmap SRAM's share (ts_acc_mem is a black box in synthesis).
  const double composed_logic = a.total() - a.sram - a.acc_storage;
  return {{"config", s.config},
          {"source", s.source},
          {"area_um2", s.area_um2},
          {"cells", s.cells},
          {"flops", s.flops},
          {"composed_logic_area_um2", composed_logic},
          {"synthesized_over_composed_logic", composed_logic > 0 ? s.area_um2 / composed_logic : 0},
          {"side_by_side_um2",
           {{"array", {{"synthesized", part("ts_systolic_array")}, {"composed", a.pe_array}}},
            {"edges",
             {{"synthesized", part("ts_edge")},
              {"composed", a.scale_units + a.accumulators + a.requant}}},
            {"scale_registers",
             {{"synthesized", part("ts_scale_regs")}, {"composed", a.scale_registers}}},
            {"control_and_glue",
             {{"synthesized", part("ts_ctrl") + part("ts_top (glue)") + part("ts_clock_gate")},
              {"composed", 0.0}}},
            {"sram", {{"synthesized", 0.0}, {"composed", a.sram + a.acc_storage}}}}}};
}

}  // namespace

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
    if (net.cim) {
      // Per image; active_cells is the mapper's upper bound (every input digit non-zero).
      j["energy_events"] = to_json(l.cim_events);
      j["energy_pj"] = to_json(l.energy);
    }
    layers.push_back(std::move(j));
  }
  const AreaBreakdown& a = net.area;
  nlohmann::json j = {{"arch", net.arch},
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
  if (net.synthesized_top)
    j["total"]["synthesized_top"] = synthesized_json(*net.synthesized_top, a);
  if (net.cim) {
    j["total"]["energy_pj"] = to_json(net.energy);
    j["total"]["energy_bound"] = "every input digit non-zero (simulate counts the driven rows)";
    j["total"]["energy_source"] = net.energy_source;
  }
  return j;
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
  if (net.cim) {
    const CimEnergy& e = net.energy;
    std::snprintf(line, sizeof line,
                  "energy per image (estimate, every input digit non-zero): %.4g nJ = crossbar "
                  "cells %.4g + ADCs %.4g + shift-add %.4g + scale units %.4g + accumulators %.4g "
                  "+ requant %.4g + SRAM %.4g nJ\n",
                  1e-3 * e.total(), 1e-3 * e.xbar, 1e-3 * e.adc, 1e-3 * e.shift_add, 1e-3 * e.scale,
                  1e-3 * e.accumulate, 1e-3 * e.requant, 1e-3 * e.sram);
    o << line << "energy from " << net.energy_source << " (estimates)\n";
  }
  if (net.synthesized_top) {
    const nlohmann::json s = synthesized_json(*net.synthesized_top, a);
    const auto& p = s["side_by_side_um2"];
    auto pair = [&](const char* k) {
      return std::pair<double, double>{p[k]["synthesized"].get<double>(),
                                       p[k]["composed"].get<double>()};
    };
    const auto [arr_s, arr_c] = pair("array");
    const auto [edge_s, edge_c] = pair("edges");
    const auto [reg_s, reg_c] = pair("scale_registers");
    const auto [ctl_s, ctl_c] = pair("control_and_glue");
    std::snprintf(line, sizeof line,
                  "synthesized ts_top (%s, yosys, SRAM excluded): %.0f um^2 = %.2fx the composed "
                  "logic %.0f; synthesized/composed: array %.0f/%.0f, edges %.0f/%.0f, scale "
                  "registers %.0f/%.0f, control %.0f/%.0f\n",
                  net.synthesized_top->config.c_str(), net.synthesized_top->area_um2,
                  s["synthesized_over_composed_logic"].get<double>(),
                  s["composed_logic_area_um2"].get<double>(), arr_s, arr_c, edge_s, edge_c, reg_s,
                  reg_c, ctl_s, ctl_c);
    o << line;
  }
  return o.str();
}

}  // namespace tilescale::map
