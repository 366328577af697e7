#include "tilescale/study/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::study {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kEvalBatch = 256;  // test images per executor call

template <typename T>
void push_unique(std::vector<T>& list, const T& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Wall times are kept to the millisecond: finer digits are noise and only make the files longer.
double round_ms(double s) { return std::round(s * 1000.0) / 1000.0; }

quant::Granularity parse_granularity(const std::string& text) {
  return with_source("--granularity", [&] { return quant::Granularity::parse(text); });
}

// Top-1 of a network on `test` as a fraction; run computes the logits of a batch.
double top1(const Dataset& test, int64_t classes, const model::BatchRun& run) {
  model::Top1Options options;
  options.batch = kEvalBatch;
  const int64_t correct = model::count_top1(test, classes, run, options);
  return test.count ? static_cast<double>(correct) / static_cast<double>(test.count) : 0.0;
}

// The row's value in a column, as JSON (the CSV prints the same text).
ojson cell(const SweepRow& r, const std::string& column) {
  if (column == "model") return r.model;
  if (column == "dataset") return r.dataset;
  if (column == "w_bits") return r.w_bits;
  if (column == "a_bits") return r.a_bits;
  if (column == "first_last") return r.first_last;
  if (column == "granularity") return r.granularity;
  if (column == "reorder") return r.reorder;
  if (column == "search") return r.search;
  if (column == "executor") return r.executor;
  if (column == "top1") return r.top1;
  if (column == "images") return r.images;
  if (column == "scales") return r.scales;
  if (column == "bits_per_weight") return r.bits_per_weight;
  if (column == "quantize_seconds") return round_ms(r.quantize_seconds);
  if (column == "eval_seconds") return round_ms(r.eval_seconds);
  throw std::logic_error("sweep: unknown column " + column);
}

// RFC 4180: a field holding a comma, a quote or a line break is quoted, its quotes doubled.
std::string csv_field(const ojson& v) {
  if (!v.is_string()) return v.dump();
  const std::string& s = v.get_ref<const std::string&>();
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

void SweepConfig::validate() const {
  if (model_path.empty()) fail_input("--model", "required (an ONNX file)");
  if (dataset.empty()) fail_input("--dataset", "required (a bundled data set: mnist, fmnist)");
  if (w_bits.empty()) fail_input("--wbits", "the list is empty");
  if (granularities.empty()) fail_input("--granularity", "the list is empty");
  if (reorders.empty()) fail_input("--reorder", "the list is empty");
  if (eval_limit < 0) fail_input("--eval-limit", "must be >= 0");
  quant::QuantOptions o = base;
  o.validate();
  for (int w : w_bits) {
    o.w_bits = w;
    o.validate();
  }
  // The config holds the command's option values, so its errors name the options.
  for (const std::string& r : reorders)
    with_source("--reorder", [&] { return quant::kReorderMethodNames.parse(r); });
  for (const std::string& g : granularities) parse_granularity(g);
  if (executor == quant::EvalMode::Int && base.a_bits == 32)
    fail_input("--abits", "the integer executor needs integer activations (4..8); use --mode fake");
}

std::vector<SweepPoint> sweep_points(const SweepConfig& config) {
  config.validate();
  std::vector<int> bits;
  std::vector<std::string> grans;
  for (int w : config.w_bits) push_unique(bits, w);
  std::vector<quant::ReorderMethod> reorders;
  for (const std::string& g : config.granularities) push_unique(grans, parse_granularity(g).str());
  for (const std::string& r : config.reorders)
    push_unique(reorders, quant::kReorderMethodNames.parse(r));
  std::vector<SweepPoint> points;
  for (int w : bits)
    for (const std::string& g : grans)
      for (quant::ReorderMethod r : reorders) points.push_back({w, g, r});
  return points;
}

const std::vector<std::string>& sweep_columns(bool timing) {
  static const std::vector<std::string> with_timing = {
      "model",       "dataset", "w_bits",          "a_bits",           "first_last",
      "granularity", "reorder", "search",          "executor",         "top1",
      "images",      "scales",  "bits_per_weight", "quantize_seconds", "eval_seconds"};
  static const std::vector<std::string> without_timing(with_timing.begin(), with_timing.end() - 2);
  return timing ? with_timing : without_timing;
}

namespace {

// What every run of a sweep reads: the model, the calibration and the test images.
struct SweepInputs {
  model::Graph graph;   // the float model every point quantizes
  Dataset calib;        // the train split
  Dataset test;         // the test split, cut to the eval limit
  int64_t classes = 0;  // the model's outputs
};

// Loads the inputs and checks every run against them, so a bad input fails before the first run.
SweepInputs load_inputs(const SweepConfig& config) {
  SweepInputs in;
  in.graph = model::import_onnx(config.model_path);
  for (const std::string& text : config.granularities) {
    const quant::Granularity g = parse_granularity(text);
    with_source("--granularity", [&] { check_granularity_fits(in.graph, g); });
  }
  with_source("--dataset", [&] { check_dataset_name(config.dataset); });
  const std::string data_dir = config.data_dir.empty() ? default_data_dir() : config.data_dir;
  in.calib = load_named(config.dataset, "train", data_dir);
  in.test = load_named(config.dataset, "test", data_dir);
  model::check_model_fits_data(in.graph, in.test, config.model_path);
  model::check_model_fits_data(in.graph, in.calib, config.model_path);
  in.classes = in.graph.output_value().size();
  if (config.eval_limit > in.test.count)
    fail_input("--eval-limit", std::to_string(config.eval_limit) + " is more than the " +
                                   std::to_string(in.test.count) + " images of " + in.test.source);
  if (config.eval_limit > 0) in.test.truncate(config.eval_limit);
  return in;
}

SweepRow float_row(const SweepConfig& config, const SweepInputs& in, SweepRow r) {
  r.w_bits = r.a_bits = r.first_last = 32;
  r.granularity = "float";
  r.reorder = "none";
  r.search = "none";
  r.executor = "float";
  r.bits_per_weight = 32.0;
  const auto t0 = Clock::now();
  const model::FloatExecutor exec(in.graph, model::FloatExecutorOptions{config.base.threads});
  r.top1 = top1(in.test, in.classes,
                [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
  r.eval_seconds = seconds_since(t0);
  return r;
}

SweepRow point_row(const SweepConfig& config, const SweepInputs& in, const SweepPoint& p,
                   SweepRow r) {
  quant::QuantOptions o = config.base;
  o.w_bits = p.w_bits;
  o.granularity = quant::Granularity::parse(p.granularity);
  o.reorder = p.reorder;
  r.w_bits = o.w_bits;
  r.a_bits = o.a_bits;
  r.first_last = o.first_last_bits;
  r.granularity = p.granularity;
  r.reorder = quant::kReorderMethodNames.name(p.reorder);
  r.search = quant::kSearchMethodNames.name(o.search);
  r.executor = quant::kEvalModeNames.name(config.executor);

  auto t0 = Clock::now();
  const quant::QuantizedModel model = quant::quantize(in.graph, o, in.calib);
  r.quantize_seconds = seconds_since(t0);
  const quant::QuantSummary s = quant::summarize(model);
  r.scales = s.scales;
  r.bits_per_weight = s.bits_per_weight();

  t0 = Clock::now();
  if (config.executor == quant::EvalMode::Int) {
    const quant::IntExecutor exec(model, o.threads);
    r.top1 = top1(in.test, in.classes,
                  [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
  } else {
    const model::Graph fq = quant::make_fake_quant_graph(model);
    const model::FloatExecutor exec(fq, model::FloatExecutorOptions{o.threads});
    r.top1 = top1(in.test, in.classes,
                  [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
  }
  r.eval_seconds = seconds_since(t0);
  return r;
}

}  // namespace

std::vector<SweepRow> run_sweep(const SweepConfig& config, const SweepProgress& progress) {
  // Everything that can be wrong with the input is found here, before the first run.
  const std::vector<SweepPoint> points = sweep_points(config);
  const SweepInputs in = load_inputs(config);

  const std::size_t total = points.size() + 1;
  std::vector<SweepRow> rows;
  rows.reserve(total);
  SweepRow proto;
  proto.model = std::filesystem::path(config.model_path).stem().string();
  proto.dataset = config.dataset;
  proto.images = in.test.count;
  rows.push_back(float_row(config, in, proto));
  if (progress) progress(rows, total);
  for (const SweepPoint& p : points) {
    rows.push_back(point_row(config, in, p, proto));
    if (progress) progress(rows, total);
  }
  return rows;
}

std::string sweep_csv(const std::vector<SweepRow>& rows, bool timing) {
  const auto& columns = sweep_columns(timing);
  std::string text;
  for (std::size_t c = 0; c < columns.size(); ++c) text += (c ? "," : "") + columns[c];
  text += "\n";
  for (const SweepRow& r : rows) {
    for (std::size_t c = 0; c < columns.size(); ++c)
      text += (c ? "," : "") + csv_field(cell(r, columns[c]));
    text += "\n";
  }
  return text;
}

std::string sweep_json(const std::vector<SweepRow>& rows, bool timing, std::size_t runs) {
  const auto& columns = sweep_columns(timing);
  ojson j;
  j["generated_by"] = "tilescale sweep";
  j["complete"] = rows.size() == runs;
  j["runs"] = runs;
  j["columns"] = columns;
  ojson list = ojson::array();
  for (const SweepRow& r : rows) {
    ojson row;
    for (const std::string& c : columns) row[c] = cell(r, c);
    list.push_back(std::move(row));
  }
  j["rows"] = std::move(list);
  return j.dump(2) + "\n";
}

void write_sweep_results(const std::string& dir, const std::vector<SweepRow>& rows, bool timing,
                         std::size_t runs) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    fail_input(dir,
               "cannot create the results directory" + (ec ? ": " + ec.message() : std::string()));
  const std::filesystem::path d(dir);
  write_file_atomic((d / "results.csv").string(), sweep_csv(rows, timing));
  write_file_atomic((d / "results.json").string(), sweep_json(rows, timing, runs));
}

}  // namespace tilescale::study
