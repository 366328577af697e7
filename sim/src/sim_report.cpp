// `tilescale simulate` output: the JSON report and the human table.
#include <cstdarg>
#include <cstdio>
#include <string>

#include "tilescale/sim/network_sim.h"

namespace tilescale::sim {
namespace {

// printf into a string of whatever length the text needs (paths make the first line long).
std::string format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, args);
  va_end(args);
  std::string out(static_cast<std::size_t>(n > 0 ? n : 0) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), fmt, again);
  va_end(again);
  out.pop_back();
  return out;
}

}  // namespace

nlohmann::ordered_json to_json(const NetworkRun& run, const std::string& bundle) {
  nlohmann::ordered_json j;
  j["bundle"] = bundle;
  j["arch"] = run.arch;
  j["images"] = run.images;
  j["mismatches"] = run.mismatches;
  if (!run.first_mismatch.empty()) j["first_mismatch"] = run.first_mismatch;
  j["total_cycles"] = run.total_cycles;
  j["cycles_per_image"] = run.cycles_per_image();
  j["stalls"] = run.stalls;
  j["top1"] = static_cast<double>(run.correct) / static_cast<double>(run.images);
  j["correct"] = run.correct;
  j["seconds"] = run.seconds;
  j["seconds_per_image"] = run.seconds / static_cast<double>(run.images);
  j["pe_cycles_per_s"] = run.pe_cycles_per_s;
  j["cpu_seconds"] = run.cpu_seconds;
  j["pe_cycles_per_cpu_s"] = run.pe_cycles_per_cpu_s;
  if (run.cim && run.energy_note.empty()) {
    j["energy_pj_per_image"] = map::to_json(run.energy);
    j["energy_source"] = run.energy_source;
  } else if (run.cim) {
    j["energy_pj_per_image"] = nullptr;
    j["energy_note"] = run.energy_note;
  }
  j["layers"] = nlohmann::ordered_json::array();
  for (const LayerTotals& l : run.layers) {
    nlohmann::ordered_json e;
    e["name"] = l.name;
    e["cycles"] = l.cycles;
    e["stalls"] = l.stalls;
    e["cycles_per_image"] = l.cycles / run.images;
    e["native_cycles"] = l.native_cycles;
    e["folds"] = l.folds;
    e["scale_loads"] = l.scale_loads;
    e["utilization"] = l.utilization;
    if (run.cim) {
      // native_cycles is the mapper's CIM formula; folds count crossbars.
      e["adc_conversions_per_image"] = l.cim_events.adc_conversions / run.images;
      e["xbar_reads_per_image"] = l.cim_events.xbar_reads / run.images;
      // Events summed over the images; energy per image (estimate), the mapper's beside it.
      e["energy_events_all_images"] = map::to_json(l.cim_events);
      if (run.energy_note.empty()) {
        e["energy_pj_per_image"] = map::to_json(l.energy);
        e["map_energy_pj_per_image"] = l.map_energy.total();
      }
    }
    e["mismatches"] = l.mismatches;
    j["layers"].push_back(e);
  }
  return j;
}

std::string to_table(const NetworkRun& run, const map::ArchConfig& arch, const std::string& bundle,
                     const std::string& data) {
  const bool cim = arch.kind == map::ArchKind::Cim;
  const double pes = cim ? static_cast<double>(arch.macros) * arch.xbar_rows * arch.xbar_cols
                         : static_cast<double>(arch.rows) * arch.cols;
  std::string t =
      cim ? format(
                "%s on %s (%d crossbars of %dx%d, %d-bit cells, %d-bit ADCs / %d columns, "
                "%s ADC range), %lld image(s) of %s\n",
                bundle.c_str(), run.arch.c_str(), arch.macros, arch.xbar_rows, arch.xbar_cols,
                arch.cell_bits, arch.adc_bits, arch.cols_per_adc,
                quant::kAdcRangeNames.name(arch.adc_range), static_cast<long long>(run.images),
                data.c_str())
          : format("%s on %s (%dx%d %s), %lld image(s) of %s\n", bundle.c_str(), run.arch.c_str(),
                   arch.rows, arch.cols, map::kDataflowNames.name(arch.dataflow),
                   static_cast<long long>(run.images), data.c_str());
  t += format("%-28s %12s %12s %10s %8s %8s %6s %10s\n", "layer", "cycles/img", "native", "stalls",
              "util", "folds", "sload", "mismatch");
  for (const LayerTotals& l : run.layers)
    t += format("%-28s %12lld %12lld %10lld %7.1f%% %8lld %6lld %10lld\n", l.name.c_str(),
                static_cast<long long>(l.cycles / run.images),
                static_cast<long long>(l.native_cycles),
                static_cast<long long>(l.stalls / run.images), 100.0 * l.utilization,
                static_cast<long long>(l.folds), static_cast<long long>(l.scale_loads),
                static_cast<long long>(l.mismatches));
  t += format("total: %lld cycles (%lld per image), %lld stall cycles\n",
              static_cast<long long>(run.total_cycles),
              static_cast<long long>(run.cycles_per_image()), static_cast<long long>(run.stalls));
  t += format("mismatches: %lld%s%s\n", static_cast<long long>(run.mismatches),
              run.first_mismatch.empty() ? "" : ", first: ", run.first_mismatch.c_str());
  t += format("top-1 (simulated logits): %lld / %lld\n", static_cast<long long>(run.correct),
              static_cast<long long>(run.images));
  if (cim && !run.energy_note.empty()) t += run.energy_note + "\n";
  if (cim && run.energy_note.empty()) {
    const map::CimEnergy& e = run.energy;
    double bound = 0;
    for (const LayerTotals& l : run.layers) bound += l.map_energy.total();
    t += format(
        "energy per image (estimate, counted events): %.4g nJ = crossbar cells %.4g + ADCs %.4g "
        "+ shift-add %.4g + scale units %.4g + accumulators %.4g + requant %.4g + SRAM %.4g nJ "
        "(the mapper's bound, every input digit non-zero: %.4g nJ; table %s)\n",
        1e-3 * e.total(), 1e-3 * e.xbar, 1e-3 * e.adc, 1e-3 * e.shift_add, 1e-3 * e.scale,
        1e-3 * e.accumulate, 1e-3 * e.requant, 1e-3 * e.sram, 1e-3 * bound,
        run.energy_source.c_str());
  }
  t += format(
      "speed: %.3g %s-cycles/s, %.3f s per image (%.0f %ss, wall); %.3g %s-cycles/s, %.3f s per "
      "image (CPU time of the simulating thread)\n",
      run.pe_cycles_per_s, cim ? "cell" : "PE", run.seconds / static_cast<double>(run.images), pes,
      cim ? "cell" : "PE", run.pe_cycles_per_cpu_s, cim ? "cell" : "PE",
      run.cpu_seconds / static_cast<double>(run.images));
  return t;
}

}  // namespace tilescale::sim
