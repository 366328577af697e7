// tilescale quantize: PTQ-SL quantization of an ONNX model into a bundle.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data_options.h"
#include "parse_options.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/onnx_export.h"
#include "tilescale/quant/quantize.h"

namespace po = boost::program_options;

namespace tilescale::cli {
namespace {

template <typename E>
E pick(const std::string& option, const std::string& text,
       std::initializer_list<std::pair<const char*, E>> choices) {
  std::string names;
  for (const auto& [name, value] : choices) {
    if (text == name) return value;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  fail_input(option, "unknown value '" + text + "' (" + names + ")");
}

}  // namespace

int run_quantize(const std::vector<std::string>& args) {
  std::string export_onnx;
  std::string model_path, out_dir, granularity = "channel", search = "output", metric = "l2",
                                   calib_input = "float";
  bool json = false;
  quant::QuantOptions o;
  DataOptions data;
  data.split = "train";
  po::options_description desc("tilescale quantize: PTQ-SL quantization into a bundle\noptions");
  desc.add_options()("help,h", "show this help")("model", po::value(&model_path),
                                                 "ONNX model to quantize")(
      "out", po::value(&out_dir), "bundle directory to write (atomically)")(
      "export-onnx", po::value(&export_onnx),
      "also write the fake-quant model as standard ONNX (opset 13, QDQ) to this file")(
      "granularity", po::value(&granularity)->default_value(granularity),
      "layer | channel | block:BOxBI | mx:N | vsq:N")(
      "wbits", po::value(&o.w_bits)->default_value(o.w_bits), "weight bits, 2..8")(
      "abits", po::value(&o.a_bits)->default_value(o.a_bits),
      "activation bits, 4..8, or 32 for float")(
      "first-last", po::value(&o.first_last_bits)->default_value(0),
      "bits of the first and last layer (0 = as the rest)")(
      "scale-bits", po::value(&o.scale_bits)->default_value(o.scale_bits),
      "mantissa bits of the fixed-point multipliers (1 = shift only)")(
      "search", po::value(&search)->default_value(search), "minmax | wmse | output")(
      "metric", po::value(&metric)->default_value(metric), "output-search objective: l2 | cosine")(
      "calib", po::value(&o.calib_images)->default_value(o.calib_images),
      "calibration images (seeded sample of the split)")(
      "calib-positions", po::value(&o.calib_positions)->default_value(o.calib_positions),
      "output positions per layer in the search objective")(
      "calib-input", po::value(&calib_input)->default_value(calib_input),
      "each layer's search input: float (float model) | quantized (quantized layers before it)")(
      "grid-points", po::value(&o.grid_points)->default_value(o.grid_points),
      "step candidates per block")("grid-lo", po::value(&o.grid_lo)->default_value(o.grid_lo),
                                   "smallest candidate / min-max step")(
      "grid-hi", po::value(&o.grid_hi)->default_value(o.grid_hi),
      "largest candidate / min-max step")("rounds", po::value(&o.rounds)->default_value(o.rounds),
                                          "alternating weight/activation rounds")(
      "reorder", po::value(&o.reorder)->default_value(o.reorder),
      "channel reordering: none | sort | kmeans")("seed", po::value(&o.seed)->default_value(o.seed),
                                                  "calibration sample and k-means seed")(
      "threads", po::value(&o.threads)->default_value(0), "worker threads (0 = all cores)")(
      "json", po::bool_switch(&json), "print a JSON report");
  data.add_to(desc);
  if (!parse_options(desc, args)) return 0;
  if (model_path.empty()) fail_input("--model", "required (an ONNX file)");
  if (out_dir.empty()) fail_input("--out", "required (the bundle directory to write)");
  o.granularity = quant::Granularity::parse(granularity);
  o.search = pick<quant::SearchMethod>("--search", search,
                                       {{"minmax", quant::SearchMethod::Minmax},
                                        {"wmse", quant::SearchMethod::Wmse},
                                        {"output", quant::SearchMethod::Output}});
  o.metric = pick<quant::SearchMetric>(
      "--metric", metric,
      {{"l2", quant::SearchMetric::L2}, {"cosine", quant::SearchMetric::Cosine}});
  o.calib_input = pick<quant::CalibInput>(
      "--calib-input", calib_input,
      {{"float", quant::CalibInput::Float}, {"quantized", quant::CalibInput::Quantized}});
  o.validate();

  const auto t0 = std::chrono::steady_clock::now();
  const std::string onnx_bytes = read_file(model_path);
  const model::Graph graph = model::import_onnx_bytes(onnx_bytes, model_path);
  const Dataset calib = data.load();
  quant::QuantizedModel model = quant::quantize(graph, o, calib);
  model.model_sha256 = quant::sha256_hex(onnx_bytes);
  quant::write_bundle(model, onnx_bytes, out_dir);
  if (!export_onnx.empty())
    quant::export_fake_quant_onnx(model, export_onnx);  // InputError names it
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const quant::QuantSummary s = quant::summarize(model);
  if (json) {
    nlohmann::ordered_json j;
    j["bundle"] = out_dir;
    if (!export_onnx.empty()) j["onnx"] = export_onnx;
    j["model"] = model_path;
    j["granularity"] = o.granularity.str();
    j["w_bits"] = o.w_bits;
    j["a_bits"] = o.a_bits;
    j["reorder"] = o.reorder;
    j["layers"] = model.layers.size();
    j["weights"] = s.weights;
    j["scales"] = s.scales;
    j["bits_per_weight"] = s.bits_per_weight();
    j["seconds"] = seconds;
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("bundle     %s\n", out_dir.c_str());
    if (!export_onnx.empty())
      std::printf("onnx       %s (fake-quant, opset 13)\n", export_onnx.c_str());
    std::printf("model      %s (%zu quantized layers, %lld weights)\n", model_path.c_str(),
                model.layers.size(), static_cast<long long>(s.weights));
    std::printf("format     W%dA%d %s, reorder %s, search %s\n", o.w_bits, o.a_bits,
                o.granularity.str().c_str(), o.reorder.c_str(), search.c_str());
    std::printf("scales     %lld (%.3f bits per weight incl. scales)\n",
                static_cast<long long>(s.scales), s.bits_per_weight());
    std::printf("time       %.2f s\n", seconds);
  }
  return 0;
}

}  // namespace tilescale::cli
