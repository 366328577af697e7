// tilescale sweep --config run as a process on studies/tiny.json (LeNet-5 / MNIST, 41 points incl.
// generated arch configs, a CIM config and a 1-image simulation): a run killed mid-way and resumed
// gives the same files as one uninterrupted run; a failing point is recorded and the study goes
// on; bad study files and unwritable folders exit 2 before any work. MPI: study_mpi_test.cpp.

#include "study_cli.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/sha256.h"

namespace tilescale::study {
namespace {

TEST(StudyCli, AKilledRunResumedGivesTheFilesOfOneUninterruptedRun) {
  ScratchDir once("once"), killed("killed");
  const CliResult r = run_sweep(kTinyStudy, once, "--jobs 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("41/41"), std::string::npos) << r.out;
  // eval.simulate 1: every arch point is simulated, the CIM macro in a child `tilescale simulate`
  // (its energy counted by the macro), the systolic arrays in the study's process.
  int cim_rows = 0, systolic_rows = 0;
  for (const auto& row : read_rows(once.file("results.jsonl"))) {
    if (row["arch"].is_null() || row["arch"] == "") continue;
    SCOPED_TRACE(row.dump());
    ASSERT_TRUE(row["error"].is_null());
    EXPECT_EQ(row["sim_images"], 1);
    EXPECT_EQ(row["sim_mismatches"], 0);
    EXPECT_GT(row["sim_cycles"].get<int64_t>(), 0);
    if (row["arch_kind"] == "cim") {
      ++cim_rows;
      EXPECT_GT(row["sim_energy_pj"].get<double>(), 0.0);
      EXPECT_LE(row["sim_energy_pj"].get<double>(), row["energy_bound_pj"].get<double>())
          << "counted energy above the mapper's bound";
    } else {
      ++systolic_rows;
      EXPECT_TRUE(row["sim_energy_pj"].is_null());
    }
  }
  EXPECT_GT(cim_rows, 0);
  EXPECT_GT(systolic_rows, 0);

  // Kill (SIGKILL: no handler, as a crash or a scheduler would) once a few rows are written.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execl(TILESCALE_BINARY, TILESCALE_BINARY, "sweep", "--config", kTinyStudy.c_str(), "--out",
          killed.path.c_str(), "--no-timing", "--jobs", "1", "--threads", "1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(killed.file("results.jsonl")) < 5 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const int64_t kept = count_lines(killed.file("results.jsonl"));
  ASSERT_GE(kept, 5);
  ASSERT_LT(kept, 41) << "the run finished before the kill; the test would prove nothing";

  const CliResult resumed = run_sweep(kTinyStudy, killed, "--jobs 2");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find(std::to_string(kept) + " of 41 points already in the results"),
            std::string::npos)
      << resumed.out;
  EXPECT_EQ(read_file(once.file("results.csv")), read_file(killed.file("results.csv")));
  EXPECT_EQ(read_file(once.file("results.jsonl")), read_file(killed.file("results.jsonl")));

  // A rerun of a finished study runs nothing and changes nothing.
  const CliResult again = run_sweep(kTinyStudy, killed, "--jobs 1");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("41 of 41 points already"), std::string::npos) << again.out;
  EXPECT_EQ(read_file(once.file("results.jsonl")), read_file(killed.file("results.jsonl")));
}

TEST(StudyCli, ReportPyDrawsEveryFigureAndListsTheParetoFrontOfEveryArch) {
  ScratchDir dir("report");
  ASSERT_EQ(run_sweep(kTinyStudy, dir, "--jobs 2 --quiet").code, 0);
  // 41 points, 8 quantizations: one bundle and one top-1 file each in the cache.
  int bundles = 0, top1_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path / "cache")) {
    bundles += e.is_directory();
    top1_files += e.path().extension() == ".json";
  }
  EXPECT_EQ(bundles, 8);
  EXPECT_EQ(top1_files, 16);  // the ideal top-1 and the top-1 with cim128_2b's ADCs
  const CliResult r =
      run_shell("/usr/bin/python3 " + kSrc + "/scripts/report.py " + dir.path.string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* fig : {"area_lenet5_mnist", "cycles_lenet5_mnist", "scales_lenet5_mnist"})
    for (const char* ext : {".png", ".svg"})
      EXPECT_GT(std::filesystem::file_size(dir.path / (std::string(fig) + ext)), 1000u) << fig;
  const std::string md = read_file(dir.file("report.md"));
  const auto rows = read_rows(dir.file("results.jsonl"));
  // Each arch's front starts at its cheapest point: the smallest scale area among its rows, and
  // ends at the best top-1 of the arch.
  for (const char* arch : {"cim128_2b", "sa8x8_ws-rows4-dataflowws", "sa8x8_ws-rows8-dataflowos"}) {
    double cheapest = 1e300;
    for (const auto& row : rows)
      if (row["arch"] == arch) cheapest = std::min(cheapest, row["scale_area_um2"].get<double>());
    char cell[64];
    std::snprintf(cell, sizeof cell, "%.0f", cheapest);
    std::string grouped;  // the report groups thousands with commas
    const std::string digits = cell;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i && (digits.size() - i) % 3 == 0) grouped += ',';
      grouped += digits[i];
    }
    EXPECT_NE(md.find("| " + std::string(arch) + " | "), std::string::npos) << arch;
    EXPECT_NE(md.find(" | " + grouped + " | "), std::string::npos) << arch << " " << grouped;
  }
  EXPECT_NE(md.find("Pareto front: top-1 vs scale-path area"), std::string::npos);
  EXPECT_NE(md.find("Pareto front: top-1 vs cycles"), std::string::npos);
  // The front itself: dominated points are left out, ties keep the cheaper point.
  const CliResult p = run_shell(
      "cd " + kSrc +
      "/scripts && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c 'import report; print(["
      "(c, t) for c, t, _ in report.pareto([(1, .5, 0), (2, .4, 0), (3, .9, 0), (3, .8, 0), "
      "(4, .9, 0), (5, .95, 0)])])'");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(p.out, "[(1, 0.5), (3, 0.9), (5, 0.95)]\n");
}

