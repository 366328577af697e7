// tilescale quantize: PTQ-SL quantization of an ONNX model into a bundle.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "arch_alignment.h"
#include "commands.h"
#include "data_options.h"
#include "parse_options.h"
#include "quant_flags.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/provenance.h"
#include "tilescale/core/sha256.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/area_model.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/tiling.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/onnx_export.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/study/granularity_budget.h"

namespace po = boost::program_options;

namespace tilescale::cli {
namespace {

// The option values as typed; the enums and the granularity are parsed after boost has read them.
// Their defaults are QuantOptions' defaults, spelled by the name tables.
struct QuantizeArgs {
  quant::QuantOptions o;    // the numeric options, read directly; the rest filled by parse_values
  std::string model_path;   // --model: ONNX file
  std::string out_dir;      // --out: bundle directory
  std::string export_onnx;  // --export-onnx: fake-quant ONNX file, or empty
  std::string granularity = o.granularity.str();  // --granularity
  std::string per_layer_file;           // --granularity-per-layer: layer name -> granularity JSON
  bool auto_granularity = false;        // --auto-granularity: per layer under --budget on --arch
  std::string arch_path;                // --arch: architecture config (see describe_options)
  std::string adc_search = "on";        // --adc-search: on | off, with a cim --arch
  std::string align;                    // --align: empty (no check) | strict | pad
  std::optional<map::ArchConfig> arch;  // parsed --arch
  std::string budget;                   // --budget: scale-regs=R | scale-area-um2=X
  std::vector<quant::LayerGranularityChoice> choices;             // what --auto-granularity chose
  std::string search = quant::kSearchMethodNames.name(o.search);  // --search
  std::string metric = quant::kSearchMetricNames.name(o.metric);  // --metric
  std::string calib_input = quant::kCalibInputNames.name(o.calib_input);  // --calib-input
  std::string reorder = quant::kReorderMethodNames.name(o.reorder);       // --reorder
  std::string bias_correction =
      quant::kBiasCorrectionNames.name(o.bias_correction);  // --bias-correction
  bool json = false;  // --json: print JSON instead of the table
  DataOptions data;   // the calibration images
};

po::options_description describe_options(QuantizeArgs& a) {
  quant::QuantOptions& o = a.o;
  const std::string search_help = quant::kSearchMethodNames.list(" | ");
  const std::string metric_help =
      "output-search objective: " + quant::kSearchMetricNames.list(" | ");
  const std::string reorder_help = "channel reordering: " + quant::kReorderMethodNames.list(" | ");
  po::options_description desc("tilescale quantize: PTQ-SL quantization into a bundle\noptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&a.model_path), "ONNX model to quantize")
      ("out", po::value(&a.out_dir), "bundle directory to write (atomically)")
      ("export-onnx", po::value(&a.export_onnx), "also write the fake-quant model as standard ONNX (opset 13: QDQ activations, int8 weight codes) to this file")
      ("granularity", po::value(&a.granularity)->default_value(a.granularity), "layer | channel | block:BOxBI | mx:N | vsq:N | xbar:BOxR (BO output channels x runs of R rows of the lowered reduction axis [kh][kw][cin]) | xbar (with a cim --arch: R = xbar_rows, BO = the output channels of one crossbar at --wbits: one scale per crossbar)")
      ("granularity-per-layer", po::value(&a.per_layer_file), "JSON file: layer name -> granularity, for the layers that differ from --granularity")
      ("auto-granularity", po::bool_switch(&a.auto_granularity), "choose each layer's granularity: the least layer output error on the calibration images among candidates whose cost on --arch fits --budget (a refinement of a fitting candidate scores at most its error)")
      ("arch", po::value(&a.arch_path), "architecture config (configs/*.json): the costs of --auto-granularity; a cim config also puts its ADCs into the output search (--adc-search) and resolves --granularity xbar")
      ("adc-search", po::value(&a.adc_search)->default_value(a.adc_search), "with a cim --arch and --search output: on = the search scores each layer's error through the macro's ADC numerics (quant/adc.h; recorded as options.adc in the bundle) | off = ideal integer products")
      ("align", po::value(&a.align), "with --arch: strict = refuse (exit 2, nothing written) a granularity whose blocks straddle the arch's folds (crossbar rows; on cim also column groups split unevenly over crossbars) | pad = no check")
      ("budget", po::value(&a.budget), "for --auto-granularity: scale-regs=R (scale registers per fold, what map reports as total.scale_registers) | scale-area-um2=X (scale units + scale registers)")
      ("wbits", po::value(&o.w_bits)->default_value(o.w_bits), "weight bits, 2..8")
      ("abits", po::value(&o.a_bits)->default_value(o.a_bits), "activation bits, 4..8, or 32 for float")
      ("first-last", po::value(&o.first_last_bits)->default_value(0), "bits of the first and last layer (0 = as the rest)")
      ("scale-bits", po::value(&o.scale_bits)->default_value(o.scale_bits), "mantissa bits of the fixed-point multipliers (1 = shift only)")
      ("search", po::value(&a.search)->default_value(a.search), search_help.c_str())
      ("metric", po::value(&a.metric)->default_value(a.metric), metric_help.c_str())
      ("calib", po::value(&o.calib_images)->default_value(o.calib_images), "calibration images (seeded sample of the split)")
      ("calib-positions", po::value(&o.calib_positions)->default_value(o.calib_positions), "output positions per layer in the search objective")
      ("calib-input", po::value(&a.calib_input)->default_value(a.calib_input), "each layer's search input: float (float model) | quantized (quantized layers before it)")
      ("grid-points", po::value(&o.grid_points)->default_value(o.grid_points), "step candidates per block")
      ("grid-lo", po::value(&o.grid_lo)->default_value(o.grid_lo), "smallest candidate / min-max step (0 = by weight bits: 0.15 at W2/W3, 0.3 at W4, 0.5 above; activations 0.5)")
      ("grid-hi", po::value(&o.grid_hi)->default_value(o.grid_hi), "largest candidate / min-max step")
      ("rounds", po::value(&o.rounds)->default_value(o.rounds), "alternating weight/activation rounds")
      ("reorder", po::value(&a.reorder)->default_value(a.reorder), reorder_help.c_str())
      ("bias-correction", po::value(&a.bias_correction)->default_value(a.bias_correction), "fold each layer's expected output shift from weight quantization (calibration inputs) into its bias: on | off")
      ("seed", po::value(&o.seed)->default_value(o.seed), "calibration sample and k-means seed")
      ("threads", po::value(&o.threads)->default_value(0), "worker threads (0 = all cores)")
      ("json", po::bool_switch(&a.json), "print a JSON report");
  // clang-format on
  a.data.add_to(desc);
  return desc;
}

// Fills the enums and the granularity of a.o from their texts; errors name the option.
void parse_values(QuantizeArgs& a) {
  quant::QuantOptions& o = a.o;
  if (!a.arch_path.empty()) a.arch = map::ArchConfig::parse_file(a.arch_path);
  if (a.granularity == "xbar") {
    if (!a.arch) fail_input("--granularity", "xbar needs a cim --arch (its crossbar size)");
    o.granularity = resolve_xbar_granularity(*a.arch, o.w_bits);
  } else {
    o.granularity =
        with_source("--granularity", [&] { return quant::Granularity::parse(a.granularity); });
  }
  if (a.adc_search != "on" && a.adc_search != "off")
    fail_input("--adc-search", "'" + a.adc_search + "': expected on or off");
  if (!a.align.empty()) {
    parse_flag("--align", a.align, map::kAlignNames);
    if (!a.arch) fail_input("--align", "needs --arch (the folds to align to)");
  }
  o.search = parse_flag("--search", a.search, quant::kSearchMethodNames);
  o.metric = parse_flag("--metric", a.metric, quant::kSearchMetricNames);
  o.calib_input = parse_flag("--calib-input", a.calib_input, quant::kCalibInputNames);
  o.reorder = parse_flag("--reorder", a.reorder, quant::kReorderMethodNames);
  o.bias_correction =
      parse_flag("--bias-correction", a.bias_correction, quant::kBiasCorrectionNames);
  check_quant_flags(o);
  if (a.arch && a.arch->kind == map::ArchKind::Cim && a.adc_search == "on") {
    if (o.a_bits == 32)
      fail_input("--arch",
                 "the ADC-aware search needs integer activations (--abits 4..8), or "
                 "--adc-search off");
    // Only the output search scores layer outputs; minmax and wmse have nothing to run through
    // the ADCs, and the bundle then records no ADC.
    if (o.search == quant::SearchMethod::Output) o.adc = a.arch->cim_numerics();
  }
}

// --auto-granularity: every layer's granularity from the budget, into a.o.layer_granularity.
void choose_granularity(QuantizeArgs& a, const model::Graph& graph, const Dataset& calib) {
  if (!a.per_layer_file.empty())
    fail_input("--auto-granularity", "give either --auto-granularity or --granularity-per-layer");
  if (a.arch_path.empty()) fail_input("--arch", "required with --auto-granularity");
  if (a.budget.empty()) fail_input("--budget", "required with --auto-granularity");
  const study::Budget budget = study::parse_budget(a.budget);
  const map::ArchConfig& arch = *a.arch;
  const map::AreaTable area = map::AreaTable::load_default();
  a.choices = with_source("--budget " + a.budget, [&] {
    return study::choose_auto_granularity(graph, a.o, calib, arch, area, budget);
  });
}

void print_report(const QuantizeArgs& a, const quant::QuantizedModel& model, double seconds) {
  const quant::QuantOptions& o = a.o;
  const quant::QuantSummary s = quant::summarize(model);
  const char* reorder = quant::kReorderMethodNames.name(o.reorder);
  if (a.json) {
    nlohmann::ordered_json j;
    j["bundle"] = a.out_dir;
    if (!a.export_onnx.empty()) j["onnx"] = a.export_onnx;
    j["model"] = a.model_path;
    j["granularity"] = o.granularity.str();
    if (!o.layer_granularity.empty()) {
      nlohmann::ordered_json per = nlohmann::ordered_json::object();
      for (const quant::LayerQuant& l : model.layers) per[l.name] = l.granularity.str();
      j["layer_granularity"] = std::move(per);
    }
    if (!a.choices.empty()) {
      const auto candidates = quant::default_granularity_candidates();
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& c : a.choices) {
        nlohmann::ordered_json e;
        e["layer"] = c.layer;
        e["granularity"] = candidates[c.chosen].str();
        e["error"] = c.error[c.chosen];
        e["scale_registers"] = c.cost[c.chosen].scale_registers;
        e["scale_area_um2"] = c.cost[c.chosen].scale_area_um2;
        e["cycles"] = c.cost[c.chosen].cycles;
        list.push_back(std::move(e));
      }
      j["auto_granularity"] = std::move(list);
    }
    if (a.arch) j["arch"] = a.arch->name;
    if (o.adc) j["adc"] = o.adc->str();
    j["w_bits"] = o.w_bits;
    j["a_bits"] = o.a_bits;
    j["reorder"] = reorder;
    if (o.reorder != quant::ReorderMethod::None) {
      const quant::ReorderCheck& c = model.reorder_check;
      nlohmann::ordered_json r;
      r["spaces_reordered"] = c.spaces_reordered;
      r["checked"] = c.checked;
      if (c.checked) {
        r["images"] = c.images;
        r["agree_reordered"] = c.agree_reordered;
        r["agree_identity"] = c.agree_identity;
        r["kl_reordered"] = c.kl_reordered;
        r["kl_identity"] = c.kl_identity;
      }
      r["kept"] = c.checked ? c.kept : false;
      j["reorder_check"] = std::move(r);
    }
    j["layers"] = model.layers.size();
    j["weights"] = s.weights;
    j["scales"] = s.scales;
    j["bits_per_weight"] = s.bits_per_weight();
    // How the weight search used its step grid: blocks whose choice sat on an edge (a grid too
    // narrow there) and the chosen factors of the min-max step.
    j["weight_grid"] = nlohmann::ordered_json::array();
    for (const quant::GridUse& g : model.grid_use)
      j["weight_grid"].push_back({{"w_bits", g.w_bits},
                                  {"lo", g.lo},
                                  {"hi", g.hi},
                                  {"blocks", g.blocks},
                                  {"at_lo_edge", g.at_lo},
                                  {"at_hi_edge", g.at_hi},
                                  {"factor_min", g.quantile(0.0)},
                                  {"factor_p10", g.quantile(0.1)},
                                  {"factor_p50", g.quantile(0.5)},
                                  {"factor_p90", g.quantile(0.9)},
                                  {"factor_max", g.quantile(1.0)}});
    j["seconds"] = seconds;
    std::cout
        << with_provenance(j, provenance(bundle_sha256(a.out_dir), "", model.model_sha256)).dump(2)
        << "\n";
    return;
  }
  std::printf("bundle     %s\n", a.out_dir.c_str());
  if (!a.export_onnx.empty())
    std::printf("onnx       %s (fake-quant, opset 13)\n", a.export_onnx.c_str());
  std::printf("model      %s (%zu quantized layers, %lld weights)\n", a.model_path.c_str(),
              model.layers.size(), static_cast<long long>(s.weights));
  std::printf("format     W%dA%d %s, reorder %s, search %s\n", o.w_bits, o.a_bits,
              o.granularity.str().c_str(), reorder, quant::kSearchMethodNames.name(o.search));
  if (o.adc) std::printf("ADC search %s (%s)\n", a.arch->name.c_str(), o.adc->str().c_str());
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const quant::LayerQuant& l = model.layers[i];
    if (!o.layer_granularity.count(l.name)) continue;
    std::printf("layer      %s: %s", l.name.c_str(), l.granularity.str().c_str());
    if (i < a.choices.size()) {
      const auto& c = a.choices[i];
      std::printf(" (layer error %.4g, %lld scale registers, %lld cycles)", c.error[c.chosen],
                  static_cast<long long>(c.cost[c.chosen].scale_registers),
                  static_cast<long long>(c.cost[c.chosen].cycles));
    }
    std::printf("\n");
  }
  if (o.reorder != quant::ReorderMethod::None) {
    const quant::ReorderCheck& c = model.reorder_check;
    if (!c.checked)
      std::printf("reorder    no space's error drops with another order: identity kept\n");
    else
      std::printf(
          "reorder    %d spaces reordered; top-1 agreement with float on %lld check images %lld "
          "reordered vs %lld identity (KL %.4f vs %.4f): %s\n",
          c.spaces_reordered, static_cast<long long>(c.images),
          static_cast<long long>(c.agree_reordered), static_cast<long long>(c.agree_identity),
          c.kl_reordered, c.kl_identity, c.kept ? "reordered kept" : "identity kept");
  }
  std::printf("scales     %lld (%.3f bits per weight incl. scales)\n",
              static_cast<long long>(s.scales), s.bits_per_weight());
  for (const quant::GridUse& g : model.grid_use)
    std::printf(
        "grid W%d    [%.2f, %.2f] x min-max step: %lld blocks, %lld at the lower edge, %lld at the "
        "upper; chosen factor p10/p50/p90 %.2f/%.2f/%.2f\n",
        g.w_bits, g.lo, g.hi, static_cast<long long>(g.blocks), static_cast<long long>(g.at_lo),
        static_cast<long long>(g.at_hi), g.quantile(0.1), g.quantile(0.5), g.quantile(0.9));
  std::printf("time       %.2f s\n", seconds);
}

}  // namespace

