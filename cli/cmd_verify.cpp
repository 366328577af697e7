// tilescale verify: test images through a bundle on the Verilated RTL of the accelerator (ts_top),
// layers chained, every layer's outputs compared with the golden integer executor and its measured
// cycles set beside the mapper's prediction; top-1 of the simulated network.
#include <boost/program_options.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data_options.h"
#include "parse_options.h"
#include "tilescale/core/error.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/sim/network_sim.h"
#include "tilescale/sim/verify.h"

namespace po = boost::program_options;

namespace tilescale::cli {

int run_verify(const std::vector<std::string>& args) {
  sim::VerifyOptions options;
  std::string bundle_dir, arch_path, trace;
  std::string align = map::kAlignNames.name(options.align);
  std::string model = sim::kVerifyModelNames.name(options.model);
  int64_t images = 1;
  bool json = false;
  DataOptions data;
  data.dataset = "fmnist";
  const std::string align_help = map::kAlignNames.list(" | ") + " (as tilescale map)";
  const std::string model_help =
      sim::kVerifyModelNames.list(" | ") +
      ": the Verilated ts_top, the SystemC twin of it, or both in lockstep";
  po::options_description desc(
      "tilescale verify: N test images through the Verilated RTL of the accelerator, layers "
      "chained, every layer checked against the golden integer executor and the mapper's "
      "cycles\noptions");
  desc.add_options()("help,h", "show this help")("bundle", po::value(&bundle_dir),
                                                 "quantized bundle (from tilescale quantize)")(
      "arch", po::value(&arch_path), "architecture config with a Verilated build (configs/*.json)")(
      "images", po::value(&images)->default_value(images), "number of test images N")(
      "model", po::value(&model)->default_value(model), model_help.c_str())(
      "dataset", po::value(&data.dataset)->default_value(data.dataset), "fmnist | mnist")(
      "split", po::value(&data.split)->default_value(data.split), "train | test")(
      "data-dir", po::value(&data.data_dir),
      "folder of the bundled data sets (default: $TILESCALE_DATA or <source>/data)")(
      "align", po::value(&align)->default_value(align), align_help.c_str())(
      "trace", po::value(&trace),
      "write a waveform for GTKWave: <file>.fst, the Verilated ts_top's (--model rtl|both), or "
      "<file>.vcd, the SystemC twin's ports, internal signals and registers (--model "
      "systemc|both)")("json", po::bool_switch(&json),
                       "print the JSON report instead of the table");
  if (!parse_options(desc, args)) return 0;
  if (bundle_dir.empty()) fail_input("--bundle", "required");
  if (arch_path.empty()) fail_input("--arch", "required");
  if (images < 1) fail_input("--images", "must be >= 1");
  options.align = parse_flag("--align", align, map::kAlignNames);
  options.model = parse_flag("--model", model, sim::kVerifyModelNames);
  options.trace_path = trace;
  // A waveform name that is neither .fst nor .vcd, or one the chosen model cannot write.
  if (!trace.empty() || options.model != sim::VerifyModel::Rtl)
    with_source(trace.empty() ? "--model" : "--trace", [&] { sim::check_verify_model(options); });
  // The config first: a config of the wrong kind is refused before any other work.
  const map::ArchConfig arch = map::ArchConfig::parse_file(arch_path);
  arch.require_kind(map::ArchKind::Systolic, "tilescale verify (the Verilated systolic ts_top)");
  const quant::QuantizedModel qmodel = quant::read_bundle(bundle_dir);
  const Dataset ds = data.load();
  with_source("--images", [&] { sim::check_image_count(ds, images); });
  // A strict alignment refusal names the flag that chose strict (its default).
  const sim::VerifyRun run = with_source<map::AlignError>(
      "--align strict", [&] { return sim::verify_network(qmodel, arch, ds, images, options); });
  if (json) {
    std::cout << sim::to_json(run, bundle_dir).dump(2) << "\n";
  } else {
    std::cout << sim::to_table(run, bundle_dir, data.describe());
  }
  return run.mismatches || run.model_differences ? 1 : 0;
}

}  // namespace tilescale::cli
