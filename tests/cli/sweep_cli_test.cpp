// tilescale sweep's flag form (a one-model study) run as a process on a tiny LeNet-5 / MNIST sweep:
// rows, columns, CSV against JSONL, byte-identical reruns, and exit 2 naming the problem (study
// files, resume, MPI: study_cli_test.cpp; the library: study/study_test.cpp).

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale::study {
namespace {

namespace fs = std::filesystem;
const std::string kLenet = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";
// Small and quick: min-max scales, 64 test images (add --threads: tests share the machine).
const std::string kTiny = "--model " + kLenet +
                          " --dataset mnist --search minmax --eval-limit 64 --wbits 4"
                          " --granularity layer,block:4x8 --reorder none,sort";

struct CliResult {
  int code;
  std::string out;  // stdout
  std::string err;  // stderr
};

CliResult run_cli(const std::string& args) {
  const fs::path err_file =
      fs::temp_directory_path() / ("ts_sweep_stderr_" + std::to_string(::getpid()));
  const std::string cmd =
      std::string(TILESCALE_BINARY) + " sweep " + args + " 2>" + err_file.string();
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

// A fresh, empty-named scratch directory path, removed when the test ends.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / ("ts_sweep_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  std::string file(const char* f) const { return (path / f).string(); }
};

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream l(line);
    std::string c;
    while (std::getline(l, c, ',')) cells.push_back(c);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    lines.push_back(cells);
  }
  return lines;
}

// The rows of results.jsonl.
std::vector<nlohmann::ordered_json> parse_jsonl(const std::string& text) {
  std::vector<nlohmann::ordered_json> rows;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::ordered_json::parse(line));
  return rows;
}

TEST(SweepCli, TinySweepWritesRowsInOrderWithEveryColumnAndCsvAgreesWithJsonl) {
  ScratchDir dir("tiny");
  const CliResult r = run_cli(kTiny + " --threads 1 --out " + dir.path.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto csv = parse_csv(read_file(dir.file("results.csv")));
  const auto rows = parse_jsonl(read_file(dir.file("results.jsonl")));
  ASSERT_EQ(csv.size(), 6u) << "header + float baseline + 1 wbits x 2 granularities x 2 reorders";
  ASSERT_EQ(rows.size(), 5u);
  // The CSV columns are the JSONL keys between schema_version and quant_options.
  std::vector<std::string> columns;
  for (auto it = rows[0].begin(); it != rows[0].end(); ++it)
    if (it.key() != "schema_version" && it.key() != "quant_options") columns.push_back(it.key());
  EXPECT_EQ(csv[0], columns);
  for (const char* c : {"point_id", "model", "granularity", "reorder", "top1", "scales",
                        "bits_per_weight", "error", "git_commit", "quantize_seconds"})
    EXPECT_NE(std::find(columns.begin(), columns.end(), c), columns.end()) << c;

  // Order: the float baseline, then granularity (as given) x reorder (as given).
  const std::vector<std::pair<std::string, std::string>> order = {{"float", "none"},
                                                                  {"layer", "none"},
                                                                  {"layer", "sort"},
                                                                  {"block:4x8", "none"},
                                                                  {"block:4x8", "sort"}};
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto& row = rows[i];
    const auto& line = csv[i + 1];
    ASSERT_EQ(line.size(), columns.size()) << "row " << i;
    EXPECT_EQ(row["schema_version"], 2);  // docs/study.md: version 2 rows
    EXPECT_EQ(row["point_id"], i);
    EXPECT_EQ(row["granularity"], order[i].first) << "row " << i;
    EXPECT_EQ(row["reorder"], order[i].second) << "row " << i;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const auto& v = row[columns[c]];
      EXPECT_EQ(line[c], v.is_null()     ? ""
                         : v.is_string() ? v.get<std::string>()
                                         : v.dump())
          << "row " << i << " column " << columns[c];
    }
    EXPECT_EQ(row["model"], "lenet5_mnist");
    EXPECT_EQ(row["dataset"], "mnist");
    EXPECT_EQ(row["images"], 64);
    EXPECT_TRUE(row["error"].is_null()) << row["error"];
    EXPECT_GE(row["top1"].get<double>(), 0.0);
    EXPECT_LE(row["top1"].get<double>(), 1.0);
    EXPECT_GE(row["eval_seconds"].get<double>(), 0.0);
    EXPECT_EQ(row["model_sha256"].get<std::string>().size(), 64u);
    if (i == 0) {
      EXPECT_EQ(row["executor"], "float");
      EXPECT_EQ(row["scales"], 0);
      EXPECT_EQ(row["bits_per_weight"], 32.0);
      EXPECT_GT(row["top1"].get<double>(), 0.9) << "LeNet-5 float on MNIST";
    } else {
      EXPECT_EQ(row["executor"], "int");
      EXPECT_EQ(row["w_bits"], 4);
      EXPECT_EQ(row["a_bits"], 8);
      EXPECT_EQ(row["first_last"], 8);
      EXPECT_EQ(row["search"], "minmax");
      EXPECT_EQ(row["quant_options"]["granularity"], order[i].first);
      EXPECT_EQ(row["bundle_sha256"].get<std::string>().size(), 64u);
      EXPECT_GT(row["scales"].get<int64_t>(), 0);
      EXPECT_GT(row["bits_per_weight"].get<double>(), 4.0) << "4-bit codes plus scale storage";
    }
  }
  // Reordering changes which weights share a scale, never how many scales there are.
  EXPECT_EQ(rows[1]["scales"], rows[2]["scales"]);
  EXPECT_LT(rows[2]["scales"].get<int64_t>(), rows[3]["scales"].get<int64_t>());
  // The log: a line per point.
  EXPECT_NE(r.out.find("block:4x8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("5/5"), std::string::npos) << r.out;
}

TEST(SweepCli, NoTimingRunsAreByteIdenticalWhateverTheJobCount) {
  ScratchDir a("det_a"), b("det_b");
  const CliResult ra =
      run_cli(kTiny + " --no-timing --jobs 1 --threads 1 --out " + a.path.string());
  ASSERT_EQ(ra.code, 0) << ra.err;
  const CliResult rb =
      run_cli(kTiny + " --no-timing --json --jobs 2 --threads 1 --out " + b.path.string());
  ASSERT_EQ(rb.code, 0) << rb.err;
  const std::string csv = read_file(a.file("results.csv")),
                    jsonl = read_file(a.file("results.jsonl"));
  EXPECT_EQ(csv, read_file(b.file("results.csv")));
  EXPECT_EQ(jsonl, read_file(b.file("results.jsonl")));
  EXPECT_EQ(csv.find("seconds"), std::string::npos);
  EXPECT_EQ(jsonl.find("seconds"), std::string::npos);
  // --json prints results.jsonl on stdout (and the point lines on stderr).
  EXPECT_EQ(rb.out, jsonl);
  EXPECT_NE(rb.err.find("block:4x8"), std::string::npos) << rb.err;
}

TEST(SweepCli, OutThatIsAFileIsRefusedAndLeftAlone) {
  ScratchDir dir("outfile");
  write_file_atomic(dir.path.string(), "keep\n");
  const CliResult r = run_cli(kTiny + " --threads 1 --out " + dir.path.string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir.path.string()), "keep\n");
}

