// "granularity": "auto" in a study file: the study chooses each layer's granularity under the
// budget as `tilescale quantize --auto-granularity` does (same layer choices), the mapped row
// stays within the budget, and top-1 is a real accuracy.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "study_cli.h"
#include "tilescale/core/atomic_file.h"

namespace tilescale::study {
namespace {

TEST(StudyAutoCli, AutoRowsMatchQuantizeAutoGranularityAndFitTheBudget) {
  ScratchDir dir("auto");
  std::filesystem::create_directories(dir.path);
  const std::string arch = kSrc + "/configs/sa16x16_ws.json";
  const std::string study = dir.file("auto.json");
  write_file_atomic(study, R"({
    "models": [{"model": ")" + kSrc +
                               R"(/models/lenet5_mnist.onnx", "dataset": "mnist"}],
    "quant": {"w_bits": 4, "first_last_bits": 8, "search": "minmax", "calib_images": 8,
              "granularity": ["channel", "auto"], "auto_arch": ")" +
                               arch + R"(",
              "auto_budget": "scale-regs=1"},
    "archs": [")" + arch + R"("],
    "eval": {"images": 500, "float_baseline": false}
  })");
  ScratchDir out("auto_out");
  const CliResult r = run_sweep(study, out, "--jobs 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = read_rows(out.file("results.jsonl"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["granularity"], "channel");
  EXPECT_EQ(rows[1]["granularity"], "auto:scale-regs=1@sa16x16_ws");
  for (const auto& row : rows) {
    ASSERT_TRUE(row["error"].is_null()) << row["error"];
    // LeNet-5 at W4A8 stays near its float 98.9% on these 500 images; a broken choice would not.
    EXPECT_GT(row["top1"].get<double>(), 0.95) << row["granularity"];
  }
  EXPECT_GT(rows[0]["scale_registers"].get<int64_t>(), 1) << "channelwise needs more than one";
  EXPECT_EQ(rows[1]["scale_registers"], 1) << "the budget, as the mapper counts it";
  EXPECT_LT(rows[1]["scale_area_um2"].get<double>(), rows[0]["scale_area_um2"].get<double>());
  EXPECT_NE(rows[0]["quant_key"], rows[1]["quant_key"]);
  const auto manifest = nlohmann::json::parse(read_file(out.file("study.json")));
  EXPECT_EQ(manifest["quantizations"][1]["auto"]["budget"], "scale-regs=1");
  EXPECT_FALSE(manifest["quantizations"][0].contains("auto"));

  // The same choice as the CLI's, layer by layer.
  const std::string bundle = dir.file("cli_bundle");
  const CliResult q = run_cli("quantize --model " + kSrc +
                              "/models/lenet5_mnist.onnx --dataset mnist --wbits 4 --first-last 8 "
                              "--search minmax --calib 8 --threads 1 --auto-granularity --arch " +
                              arch + " --budget scale-regs=1 --json --out " + bundle);
  ASSERT_EQ(q.code, 0) << q.err;
  const auto report = nlohmann::json::parse(q.out);
  const auto study_bundle = nlohmann::json::parse(read_file(
      (out.path / "cache" / rows[1]["quant_key"].get<std::string>() / "manifest.json").string()));
  ASSERT_EQ(study_bundle["layers"].size(), report["auto_granularity"].size());
  for (std::size_t i = 0; i < report["auto_granularity"].size(); ++i)
    EXPECT_EQ(study_bundle["layers"][i]["granularity"],
              report["auto_granularity"][i]["granularity"])
        << i;
}

}  // namespace
}  // namespace tilescale::study
