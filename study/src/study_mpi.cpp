// The study under MPI (plain MPI C API, Debian's OpenMPI): rank 0 coordinates and writes, every
// rank computes. A worker rank sends a result (or, at first, an empty hello) and receives its next
// task, so a rank that finishes early gets more work: dynamic load balancing without a static
// split.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "study_tasks.h"
#include "tilescale/core/error.h"
#include "tilescale/study/study_run.h"

namespace tilescale::study {
namespace {

using detail::ojson;

constexpr int kTagResult = 1;  // worker -> rank 0: a result or a hello (JSON text)
constexpr int kTagTask = 2;    // rank 0 -> worker: a task or {"stop": true}
constexpr int kTagStatus = 3;  // rank 0 -> all, after preparing: "" or the error text

void send_text(const std::string& text, int dest, int tag) {
  MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, MPI_COMM_WORLD);
}

// Waits for a message without MPI's busy polling of a blocking receive (which would spin a core
// while a worker waits for the quantization its next point needs).
std::string recv_text(int source, int tag, int* from = nullptr) {
  MPI_Status status;
  int flag = 0;
  while (true) {
    MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, &status);
    if (flag) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::string text(static_cast<std::size_t>(count), '\0');
  MPI_Recv(text.data(), count, MPI_CHAR, status.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (from) *from = status.MPI_SOURCE;
  return text;
}

// MPI_Init_thread on construction (funneled: only the main thread calls MPI), MPI_Finalize at the
// end.
class MpiSession {
 public:
  MpiSession() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiSession() { finalize_now(); }
  void finalize_now() {
    if (!finalized_) MPI_Finalize();
    finalized_ = true;
  }
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0, size_ = 1;
  bool finalized_ = false;
};

RunSummary coordinate(const Study& study, const RunOptions& options, int ranks) {
  detail::Coordinator c(study, options);
  detail::WorkerContext ctx(study, options, options.threads > 0 ? options.threads : 1);
  // Rank 0 computes too, on its own threads; only this (main) thread calls MPI.
  std::thread local([&] { detail::run_workers(c, ctx, options.jobs > 0 ? options.jobs : 1); });
  std::vector<int> idle;
  int stopped = 0;
  while (stopped < ranks - 1) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kTagResult, MPI_COMM_WORLD, &flag, &status);
    if (flag) {
      int from = 0;
      const ojson msg = ojson::parse(recv_text(MPI_ANY_SOURCE, kTagResult, &from));
      if (msg.contains("result")) c.complete(msg["result"]);
      idle.push_back(from);
    }
    bool sent = false;
    for (auto it = idle.begin(); it != idle.end();) {
      if (std::optional<detail::Task> t = c.take(false)) {
        send_text(t->to_json().dump(), *it, kTagTask);
      } else if (c.finished()) {
        send_text(ojson{{"stop", true}}.dump(), *it, kTagTask);
        ++stopped;
      } else {
        ++it;
        continue;
      }
      sent = true;
      it = idle.erase(it);
    }
    if (!flag && !sent) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  local.join();
  c.rethrow();
  return c.summary();
}

void work(const Study& study, const RunOptions& options) {
  detail::WorkerContext ctx(study, options, options.threads > 0 ? options.threads : 1);
  send_text(ojson{{"hello", true}}.dump(), 0, kTagResult);
  while (true) {
    const ojson msg = ojson::parse(recv_text(0, kTagTask));
    if (msg.contains("stop")) return;
    const ojson result = detail::run_task(ctx, detail::Task::from_json(msg));
    send_text(ojson{{"result", result}}.dump(), 0, kTagResult);
  }
}

}  // namespace

RunSummary run_study_mpi(const Study& study, const RunOptions& options) {
  MpiSession mpi;
  RunSummary summary;
  summary.points = static_cast<int64_t>(study.points.size());
  summary.writer = mpi.rank() == 0;
  // Rank 0 prepares the folder; the others wait for its verdict, so a refused folder stops all
  // ranks cleanly (rank 0 reports it; the others return points = -1).
  std::string status;
  if (mpi.rank() == 0) {
    try {
      prepare_out_dir(study, options);
    } catch (const InputError& e) {
      status = e.what();
    }
    for (int r = 1; r < mpi.size(); ++r) send_text(status, r, kTagStatus);
  } else {
    status = recv_text(0, kTagStatus);
  }
  if (!status.empty()) {
    if (mpi.rank() != 0) {
      summary.points = -1;  // rank 0 reports the error
      return summary;
    }
    mpi.finalize_now();
    throw InputError(status);
  }
  try {
    if (mpi.rank() == 0) return coordinate(study, options, mpi.size());
    RunOptions o = options;
    o.verbose = false;
    work(study, o);
    return summary;
  } catch (const std::exception& e) {
    // The other ranks would wait for this one forever: report and take the whole job down.
    std::fprintf(stderr, "tilescale sweep: error on MPI rank %d: %s\n", mpi.rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, kInputErrorExit);
    throw;
  }
}

}  // namespace tilescale::study
