// tilescale simulate: run test images through a bundle on the cycle-accurate SystemC model of an
// accelerator; cycles, stalls, utilization, scale loads per layer; mismatches against the golden
// executor; top-1.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data_options.h"
#include "parse_options.h"
#include "tilescale/core/error.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/sim/network_sim.h"

namespace po = boost::program_options;

namespace tilescale::cli {

int run_simulate(const std::vector<std::string>& args) {
  std::string bundle_dir, arch_path, trace, align = "strict";
  int64_t images = 1;
  bool json = false;
  DataOptions data;
  data.dataset = "fmnist";
  po::options_description desc(
      "tilescale simulate: N test images through the cycle-accurate SystemC model, every layer "
      "checked against the golden integer executor\noptions");
  desc.add_options()("help,h", "show this help")("bundle", po::value(&bundle_dir),
                                                 "quantized bundle (from tilescale quantize)")(
      "arch", po::value(&arch_path), "architecture config (configs/*.json)")(
      "images", po::value(&images)->default_value(images), "number of test images N")(
      "dataset", po::value(&data.dataset)->default_value(data.dataset), "fmnist | mnist")(
      "split", po::value(&data.split)->default_value(data.split), "train | test")(
      "data-dir", po::value(&data.data_dir),
      "folder of the bundled data sets (default: $TILESCALE_DATA or <source>/data)")(
      "align", po::value(&align)->default_value(align), "strict | pad (as tilescale map)")(
      "trace", po::value(&trace), "write a VCD of the stream handshakes to this file")(
      "json", po::bool_switch(&json), "print the JSON report instead of the table");
  if (!parse_options(desc, args)) return 0;
  if (bundle_dir.empty()) fail_input("--bundle", "required");
  if (arch_path.empty()) fail_input("--arch", "required");
  if (images < 1) fail_input("--images", "must be >= 1");
  sim::SimOptions options;
  options.align = map::parse_align(align);
  if (!trace.empty()) {
    // SystemC appends ".vcd" itself.
    if (trace.size() > 4 && trace.compare(trace.size() - 4, 4, ".vcd") == 0)
      trace.resize(trace.size() - 4);
    options.trace_path = trace;
  }
  // The config first: a config of the wrong kind is refused before any other work.
  const map::ArchConfig arch = map::ArchConfig::parse_file(arch_path);
  arch.require_kind(map::ArchKind::Systolic, "tilescale simulate (the SystemC systolic model)");
  const quant::QuantizedModel model = quant::read_bundle(bundle_dir);
  const Dataset ds = data.load();
  const sim::NetworkRun run = sim::simulate_network(model, arch, ds, images, options);

  const double pes = static_cast<double>(arch.rows) * arch.cols;
  if (json) {
    nlohmann::ordered_json j;
    j["bundle"] = bundle_dir;
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
    j["layers"] = nlohmann::ordered_json::array();
    for (const auto& l : run.layers) {
      nlohmann::ordered_json e;
      e["name"] = l.name;
      e["cycles"] = l.cycles;
      e["stalls"] = l.stalls;
      e["cycles_per_image"] = l.cycles / run.images;
      e["native_cycles"] = l.native_cycles;
      e["folds"] = l.folds;
      e["scale_loads"] = l.scale_loads;
      e["utilization"] = l.utilization;
      e["mismatches"] = l.mismatches;
      j["layers"].push_back(e);
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%s on %s (%dx%d %s), %lld image(s) of %s\n", bundle_dir.c_str(), run.arch.c_str(),
                arch.rows, arch.cols, map::dataflow_name(arch.dataflow),
                static_cast<long long>(run.images), data.describe().c_str());
    std::printf("%-28s %12s %12s %10s %8s %8s %6s %10s\n", "layer", "cycles/img", "native",
                "stalls", "util", "folds", "sload", "mismatch");
    for (const auto& l : run.layers)
      std::printf("%-28s %12lld %12lld %10lld %7.1f%% %8lld %6lld %10lld\n", l.name.c_str(),
                  static_cast<long long>(l.cycles / run.images),
                  static_cast<long long>(l.native_cycles),
                  static_cast<long long>(l.stalls / run.images), 100.0 * l.utilization,
                  static_cast<long long>(l.folds), static_cast<long long>(l.scale_loads),
                  static_cast<long long>(l.mismatches));
    std::printf("total: %lld cycles (%lld per image), %lld stall cycles\n",
                static_cast<long long>(run.total_cycles),
                static_cast<long long>(run.cycles_per_image()), static_cast<long long>(run.stalls));
    std::printf("mismatches: %lld%s%s\n", static_cast<long long>(run.mismatches),
                run.first_mismatch.empty() ? "" : ", first: ", run.first_mismatch.c_str());
    std::printf("top-1 (simulated logits): %lld / %lld\n", static_cast<long long>(run.correct),
                static_cast<long long>(run.images));
    std::printf(
        "speed: %.3g PE-cycles/s, %.3f s per image (%.0f PEs, wall); %.3g PE-cycles/s, %.3f s per "
        "image (CPU time of the simulating thread)\n",
        run.pe_cycles_per_s, run.seconds / static_cast<double>(run.images), pes,
        run.pe_cycles_per_cpu_s, run.cpu_seconds / static_cast<double>(run.images));
  }
  return run.mismatches ? 1 : 0;
}

}  // namespace tilescale::cli
