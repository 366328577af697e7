// Study files: parsing, validation (unknown keys named with the file), expansion into points and
// quantizations, generated arch configs; the quantization options table round-trips.

#include "tilescale/study/study.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/quant/options_json.h"
#include "tilescale/study/study_run.h"

namespace tilescale::study {
namespace {

using ojson = nlohmann::ordered_json;
const std::string kSrc = TILESCALE_SOURCE_DIR;

ojson tiny() {
  return ojson::parse(R"({
    "name": "t",
    "models": [{"model": "models/lenet5_mnist.onnx", "dataset": "mnist"}],
    "quant": {"w_bits": [4, 3], "granularity": ["layer", "block:4x8"], "search": "minmax"},
    "archs": ["configs/sa8x8_ws.json",
              {"config": "configs/sa8x8_ws.json", "vary": {"rows": [4, 16], "dataflow": "os"}}],
    "eval": {"images": 16}
  })");
}

std::string error_of(const ojson& doc) {
  try {
    Study::parse(doc, "study.json", kSrc);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Study, ExpandsModelsTimesQuantizationsTimesArchsAfterOneFloatRow) {
  const Study s = Study::parse(tiny(), "study.json", kSrc);
  ASSERT_EQ(s.quants.size(), 4u) << "2 w_bits x 2 granularities";
  ASSERT_EQ(s.archs.size(), 3u) << "one file + 2 generated";
  EXPECT_EQ(s.archs[1].name, "sa8x8_ws-rows4");
  EXPECT_EQ(s.archs[2].name, "sa8x8_ws-rows16");
  EXPECT_EQ(s.archs[2].config.rows, 16);
  EXPECT_EQ(s.archs[2].config.dataflow, map::Dataflow::OS) << "a scalar in vary is set, not named";
  EXPECT_TRUE(s.archs[1].generated);
  EXPECT_FALSE(s.archs[0].generated);
  ASSERT_EQ(s.points.size(), 1u + 4u * 3u);
  EXPECT_EQ(s.points[0].quant, -1) << "float baseline first";
  for (std::size_t i = 0; i < s.points.size(); ++i) EXPECT_EQ(s.points[i].id, int64_t(i));
  // First key outermost: w_bits 4 with layer, then block:4x8; then w_bits 3.
  EXPECT_EQ(s.quants[0].options.w_bits, 4);
  EXPECT_EQ(s.quants[1].options.granularity.str(), "block:4x8");
  EXPECT_EQ(s.quants[2].options.w_bits, 3);
  EXPECT_EQ(s.points[1].quant, 0);
  EXPECT_EQ(s.points[3].arch, 2);
  EXPECT_EQ(s.points[4].quant, 1);
  EXPECT_NE(s.quants[0].key, s.quants[1].key);
  EXPECT_EQ(s.quants[0].options.search, quant::SearchMethod::Minmax);
}

TEST(Study, TheManifestIsTheSameForTheSameDocumentAndDiffersForAnother) {
  const std::string a = Study::parse(tiny(), "study.json", kSrc).manifest().dump();
  EXPECT_EQ(a, Study::parse(tiny(), "other.json", kSrc).manifest().dump());
  ojson d = tiny();
  d["eval"]["images"] = 32;
  EXPECT_NE(a, Study::parse(d, "study.json", kSrc).manifest().dump());
}

TEST(Study, AListOfQuantObjectsIsAListAndRepeatsRunOnce) {
  ojson d = tiny();
  d["quant"] = ojson::parse(R"([{"granularity": "layer"}, {"granularity": "channel", "w_bits": 3},
                                {"granularity": "layer"}])");
  const Study s = Study::parse(d, "study.json", kSrc);
  ASSERT_EQ(s.quants.size(), 2u);
  EXPECT_EQ(s.quants[1].options.w_bits, 3);
}

TEST(Study, QuantKeyDependsOnEveryOptionButNotOnThreads) {
  quant::QuantOptions a, b;
  b.threads = 7;
  EXPECT_EQ(quant::quant_options_json(a).dump(), quant::quant_options_json(b).dump());
  for (const std::string& key : quant::quant_option_keys()) {
    quant::QuantOptions c;
    const ojson before = quant::quant_options_json(c)[key];
    // Every option set from its own JSON value round-trips.
    quant::set_quant_option(c, key, nlohmann::json(before));
    EXPECT_EQ(quant::quant_options_json(c)[key], before) << key;
  }
}

// The study files the docs cite parse and expand to the grid they claim (docs/results.md 1c,
// docs/study_ptqsl_seeds/README.md): 3 models x 3 widths x (block:16x16 x 3 reorders + layer and
// channel + auto x 2 budgets x 3 reorders + 4 block sizes x 3 reorders) x 3 seeds.
TEST(Study, TheShippedStudyFilesExpandToTheirDocumentedGrids) {
  auto load = [](const std::string& name) {
    return Study::parse(ojson::parse(read_file(kSrc + "/studies/" + name)), name,
                        kSrc + "/studies");
  };
  const Study seeds = load("ptqsl_seeds.json");
  EXPECT_EQ(seeds.quants.size(), 3u * 3u * (3u + 2u + 2u * 3u + 4u * 3u) * 3u);
  int auto_reordered = 0;
  for (const auto& q : seeds.quants)
    auto_reordered += q.is_auto() && q.options.reorder != quant::ReorderMethod::None;
  EXPECT_EQ(auto_reordered, 3 * 3 * 2 * 2 * 3);
  EXPECT_EQ(load("resnet8_granularity.json").quants.size(), 54u) << "docs/study_resnet8/README.md";
  EXPECT_GT(load("bench_points.json").quants.size(), 0u);
}

TEST(Study, AutoGranularityNeedsArchAndBudgetAndKeysItsQuantizationByThem) {
  ojson d = tiny();
  d["quant"] =
      ojson::parse(R"({"granularity": ["channel", "auto"], "auto_arch": "configs/sa16x16_ws.json",
                                "auto_budget": ["scale-regs=1", "scale-regs=4"]})");
  const Study s = Study::parse(d, "study.json", kSrc);
  // The budget axis does not multiply the channel setting, which ignores it.
  ASSERT_EQ(s.quants.size(), 3u);
  EXPECT_FALSE(s.quants[0].is_auto());
  EXPECT_EQ(s.quants[0].granularity_label(), "channel");
  EXPECT_EQ(s.quants[1].granularity_label(), "auto:scale-regs=1@sa16x16_ws");
  EXPECT_EQ(s.quants[2].granularity_label(), "auto:scale-regs=4@sa16x16_ws");
  EXPECT_EQ(s.quants[1].auto_arch.rows, 16);
  EXPECT_NE(s.quants[1].key, s.quants[2].key);
  EXPECT_NE(s.quants[0].key, s.quants[1].key);
  // A plain setting keeps the key it had before auto existed (existing caches stay valid).
  ojson plain = tiny();
  plain["quant"] = ojson::parse(R"({"granularity": "channel"})");
  EXPECT_EQ(Study::parse(plain, "study.json", kSrc).quants[0].key, s.quants[0].key);
  EXPECT_EQ(s.manifest()["quantizations"][2]["auto"]["budget"], "scale-regs=4");
  // Another arch file with other bytes gives another key.
  ojson other = d;
  other["quant"]["auto_arch"] = "configs/sa8x8_ws.json";
  EXPECT_NE(Study::parse(other, "study.json", kSrc).quants[1].key, s.quants[1].key);
}

