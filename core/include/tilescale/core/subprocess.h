// Running a program as a child process and collecting what it printed. The study driver runs
// `tilescale verify` this way: SystemC elaborates one design per process, so a process that has
// simulated one accelerator cannot build another, and each verification needs its own process.
#pragma once

#include <string>
#include <vector>

namespace tilescale {

struct ProcessResult {
  int exit_code = -1;  // the child's exit status; 128 + N when signal N ended it
  std::string out;     // everything it wrote to stdout
  std::string err;     // everything it wrote to stderr
};

// Starts argv[0] (a path: no PATH search) with argv and the parent's environment, waits for it,
// and returns its exit code and output. stdout and stderr go to temporary files (so a child that
// fills one pipe cannot block on it while the parent reads the other), removed afterwards. Throws
// std::runtime_error when the child cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);

// The path of the running program (/proc/self/exe), for starting another copy of it.
std::string self_executable();

}  // namespace tilescale
