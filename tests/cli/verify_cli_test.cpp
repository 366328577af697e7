// `tilescale verify` as a real process: LeNet-5 (W4A8 channelwise) through the Verilated ts_top of
// sa8x8_ws, layers chained: 0 mismatches, RTL cycles == the mapper's on every layer and equal to
// what `tilescale map` reports, the documented JSON keys; the RTL's FST and the twin's VCD
// waveforms; and the refusals (exit 2): an arch without a Verilated build, a config whose widths
// the bundle exceeds, a waveform the model does not write; the SystemC twin alone and in lockstep
// with the RTL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/run_tilescale.h"
#include "support/test_files.h"

namespace tilescale {
namespace {

using test::run_tilescale;
using test::TempDir;
using ::testing::HasSubstr;

const std::string kSource = TILESCALE_SOURCE_DIR;
const std::string kSa8x8 = kSource + "/configs/sa8x8_ws.json";

class VerifyCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto r = test::quantize_lenet5("channel", dir_->path() + "/bundle", dir_->path());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string bundle() { return dir_->path() + "/bundle"; }
  static TempDir* dir_;
};
TempDir* VerifyCli::dir_ = nullptr;

TEST_F(VerifyCli, Lenet5OnSa8x8WsIsBitExactInMapperCycles) {
  TempDir t;
  const auto r = run_tilescale({"verify", "--bundle", bundle(), "--arch", kSa8x8, "--dataset",
                                "mnist", "--images", "1", "--json"},
                               t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"mismatches", "rtl_cycles", "systemc_cycles", "mapper_cycles", "top1",
                          "cycles_per_image", "stalls", "layers"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.at("mismatches").get<int64_t>(), 0);
  EXPECT_TRUE(j.at("systemc_cycles").is_null());  // --model rtl
  const int64_t rtl = j.at("rtl_cycles").get<int64_t>();
  EXPECT_GT(rtl, 0);
  EXPECT_EQ(rtl, j.at("mapper_cycles").get<int64_t>());
  EXPECT_EQ(j.at("cycles_per_image").get<int64_t>(), rtl);
  EXPECT_EQ(j.at("stalls").get<int64_t>(), 0);
  ASSERT_EQ(j.at("layers").size(), 5u);
  int64_t sum = 0;
  for (const auto& l : j.at("layers")) {
    SCOPED_TRACE(l.dump());
    EXPECT_FALSE(l.at("name").get<std::string>().empty());
    EXPECT_GT(l.at("rtl_cycles").get<int64_t>(), 0);
    EXPECT_EQ(l.at("rtl_cycles").get<int64_t>(), l.at("mapper_cycles").get<int64_t>());
    EXPECT_TRUE(l.at("systemc_cycles").is_null());
    EXPECT_EQ(l.at("mismatches").get<int64_t>(), 0);
    EXPECT_GT(l.at("outputs").get<int64_t>(), 0);
    sum += l.at("rtl_cycles").get<int64_t>();
  }
  EXPECT_EQ(sum, rtl);
  const double top1 = j.at("top1").get<double>();
  EXPECT_TRUE(top1 == 0.0 || top1 == 1.0);
  // The mapper's cycles are what `tilescale map` reports for the bundle (layer by layer).
  const auto m = run_tilescale({"map", "--bundle", bundle(), "--arch", kSa8x8, "--json"}, t.path());
  ASSERT_EQ(m.code, 0) << m.err;
  const auto mj = nlohmann::json::parse(m.out);
  EXPECT_EQ(mj.at("total").at("cycles").get<int64_t>(), rtl);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(mj.at("layers")[i].at("cycles").get<int64_t>(),
              j.at("layers")[i].at("mapper_cycles").get<int64_t>());
}

// A shift-only bundle (1-bit mantissas) on the two 4x4 builds: output-stationary, and
// weight-stationary with 42 accumulator words (the 784-pixel layer in 19 pixel tiles).
TEST_F(VerifyCli, ShiftOnlyBundleOnSa4x4OsAndWsIsBitExactInMapperCycles) {
  TempDir t;
  const auto q =
      run_tilescale({"quantize", "--model", kSource + "/models/lenet5_mnist.onnx", "--dataset",
                     "mnist", "--wbits", "4", "--granularity", "channel", "--search", "minmax",
                     "--calib", "8", "--scale-bits", "1", "--out", t.path() + "/shift"},
                    t.path());
  ASSERT_EQ(q.code, 0) << q.err;
  for (const char* arch : {"sa4x4_os", "sa4x4_ws"}) {
    SCOPED_TRACE(arch);
    const auto r =
        run_tilescale({"verify", "--bundle", t.path() + "/shift", "--arch",
                       kSource + "/configs/" + arch + ".json", "--dataset", "mnist", "--json"},
                      t.path());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("mismatches").get<int64_t>(), 0);
    EXPECT_GT(j.at("rtl_cycles").get<int64_t>(), 0);
    for (const auto& l : j.at("layers"))
      EXPECT_EQ(l.at("rtl_cycles").get<int64_t>(), l.at("mapper_cycles").get<int64_t>())
          << l.dump();
  }
}

