#include "tilescale/study/study_run.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "study_tasks.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale::study {

using detail::ojson;
namespace fs = std::filesystem;

namespace detail {

Coordinator::Coordinator(const Study& study, const RunOptions& options)
    : study_(study),
      verbose_(options.verbose),
      log_(options.log_to_stderr ? stderr : stdout),
      store_(options.out_dir, options.timing, study.points.size()) {
  store_.load();
  std::vector<bool> done(study.points.size(), false);
  for (const StudyPoint& p : study.points) done[p.id] = store_.has(p.id);
  scheduler_ = std::make_unique<Scheduler>(study, done);
  summary_.points = static_cast<int64_t>(study.points.size());
  summary_.skipped = summary_.points - scheduler_->pending_points();
  if (verbose_) {
    if (summary_.skipped)
      std::fprintf(log_, "sweep: %lld of %lld points already in the results, skipped\n",
                   static_cast<long long>(summary_.skipped),
                   static_cast<long long>(summary_.points));
    std::fflush(log_);
    bar_ = std::make_unique<ProgressBar>("sweep", scheduler_->pending_points());
  }
}

std::optional<Task> Coordinator::take(bool wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (error_) return std::nullopt;
    if (std::optional<Task> t = scheduler_->next()) return t;
    if (!wait || scheduler_->finished()) return std::nullopt;
    cv_.wait(lock);
  }
}

void Coordinator::add_row(const ojson& row) {
  store_.add(row);
  ++done_;
  ++summary_.ran;
  if (!verbose_) return;
  bar_->clear();
  std::fprintf(log_, "%5lld/%lld  %s\n", static_cast<long long>(done_),
               static_cast<long long>(scheduler_->pending_points()), describe_row(row).c_str());
  std::fflush(log_);
  bar_->update(done_);
}

void Coordinator::complete(const ojson& result) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const Task t = Task::from_json(result);
    if (t.quant) {
      const std::string error = result.at("error").get<std::string>();
      for (int64_t id : scheduler_->quant_done(t.index, !error.empty()))
        add_row(failed_row(study_, study_.points[id], error));
    } else {
      scheduler_->point_done();
      add_row(result.at("row"));
    }
  }
  cv_.notify_all();
}

void Coordinator::abort(std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = error;
  }
  cv_.notify_all();
}

void Coordinator::rethrow() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
}

bool Coordinator::finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_ || scheduler_->finished();
}

RunSummary Coordinator::summary() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bar_) bar_->finish();
  RunSummary s = summary_;
  s.failed = store_.failed();
  return s;
}

void run_workers(Coordinator& c, WorkerContext& ctx, int jobs) {
  auto work = [&] {
    try {
      while (std::optional<Task> t = c.take(true)) c.complete(run_task(ctx, *t));
    } catch (...) {
      c.abort(std::current_exception());
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < jobs; ++i) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
}

}  // namespace detail

void prepare_out_dir(const Study& study, const RunOptions& options) {
  const std::string& out = options.out_dir;
  if (out.empty()) fail_input("--out", "required (the results folder to write)");
  // The data sets: every model must take its images and the counts must exist.
  for (const StudyModel& m : study.models) {
    const Dataset test =
        load_named(m.dataset, "test", study.data_dir.empty() ? default_data_dir() : study.data_dir);
    model::check_model_fits_data(model::import_onnx(m.path), test, m.path);
    if (study.eval.images > test.count)
      fail_input(study.source, "eval.images: " + std::to_string(study.eval.images) +
                                   " is more than the " + std::to_string(test.count) +
                                   " images of " + test.source);
    if (study.eval.simulate > (study.eval.images ? study.eval.images : test.count))
      fail_input(study.source, "eval.simulate: more images than eval.images");
    if (study.eval.verify > (study.eval.images ? study.eval.images : test.count))
      fail_input(study.source, "eval.verify: more images than eval.images");
  }

  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    fail_input(out, "exists and is not a directory");
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out))
    fail_input(out,
               "cannot create the results folder" + (ec ? ": " + ec.message() : std::string()));
  // A probe, so an unwritable folder is refused before any work rather than after the first point.
  const std::string probe = out + "/.write_probe";
  with_source(out, [&] { write_file_atomic(probe, "probe\n"); });
  fs::remove(probe, ec);
  const std::string cache = options.cache_dir.empty() ? out + "/cache" : options.cache_dir;
  fs::create_directories(cache, ec);
  if (ec || !fs::is_directory(cache))
    fail_input(cache,
               "cannot create the cache folder" + (ec ? ": " + ec.message() : std::string()));

  const std::string manifest = study.manifest().dump(2) + "\n";
  const std::string manifest_path = out + "/study.json";
  if (fs::exists(manifest_path) && read_file(manifest_path) != manifest)
    fail_input(out,
               "holds the results of another study (study.json differs: other models, "
               "settings, archs or evaluation); use another --out or remove the folder");
  if (!study.archs.empty()) fs::create_directories(out + "/archs", ec);
  for (const StudyArch& a : study.archs)
    if (a.generated) write_file_atomic(out + "/" + a.file, a.text);
  write_file_atomic(manifest_path, manifest);
}

namespace {

int cores() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

RunSummary run_study_local(const Study& study, const RunOptions& options) {
  const int jobs = options.jobs > 0 ? options.jobs : cores();
  const int threads = options.threads > 0 ? options.threads : std::max(1, cores() / jobs);
  detail::Coordinator c(study, options);
  detail::WorkerContext ctx(study, options, threads);
  detail::run_workers(c, ctx, jobs);
  c.rethrow();
  return c.summary();
}

bool mpi_launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace tilescale::study