// scripts/remap_results.py maps a study's cached bundles again with `tilescale map` (the CLI, not
// the study library's call of the mapper): on a study the current binary ran, it must give back the
// very file the sweep wrote, CIM energy bound and generated arch configs included. A bundle missing
// from the cache is an error that names it and writes nothing.
TEST(StudyCli, RemapResultsGivesBackTheSweepsOwnHardwareColumns) {
  ScratchDir dir("remap");
  ASSERT_EQ(run_sweep(kTinyStudy, dir, "--jobs 2 --quiet").code, 0);
  const std::string remap = "/usr/bin/python3 " + kSrc + "/scripts/remap_results.py --tilescale " +
                            std::string(TILESCALE_BINARY) + " --configs " + kSrc +
                            "/configs --cache " + dir.file("cache") + " ";
  const CliResult r =
      run_shell(remap + "--out " + dir.file("again") + " " + dir.file("results.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("remapped 8 bundles"), std::string::npos) << r.err;
  const std::string again = (dir.path / "again" / dir.path.filename() / "results.csv").string();
  EXPECT_EQ(read_file(again), read_file(dir.file("results.csv")));

  std::string key;
  for (const auto& row : read_rows(dir.file("results.jsonl")))
    if (row["quant_key"].is_string()) key = row["quant_key"];
  ASSERT_FALSE(key.empty());
  std::filesystem::rename(dir.path / "cache" / key, dir.path / "moved");
  const CliResult missing =
      run_shell(remap + "--out " + dir.file("never") + " " + dir.file("results.csv"));
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find(key + " is not in the cache"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path / "never"));
}

// scripts/dominance_table.py's rule on made-up rows: within channelwise's seed spread and less
// scale-path area dominates; below the bound, or more area, does not.
TEST(StudyCli, DominanceTableAppliesTheSeedSpreadAndAreaRule) {
  ScratchDir dir("dominance");
  std::filesystem::create_directories(dir.path);
  std::string csv =
      "kind,arch,error,model,w_bits,a_bits,granularity,reorder,seed,top1,scales,scale_registers,"
      "scale_area_um2,cycles\n";
  auto add = [&](const char* g, const char* reorder, const std::vector<double>& top1, int regs,
                 double area, int cycles) {
    for (std::size_t seed = 0; seed < top1.size(); ++seed)
      csv += "quant,sa,,m,4,8," + std::string(g) + "," + reorder + "," + std::to_string(seed) +
             "," + std::to_string(top1[seed]) + ",10," + std::to_string(regs) + "," +
             std::to_string(area) + "," + std::to_string(cycles) + "\n";
  };
  add("channel", "none", {0.90, 0.91, 0.92}, 16, 2.3e6, 100);        // 91 ± 1: bound 89
  add("block:8x8", "sort", {0.893, 0.895, 0.897}, 2, 2.0e6, 200);    // 89.5: within, cheaper
  add("block:16x16", "none", {0.888, 0.889, 0.890}, 1, 2.0e6, 100);  // 88.9: below the bound
  add("block:4x4", "none", {0.95, 0.95, 0.95}, 32, 2.5e6, 100);      // better but more area
  write_file_atomic(dir.file("results.csv"), csv);
  const CliResult r = run_shell("/usr/bin/python3 " + kSrc +
                                "/scripts/dominance_table.py --arch sa " + dir.file("results.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| block:8x8 | sort | 89.50 ± 0.20 (3) | 10 | 2 | 2.00 | 200 | **yes** |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| block:16x16 | none | 88.90 ± 0.10 (3) | 10 | 1 | 2.00 | 100 | no |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| block:4x4 | none | 95.00 ± 0.00 (3) | 10 | 32 | 2.50 | 100 | no |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find("Channel 91.00 ± 1.00, bound 89.00: dominated by block:8x8 sort (89.50%, 2 reg, "
                 "2.00x cycles)"),
      std::string::npos)
      << r.out;
}

TEST(StudyCli, AFailingPointRecordsItsErrorAndTheStudyGoesOn) {
  ScratchDir dir("failing");
  std::filesystem::create_directories(dir.path);
  // A 4-bit datapath cannot take the 8-bit first and last layers: that point's mapping fails.
  const std::string study = dir.file("fail.json");
  write_file_atomic(study, R"({
    "models": [{"model": ")" + kSrc +
                               R"(/models/lenet5_mnist.onnx", "dataset": "mnist"}],
    "quant": {"w_bits": 4, "first_last_bits": 8, "granularity": "layer", "search": "minmax",
              "calib_images": 8},
    "archs": [{"config": ")" + kSrc +
                               R"(/configs/sa8x8_ws.json", "name": "sa",
               "vary": {"weight_bits": [4, 8]}}],
    "eval": {"images": 16, "float_baseline": false}
  })");
  ScratchDir out("failing_out");
  const CliResult r = run_sweep(study, out, "--jobs 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("2 points: 2 run now, 0 from before, 1 with errors"), std::string::npos)
      << r.err;
  const auto rows = read_rows(out.file("results.jsonl"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["arch"], "sa-weight_bits4");
  ASSERT_TRUE(rows[0]["error"].is_string());
  EXPECT_EQ(rows[0]["error"].get<std::string>().rfind("map: ", 0), 0u) << rows[0]["error"];
  EXPECT_NE(rows[0]["error"].get<std::string>().find("weight"), std::string::npos);
  EXPECT_TRUE(rows[0]["cycles"].is_null());
  EXPECT_FALSE(rows[0]["top1"].is_null()) << "top-1 does not depend on the arch";
  EXPECT_TRUE(rows[1]["error"].is_null()) << rows[1]["error"];
  EXPECT_GT(rows[1]["cycles"].get<int64_t>(), 0);
  EXPECT_EQ(rows[0]["quant_key"], rows[1]["quant_key"]) << "one quantization for both archs";
  EXPECT_NE(read_file(out.file("results.csv")).find("map: "), std::string::npos);
}

// A CIM point's top-1 is measured with its ADCs in the loop: 4-bit ADCs on 64-row crossbars clip
// and lose accuracy against the systolic point of the same quantization; 8-bit ADCs are lossless
// there (64 rows x 3 <= 255) and give the ideal top-1 exactly. Every row keeps the ideal figure in
// top1_ideal. (ADC widths with a synthesized shift-add in mapping/area_table.json: 4, 6, 8.)
TEST(StudyCli, CimPointsMeasureTopOneWithTheirAdcs) {
  ScratchDir dir("cim");
  std::filesystem::create_directories(dir.path);
  const std::string study = dir.file("cim.json");
  write_file_atomic(study, R"({
    "models": [{"model": ")" + kSrc +
                               R"(/models/lenet5_mnist.onnx", "dataset": "mnist"}],
    "quant": {"w_bits": 4, "first_last_bits": 8, "granularity": "layer", "search": "minmax",
              "calib_images": 8},
    "archs": [")" + kSrc + R"(/configs/sa8x8_ws.json",
              {"config": ")" + kSrc +
                               R"(/configs/cim128_2b.json", "name": "cim",
               "vary": {"adc_bits": [4, 8], "xbar_rows": 64}}],
    "eval": {"images": 64, "align": "pad", "float_baseline": false}
  })");
  ScratchDir out("cim_out");
  const CliResult r = run_sweep(study, out, "--jobs 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = read_rows(out.file("results.jsonl"));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& row : rows) {
    ASSERT_TRUE(row["error"].is_null()) << row["error"];
    EXPECT_EQ(row["schema_version"], 2);
    EXPECT_EQ(row["top1_ideal"], rows[0]["top1"]) << row["arch"];
  }
  EXPECT_EQ(rows[0]["arch"], "sa8x8_ws");
  EXPECT_TRUE(rows[0]["adc_bits"].is_null());
  EXPECT_TRUE(rows[0]["energy_bound_pj"].is_null());
  EXPECT_EQ(rows[1]["arch"], "cim-adc_bits4");
  EXPECT_EQ(rows[1]["adc_bits"], 4);
  EXPECT_LT(rows[1]["top1"].get<double>(), rows[0]["top1"].get<double>());
  EXPECT_EQ(rows[2]["adc_bits"], 8);
  EXPECT_EQ(rows[2]["top1"], rows[0]["top1"]);
  // Energy per image (the mapper's bound): ADC energy grows with the bits.
  EXPECT_GT(rows[1]["energy_bound_pj"].get<double>(), 0);
  EXPECT_GT(rows[2]["energy_bound_pj"].get<double>(), rows[1]["energy_bound_pj"].get<double>());
}

TEST(StudyCli, AnUnknownKeyExitsTwoNamingTheKeyAndTheFileBeforeAnyWork) {
  ScratchDir dir("badkey");
  std::filesystem::create_directories(dir.path);
  const std::string study = dir.file("bad.json");
  std::string text = read_file(kTinyStudy);
  text.replace(text.find("\"eval\""), 6, "\"evaluation\"");
  write_file_atomic(study, text);
  ScratchDir out("badkey_out");
  const CliResult r = run_sweep(study, out, "");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(study), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown key 'evaluation'"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out.path));
}

TEST(StudyCli, AnUnwritableOutputFolderIsRefusedBeforeAnyWork) {
  ScratchDir file("outfile");
  write_file_atomic(file.path.string(), "keep\n");
  ScratchDir sub("unused");
  sub.path = file.path / "results";  // a folder below a file cannot be created, even by root
  const CliResult r = run_sweep(kTinyStudy, sub, "");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot create the results folder"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("1/41"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(file.path.string()), "keep\n");
}

TEST(StudyCli, AFolderOfAnotherStudyIsRefused) {
  ScratchDir out("other");
  ASSERT_EQ(run_cli("sweep --model " + kSrc +
                    "/models/lenet5_mnist.onnx --dataset mnist --search minmax --eval-limit 16 "
                    "--granularity layer --calib 8 --threads 1 --out " +
                    out.path.string())
                .code,
            0);
  const std::string before = read_file(out.file("results.jsonl"));
  const CliResult r = run_sweep(kTinyStudy, out, "");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("holds the results of another study"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(out.file("results.jsonl")), before);
}

TEST(StudyCli, EveryJsonReportCarriesSchemaVersionAndProvenance) {
  ScratchDir dir("provenance");
  std::filesystem::create_directories(dir.path);
  const std::string bundle = dir.file("b");
  const std::string arch = kSrc + "/configs/sa8x8_ws.json";
  const std::string model = kSrc + "/models/lenet5_mnist.onnx";
  const std::string model_sha = sha256_hex(read_file(model));
  const CliResult q = run_cli("quantize --model " + model +
                              " --dataset mnist --search minmax --calib 8 --first-last 8 "
                              "--threads 1 --json --out " +
                              bundle);
  ASSERT_EQ(q.code, 0) << q.err;
  const std::string bundle_sha = sha256_hex(read_file(bundle + "/manifest.json"));
  const std::string arch_sha = sha256_hex(read_file(arch));
  struct Report {
    std::string name, out, bundle, arch, model;
  };
  const std::vector<Report> reports = {
      {"quantize", q.out, bundle_sha, "", model_sha},
      {"eval --bundle",
       run_cli("eval --bundle " + bundle + " --dataset mnist --limit 8 --threads 1 --json").out,
       bundle_sha, "", model_sha},
      {"eval --model",
       run_cli("eval --model " + model + " --dataset mnist --limit 8 --threads 1 --json").out, "",
       "", model_sha},
      {"map", run_cli("map --bundle " + bundle + " --arch " + arch + " --align pad --json").out,
       bundle_sha, arch_sha, ""},
      {"simulate",
       run_cli("simulate --bundle " + bundle + " --arch " + arch +
               " --align pad --dataset mnist --images 1 --json")
           .out,
       bundle_sha, arch_sha, model_sha}};
  for (const Report& r : reports) {
    SCOPED_TRACE(r.name);
    const auto j = nlohmann::ordered_json::parse(r.out);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j.begin().key(), "schema_version");
    EXPECT_EQ(j["schema_version"], 1);
    const auto& p = j["provenance"];
    EXPECT_EQ(p["tool"], "tilescale");
    EXPECT_FALSE(p["tool_version"].get<std::string>().empty());
    EXPECT_FALSE(p["git_commit"].get<std::string>().empty());
    EXPECT_EQ(p.value("bundle_sha256", ""), r.bundle);
    EXPECT_EQ(p.value("arch_sha256", ""), r.arch);
    EXPECT_EQ(p.value("model_sha256", ""), r.model);
  }
  // The study rows carry the same provenance as columns.
  ScratchDir out("provenance_study");
  ASSERT_EQ(run_cli("sweep --model " + model +
                    " --dataset mnist --search minmax --calib 8 --eval-limit 8 "
                    "--granularity channel --threads 1 --arch " +
                    arch + " --out " + out.path.string())
                .code,
            0);
  const auto rows = read_rows(out.file("results.jsonl"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["bundle_sha256"], bundle_sha) << "the same quantization, the same bundle";
  EXPECT_EQ(rows[1]["arch_sha256"], arch_sha);
  EXPECT_EQ(rows[1]["model_sha256"], model_sha);
  EXPECT_EQ(rows[1]["git_commit"],
            nlohmann::ordered_json::parse(q.out)["provenance"]["git_commit"]);
}

}  // namespace
}  // namespace tilescale::study
