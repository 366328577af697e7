// Runs the built `tilescale` binary as a real process and captures its exit code and output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/test_files.h"

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

}  // namespace tilescale::test
