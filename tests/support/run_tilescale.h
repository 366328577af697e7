// Runs the built `tilescale` binary as a real process and captures its exit code and output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/test_files.h"

namespace tilescale::test {

struct Outcome {
  int code = -1;    // exit code, or 128 + signal
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs the built tilescale binary with args; stdout and stderr go to files outside dir (in
// out_dir). env: extra "NAME=value" variables for the child only.
inline Outcome run_tilescale(const std::vector<std::string>& args, const std::string& out_dir,
                             const std::vector<std::string>& env = {}) {
  std::string cmd;
  if (!env.empty()) {
    cmd = "env";
    for (const auto& e : env) cmd += " " + shell_quote(e);
    cmd += " ";
  }
  cmd += shell_quote(TILESCALE_BINARY);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const std::string out = out_dir + "/stdout", err = out_dir + "/stderr";
  cmd += " >" + shell_quote(out) + " 2>" + shell_quote(err);
  const int status = std::system(cmd.c_str());
  Outcome r;
  if (status != -1 && WIFEXITED(status)) r.code = WEXITSTATUS(status);
  if (status != -1 && WIFSIGNALED(status)) r.code = 128 + WTERMSIG(status);
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

// Quantizes the zoo's LeNet-5 (W4A8, min-max search, 8 calibration images of MNIST's train split:
// about 0.3 s) into the bundle directory `out`; the small real bundle CLI tests run the other
// subcommands on.
inline Outcome quantize_lenet5(const std::string& granularity, const std::string& out,
                               const std::string& log_dir) {
  return run_tilescale(
      {"quantize", "--model", std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx",
       "--dataset", "mnist", "--wbits", "4", "--granularity", granularity, "--search", "minmax",
       "--calib", "8", "--out", out},
      log_dir);
}

}  // namespace tilescale::test
