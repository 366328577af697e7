// tilescale simulate: run test images through a bundle on the cycle-accurate SystemC model of an
// accelerator (systolic array, or CIM macro with its ADCs in the loop); cycles, stalls,
// utilization, scale loads per layer; mismatches against the golden executor; top-1.
#include <boost/program_options.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data_options.h"
#include "parse_options.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/provenance.h"
#include "tilescale/core/sha256.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/sim/network_sim.h"

namespace po = boost::program_options;

namespace tilescale::cli {

int run_simulate(const std::vector<std::string>& args) {
  sim::SimOptions options;
  std::string bundle_dir, arch_path, trace;
  std::string align = map::kAlignNames.name(options.align);
  int64_t images = 1;
  bool json = false;
  DataOptions data;
  data.dataset = "fmnist";
  const std::string align_help = map::kAlignNames.list(" | ") + " (as tilescale map)";
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
      "align", po::value(&align)->default_value(align), align_help.c_str())(
      "trace", po::value(&trace), "write a VCD of the stream handshakes to this file")(
      "json", po::bool_switch(&json), "print the JSON report instead of the table");
  if (!parse_options(desc, args)) return 0;
  if (bundle_dir.empty()) fail_input("--bundle", "required");
  if (arch_path.empty()) fail_input("--arch", "required");
  if (images < 1) fail_input("--images", "must be >= 1");
  options.align = parse_flag("--align", align, map::kAlignNames);
  if (!trace.empty()) {
    // SystemC appends ".vcd" itself.
    if (trace.size() > 4 && trace.compare(trace.size() - 4, 4, ".vcd") == 0)
      trace.resize(trace.size() - 4);
    options.trace_path = trace;
  }
  // The config first: a bad config is refused before any other work.
  const map::ArchConfig arch = map::ArchConfig::parse_file(arch_path);
  const std::string arch_sha = sha256_hex(read_file(arch_path));
  const quant::QuantizedModel model = quant::read_bundle(bundle_dir);
  const Dataset ds = data.load();
  with_source("--images", [&] { sim::check_image_count(ds, images); });
  // A strict alignment refusal names the flag that chose strict (its default).
  const sim::NetworkRun run = with_source<map::AlignError>("--align strict", [&] {
    return arch.kind == map::ArchKind::Cim
               ? sim::simulate_network_cim(model, arch, ds, images, options)
               : sim::simulate_network(model, arch, ds, images, options);
  });

  if (json) {
    std::cout << with_provenance(
                     sim::to_json(run, bundle_dir),
                     provenance(bundle_sha256(bundle_dir), arch_sha, model.model_sha256))
                     .dump(2)
              << "\n";
  } else {
    std::cout << sim::to_table(run, arch, bundle_dir, data.describe());
  }
  return run.mismatches ? 1 : 0;
}

}  // namespace tilescale::cli
