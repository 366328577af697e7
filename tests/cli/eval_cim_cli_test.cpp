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

}  // namespace
}  // namespace tilescale
