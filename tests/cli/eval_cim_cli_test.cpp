// `tilescale eval --arch cim.json --mode int`: the golden executor with the CIM ADCs in the loop
// (quant/adc.h). A lossless ADC gives byte-identical logits to the ideal integer executor; a narrow
// one changes them; a config of the wrong kind, a bad ADC width or --arch outside the int mode
// exits 2 naming the culprit and writes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/run_tilescale.h"
#include "support/test_files.h"

namespace tilescale {
namespace {

using test::exists;
using test::read_bytes;
using test::run_tilescale;
using test::TempDir;
using test::write_bytes;
using ::testing::HasSubstr;

const std::string kSource = TILESCALE_SOURCE_DIR;

// A LeNet-5 W4A8 block:16x16 bundle (min-max search), made once for the suite.
class EvalCimCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto r = test::quantize_lenet5("block:16x16", dir_->path() + "/bundle", dir_->path());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string bundle() { return dir_->path() + "/bundle"; }
  // configs/cim128_2b.json with adc_bits replaced, written into t.
  static std::string cim_config(const TempDir& t, int adc_bits) {
    nlohmann::json j = nlohmann::json::parse(read_bytes(kSource + "/configs/cim128_2b.json"));
    j["adc_bits"] = adc_bits;
    j["name"] = "cim_adc" + std::to_string(adc_bits);
    const std::string path = t.file("cim_adc" + std::to_string(adc_bits) + ".json");
    write_bytes(path, j.dump());
    return path;
  }
  static test::Outcome eval(const TempDir& t, const std::string& logits,
                            const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"eval", "--bundle",  bundle(),        "--mode",
                                     "int",  "--dataset", "mnist",         "--limit",
                                     "48",   "--json",    "--dump-logits", logits};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_tilescale(args, t.path());
  }
  static TempDir* dir_;
};
TempDir* EvalCimCli::dir_ = nullptr;

TEST_F(EvalCimCli, LosslessAdcIsByteIdenticalToTheIdealIntegerExecutor) {
  TempDir t;
  const auto ideal = eval(t, t.file("ideal.npy"), {});
  ASSERT_EQ(ideal.code, 0) << ideal.err;
  // 128 rows x 3 (2-bit cells) x 1 (1 input bit) = 384 <= 511: 9 bits never clip.
  const auto cim = eval(t, t.file("cim9.npy"), {"--arch", cim_config(t, 9)});
  ASSERT_EQ(cim.code, 0) << cim.err;
  EXPECT_EQ(read_bytes(t.file("cim9.npy")), read_bytes(t.file("ideal.npy")));
  const auto j = nlohmann::json::parse(cim.out);
  EXPECT_EQ(j["arch"], "cim_adc9");
  EXPECT_THAT(j["adc"].get<std::string>(), HasSubstr("adc_bits 9 clip"));
  EXPECT_EQ(j["correct"], nlohmann::json::parse(ideal.out)["correct"]);
}

TEST_F(EvalCimCli, NarrowAdcChangesTheLogits) {
  TempDir t;
  ASSERT_EQ(eval(t, t.file("ideal.npy"), {}).code, 0);
  const auto cim = eval(t, t.file("cim3.npy"), {"--arch", cim_config(t, 3)});
  ASSERT_EQ(cim.code, 0) << cim.err;
  EXPECT_NE(read_bytes(t.file("cim3.npy")), read_bytes(t.file("ideal.npy")));
}