class SweepCliErrors : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(SweepCliErrors, ExitTwoNamesTheProblemAndWritesNothing) {
  ScratchDir dir("bad_input");
  const auto& [args, expect] = GetParam();
  std::string cmd = "--dataset mnist --threads 1 --out " + dir.path.string();
  if (args.find("--eval-limit") == std::string::npos) cmd += " --eval-limit 64";
  if (args.find("--model") == std::string::npos) cmd += " --model " + kLenet;
  if (args.find("--search") == std::string::npos) cmd += " --search minmax";
  const CliResult r = run_cli(cmd + " " + args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(fs::exists(dir.path));
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, SweepCliErrors,
    ::testing::Values(
        std::make_pair("--granularity layer,tiles", "unknown granularity 'tiles'"),
        std::make_pair("--granularity ''", "--granularity: the list is empty"),
        std::make_pair("--granularity layer,,channel", "empty entry"),
        std::make_pair("--granularity layer,block:999x4", "larger than every layer"),
        std::make_pair("--wbits 4,9", "--wbits: 9 is outside 2..8"),
        std::make_pair("--wbits 4,x", "'x' is not a number"),
        std::make_pair("--reorder none,shuffle", "--reorder: unknown reorder method 'shuffle'"),
        std::make_pair("--model /nonexistent/m.onnx", "/nonexistent/m.onnx"),
        std::make_pair("--model ''", "--model"),
        std::make_pair("--mode gpu", "--mode: unknown evaluation mode 'gpu' (allowed: int, fake)"),
        std::make_pair("--search best", "--search: unknown search method 'best'"),
        std::make_pair("--abits 32", "--abits"),
        std::make_pair("--eval-limit 20000", "20000 is more than the")));

}  // namespace
}  // namespace tilescale::study
