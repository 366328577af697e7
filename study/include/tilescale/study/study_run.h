// Running a study (study.h): every point's row in <out>/results.csv and <out>/results.jsonl,
// rewritten atomically as each point finishes and sorted by point id, so a killed run keeps every
// finished point and a rerun skips them. Each quantization is computed once by one worker, cached
// as a bundle in the cache folder (content-addressed by StudyQuant::key), and its top-1 reused by
// every architecture. Workers are local threads or MPI ranks (study_mpi.cpp); the results are the
// same bytes either way (timing columns aside).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/study/study.h"

namespace tilescale::study {

struct RunOptions {
  std::string out_dir;    // results folder: study.json, results.csv, results.jsonl, archs/
  std::string cache_dir;  // bundles and their top-1 (shared across studies); empty: <out>/cache
  int jobs = 0;           // local worker threads; 0 = the cores (1 on MPI rank 0)
  int threads = 0;        // threads per task; 0 = cores / jobs, at least 1 (1 under MPI)
  bool timing = true;     // keep the *_seconds columns (false: files depend only on the inputs)
  bool verbose = true;    // one line per finished point, a progress bar on a terminal (stderr)
  bool log_to_stderr = false;  // the point lines on stderr instead of stdout
  // The tilescale binary that verification points start (`tilescale verify` in a child process,
  // since SystemC elaborates one design per process); empty: eval.verify points fail.
  std::string tool;
};

// The columns of results.csv, in order (results.jsonl rows hold them too, plus schema_version and
// quant_options); with timing the five *_seconds columns come last.
const std::vector<std::string>& study_columns(bool timing);

struct RunSummary {
  int64_t points = 0;   // points of the study
  int64_t skipped = 0;  // already in the results folder
  int64_t ran = 0;      // finished in this run
  int64_t failed = 0;   // rows with an error, of all points
  bool writer = true;   // false on MPI ranks other than 0 (which write and count nothing)
};

// Checks that the output folder can be written (creates it and writes a probe file), that it holds
// no other study (<out>/study.json differs: refused), that every model takes its data set and the
// evaluation's image counts exist; writes study.json and the generated arch configs. Throws
// InputError naming the folder or file before any point runs.
void prepare_out_dir(const Study& study, const RunOptions& options);

// Runs the points not yet in the results on local threads. Call prepare_out_dir first.
RunSummary run_study_local(const Study& study, const RunOptions& options);

// True when this process was started by mpirun (OpenMPI, or a PMI/PMIx launcher).
bool mpi_launched();

// The same under MPI: every rank calls it after parsing the same study; rank 0 prepares the
// folder, hands out points (dynamic load balancing: a rank gets the next task when it returns a
// result), writes the results and runs options.jobs local workers of its own; the other ranks only
// compute. Initializes and finalizes MPI. Returns rank 0's summary (other ranks: points only).
RunSummary run_study_mpi(const Study& study, const RunOptions& options);

}  // namespace tilescale::study
