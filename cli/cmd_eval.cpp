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
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/memory_budget.h"
#include "tilescale/core/npy.h"
#include "tilescale/core/progress.h"
#include "tilescale/core/provenance.h"
#include "tilescale/core/sha256.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/mapper.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/eval_mode.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"

namespace po = boost::program_options;

namespace tilescale::cli {
namespace {

// The options as typed.
struct EvalArgs {
  std::string model_path;   // --model: ONNX file, or empty
  std::string bundle_dir;   // --bundle: bundle directory, or empty
  std::string dump_logits;  // --dump-logits: .npy file to write, or empty
  std::string arch_path;    // --arch: CIM config whose ADCs the int mode puts in the loop, or empty
  std::string mode = quant::kEvalModeNames.name(quant::EvalMode::Int);  // --mode, as typed
  int64_t batch = 256;  // --batch: images per executor call
  int threads = 0;      // --threads: worker threads, 0 = all cores
  bool json = false;    // --json: print JSON instead of the table
  DataOptions data;     // the images
};

// The network to run: the float model, or a bundle's fake-quant graph or golden integer executor.
struct Network {
  std::string name;  // the model file or the bundle directory, for messages and the report
  std::optional<quant::QuantizedModel> qmodel;     // the bundle, if one was given
  quant::EvalMode mode = quant::EvalMode::Int;     // how the bundle runs
  model::Graph graph;                              // float, or the bundle's fake-quant graph
  std::optional<model::FloatExecutor> float_exec;  // runs graph (float and fake modes)
  std::optional<quant::IntExecutor> int_exec;      // runs qmodel (int mode)
  std::optional<map::ArchConfig> arch;             // --arch: the CIM macro (int mode)

