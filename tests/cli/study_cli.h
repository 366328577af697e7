// Helpers of the study CLI tests: run `tilescale` as a process, scratch folders, results rows.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace tilescale::study {

inline const std::string kSrc = TILESCALE_SOURCE_DIR;
inline const std::string kTinyStudy = kSrc + "/studies/tiny.json";

struct CliResult {
  int code;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command, capturing stdout and stderr.
inline CliResult run_shell(const std::string& command) {
  namespace fs = std::filesystem;
  const fs::path err_file =
      fs::temp_directory_path() / ("ts_study_stderr_" + std::to_string(::getpid()));
  const std::string cmd = command + " 2>" + err_file.string();
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  std::size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), got);
  const int status = pclose(p);
  std::ifstream e(err_file);
  std::stringstream err;
  err << e.rdbuf();
  fs::remove(err_file);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err.str()};
}

// Runs `<prefix> tilescale <args>`, capturing stdout and stderr.
inline CliResult run_cli(const std::string& args, const std::string& prefix = "") {
  return run_shell(prefix + std::string(TILESCALE_BINARY) + " " + args);
}

// A scratch path (not created), removed with its contents when the test ends.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("ts_study_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const char* f) const { return (path / f).string(); }
};

// `tilescale sweep --config study --out dir --no-timing --threads 1 <extra>`.
inline CliResult run_sweep(const std::string& study, const ScratchDir& dir,
                           const std::string& extra, const std::string& prefix = "") {
  return run_cli("sweep --config " + study + " --out " + dir.path.string() +
                     " --no-timing --threads 1 " + extra,
                 prefix);
}

inline int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

inline std::vector<nlohmann::ordered_json> read_rows(const std::string& path) {
  std::vector<nlohmann::ordered_json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::ordered_json::parse(line));
  return rows;
}

}  // namespace tilescale::study