int run_quantize(const std::vector<std::string>& args) {
  QuantizeArgs a;
  a.data.split = "train";
  const po::options_description desc = describe_options(a);
  if (!parse_options(desc, args)) return 0;
  if (a.model_path.empty()) fail_input("--model", "required (an ONNX file)");
  if (a.out_dir.empty()) fail_input("--out", "required (the bundle directory to write)");
  parse_values(a);

  const auto t0 = std::chrono::steady_clock::now();
  const std::string onnx_bytes = read_file(a.model_path);
  const model::Graph graph = model::import_onnx_bytes(onnx_bytes, a.model_path);
  const Dataset calib = a.data.load();
  with_source("--granularity", [&] { quant::check_granularity_fits(graph, a.o.granularity); });
  if (!a.per_layer_file.empty()) {
    a.o.layer_granularity = quant::read_layer_granularity(a.per_layer_file);
    quant::check_layer_granularity(graph, a.o.layer_granularity, a.per_layer_file);
  }
  if (a.auto_granularity) choose_granularity(a, graph, calib);
  if (a.align == "strict")
    with_source<map::AlignError>("--align strict",
                                 [&] { check_arch_alignment(graph, a.o, *a.arch); });
  quant::QuantizedModel model = quant::quantize(graph, a.o, calib);
  // The macro must be able to run what the search was made for (bits, scale unit), as eval
  // --arch requires: refused before anything is written.
  if (a.o.adc) map::check_bundle_fits(model, *a.arch);
  model.model_sha256 = sha256_hex(onnx_bytes);
  quant::write_bundle(model, onnx_bytes, a.out_dir);
  if (!a.export_onnx.empty())
    quant::export_fake_quant_onnx(model, a.export_onnx);  // InputError names it
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  print_report(a, model, seconds);
  return 0;
}

}  // namespace tilescale::cli