  const char* executor() const { return qmodel ? quant::kEvalModeNames.name(mode) : "float"; }
  int threads() const { return int_exec ? int_exec->threads() : float_exec->threads(); }
};

// The results of one evaluation.
struct EvalResult {
  int64_t images = 0;   // images evaluated
  int64_t correct = 0;  // of them classified correctly
  double seconds = 0;   // pixel conversion and inference, s
  double top1() const { return images ? static_cast<double>(correct) / images : 0.0; }
  double images_per_s() const { return seconds > 0 ? images / seconds : 0.0; }
};

po::options_description describe_options(EvalArgs& a) {
  const std::string mode_help =
      "with --bundle: int (golden integer executor) | fake (fake-quant float)";
  po::options_description desc("tilescale eval: top-1 accuracy of a model on a data set\noptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&a.model_path), "ONNX model (float reference executor)")
      ("bundle", po::value(&a.bundle_dir), "quantized bundle (from tilescale quantize)")
      ("arch", po::value(&a.arch_path),
       "with --bundle --mode int: a CIM config (configs/cim*.json); its ADCs join the golden "
       "executor (quantizer/include/tilescale/quant/adc.h)")
      ("mode", po::value(&a.mode)->default_value(a.mode), mode_help.c_str())
      ("batch", po::value(&a.batch)->default_value(a.batch), "images per batch")
      ("threads", po::value(&a.threads)->default_value(0), "worker threads (0 = all cores)")
      ("json", po::bool_switch(&a.json), "print one JSON object instead of the table")
      ("dump-logits", po::value(&a.dump_logits), "write the logits as float32 [N, classes] .npy");
  // clang-format on
  a.data.add_to(desc);
  return desc;
}

Network load_network(const EvalArgs& a, quant::EvalMode mode) {
  Network net;
  net.mode = mode;
  if (!a.bundle_dir.empty()) {
    net.qmodel = quant::read_bundle(a.bundle_dir);
    net.graph = net.mode == quant::EvalMode::Fake ? quant::make_fake_quant_graph(*net.qmodel)
                                                  : net.qmodel->graph;
    net.name = a.bundle_dir;
  } else {
    net.graph = model::import_onnx(a.model_path);
    net.name = a.model_path;
  }
  return net;
}

void make_executor(Network& net, int threads) {
  if (net.qmodel && net.mode == quant::EvalMode::Int) {
    std::optional<quant::AdcNumerics> adc;
    if (net.arch) adc = net.arch->cim_numerics();
    net.int_exec.emplace(*net.qmodel, threads, quant::IntGemm::Fast, adc);
  } else {
    net.float_exec.emplace(net.graph, model::FloatExecutorOptions{threads});
  }
}

EvalResult evaluate(const Network& net, const Dataset& ds, int64_t batch,
                    const std::string& dump_logits) {
  const int64_t classes = net.graph.output_value().size();
  check_memory_budget(net.name, "the logits of " + std::to_string(ds.count) + " images",
                      4.0 * static_cast<double>(ds.count) * static_cast<double>(classes));
  std::vector<float> logits(static_cast<std::size_t>(ds.count * classes));
  ProgressBar bar("eval", ds.count);
  model::Top1Options options;
  options.batch = batch;
  options.logits = logits.data();
  options.progress = [&](int64_t done) { bar.update(done); };
  EvalResult r;
  r.images = ds.count;
  const auto t0 = std::chrono::steady_clock::now();
  r.correct = model::count_top1(
      ds, classes,
      [&](const float* in, int64_t n, float* out) {
        if (net.int_exec) {
          net.int_exec->run(in, n, out);
        } else {
          net.float_exec->run(in, n, out);
        }
      },
      options);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bar.finish();
  if (!dump_logits.empty()) write_npy_f32(dump_logits, logits.data(), {ds.count, classes});
  return r;
}

void print_report(const EvalArgs& a, const Network& net, const EvalResult& r) {
  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = net.name;
    j["executor"] = net.executor();
    if (net.arch) {
      j["arch"] = net.arch->name;
      j["adc"] = net.arch->cim_numerics().str();
    }
    if (net.qmodel && net.qmodel->options.adc) j["adc_searched"] = net.qmodel->options.adc->str();
    j["data"] = a.data.describe();
    j["images"] = r.images;
    j["correct"] = r.correct;
    j["top1"] = r.top1();
    j["seconds"] = r.seconds;
    j["images_per_s"] = r.images_per_s();
    j["batch"] = a.batch;
    j["threads"] = net.threads();
    const std::string bundle_sha = net.qmodel ? bundle_sha256(a.bundle_dir) : "";
    const std::string model_sha =
        net.qmodel ? net.qmodel->model_sha256 : sha256_hex(read_file(a.model_path));
    const std::string arch_sha = a.arch_path.empty() ? "" : sha256_hex(read_file(a.arch_path));
    std::cout << with_provenance(j, provenance(bundle_sha, arch_sha, model_sha)).dump(2) << "\n";
    return;
  }
  std::printf("executor   %s\n",
              net.qmodel
                  ? (net.mode == quant::EvalMode::Int ? "golden integer" : "fake-quant float")
                  : "float");
  if (net.arch)
    std::printf("CIM ADCs   %s (%s)\n", net.arch->name.c_str(),
                net.arch->cim_numerics().str().c_str());
  std::printf("model      %s (%lld params, %lld MACs/image)\n", net.name.c_str(),
              static_cast<long long>(net.graph.parameter_count()),
              static_cast<long long>(net.graph.macs_per_sample()));
  std::printf("data       %s (%lld images)\n", a.data.describe().c_str(),
              static_cast<long long>(r.images));
  std::printf("top-1      %.2f %%  (%lld / %lld)\n", 100.0 * r.top1(),
              static_cast<long long>(r.correct), static_cast<long long>(r.images));
  std::printf("time       %.3f s  (%.0f images/s, batch %lld, %d threads)\n", r.seconds,
              r.images_per_s(), static_cast<long long>(a.batch), net.threads());
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
  EvalArgs a;
  const po::options_description desc = describe_options(a);
  if (!parse_options(desc, args)) return 0;
  if (a.model_path.empty() == a.bundle_dir.empty())
    fail_input("--model", "give exactly one of --model (ONNX) and --bundle");
  const quant::EvalMode mode = parse_flag("--mode", a.mode, quant::kEvalModeNames);
  if (a.batch < 1) fail_input("--batch", "must be >= 1");
  if (a.threads < 0) fail_input("--threads", "must be >= 0");
  std::optional<map::ArchConfig> arch;
  if (!a.arch_path.empty()) {
    if (a.bundle_dir.empty() || mode != quant::EvalMode::Int)
      fail_input("--arch", "needs --bundle and --mode int (the ADCs join the golden executor)");
    arch = map::ArchConfig::parse_file(a.arch_path);
    arch->require_kind(map::ArchKind::Cim, "tilescale eval --arch (the CIM ADC numerics)");
  }

  Network net = load_network(a, mode);
  // The macro must be able to run the bundle (weight and activation bits, scale unit).
  if (arch) map::check_bundle_fits(*net.qmodel, *arch);
  net.arch = arch;
  // A bundle searched for one macro's ADCs (quantize --arch, options.adc) is evaluated on another
  // numerics, or on none: allowed (that is how the ADC-aware search is compared), but said.
  if (net.qmodel && net.qmodel->options.adc && mode == quant::EvalMode::Int) {
    const std::string searched = net.qmodel->options.adc->str();
    if (!arch)
      std::fprintf(stderr, "note: %s was searched for CIM ADCs (%s); evaluated without them\n",
                   a.bundle_dir.c_str(), searched.c_str());
    else if (arch->cim_numerics().str() != searched)
      std::fprintf(stderr, "note: %s was searched for CIM ADCs (%s), evaluated with %s (%s)\n",
                   a.bundle_dir.c_str(), searched.c_str(), arch->name.c_str(),
                   arch->cim_numerics().str().c_str());
  }
  const Dataset ds = a.data.load();
  model::check_model_fits_data(net.graph, ds, net.name);
  make_executor(net, a.threads);
  const EvalResult r = evaluate(net, ds, a.batch, a.dump_logits);
  print_report(a, net, r);
  return 0;
}

}  // namespace tilescale::cli