// The chain runs on the simulated outputs: with layer 0's outputs corrupted after their check
// (test-only $TILESCALE_VERIFY_CORRUPT_LAYER), layer 0 still matches and the first mismatch is
// reported at layer 1 with its fold, pixel, channel and cycle; exit 1.
TEST_F(VerifyCli, ACorruptedLayerOutputIsCaughtAtTheNextLayer) {
  TempDir t;
  const auto r = run_tilescale({"verify", "--bundle", bundle(), "--arch", kSa8x8, "--dataset",
                                "mnist", "--images", "1", "--json"},
                               t.path(), {"TILESCALE_VERIFY_CORRUPT_LAYER=0"});
  ASSERT_EQ(r.code, 1) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("mismatches").get<int64_t>(), 0);
  EXPECT_EQ(j.at("layers")[0].at("mismatches").get<int64_t>(), 0);
  EXPECT_GT(j.at("layers")[1].at("mismatches").get<int64_t>(), 0);
  const std::string first = j.at("first_mismatch").get<std::string>();
  EXPECT_THAT(first, HasSubstr("/conv2/Conv"));
  for (const char* part : {"fold ", " pixel ", " channel ", ", cycle ", "golden"})
    EXPECT_THAT(first, HasSubstr(part));
  // The cycles do not depend on the data.
  EXPECT_EQ(j.at("rtl_cycles").get<int64_t>(), j.at("mapper_cycles").get<int64_t>());
}

TEST_F(VerifyCli, TraceWritesAnFstOfTheRtl) {
  TempDir t;
  const std::string fst = t.path() + "/run.fst";
  const auto r = run_tilescale({"verify", "--bundle", bundle(), "--arch", kSa8x8, "--dataset",
                                "mnist", "--images", "1", "--trace", fst},
                               t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bit-exact with the golden executor"));
  ASSERT_TRUE(std::filesystem::exists(fst));
  EXPECT_GT(std::filesystem::file_size(fst), 1000u);
  // An FST starts with its header block: type 0 (FST_BL_HDR), then the block length 329 as a
  // big-endian uint64 (gtkwave's fstapi.c).
  const std::string head = test::read_bytes(fst).substr(0, 9);
  ASSERT_EQ(head.size(), 9u);
  EXPECT_EQ(head[0], '\0');
  uint64_t len = 0;
  for (int i = 1; i < 9; ++i) len = len << 8 | static_cast<unsigned char>(head[i]);
  EXPECT_EQ(len, 329u);
  // Only the complete waveform is left, no temporary beside it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(t.path())) files += e.path() != fst;
  EXPECT_EQ(files, 0);
}

// The SystemC twin's waveform: a VCD (text) with ts_top's ports, the twin's internal signals and
// its registers; only the complete file is left.
TEST_F(VerifyCli, TraceWritesAVcdOfTheSystemcTwin) {
  TempDir t;
  const std::string vcd = t.path() + "/twin.vcd";
  const auto r = run_tilescale({"verify", "--bundle", bundle(), "--arch", kSa8x8, "--dataset",
                                "mnist", "--model", "systemc", "--trace", vcd},
                               t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bit-exact with the golden executor"));
  ASSERT_TRUE(std::filesystem::exists(vcd));
  const std::string text = test::read_bytes(vcd);
  EXPECT_GT(text.size(), 10000u);
  for (const char* part :
       {"$timescale",   "$enddefinitions", "clk_i",      "rst_ni",     "desc_valid_i",
        "desc_ready_o", "wgt_data_i",      "act_data_i", "scl_mant_i", "bias_data_i",
        "out_valid_o",  "out_ready_i",     "out_data_o", "out_mask_o", "busy_o",
        "stall_o",      "u_ctrl",          "busy_q",     "pe_7_7",     "psum_q",
        "u_edge",       "wide_q"})
    EXPECT_NE(text.find(part), std::string::npos) << part;  // not the whole file on a failure
  // Value changes follow the header: the simulation was sampled.
  EXPECT_GT(text.size(), text.find("$enddefinitions") + 1000);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(t.path())) files += e.path() != vcd;
  EXPECT_EQ(files, 0);
}

// Each model writes its own format: the RTL FST, the twin VCD; any other name is refused.
TEST_F(VerifyCli, TraceOfTheWrongFormatForTheModelIsRefused) {
  TempDir t;
  struct Case {
    const char* model;
    const char* file;
    const char* error;
  };
  for (const Case& c :
       {Case{"rtl", "x.vcd", "--trace: the VCD waveform is the SystemC twin's"},
        Case{"systemc", "x.fst", "--trace: the FST waveform is the Verilated RTL's"},
        Case{"both", "x.txt", "--trace: '"}}) {
    SCOPED_TRACE(c.file);
    const std::string path = t.path() + "/" + c.file;
    const auto r = run_tilescale({"verify", "--bundle", bundle(), "--arch", kSa8x8, "--dataset",
                                  "mnist", "--model", c.model, "--trace", path},
                                 t.path());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.error));
    EXPECT_TRUE(r.out.empty());
    EXPECT_FALSE(std::filesystem::exists(path));
  }
}