TEST_F(EvalCimCli, BadArchExitsTwoAndWritesNothing) {
  TempDir t;
  const std::string logits = t.file("logits.npy");
  auto r = eval(t, logits, {"--arch", kSource + "/configs/sa8x8_ws.json"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("sa8x8_ws.json"));
  EXPECT_THAT(r.err, HasSubstr("needs a 'cim' config"));
  for (const int bits : {0, 17}) {
    r = eval(t, logits, {"--arch", cim_config(t, bits)});
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("adc_bits"));
  }
  // A macro whose datapath is narrower than the bundle's 4-bit weights.
  nlohmann::json narrow = nlohmann::json::parse(read_bytes(kSource + "/configs/cim128_2b.json"));
  narrow["weight_bits"] = 2;
  write_bytes(t.file("narrow.json"), narrow.dump());
  r = eval(t, logits, {"--arch", t.file("narrow.json")});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("narrow.json"));
  r = run_tilescale({"eval", "--bundle", bundle(), "--mode", "fake", "--dataset", "mnist",
                     "--limit", "4", "--arch", cim_config(t, 6), "--dump-logits", logits},
                    t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--arch"));
  EXPECT_FALSE(exists(logits));
}

// quantize --arch cim.json: the output search runs through the ADCs, the bundle records them
// (options.adc), --granularity xbar resolves to one scale per crossbar and passes --align strict,
// and eval reports what the bundle was searched for.
TEST_F(EvalCimCli, QuantizeArchRecordsTheAdcSearchAndXbarResolvesFromTheCrossbar) {
  TempDir t;
  const std::string out = t.file("aware");
  const auto q = run_tilescale({"quantize",
                                "--model",
                                kSource + "/models/lenet5_mnist.onnx",
                                "--dataset",
                                "mnist",
                                "--wbits",
                                "4",
                                "--granularity",
                                "xbar",
                                "--arch",
                                cim_config(t, 5),
                                "--align",
                                "strict",
                                "--calib",
                                "4",
                                "--calib-positions",
                                "64",
                                "--grid-points",
                                "8",
                                "--rounds",
                                "1",
                                "--out",
                                out,
                                "--json"},
                               t.path());
  ASSERT_EQ(q.code, 0) << q.err;
  const auto qj = nlohmann::json::parse(q.out);
  EXPECT_EQ(qj["granularity"], "xbar:64x128");  // 128 columns / 2 cells per 4-bit weight
  EXPECT_THAT(qj["adc"].get<std::string>(), HasSubstr("adc_bits 5 clip"));
  const auto man = nlohmann::json::parse(read_bytes(out + "/manifest.json"));
  EXPECT_EQ(man["options"]["adc"]["adc_bits"], 5);
  EXPECT_EQ(man["options"]["adc"]["xbar_rows"], 128);
  EXPECT_EQ(man["options"]["adc"]["adc_range"], "clip");
  // The same macro: no note; another: a note, and the report names what it was searched for.
  auto e = run_tilescale({"eval", "--bundle", out, "--mode", "int", "--dataset", "mnist", "--limit",
                          "8", "--json", "--arch", cim_config(t, 5)},
                         t.path());
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(nlohmann::json::parse(e.out)["adc_searched"].get<std::string>(),
              HasSubstr("adc_bits 5"));
  EXPECT_THAT(e.err, ::testing::Not(HasSubstr("note:")));
  e = run_tilescale({"eval", "--bundle", out, "--mode", "int", "--dataset", "mnist", "--limit", "8",
                     "--arch", cim_config(t, 7)},
                    t.path());
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.err, HasSubstr("was searched for CIM ADCs"));
  // --adc-search off: the same arch, no ADC in the bundle.
  const auto off = run_tilescale(
      {"quantize", "--model", kSource + "/models/lenet5_mnist.onnx", "--dataset", "mnist",
       "--wbits", "4", "--granularity", "xbar", "--arch", cim_config(t, 5), "--adc-search", "off",
       "--search", "minmax", "--calib", "4", "--out", t.file("plain")},
      t.path());
  ASSERT_EQ(off.code, 0) << off.err;
  EXPECT_FALSE(
      nlohmann::json::parse(read_bytes(t.file("plain") + "/manifest.json"))["options"].contains(
          "adc"));
}

}  // namespace
}  // namespace tilescale
