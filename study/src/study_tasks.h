// The work of a study, private to the study library: a task (one quantization, or one point), what
// a worker needs to run it (models, data sets, the area table, loaded once per process), the rows
// it produces, the scheduler that orders tasks, and the results files. Tasks and their results are
// JSON so that threads and MPI ranks exchange the same messages.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/core/progress.h"
#include "tilescale/map/area_model.h"
#include "tilescale/model/graph.h"
#include "tilescale/study/study.h"
#include "tilescale/study/study_run.h"

namespace tilescale::study::detail {

using ojson = nlohmann::ordered_json;

struct Task {
  bool quant = false;  // true: Study::quants[index]; false: Study::points[index]
  int64_t index = 0;
  ojson to_json() const { return {{"quant", quant}, {"index", index}}; }
  static Task from_json(const ojson& j) {
    return {j.at("quant").get<bool>(), j.at("index").get<int64_t>()};
  }
};

// Per process: loaded lazily, shared by the worker threads (thread safe).
class WorkerContext {
 public:
  WorkerContext(const Study& study, const RunOptions& options, int threads);
  const Study& study() const { return study_; }
  int threads() const { return threads_; }
  std::string bundle_dir(const StudyQuant& q) const;  // <cache>/<key>
  std::string arch_file(const StudyArch& a) const;    // the config file (generated: in <out>)
  const std::string& tool() const { return tool_; }   // RunOptions::tool
  std::string top1_file(const StudyQuant& q) const;   // <cache>/<key>.<executor>.<images>.json
  // The top-1 with a CIM arch's ADCs: <cache>/<key>.int-adc-<hash of the ADC
  // numerics>.<images>.json
  std::string adc_top1_file(const StudyQuant& q, const std::string& adc) const;
  const std::string& onnx_bytes(int model);
  const model::Graph& graph(int model);
  const Dataset& dataset(const std::string& name, const std::string& split);  // test: cut to images
  const map::AreaTable& area();
  std::mutex& sim_mutex() { return sim_mutex_; }  // the SystemC model is one per process

 private:
  const Study& study_;
  std::string cache_dir_;
  std::string out_dir_;
  std::string tool_;
  int threads_;
  std::mutex mutex_;
  std::map<int, std::string> bytes_;
  std::map<int, model::Graph> graphs_;
  std::map<std::string, Dataset> data_;
  std::unique_ptr<map::AreaTable> area_;
  std::mutex sim_mutex_;
};

// Runs a task and returns its result: {"quant": true, "index", "error"} or {"quant": false,
// "index", "row"}. Never throws for a failing point: the error goes into the result.
ojson run_task(WorkerContext& ctx, const Task& task);

// The row of a point whose quantization failed: its fixed columns and the error.
ojson failed_row(const Study& study, const StudyPoint& point, const std::string& error);

// Orders the tasks: points whose quantization is done first, then the next quantization, so a
// quantization's points finish before the next one starts. Not thread safe.
class Scheduler {
 public:
  Scheduler(const Study& study, const std::vector<bool>& done_points);
  std::optional<Task> next();  // nothing available now (all running, or waiting on one)
  // A quantization finished: its points become ready, or (error) are returned to be recorded.
  std::vector<int64_t> quant_done(int64_t quant, bool failed);
  void point_done() { --in_flight_; }
  bool finished() const { return ready_.empty() && quants_.empty() && in_flight_ == 0; }
  int64_t pending_points() const { return pending_; }

 private:
  const Study& study_;
  std::deque<int64_t> ready_;                        // point ids
  std::deque<int64_t> quants_;                       // quantizations to run
  std::map<int64_t, std::vector<int64_t>> waiting_;  // quantization -> its points
  int64_t in_flight_ = 0;
  int64_t pending_ = 0;
};

// results.csv and results.jsonl: rows by point id, rewritten atomically on every add.
class ResultsStore {
 public:
  ResultsStore(std::string out_dir, bool timing, std::size_t points);
  // Loads <out>/results.jsonl if present (rows of a previous run of the same study).
  void load();
  bool has(int64_t id) const { return rows_.count(id) != 0; }
  std::size_t size() const { return rows_.size(); }
  int64_t failed() const;
  void add(const ojson& row);  // replaces a row of the same id, then writes both files
  std::string csv() const;
  std::string jsonl() const;

 private:
  std::string out_dir_;
  bool timing_;
  std::size_t points_;
  std::map<int64_t, ojson> rows_;
};

// One line for the terminal/log: "p12 lenet5_mnist W4A8 block:4x8 sort | sa8x8_ws | top1 ...".
std::string describe_row(const ojson& row);

// Hands out tasks and records results for any number of workers (threads of this process, and on
// MPI rank 0 the remote ranks); thread safe. Rows are written as they arrive; the progress bar and
// the one-line-per-point log go to stderr / stdout when verbose.
class Coordinator {
 public:
  Coordinator(const Study& study, const RunOptions& options);
  // The next task; with wait, blocks until one is available or the study is finished (nullopt).
  std::optional<Task> take(bool wait);
  void complete(const ojson& result);  // a result of run_task
  // Stops every waiting worker: the first error of a worker (writing the results failed) is kept
  // and rethrown by rethrow().
  void abort(std::exception_ptr error);
  void rethrow();
  bool finished();
  RunSummary summary();

 private:
  void add_row(const ojson& row);  // with mutex_ held

  const Study& study_;
  bool verbose_;
  FILE* log_;  // where the point lines go
  std::mutex mutex_;
  std::condition_variable cv_;
  ResultsStore store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ProgressBar> bar_;
  RunSummary summary_;
  int64_t done_ = 0;
  std::exception_ptr error_;
};

// Runs `jobs` worker threads on ctx until the coordinator has no more tasks.
void run_workers(Coordinator& c, WorkerContext& ctx, int jobs);

}  // namespace tilescale::study::detail
