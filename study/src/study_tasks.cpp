#include "study_tasks.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/provenance.h"
#include "tilescale/core/sha256.h"
#include "tilescale/core/subprocess.h"
#include "tilescale/core/version.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/options_json.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/sim/network_sim.h"
#include "tilescale/study/granularity_budget.h"

namespace tilescale::study::detail {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kEvalBatch = 256;  // test images per executor call

double seconds_since(Clock::time_point t0) {
  // Kept to the millisecond: finer digits are noise and only make the files longer.
  return std::round(std::chrono::duration<double>(Clock::now() - t0).count() * 1000.0) / 1000.0;
}

int64_t count_correct(const Dataset& test, const model::Graph& graph, const model::BatchRun& run) {
  model::Top1Options options;
  options.batch = kEvalBatch;
  return model::count_top1(test, graph.output_value().size(), run, options);
}

double fraction(int64_t correct, int64_t n) {
  return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

// The columns that depend only on the study, with every measured column null.
ojson base_row(const Study& s, const StudyPoint& p) {
  const StudyModel& m = s.models[p.model];
  ojson r;
  for (const std::string& c : study_columns(true)) r[c] = nullptr;
  r["point_id"] = p.id;
  r["model"] = m.name;
  r["dataset"] = m.dataset;
  r["kind"] = p.quant < 0 ? "float" : "quant";
  if (p.arch >= 0) {
    const StudyArch& a = s.archs[p.arch];
    r["arch"] = a.name;
    r["arch_kind"] = map::kArchKindNames.name(a.config.kind);
    r["arch_sha256"] = a.sha256;
  }
  r["executor"] = p.quant < 0 ? "float" : quant::kEvalModeNames.name(s.eval.executor);
  if (p.quant >= 0) {
    const StudyQuant& q = s.quants[p.quant];
    const quant::QuantOptions& o = q.options;
    r["quant_key"] = q.key;
    r["w_bits"] = o.w_bits;
    r["a_bits"] = o.a_bits;
    r["first_last"] = o.first_last_bits;
    r["granularity"] = q.granularity_label();
    r["reorder"] = quant::kReorderMethodNames.name(o.reorder);
    r["search"] = quant::kSearchMethodNames.name(o.search);
    r["seed"] = o.seed;
    r["scale_bits"] = o.scale_bits;
  } else {
    r["w_bits"] = r["a_bits"] = r["first_last"] = 32;
    r["granularity"] = "float";
    r["reorder"] = r["search"] = "none";
    r["scales"] = 0;
    r["bits_per_weight"] = 32.0;
  }
  r["tool_version"] = kToolVersion;
  r["git_commit"] = git_commit();
  r["model_sha256"] = m.sha256;
  r["schema_version"] = kStudySchemaVersion;
  r["quant_options"] =
      p.quant >= 0 ? quant::quant_options_json(s.quants[p.quant].options) : ojson(nullptr);
  return r;
}

ojson run_quant(WorkerContext& ctx, const StudyQuant& q) {
  const Study& s = ctx.study();
  const StudyModel& m = s.models[q.model];
  const std::string bundle = ctx.bundle_dir(q);
  const std::string top1_file = ctx.top1_file(q);
  if (fs::exists(top1_file) && fs::exists(bundle + "/manifest.json")) return {};  // cached
  quant::QuantOptions o = q.options;
  o.threads = ctx.threads();
  const auto t0 = Clock::now();
  quant::QuantizedModel model;
  double quantize_seconds = 0;
  if (fs::exists(bundle + "/manifest.json")) {
    model = quant::read_bundle(bundle);
  } else {
    const Dataset& calib = ctx.dataset(m.dataset, "train");
    if (q.is_auto())
      choose_auto_granularity(ctx.graph(q.model), o, calib, q.auto_arch, ctx.area(),
                              parse_budget(q.auto_budget));
    model = quant::quantize(ctx.graph(q.model), o, calib);
    model.model_sha256 = m.sha256;
    quant::write_bundle(model, ctx.onnx_bytes(q.model), bundle);
    quantize_seconds = seconds_since(t0);
  }
  const auto t1 = Clock::now();
  const Dataset& test = ctx.dataset(m.dataset, "test");
  int64_t correct = 0;
  if (s.eval.executor == quant::EvalMode::Int) {
    const quant::IntExecutor exec(model, o.threads);
    correct = count_correct(test, model.graph,
                            [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
  } else {
    const model::Graph fq = quant::make_fake_quant_graph(model);
    const model::FloatExecutor exec(fq, model::FloatExecutorOptions{o.threads});
    correct = count_correct(test, fq,
                            [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
  }
  const quant::QuantSummary sum = quant::summarize(model);
  ojson r;
  r["top1"] = fraction(correct, test.count);
  r["correct"] = correct;
  r["images"] = test.count;
  r["scales"] = sum.scales;
  r["layers"] = static_cast<int64_t>(model.layers.size());
  r["bits_per_weight"] = sum.bits_per_weight();
  r["quantize_seconds"] = quantize_seconds;
  r["eval_seconds"] = seconds_since(t1);
  write_file_atomic(top1_file, r.dump(2) + "\n");
  return r;
}

// Top-1 of a quantization on a CIM arch: the golden integer executor with the arch's ADCs in the
// loop (quant/adc.h; as `tilescale eval --arch A --mode int`). Cached like the ideal top-1, keyed
// by the ADC numerics (archs that differ elsewhere, e.g. in cols_per_adc, share it).
ojson cim_top1(WorkerContext& ctx, const StudyQuant& q, const quant::QuantizedModel& model,
               const StudyArch& a) {
  const quant::AdcNumerics adc = a.config.cim_numerics();
  const std::string file = ctx.adc_top1_file(q, adc.str());
  if (fs::exists(file)) return ojson::parse(read_file(file));
  map::check_bundle_fits(model, a.config);
  const auto t0 = Clock::now();
  const Dataset& test = ctx.dataset(ctx.study().models[q.model].dataset, "test");
  const quant::IntExecutor exec(model, ctx.threads(), quant::IntGemm::Fast, adc);
  const int64_t correct = count_correct(
      test, model.graph, [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
  ojson r;
  r["adc"] = adc.str();
  r["top1"] = fraction(correct, test.count);
  r["correct"] = correct;
  r["images"] = test.count;
  r["eval_seconds"] = seconds_since(t0);
  write_file_atomic(file, r.dump(2) + "\n");
  return r;
}

void fill_map(WorkerContext& ctx, const quant::QuantizedModel& model, const StudyArch& a,
              ojson& row) {
  const auto t0 = Clock::now();
  map::check_bundle_fits(model, a.config);
  const map::NetworkMap net =
      map::map_network(map::workloads_from_model(model), a.config, ctx.study().eval.map_options,
                       ctx.area(), map::wide_accumulator_bits(model));
  row["cycles"] = net.cycles;
  row["macs"] = net.macs;
  row["utilization"] = net.utilization;
  row["scale_registers"] = net.scale_registers;
  row["area_um2"] = net.area.total();
  row["scale_area_um2"] = net.area.scale_units + net.area.scale_registers;
  // CIM: the mapper's energy per image, every input digit counted as driven (an upper bound).
  if (net.cim) row["energy_bound_pj"] = net.energy.total();
  row["map_seconds"] = seconds_since(t0);
}

// `tilescale <command> --bundle <the point's bundle> --arch <its config> ... --json` as a child
// process of the same binary, and its JSON report. SystemC elaborates one design per process, so
// the Verilated RTL (verify) and the CIM macro run this way: a study mixes them with the systolic
// model this process simulates. A non-zero exit fails the point with the child's last stderr line.
ojson run_child_report(WorkerContext& ctx, const StudyQuant& q, const StudyModel& m,
                       const StudyArch& a, const std::string& command, int64_t images,
                       const std::vector<std::string>& extra) {
  if (ctx.tool().empty()) throw std::runtime_error("no tilescale binary to run (RunOptions::tool)");
  const Study& s = ctx.study();
  std::vector<std::string> argv = {
      ctx.tool(),   command,
      "--bundle",   ctx.bundle_dir(q),
      "--arch",     ctx.arch_file(a),
      "--images",   std::to_string(images),
      "--dataset",  m.dataset,
      "--data-dir", s.data_dir.empty() ? default_data_dir() : s.data_dir,
      "--align",    map::kAlignNames.name(s.eval.map_options.align),
      "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const ProcessResult r = run_process(argv);
  if (r.exit_code != 0) {
    std::string why = r.err;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    const std::size_t nl = why.rfind('\n');
    if (nl != std::string::npos) why = why.substr(nl + 1);  // the last line: the error
    throw std::runtime_error(command + ": exit " + std::to_string(r.exit_code) + ": " + why);
  }
  return ojson::parse(r.out);
}

// The SystemC model of the point's arch on the first K test images, every layer checked bit for
// bit: the systolic array in this process (one at a time: one model per process), the CIM macro
// with its ADCs through `tilescale simulate` in a child process. CIM rows add the energy per image
// from the events the macro counted (`sim_energy_pj`, beside the mapper's `energy_bound_pj`).
void fill_sim(WorkerContext& ctx, const quant::QuantizedModel& model, const StudyQuant& q,
              const StudyModel& m, const StudyArch& a, const Dataset& test, ojson& row) {
  const int64_t images = std::min<int64_t>(ctx.study().eval.simulate, test.count);
  const auto t0 = Clock::now();
  int64_t mismatches = 0;
  std::string first;
  if (a.config.kind == map::ArchKind::Cim) {
    const ojson report = run_child_report(ctx, q, m, a, "simulate", images, {});
    row["sim_images"] = report.at("images");
    row["sim_top1"] = report.at("top1");
    row["sim_cycles"] = report.at("cycles_per_image");
    row["sim_mismatches"] = report.at("mismatches");
    const ojson& energy = report.at("energy_pj_per_image");
    row["sim_energy_pj"] = energy.is_object() ? energy.at("total") : ojson();
    mismatches = report.at("mismatches").get<int64_t>();
    first = report.value("first_mismatch", std::string());
  } else {
    sim::SimOptions options;
    options.align = ctx.study().eval.map_options.align;
    std::lock_guard<std::mutex> lock(ctx.sim_mutex());
    const sim::NetworkRun run = sim::simulate_network(model, a.config, test, images, options);
    row["sim_images"] = run.images;
    row["sim_top1"] = fraction(run.correct, run.images);
    row["sim_cycles"] = run.cycles_per_image();
    row["sim_mismatches"] = run.mismatches;
    mismatches = run.mismatches;
    first = run.first_mismatch;
  }
  row["sim_seconds"] = seconds_since(t0);
  if (mismatches)
    throw std::runtime_error("simulate: " + std::to_string(mismatches) +
                             " output elements differ from the golden executor (" + first + ")");
}

// `tilescale verify` of the point's bundle, in a child process (run_child_report). The child's
// report gives the RTL's (or the twin's) measured cycles per image, its top-1 and its mismatches
// against the golden executor; a mismatch, a difference between RTL and twin, or a refusal (no
// Verilated build of this arch, a bundle wider than the RTL) fails the point.
void fill_verify(WorkerContext& ctx, const StudyQuant& q, const StudyModel& m, const StudyArch& a,
                 ojson& row) {
  if (a.config.kind != map::ArchKind::Systolic) return;  // no RTL for CIM macros
  const Study& s = ctx.study();
  const auto t0 = Clock::now();
  const ojson report =
      run_child_report(ctx, q, m, a, "verify", s.eval.verify, {"--model", s.eval.verify_model});
  row["verify_images"] = report.at("images");
  row["verify_top1"] = report.at("top1");
  row["verify_cycles"] = report.at("cycles_per_image");
  row["verify_mismatches"] = report.at("mismatches");
  row["verify_seconds"] = seconds_since(t0);
  if (report.at("mismatches").get<int64_t>() != 0)
    throw std::runtime_error("verify: " + report.at("mismatches").dump() +
                             " output elements differ from the golden executor (" +
                             report.at("first_mismatch").dump() + ")");
  if (report.at("model_differences").get<int64_t>() != 0)
    throw std::runtime_error("verify: the RTL and its SystemC twin differ (" +
                             report.at("first_model_difference").dump() + ")");
}

ojson run_point(WorkerContext& ctx, const StudyPoint& p) {
  const Study& s = ctx.study();
  const StudyModel& m = s.models[p.model];
  ojson row = base_row(s, p);
  std::string stage = "evaluate";
  try {
    const Dataset& test = ctx.dataset(m.dataset, "test");
    row["images"] = test.count;
    if (p.quant < 0) {
      const auto t0 = Clock::now();
      const model::FloatExecutor exec(ctx.graph(p.model),
                                      model::FloatExecutorOptions{ctx.threads()});
      const int64_t correct =
          count_correct(test, ctx.graph(p.model),
                        [&](const float* x, int64_t n, float* out) { exec.run(x, n, out); });
      row["top1"] = fraction(correct, test.count);
      row["eval_seconds"] = seconds_since(t0);
      return row;
    }
    const StudyQuant& q = s.quants[p.quant];
    const ojson top1 = ojson::parse(read_file(ctx.top1_file(q)));
    for (const char* k : {"top1", "images", "scales", "layers", "bits_per_weight",
                          "quantize_seconds", "eval_seconds"})
      row[k] = top1.contains(k) ? top1[k] : ojson();  // older cache files lack "layers"
    row["top1_ideal"] = row["top1"];  // the golden executor without ADCs: the same on every arch
    row["bundle_sha256"] = bundle_sha256(ctx.bundle_dir(q));
    const bool cim = p.arch >= 0 && s.archs[p.arch].config.kind == map::ArchKind::Cim;
    if (cim) row["adc_bits"] = s.archs[p.arch].config.adc_bits;
    // A CIM point's top-1 is what its macro computes: the ADCs clip and round the column sums
    // (the fake-quant executor has no ADC model: with executor fake the top-1 stays ideal).
    const bool adc_top1 = cim && s.eval.executor == quant::EvalMode::Int;
    if (p.arch < 0 || (!s.eval.map && s.eval.simulate == 0 && s.eval.verify == 0 && !adc_top1))
      return row;
    const quant::QuantizedModel model = quant::read_bundle(ctx.bundle_dir(q));
    const StudyArch& a = s.archs[p.arch];
    if (adc_top1) {
      const ojson t = cim_top1(ctx, q, model, a);
      row["top1"] = t["top1"];
      row["eval_seconds"] = t["eval_seconds"];
    }
    if (s.eval.map) {
      stage = "map";
      fill_map(ctx, model, a, row);
    }
    if (s.eval.simulate > 0) {
      stage = "simulate";
      fill_sim(ctx, model, q, m, a, test, row);
    }
    if (s.eval.verify > 0) {
      stage = "verify";
      fill_verify(ctx, q, m, a, row);
    }
  } catch (const std::exception& e) {
    const std::string what = e.what();
    row["error"] = what.rfind(stage + ":", 0) == 0 ? what : stage + ": " + what;
  }
  return row;
}

}  // namespace

WorkerContext::WorkerContext(const Study& study, const RunOptions& options, int threads)
    : study_(study),
      cache_dir_(options.cache_dir.empty() ? options.out_dir + "/cache" : options.cache_dir),
      out_dir_(options.out_dir),
      tool_(options.tool),
      threads_(threads) {}

std::string WorkerContext::arch_file(const StudyArch& a) const {
  return a.generated ? out_dir_ + "/" + a.file : a.file;
}

std::string WorkerContext::bundle_dir(const StudyQuant& q) const {
  return cache_dir_ + "/" + q.key;
}

std::string WorkerContext::adc_top1_file(const StudyQuant& q, const std::string& adc) const {
  return cache_dir_ + "/" + q.key + ".int-adc-" + sha256_hex(adc).substr(0, 16) + "." +
         std::to_string(study_.eval.images) + ".json";
}

std::string WorkerContext::top1_file(const StudyQuant& q) const {
  return cache_dir_ + "/" + q.key + "." + quant::kEvalModeNames.name(study_.eval.executor) + "." +
         std::to_string(study_.eval.images) + ".json";
}

const std::string& WorkerContext::onnx_bytes(int model) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = bytes_.find(model);
  if (it == bytes_.end()) it = bytes_.emplace(model, read_file(study_.models[model].path)).first;
  return it->second;
}

const model::Graph& WorkerContext::graph(int model) {
  const std::string& bytes = onnx_bytes(model);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = graphs_.find(model);
  if (it == graphs_.end())
    it = graphs_.emplace(model, model::import_onnx_bytes(bytes, study_.models[model].path)).first;
  return it->second;
}

const Dataset& WorkerContext::dataset(const std::string& name, const std::string& split) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string key = name + "/" + split;
  auto it = data_.find(key);
  if (it == data_.end()) {
    Dataset d =
        load_named(name, split, study_.data_dir.empty() ? default_data_dir() : study_.data_dir);
    if (split == "test" && study_.eval.images > 0 && study_.eval.images < d.count)
      d.truncate(study_.eval.images);
    it = data_.emplace(key, std::move(d)).first;
  }
  return it->second;
}

const map::AreaTable& WorkerContext::area() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!area_) area_ = std::make_unique<map::AreaTable>(map::AreaTable::load_default());
  return *area_;
}

ojson run_task(WorkerContext& ctx, const Task& task) {
  ojson result = task.to_json();
  if (!task.quant) {
    result["row"] = run_point(ctx, ctx.study().points[task.index]);
    return result;
  }
  try {
    run_quant(ctx, ctx.study().quants[task.index]);
    result["error"] = "";
  } catch (const std::exception& e) {
    result["error"] = std::string("quantize: ") + e.what();
  }
  return result;
}

ojson failed_row(const Study& study, const StudyPoint& point, const std::string& error) {
  ojson row = base_row(study, point);
  row["error"] = error;
  return row;
}

std::string describe_row(const ojson& r) {
  auto text = [&](const char* k) {
    return r[k].is_string() ? r[k].get<std::string>() : r[k].dump();
  };
  std::string s = "p" + text("point_id") + " " + text("model") + " ";
  if (text("kind") == "float") {
    s += "float";
  } else {
    s += "W" + text("w_bits") + "A" + text("a_bits") + " " + text("granularity") + " " +
         text("reorder") + " seed " + text("seed");
  }
  if (!r["arch"].is_null()) s += " | " + text("arch");
  char buf[160];
  if (!r["top1"].is_null()) {
    std::snprintf(buf, sizeof buf, " | top1 %.2f%%", 100.0 * r["top1"].get<double>());
    s += buf;
  }
  if (!r["cycles"].is_null()) s += " cycles " + text("cycles");
  if (!r["scale_area_um2"].is_null()) {
    std::snprintf(buf, sizeof buf, " scale area %.0f um^2", r["scale_area_um2"].get<double>());
    s += buf;
  }
  if (!r["sim_cycles"].is_null()) s += " sim cycles " + text("sim_cycles");
  if (!r["error"].is_null()) s += " | error: " + text("error");
  return s;
}

}  // namespace tilescale::study::detail
