// tilescale map: tile a bundle's layers (or SCALE-Sim workloads) onto an architecture; folds,
// cycles, utilization, scale registers and area.
#include <boost/program_options.hpp>
#include <iostream>

#include "commands.h"
#include "parse_options.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/provenance.h"
#include "tilescale/core/sha256.h"
#include "tilescale/map/mapper.h"
#include "tilescale/quant/bundle.h"

namespace po = boost::program_options;

namespace tilescale::cli {

int run_map(const std::vector<std::string>& args) {
  map::MapOptions options;
  std::string bundle_dir, topology, gemm, arch_path, scalesim_cfg, area_dir;
  std::string align = map::kAlignNames.name(options.align);
  std::string cycle_model = map::kCycleModelNames.name(options.cycle_model);
  bool json = false;
  po::options_description desc(
      "tilescale map: tile every layer onto an accelerator; cycles, utilization, scale registers, "
      "area\noptions");
  desc.add_options()("help,h", "show this help")("bundle", po::value(&bundle_dir),
                                                 "quantized bundle (from tilescale quantize)")(
      "topology", po::value(&topology), "SCALE-Sim conv topology CSV (dense, one scale per layer)")(
      "gemm", po::value(&gemm), "SCALE-Sim GEMM CSV: name, M, N, K")(
      "arch", po::value(&arch_path), "architecture config (configs/*.json)")(
      "scalesim-cfg", po::value(&scalesim_cfg), "SCALE-Sim .cfg instead of --arch")(
      "align", po::value(&align)->default_value(align),
      "strict (refuse folds that mix input-channel blocks) | pad (pad them, report the waste)")(
      "cycle-model", po::value(&cycle_model)->default_value(cycle_model),
      "native (the project's RTL) | scalesim (SCALE-Sim v2's reported cycles)")(
      "area-dir", po::value(&area_dir),
      "folder with area_table.json and area_params.json (default: mapping/ of the source tree)")(
      "json", po::bool_switch(&json), "print the JSON report instead of the table");
  if (!parse_options(desc, args)) return 0;
  const int sources = !bundle_dir.empty() + !topology.empty() + !gemm.empty();
  if (sources != 1) fail_input("--bundle", "give exactly one of --bundle, --topology and --gemm");
  if (arch_path.empty() == scalesim_cfg.empty())
    fail_input("--arch", "give exactly one of --arch and --scalesim-cfg");
  options.align = parse_flag("--align", align, map::kAlignNames);
  options.cycle_model = parse_flag("--cycle-model", cycle_model, map::kCycleModelNames);

  const map::ArchConfig arch = arch_path.empty() ? map::ArchConfig::from_scalesim_cfg(scalesim_cfg)
                                                 : map::ArchConfig::parse_file(arch_path);
  const map::AreaTable area =
      area_dir.empty()
          ? map::AreaTable::load_default()
          : map::AreaTable::load(area_dir + "/area_table.json", area_dir + "/area_params.json");
  std::vector<map::LayerWorkload> layers;
  int wide_bits = 48;
  if (!bundle_dir.empty()) {
    const quant::QuantizedModel model = quant::read_bundle(bundle_dir);
    map::check_bundle_fits(model, arch);
    layers = map::workloads_from_model(model);
    wide_bits = map::wide_accumulator_bits(model);
  } else if (!topology.empty()) {
    layers = map::read_scalesim_topology(topology, arch.act_bits, arch.weight_bits);
  } else {
    layers = map::read_scalesim_gemm(gemm, arch.act_bits, arch.weight_bits);
  }
  // A strict alignment refusal names the flag that chose strict (its default).
  map::NetworkMap net = with_source<map::AlignError>(
      "--align strict", [&] { return map::map_network(layers, arch, options, area, wide_bits); });
  // The whole synthesized top belongs to the default area tables' source tree; a user's own
  // --area-dir tables have no ts_top beside them.
  if (area_dir.empty()) net.synthesized_top = map::find_synthesized_top_default(arch);
  if (json) {
    const std::string arch_file = arch_path.empty() ? scalesim_cfg : arch_path;
    const auto report = nlohmann::ordered_json::parse(map::to_json(net).dump());
    std::cout << with_provenance(report,
                                 provenance(bundle_dir.empty() ? "" : bundle_sha256(bundle_dir),
                                            sha256_hex(read_file(arch_file))))
                     .dump(2)
              << "\n";
  } else {
    std::cout << map::to_table(net);
  }
  return 0;
}

}  // namespace tilescale::cli