class StudyErrors : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(StudyErrors, NameTheFileAndTheKey) {
  const auto& [patch, expect] = GetParam();
  ojson d = tiny();
  d.merge_patch(ojson::parse(patch));
  const std::string e = error_of(d);
  EXPECT_NE(e.find("study.json"), std::string::npos) << e;
  EXPECT_NE(e.find(expect), std::string::npos) << e;
}

INSTANTIATE_TEST_SUITE_P(
    Bad, StudyErrors,
    ::testing::Values(
        std::make_pair(R"({"modles": []})", "unknown key 'modles'"),
        std::make_pair(R"({"quant": {"wbits": 4}})", "quant: unknown key 'wbits'"),
        std::make_pair(R"({"quant": {"w_bits": 9}})", "9 is outside 2..8"),
        std::make_pair(R"({"quant": {"granularity": ["tiles"]}})", "unknown granularity 'tiles'"),
        std::make_pair(R"({"quant": {"w_bits": []}})", "the list is empty"),
        std::make_pair(R"({"quant": {"granularity": "block:999x4"}})", "larger than every layer"),
        std::make_pair(R"({"eval": {"simulated": 2}})", "eval: unknown key 'simulated'"),
        std::make_pair(R"({"eval": {"images": -1}})", "eval.images"),
        std::make_pair(R"({"eval": {"align": "loose"}})", "eval.align"),
        std::make_pair(R"({"archs": [{"config": "configs/sa8x8_ws.json", "vary": {"rowz": [2]}}]})",
                       "rowz"),
        std::make_pair(R"({"archs": [{"config": "configs/sa8x8_ws.json", "vary": {"rows": [0]}}]})",
                       "rows"),
        std::make_pair(R"({"archs": ["configs/sa8x8_ws.json", "configs/sa8x8_ws.json"]})",
                       "two configs are named 'sa8x8_ws'"),
        std::make_pair(R"({"models": [{"model": "models/lenet5_mnist.onnx", "dataset": "cifar"}]})",
                       "models[0].dataset"),
        std::make_pair(R"({"schema_version": 3})", "schema_version"),
        std::make_pair(R"({"quant": {"granularity": "auto", "auto_budget": "scale-regs=1"}})",
                       "needs \"auto_arch\" and \"auto_budget\""),
        std::make_pair(R"({"quant": {"granularity": "layer", "auto_budget": "scale-regs=1"}})",
                       "go with \"granularity\": \"auto\""),
        std::make_pair(R"({"quant": {"granularity": "auto", "auto_budget": "regs=1",
                                     "auto_arch": "configs/sa8x8_ws.json"}})",
                       "auto_budget"),
        std::make_pair(R"({"quant": {"granularity": "auto", "auto_budget": "scale-regs=1",
                                     "auto_arch": "configs/nope.json"}})",
                       "nope.json")));

}  // namespace
}  // namespace tilescale::study
