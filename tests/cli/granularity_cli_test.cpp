// Per-layer granularity through the CLI: --granularity-per-layer files (bad ones exit 2 naming the
// file, good ones reach every consumer: eval int/fake, map, simulate, --export-onnx) and
// --auto-granularity under a budget that `map --json` then confirms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/run_tilescale.h"

namespace tilescale {
namespace {

using test::run_tilescale;
using test::TempDir;
using test::write_bytes;
using ::testing::HasSubstr;

const std::string kSource = TILESCALE_SOURCE_DIR;
const std::string kLenet = kSource + "/models/lenet5_mnist.onnx";

std::vector<std::string> quantize_args(const std::string& out) {
  return {"quantize",  "--model",  kLenet,   "--dataset", "mnist", "--granularity",
          "block:8x8", "--search", "minmax", "--calib",   "8",     "--out",
          out};
}

struct BadFile {
  const char* text;
  const char* expect;
};

TEST(GranularityPerLayerCli, BadFilesExitTwoNamingTheFileAndWriteNoBundle) {
  const BadFile cases[] = {
      {"{\"/conv1/Conv\": ", "not valid JSON"},
      {"[\"channel\"]", "expected one JSON object of layer name -> granularity"},
      {"{\"/conv1/Conv\": 4}", "layer '/conv1/Conv': the granularity is not a string"},
      {"{\"/conv1/Conv\": \"tiles\"}", "layer '/conv1/Conv': unknown granularity 'tiles'"},
      {"{\"/conv9/Conv\": \"channel\"}", "'/conv9/Conv' is not a Conv/Gemm layer"},
  };
  for (const BadFile& c : cases) {
    SCOPED_TRACE(c.text);
    TempDir dir;
    const std::string file = dir.path() + "/per_layer.json";
    write_bytes(file, c.text);
    auto args = quantize_args(dir.path() + "/bundle");
    args.insert(args.end(), {"--granularity-per-layer", file});
    const auto r = run_tilescale(args, dir.path());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(file));
    EXPECT_THAT(r.err, HasSubstr(c.expect));
    EXPECT_FALSE(test::exists(dir.path() + "/bundle"));
  }
}

// conv1 layerwise, fc1 channelwise, the rest block:8x8: the bundle records each, map reports each
// layer's own scale structure, eval int and fake agree, simulate runs it bit-exact, and the export
// is written.
TEST(GranularityPerLayerCli, EveryConsumerHonoursPerLayerGranularity) {
  TempDir dir;
  const std::string file = dir.path() + "/per_layer.json";
  write_bytes(file, "{\"/conv1/Conv\": \"layer\", \"/fc1/Gemm\": \"channel\"}");
  const std::string bundle = dir.path() + "/bundle", onnx = dir.path() + "/fq.onnx";
  auto args = quantize_args(bundle);
  args.insert(args.end(), {"--granularity-per-layer", file, "--export-onnx", onnx});
  const auto q = run_tilescale(args, dir.path());
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_TRUE(test::exists(onnx));
  const auto manifest = nlohmann::json::parse(test::read_bytes(bundle + "/manifest.json"));
  EXPECT_EQ(manifest["format_version"], 2);
  const std::vector<std::string> want = {"layer", "block:8x8", "channel", "block:8x8", "block:8x8"};
  ASSERT_EQ(manifest["layers"].size(), want.size());
  for (std::size_t l = 0; l < want.size(); ++l)
    EXPECT_EQ(manifest["layers"][l]["granularity"], want[l]) << l;
  EXPECT_EQ(manifest["layers"][0]["num_blocks"], 1);
  EXPECT_EQ(manifest["layers"][2]["num_blocks"], 120);  // fc1: one per output channel

  const auto m = run_tilescale(
      {"map", "--bundle", bundle, "--arch", kSource + "/configs/sa8x8_ws.json", "--json"},
      dir.path());
  ASSERT_EQ(m.code, 0) << m.err;
  const auto map = nlohmann::json::parse(m.out);
  EXPECT_EQ(map["granularity"], "per-layer");
  EXPECT_EQ(map["layers"][0]["scale_registers"], 1);  // layerwise conv1
  EXPECT_EQ(map["layers"][1]["scale_registers"], 1);  // block:8x8 conv2: one block per fold
  EXPECT_EQ(map["layers"][2]["scale_registers"], 8);  // channelwise fc1: one per array column

  std::vector<double> top1;
  for (const char* mode : {"int", "fake"}) {
    const auto e = run_tilescale({"eval", "--bundle", bundle, "--dataset", "mnist", "--mode", mode,
                                  "--limit", "500", "--json"},
                                 dir.path());
    ASSERT_EQ(e.code, 0) << e.err;
    top1.push_back(nlohmann::json::parse(e.out)["top1"].get<double>());
  }
  EXPECT_EQ(top1[0], top1[1]);
  EXPECT_GT(top1[0], 0.95);

  const auto s =
      run_tilescale({"simulate", "--bundle", bundle, "--arch", kSource + "/configs/sa8x8_ws.json",
                     "--dataset", "mnist", "--images", "1", "--json"},
                    dir.path());
  EXPECT_EQ(s.code, 0) << s.err;
}

TEST(AutoGranularityCli, OneScaleRegisterPerFoldIsWhatMapReports) {
  TempDir dir;
  const std::string bundle = dir.path() + "/bundle";
  auto args = quantize_args(bundle);
  args.insert(args.end(), {"--auto-granularity", "--arch", kSource + "/configs/sa16x16_ws.json",
                           "--budget", "scale-regs=1", "--json"});
  const auto q = run_tilescale(args, dir.path());
  ASSERT_EQ(q.code, 0) << q.err;
  const auto report = nlohmann::json::parse(q.out);
  ASSERT_EQ(report["auto_granularity"].size(), 5u);
  const auto m = run_tilescale(
      {"map", "--bundle", bundle, "--arch", kSource + "/configs/sa16x16_ws.json", "--json"},
      dir.path());
  ASSERT_EQ(m.code, 0) << m.err;
  const auto map = nlohmann::json::parse(m.out);
  EXPECT_EQ(map["total"]["scale_registers"], 1);
  // Channelwise needs 16 per fold on this array, so the budget forced something coarser.
  bool coarser = false;
  for (const auto& l : report["auto_granularity"]) coarser |= l["granularity"] != "channel";
  EXPECT_TRUE(coarser);
}

TEST(AutoGranularityCli, BadOrImpossibleBudgetsExitTwo) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--budget", "scale-regs=1"}, "--arch: required with --auto-granularity"},
      {{"--arch", kSource + "/configs/sa16x16_ws.json"}, "--budget: required"},
      {{"--arch", kSource + "/configs/sa16x16_ws.json", "--budget", "regs=4"},
       "--budget: 'regs=4': expected scale-regs=R"},
      {{"--arch", kSource + "/configs/sa16x16_ws.json", "--budget", "scale-regs=0"},
       "no candidate granularity fits layer '/conv1/Conv'"},
  };
  for (const auto& [extra, expect] : cases) {
    SCOPED_TRACE(expect);
    TempDir dir;
    auto args = quantize_args(dir.path() + "/bundle");
    args.push_back("--auto-granularity");
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_tilescale(args, dir.path());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(expect));
    EXPECT_FALSE(test::exists(dir.path() + "/bundle"));
  }
}

}  // namespace
}  // namespace tilescale