// A config no build Verilates (any name but the built ones; the slow build adds sa16x16_ws).
TEST_F(VerifyCli, ArchWithoutAVerilatedBuildNamesTheBuiltOnesAndHowToAddOne) {
  TempDir t;
  std::string cfg = test::read_bytes(kSa8x8);
  const std::string from = "\"sa8x8_ws\"";
  ASSERT_NE(cfg.find(from), std::string::npos) << cfg;
  cfg.replace(cfg.find(from), from.size(), "\"sa8x8_ws_unbuilt\"");
  const std::string path = t.path() + "/sa8x8_ws_unbuilt.json";
  test::write_bytes(path, cfg);
  const auto r = run_tilescale(
      {"verify", "--bundle", bundle(), "--arch", path, "--dataset", "mnist"}, t.path());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("config 'sa8x8_ws_unbuilt' has no Verilated ts_top in this build"));
  EXPECT_THAT(r.err, HasSubstr("sa8x8_ws"));
  EXPECT_THAT(r.err, HasSubstr("TILESCALE_VERIFY_CONFIGS"));
  EXPECT_THAT(r.err, HasSubstr("-DTILESCALE_SLOW_RTL=ON"));
  EXPECT_TRUE(r.out.empty());
}

TEST_F(VerifyCli, BundleWiderThanTheRtlIsRefused) {
  TempDir t;
  // sa8x8_ws with 2-bit weights: the bundle's 4-bit weights do not fit.
  std::string cfg = test::read_bytes(kSa8x8);
  const std::string from = "\"weight_bits\": 8";
  ASSERT_NE(cfg.find(from), std::string::npos) << cfg;
  cfg.replace(cfg.find(from), from.size(), "\"weight_bits\": 2");
  const std::string path = t.path() + "/sa8x8_ws.json";
  test::write_bytes(path, cfg);
  const auto r = run_tilescale(
      {"verify", "--bundle", bundle(), "--arch", path, "--dataset", "mnist"}, t.path());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(path + ": field 'weight_bits'"));
  EXPECT_THAT(r.err, HasSubstr("4-bit weights, the datapath takes 2"));
  EXPECT_TRUE(r.out.empty());
}

