// tilescale eval: top-1 accuracy and throughput of a model on a data set.
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "data_options.h"
#include "parse_options.h"
#include "tilescale/core/error.h"
#include "tilescale/core/memory_budget.h"
#include "tilescale/core/npy.h"
#include "tilescale/core/progress.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"

namespace po = boost::program_options;

namespace tilescale::cli {
namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "x" : "") + std::to_string(s[i]);
  return r;
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
  std::string model_path, bundle_dir, mode = "int", dump_logits;
  int64_t batch = 256;
  int threads = 0;
  bool json = false;
  DataOptions data;
  po::options_description desc("tilescale eval: top-1 accuracy of a model on a data set\noptions");
  desc.add_options()("help,h", "show this help")("model", po::value(&model_path),
                                                 "ONNX model (float reference executor)")(
      "bundle", po::value(&bundle_dir), "quantized bundle (from tilescale quantize)")(
      "mode", po::value(&mode)->default_value(mode),
      "with --bundle: int (golden integer executor) | fake (fake-quant float)")(
      "batch", po::value(&batch)->default_value(batch), "images per batch")(
      "threads", po::value(&threads)->default_value(0), "worker threads (0 = all cores)")(
      "json", po::bool_switch(&json), "print one JSON object instead of the table")(
      "dump-logits", po::value(&dump_logits), "write the logits as float32 [N, classes] .npy");
  data.add_to(desc);
  if (!parse_options(desc, args)) return 0;
  if (model_path.empty() == bundle_dir.empty())
    fail_input("--model", "give exactly one of --model (ONNX) and --bundle");
  if (mode != "int" && mode != "fake")
    fail_input("--mode", "unknown mode '" + mode + "' (int, fake)");
  if (batch < 1) fail_input("--batch", "must be >= 1");
  if (threads < 0) fail_input("--threads", "must be >= 0");

  // The network to run: the float model, or a bundle's fake-quant graph or golden integer executor.
  std::optional<quant::QuantizedModel> qmodel;
  model::Graph graph;
  if (!bundle_dir.empty()) {
    qmodel = quant::read_bundle(bundle_dir);
    graph = mode == "fake" ? quant::make_fake_quant_graph(*qmodel) : qmodel->graph;
    model_path = bundle_dir;
  } else {
    graph = model::import_onnx(model_path);
  }
  const Dataset ds = data.load();
  const auto& in_shape = graph.input_value().shape;
  const std::vector<int64_t> ds_shape = {ds.channels, ds.height, ds.width};
  if (in_shape != ds_shape)
    fail_input(model_path, "model expects " + shape_text(in_shape) + " images but " + ds.source +
                               " holds " + shape_text(ds_shape) + " images");
  const int64_t classes = graph.output_value().size();
  if (ds.num_classes > classes)
    fail_input(model_path, "model has " + std::to_string(classes) + " outputs but " + ds.source +
                               " has labels up to " + std::to_string(ds.num_classes - 1));

  std::optional<model::FloatExecutor> float_exec;
  std::optional<quant::IntExecutor> int_exec;
  if (qmodel && mode == "int") {
    int_exec.emplace(*qmodel, threads);
  } else {
    float_exec.emplace(graph, model::FloatExecutorOptions{threads});
  }
  const int used_threads = int_exec ? int_exec->threads() : float_exec->threads();
  check_memory_budget(model_path, "the logits of " + std::to_string(ds.count) + " images",
                      4.0 * static_cast<double>(ds.count) * static_cast<double>(classes));
  std::vector<float> logits(static_cast<std::size_t>(ds.count * classes));
  // A batch never holds more than the whole data set, however large --batch is.
  std::vector<float> input(static_cast<std::size_t>(std::min(batch, ds.count) * ds.image_size()));
  int64_t correct = 0;
  ProgressBar bar("eval", ds.count);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < ds.count; first += batch) {
    const int64_t n = std::min(batch, ds.count - first);
    ds.fill_batch(first, n, input.data());
    float* out = logits.data() + first * classes;
    if (int_exec) {
      int_exec->run(input.data(), n, out);
    } else {
      float_exec->run(input.data(), n, out);
    }
    for (int64_t i = 0; i < n; ++i) {
      const float* row = out + i * classes;
      const int64_t pred = std::max_element(row, row + classes) - row;
      correct += pred == ds.labels[first + i];
    }
    bar.update(first + n);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bar.finish();
  if (!dump_logits.empty()) write_npy_f32(dump_logits, logits.data(), {ds.count, classes});

  const double top1 = ds.count ? static_cast<double>(correct) / ds.count : 0.0;
  const double ips = seconds > 0 ? ds.count / seconds : 0.0;
  if (json) {
    nlohmann::ordered_json j;
    j["model"] = model_path;
    j["executor"] = qmodel ? (mode == "int" ? "int" : "fake") : "float";
    j["data"] = data.describe();
    j["images"] = ds.count;
    j["correct"] = correct;
    j["top1"] = top1;
    j["seconds"] = seconds;
    j["images_per_s"] = ips;
    j["batch"] = batch;
    j["threads"] = used_threads;
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("executor   %s\n",
                qmodel ? (mode == "int" ? "golden integer" : "fake-quant float") : "float");
    std::printf("model      %s (%lld params, %lld MACs/image)\n", model_path.c_str(),
                static_cast<long long>(graph.parameter_count()),
                static_cast<long long>(graph.macs_per_sample()));
    std::printf("data       %s (%lld images)\n", data.describe().c_str(),
                static_cast<long long>(ds.count));
    std::printf("top-1      %.2f %%  (%lld / %lld)\n", 100.0 * top1,
                static_cast<long long>(correct), static_cast<long long>(ds.count));
    std::printf("time       %.3f s  (%.0f images/s, batch %lld, %d threads)\n", seconds, ips,
                static_cast<long long>(batch), used_threads);
  }
  return 0;
}

}  // namespace tilescale::cli
