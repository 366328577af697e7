// `tilescale simulate` as a real process: the JSON report's documented keys and their consistency,
// the VCD trace, and bad input (bundle/arch mismatch, more images than the data set, is dataflow)
// exiting 2 with a message naming the option or file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/run_tilescale.h"
#include "support/test_files.h"

namespace tilescale {
namespace {

using test::run_tilescale;
using test::TempDir;
using test::write_bytes;
using ::testing::HasSubstr;

const std::string kSource = TILESCALE_SOURCE_DIR;

// A LeNet-5 W4A8 channelwise bundle (min-max search), made once for the suite.
class SimulateCli : public ::testing::Test {
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
TempDir* SimulateCli::dir_ = nullptr;

TEST_F(SimulateCli, JsonReportHasTheDocumentedKeysAndConsistentTotals) {
  TempDir t;
  const auto r =
      run_tilescale({"simulate", "--bundle", bundle(), "--arch", kSource + "/configs/sa8x8_ws.json",
                     "--dataset", "mnist", "--images", "2", "--json"},
                    t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("mismatches").get<int64_t>(), 0);
  EXPECT_EQ(j.at("images").get<int64_t>(), 2);
  int64_t sum = 0;
  for (const auto& l : j.at("layers")) {
    EXPECT_FALSE(l.at("name").get<std::string>().empty());
    EXPECT_EQ(l.at("cycles").get<int64_t>(), 2 * l.at("native_cycles").get<int64_t>());
    EXPECT_EQ(l.at("stalls").get<int64_t>(), 0);
    sum += l.at("cycles").get<int64_t>();
  }
  EXPECT_EQ(j.at("layers").size(), 5u);
  EXPECT_EQ(j.at("total_cycles").get<int64_t>(), sum);
  EXPECT_EQ(j.at("cycles_per_image").get<int64_t>(), sum / 2);
  EXPECT_GT(j.at("pe_cycles_per_s").get<double>(), 0.0);
  EXPECT_GE(j.at("top1").get<double>(), 0.0);
}

TEST_F(SimulateCli, TraceWritesAVcd) {
  TempDir t;
  const auto r = run_tilescale(
      {"simulate", "--bundle", bundle(), "--arch", kSource + "/configs/sa16x16_ws.json",
       "--dataset", "mnist", "--images", "1", "--trace", t.path() + "/run.vcd"},
      t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mismatches: 0"));
  const std::string vcd = test::read_bytes(t.path() + "/run.vcd");
  EXPECT_THAT(vcd, HasSubstr("$var"));
  EXPECT_THAT(vcd, HasSubstr("act_valid"));
}

// A CIM config runs on the SystemC CIM macro: every layer bit-exact with the golden executor with
// the config's ADCs in the loop, cycles per layer equal to the mapper's CIM prediction.
TEST_F(SimulateCli, CimConfigRunsTheCimMacroBitExactAtPredictedCycles) {
  TempDir t;
  const auto r = run_tilescale(
      {"simulate", "--bundle", bundle(), "--arch", kSource + "/configs/cim128_2b.json", "--dataset",
       "mnist", "--images", "2", "--json"},
      t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["arch"], "cim128_2b");
  EXPECT_EQ(j["mismatches"], 0);
  ASSERT_FALSE(j["layers"].empty());
  for (const auto& l : j["layers"]) {
    EXPECT_EQ(l["cycles_per_image"], l["native_cycles"]) << l["name"];
    EXPECT_GT(l["adc_conversions_per_image"].get<int64_t>(), 0) << l["name"];
  }
  // Energy per image (estimate): per layer at most what `map` estimates from its counts (every
  // input digit non-zero), the mapper's figure the same in both reports, the total the layers'.
  const auto m = run_tilescale(
      {"map", "--bundle", bundle(), "--arch", kSource + "/configs/cim128_2b.json", "--json"},
      t.path());
  ASSERT_EQ(m.code, 0) << m.err;
  const auto mj = nlohmann::json::parse(m.out);
  ASSERT_EQ(mj["layers"].size(), j["layers"].size());
  double sum = 0, map_sum = 0;
  for (std::size_t i = 0; i < j["layers"].size(); ++i) {
    const auto& l = j["layers"][i];
    const double e = l["energy_pj_per_image"]["total"].get<double>();
    const double me = mj["layers"][i]["energy_pj"]["total"].get<double>();
    EXPECT_GT(e, 0) << l["name"];
    EXPECT_LE(e, me) << l["name"];
    EXPECT_DOUBLE_EQ(l["map_energy_pj_per_image"].get<double>(), me) << l["name"];
    EXPECT_EQ(l["energy_events_all_images"]["adc_conversions"].get<int64_t>(),
              2 * mj["layers"][i]["energy_events"]["adc_conversions"].get<int64_t>());
    sum += e;
    map_sum += me;
  }
  EXPECT_NEAR(j["energy_pj_per_image"]["total"].get<double>(), sum, 1e-6 * sum);
  EXPECT_NEAR(mj["total"]["energy_pj"]["total"].get<double>(), map_sum, 1e-6 * map_sum);
}

// The energy is an optional estimate: ADC widths beyond the table (1..10 bits) still simulate, and
// the report says why it has no energy instead of failing after the run.
TEST_F(SimulateCli, CimAdcWidthBeyondTheEnergyTableSimulatesWithoutEnergy) {
  TempDir t;
  nlohmann::json cfg = nlohmann::json::parse(test::read_bytes(kSource + "/configs/cim128_2b.json"));
  cfg["adc_bits"] = 12;
  write_bytes(t.path() + "/adc12.json", cfg.dump());
  const auto r =
      run_tilescale({"simulate", "--bundle", bundle(), "--arch", t.path() + "/adc12.json",
                     "--dataset", "mnist", "--images", "1", "--json"},
                    t.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mismatches"], 0);
  EXPECT_TRUE(j["energy_pj_per_image"].is_null());
  EXPECT_THAT(j["energy_note"].get<std::string>(), HasSubstr("cim_energy_adc_pj_12b"));
}

// Regression: the fold builder got 0 rows from a CIM config and grew until memory ran out. A bad
// config is refused first: exit 2 naming the file and the field, before the bundle is even read
// (a bundle path that does not exist is not the error reported).
TEST_F(SimulateCli, BadCimConfigIsRefusedBeforeAnyWork) {
  TempDir t;
  nlohmann::json cfg = nlohmann::json::parse(test::read_bytes(kSource + "/configs/cim128_2b.json"));
  cfg["adc_bits"] = 0;
  write_bytes(t.path() + "/adc0.json", cfg.dump());
  const auto r = run_tilescale({"simulate", "--bundle", t.path() + "/no_such_bundle", "--arch",
                                t.path() + "/adc0.json", "--dataset", "mnist"},
                               t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("adc0.json"));
  EXPECT_THAT(r.err, HasSubstr("adc_bits"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("no_such_bundle")));
}

TEST_F(SimulateCli, BadInputExitsTwo) {
  TempDir t;
  // More images than the test split holds.
  auto r =
      run_tilescale({"simulate", "--bundle", bundle(), "--arch", kSource + "/configs/sa8x8_ws.json",
                     "--dataset", "mnist", "--images", "20000"},
                    t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--images"));
  // A datapath narrower than the bundle's weights.
  nlohmann::json a = nlohmann::json::parse(test::read_bytes(kSource + "/configs/sa8x8_ws.json"));
  a["weight_bits"] = 2;
  write_bytes(t.path() + "/narrow.json", a.dump());
  r = run_tilescale(
      {"simulate", "--bundle", bundle(), "--arch", t.path() + "/narrow.json", "--dataset", "mnist"},
      t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("narrow.json"));
  // Input-stationary arrays are not modelled yet.
  a = nlohmann::json::parse(test::read_bytes(kSource + "/configs/sa8x8_ws.json"));
  a["dataflow"] = "is";
  write_bytes(t.path() + "/is.json", a.dump());
  r = run_tilescale(
      {"simulate", "--bundle", bundle(), "--arch", t.path() + "/is.json", "--dataset", "mnist"},
      t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("is.json"));
  // An unknown alignment, named with the flag and the choices.
  r = run_tilescale({"simulate", "--bundle", bundle(), "--arch", kSource + "/configs/sa8x8_ws.json",
                     "--dataset", "mnist", "--align", "loose"},
                    t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--align: unknown alignment 'loose' (allowed: strict, pad)"));
  // Missing options.
  r = run_tilescale({"simulate", "--arch", kSource + "/configs/sa8x8_ws.json"}, t.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bundle"));
}

// The same width check as `tilescale map` (map::check_accumulator_bits): an acc_bits too narrow
// for a layer's fold sums is refused by both with the same message and exit 2. The test-only
// $TILESCALE_TEST_ALLOW_NARROW_ACC=1 lets simulate through; its partial sums then wrap at acc_bits,
// so outputs differ from the golden executor (exit 1, mismatches counted).
TEST_F(SimulateCli, NarrowAccumulatorIsRefusedAsMapRefusesItUnlessTheTestOverride) {
  TempDir t;
  nlohmann::json a = nlohmann::json::parse(test::read_bytes(kSource + "/configs/sa8x8_ws.json"));
  a["acc_bits"] = 12;
  const std::string arch = t.path() + "/acc12.json";
  write_bytes(arch, a.dump());
  const auto m = run_tilescale({"map", "--bundle", bundle(), "--arch", arch}, t.path());
  const std::vector<std::string> sim_args = {"simulate", "--bundle",  bundle(), "--arch",
                                             arch,       "--dataset", "mnist",  "--images",
                                             "1",        "--json"};
  const auto s = run_tilescale(sim_args, t.path());
  EXPECT_EQ(m.code, 2) << m.err;
  EXPECT_EQ(s.code, 2) << s.err;
  // The same sentence from both commands: from the file name to the end of its line.
  const auto sentence = [](const std::string& err) {
    const auto b = err.find("acc12.json: layer '");
    return b == std::string::npos ? std::string() : err.substr(b, err.find('\n', b) - b);
  };
  EXPECT_THAT(sentence(m.err), HasSubstr("a fold's column sum needs "));
  EXPECT_THAT(sentence(m.err), HasSubstr("acc_bits is 12"));
  EXPECT_EQ(sentence(s.err), sentence(m.err));
  const auto o = run_tilescale(sim_args, t.path(), {"TILESCALE_TEST_ALLOW_NARROW_ACC=1"});
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_THAT(o.err, HasSubstr("TILESCALE_TEST_ALLOW_NARROW_ACC=1 (test only)"));
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_GT(j.at("mismatches").get<int64_t>(), 0) << "12-bit partial sums did not wrap";
}

}  // namespace
}  // namespace tilescale