// The SystemC twin of ts_top (TsTopModel): alone, and beside the RTL in lockstep, where every
// output beat of the two (its lanes and the cycle it is taken) must agree.
TEST_F(VerifyCli, SystemcTwinAloneAndInLockstepMatchesTheRtlAndTheMapper) {
  TempDir t;
  auto run = [&](const char* model) {
    const auto r = run_tilescale({"verify", "--bundle", bundle(), "--arch", kSa8x8, "--dataset",
                                  "mnist", "--model", model, "--json"},
                                 t.path());
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  };
  const auto both = run("both");
  EXPECT_EQ(both.at("mismatches").get<int64_t>(), 0);
  EXPECT_EQ(both.at("model_differences").get<int64_t>(), 0);
  const int64_t mapper = both.at("mapper_cycles").get<int64_t>();
  EXPECT_EQ(both.at("rtl_cycles").get<int64_t>(), mapper);
  EXPECT_EQ(both.at("systemc_cycles").get<int64_t>(), mapper);
  for (const auto& l : both.at("layers")) {
    SCOPED_TRACE(l.dump());
    EXPECT_EQ(l.at("systemc_cycles").get<int64_t>(), l.at("rtl_cycles").get<int64_t>());
    EXPECT_EQ(l.at("model_differences").get<int64_t>(), 0);
  }
  const auto alone = run("systemc");
  EXPECT_EQ(alone.at("mismatches").get<int64_t>(), 0);
  EXPECT_TRUE(alone.at("rtl_cycles").is_null());
  EXPECT_EQ(alone.at("systemc_cycles").get<int64_t>(), mapper);
  EXPECT_EQ(alone.at("cycles_per_image").get<int64_t>(), mapper);
}

// A study's verify stage: each point's bundle through `tilescale verify` in a child process (one
// SystemC design per process). On sa4x4_ws (Verilated in this build) the RTL is bit-exact and its
// measured cycles per image equal the map stage's cycles; a renamed sa16x16_ws has no Verilated
// build (sa16x16_ws itself has one with -DTILESCALE_SLOW_RTL=ON), so its point records verify's
// refusal and the study goes on.
TEST_F(VerifyCli, AStudyVerifiesEachPointInAChildProcess) {
  TempDir t;
  std::string cfg = test::read_bytes(kSource + "/configs/sa16x16_ws.json");
  const std::string from = "\"sa16x16_ws\"";
  ASSERT_NE(cfg.find(from), std::string::npos) << cfg;
  cfg.replace(cfg.find(from), from.size(), "\"sa16x16_ws_unbuilt\"");
  const std::string unbuilt = t.path() + "/sa16x16_ws_unbuilt.json";
  test::write_bytes(unbuilt, cfg);
  const std::string study = t.path() + "/verify.json";
  test::write_bytes(study, R"({
    "models": [{"model": ")" + kSource +
                               R"(/models/lenet5_mnist.onnx", "dataset": "mnist"}],
    "quant": {"w_bits": 4, "granularity": "channel", "search": "minmax", "calib_images": 8},
    "archs": [")" + kSource + R"(/configs/sa4x4_ws.json", ")" +
                               unbuilt + R"("],
    "eval": {"images": 8, "verify": 1, "float_baseline": false}
  })");
  const auto r = run_tilescale({"sweep", "--config", study, "--out", t.path() + "/out",
                                "--no-timing", "--jobs", "1", "--threads", "1", "--quiet"},
                               t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<nlohmann::json> rows;
  std::istringstream lines(test::read_bytes(t.path() + "/out/results.jsonl"));
  for (std::string line; std::getline(lines, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  const nlohmann::json& built = rows[0]["arch"] == "sa4x4_ws" ? rows[0] : rows[1];
  const nlohmann::json& other = rows[0]["arch"] == "sa4x4_ws" ? rows[1] : rows[0];
  ASSERT_TRUE(built["error"].is_null()) << built["error"];
  EXPECT_EQ(built["verify_images"], 1);
  EXPECT_EQ(built["verify_mismatches"], 0);
  EXPECT_GT(built["verify_cycles"].get<int64_t>(), 0);
  EXPECT_EQ(built["verify_cycles"], built["cycles"]) << "RTL cycles per image == the mapper's";
  ASSERT_TRUE(other["error"].is_string());
  EXPECT_THAT(other["error"].get<std::string>(), HasSubstr("verify: exit 2"));
  EXPECT_THAT(other["error"].get<std::string>(), HasSubstr("sa16x16_ws_unbuilt"));
  EXPECT_TRUE(other["verify_cycles"].is_null());
  EXPECT_GT(other["cycles"].get<int64_t>(), 0) << "the map stage still ran";
}

}  // namespace
}  // namespace tilescale
