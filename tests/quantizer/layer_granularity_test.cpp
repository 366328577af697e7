// Per-layer granularity in the library: the JSON file reader's errors, per-layer grids through
// quantize, the bundle's format version 2 round trip, version 1 bundles (a fixture written by the
// version-1 build) still read with the same integer outputs, and the budgeted choice on given
// costs.
#include "tilescale/quant/layer_granularity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/expect_input_error.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/core/npy.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/auto_granularity.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
const std::string kSource = TILESCALE_SOURCE_DIR;
const std::string kLenet = kSource + "/models/lenet5_mnist.onnx";

class Tmp {
 public:
  Tmp() {
    std::string t = ::testing::TempDir() + "tilescale_lg_XXXXXX";
    if (::mkdtemp(t.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << t;
    path_ = t;
  }
  ~Tmp() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(LayerGranularityFile, ReadsLayerNamesAndGranularities) {
  Tmp t;
  const auto m = read_layer_granularity(
      t.file("a.json", R"({"/conv1/Conv": "layer", "/fc1/Gemm": "block:16x32"})"));
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at("/conv1/Conv").str(), "layer");
  EXPECT_EQ(m.at("/fc1/Gemm").str(), "block:16x32");
}

TEST(LayerGranularityFile, ErrorsNameTheFileAndTheProblem) {
  Tmp t;
  const std::pair<std::string, std::string> cases[] = {
      {"{", "not valid JSON"},
      {"\"channel\"", "expected one JSON object"},
      {R"({"/conv1/Conv": ["channel"]})", "layer '/conv1/Conv': the granularity is not a string"},
      {R"({"/conv1/Conv": "block:0x4"})", "layer '/conv1/Conv': "},
  };
  for (const auto& [text, expect] : cases) {
    const std::string path = t.file("bad.json", text);
    const std::string msg = error_of([&] { read_layer_granularity(path); });
    EXPECT_THAT(msg, HasSubstr(path)) << text;
    EXPECT_THAT(msg, HasSubstr(expect)) << text;
  }
  EXPECT_THAT(error_of([&] { read_layer_granularity(t.path() + "/missing.json"); }),
              HasSubstr("missing.json"));
  const model::Graph g = model::import_onnx(kLenet);
  const std::string msg = error_of([&] {
    check_layer_granularity(g, {{"/relu/Relu", Granularity::parse("channel")}}, "per.json");
  });
  EXPECT_THAT(msg, HasSubstr("per.json"));
  EXPECT_THAT(msg, HasSubstr("'/relu/Relu' is not a Conv/Gemm layer"));
  EXPECT_THAT(msg, HasSubstr("/conv1/Conv, /conv2/Conv, /fc1/Gemm, /fc2/Gemm, /fc3/Gemm"));
}

QuantOptions lenet_options() {
  QuantOptions o;
  o.granularity = Granularity::parse("block:8x8");
  o.layer_granularity = {{"/conv1/Conv", Granularity::parse("layer")},
                         {"/fc1/Gemm", Granularity::parse("channel")}};
  o.search = SearchMethod::Minmax;
  o.calib_images = 8;
  o.threads = 2;
  return o;
}

std::vector<float> test_images(int64_t n) {
  const Dataset d = load_named("mnist", "test", default_data_dir());
  std::vector<float> x(static_cast<std::size_t>(n * d.image_size()));
  d.fill_batch(0, n, x.data());
  return x;
}

std::vector<float> int_logits(const QuantizedModel& m, const std::vector<float>& x, int64_t n) {
  std::vector<float> y(static_cast<std::size_t>(n * 10));
  IntExecutor(m, 2).run(x.data(), n, y.data());
  return y;
}

TEST(LayerGranularityBundle, QuantizeGivesEachLayerItsGridAndVersion2RoundTrips) {
  const model::Graph g = model::import_onnx(kLenet);
  const QuantizedModel m =
      quantize(g, lenet_options(), load_named("mnist", "train", default_data_dir()));
  const std::vector<std::string> want = {"layer", "block:8x8", "channel", "block:8x8", "block:8x8"};
  ASSERT_EQ(m.layers.size(), want.size());
  for (std::size_t l = 0; l < want.size(); ++l) EXPECT_EQ(m.layers[l].granularity.str(), want[l]);
  EXPECT_EQ(m.layers[0].grid.num_blocks(), 1);
  EXPECT_EQ(m.layers[2].grid.num_blocks(), 120);
  EXPECT_EQ(m.layers[1].grid.num_blocks(), 2 * 1);  // conv2: 16 outputs x 6 inputs in 8x8 blocks

  Tmp t;
  const std::string dir = t.path() + "/b";
  std::ifstream in(kLenet, std::ios::binary);
  const std::string onnx((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bundle(m, onnx, dir);
  const auto manifest = nlohmann::json::parse(std::ifstream(dir + "/manifest.json"));
  EXPECT_EQ(manifest["format_version"], 2);
  const QuantizedModel r = read_bundle(dir);
  for (std::size_t l = 0; l < want.size(); ++l) EXPECT_EQ(r.layers[l].granularity.str(), want[l]);
  EXPECT_EQ(r.options.layer_granularity.size(), 2u);
  const auto x = test_images(64);
  EXPECT_EQ(int_logits(r, x, 64), int_logits(m, x, 64));

  // The fake-quant graph (what --export-onnx writes) carries the per-layer grids: its top-1
  // equals the integer path's on these images.
  const model::Graph fq = make_fake_quant_graph(r);
  std::vector<float> yf(64 * 10);
  model::FloatExecutor(fq, {2}).run(x.data(), 64, yf.data());
  const auto yi = int_logits(r, x, 64);
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(std::max_element(yf.begin() + i * 10, yf.begin() + i * 10 + 10) - yf.begin(),
              std::max_element(yi.begin() + i * 10, yi.begin() + i * 10 + 10) - yi.begin())
        << "image " << i;
}

// A copy of the version-1 fixture with models/lenet5_mnist.onnx beside it.
std::string v1_copy(const Tmp& t) {
  const std::string dir = t.path() + "/v1";
  fs::copy(kSource + "/tests/quantizer/fixtures/bundle_v1_lenet5", dir);
  fs::copy_file(kLenet, dir + "/model.onnx");
  return dir;
}

TEST(LayerGranularityBundle, Version1FixtureStillReadsWithTheSameIntegerOutputs) {
  Tmp t;
  const std::string dir = v1_copy(t);
  const QuantizedModel m = read_bundle(dir);
  EXPECT_TRUE(m.options.layer_granularity.empty());
  for (const LayerQuant& l : m.layers) EXPECT_EQ(l.granularity.str(), "block:16x16");
  const NpyArray want =
      read_npy(kSource + "/tests/quantizer/fixtures/bundle_v1_lenet5_int_logits64.npy");
  ASSERT_EQ(want.shape, (std::vector<int64_t>{64, 10}));
  EXPECT_EQ(int_logits(m, test_images(64), 64), want.data);
}

TEST(LayerGranularityBundle, Version1WithDifferingLayerGranularityIsRefused) {
  Tmp t;
  const std::string dir = v1_copy(t);
  const std::string path = dir + "/manifest.json";
  auto j = nlohmann::ordered_json::parse(std::ifstream(path));
  j["layers"][1]["granularity"] = "channel";
  std::ofstream(path) << j.dump(2);
  const std::string msg = error_of([&] { read_bundle(dir); });
  EXPECT_THAT(msg, HasSubstr("manifest.json"));
  EXPECT_THAT(msg, HasSubstr("format_version 1 has no per-layer granularity"));
  j["format_version"] = 3;
  std::ofstream(path) << j.dump(2);
  EXPECT_THAT(error_of([&] { read_bundle(dir); }), HasSubstr("3 is not supported"));
}

// LeNet-5, its options without per-layer granularity, the MNIST training split (calibration), and
// the candidates' costs as choose_layer_granularity() takes them.
struct AutoCase {
  model::Graph g = model::import_onnx(kLenet);
  QuantOptions o = [] {
    QuantOptions o = lenet_options();
    o.layer_granularity.clear();
    return o;
  }();
  Dataset train = load_named("mnist", "train", default_data_dir());
};

std::vector<Granularity> parse_all(const std::vector<std::string>& texts) {
  std::vector<Granularity> out;
  for (const auto& t : texts) out.push_back(Granularity::parse(t));
  return out;
}

GranularityCost fitting(int64_t scale_registers = 0) {
  GranularityCost c;
  c.fits = true;
  c.scale_registers = scale_registers;
  return c;
}

GranularityCost refused(const std::string& why) {
  GranularityCost c;
  c.why = why;
  return c;
}

TEST(AutoGranularity, PicksTheLeastErrorCandidateThatFits) {
  const AutoCase t;
  const auto& [g, o, train] = t;
  const std::vector<Granularity> cand = parse_all({"channel", "block:16x16", "layer"});
  const GranularityCost fit = fitting(), no = refused("too many");
  // Everything fits: channelwise is never less accurate than one scale per layer.
  std::vector<std::vector<GranularityCost>> cost(5, {fit, fit, fit});
  auto all = choose_layer_granularity(g, o, train, cand, cost);
  for (const auto& c : all) {
    EXPECT_LE(c.error[0], c.error[2]) << c.layer;
    // channel and block:16x16 refine layer: each is scored by the lesser of its error and
    // layer's; the pick has the least score and the least error of all (channel <= layer here).
    EXPECT_EQ(c.score[0], std::min(c.error[0], c.error[2])) << c.layer;
    EXPECT_EQ(c.score[1], std::min(c.error[1], c.error[2])) << c.layer;
    EXPECT_EQ(c.score[2], c.error[2]) << c.layer;
    EXPECT_EQ(c.score[c.chosen], *std::min_element(c.score.begin(), c.score.end())) << c.layer;
    EXPECT_EQ(c.error[c.chosen], *std::min_element(c.error.begin(), c.error.end())) << c.layer;
  }
  // Only "layer" fits fc1: it gets it, with a larger error than channelwise would have.
  cost[2] = {no, no, fit};
  all = choose_layer_granularity(g, o, train, cand, cost);
  EXPECT_EQ(all[2].chosen, 2);
  EXPECT_GT(all[2].error[2], all[2].error[0]);
  // Nothing fits conv2: an InputError naming the budget, the layer and each reason.
  cost[1] = {no, no, no};
  const std::string msg = error_of([&] { choose_layer_granularity(g, o, train, cand, cost); });
  EXPECT_THAT(msg, HasSubstr("budget"));
  EXPECT_THAT(msg, HasSubstr("'/conv2/Conv'"));
  EXPECT_THAT(msg, HasSubstr("block:16x16: too many"));
}

TEST(AutoGranularity, RefinesIsBlockContainment) {
  auto refines = [](const char* a, const char* b) {
    return granularity_refines(Granularity::parse(a), Granularity::parse(b));
  };
  EXPECT_TRUE(refines("block:8x16", "block:16x16"));
  EXPECT_TRUE(refines("block:8x16", "block:16x32"));
  EXPECT_TRUE(refines("block:8x16", "block:64x64"));
  EXPECT_TRUE(refines("block:16x16", "layer"));
  EXPECT_TRUE(refines("channel", "layer"));
  EXPECT_TRUE(refines("block:1x8", "channel"));
  EXPECT_FALSE(refines("block:8x16", "block:8x16")) << "not a strict refinement";
  EXPECT_FALSE(refines("block:16x16", "block:8x16"));
  EXPECT_FALSE(refines("block:8x16", "block:16x8")) << "16 input channels do not fit in 8";
  EXPECT_FALSE(refines("block:16x8", "block:8x16"));
  EXPECT_FALSE(refines("block:8x16", "block:12x16")) << "8 does not divide 12";
  EXPECT_FALSE(refines("channel", "block:16x16"));
  EXPECT_FALSE(refines("layer", "layer"));
  EXPECT_FALSE(refines("layer", "channel"));
  EXPECT_TRUE(refines("mx:32", "layer"));
  EXPECT_FALSE(refines("mx:32", "channel")) << "other kinds only refine layer here";
}

// The probe's noise must not pick a coarser block over a fitting refinement of it: with every
// candidate fitting, the finest of a chain wins on every layer, scored by the least error of the
// chain; when it does not fit, the next finest wins.
TEST(AutoGranularity, AFittingRefinementWinsOverWhatItRefines) {
  const AutoCase t;
  const auto& [g, o, train] = t;
  const std::vector<Granularity> cand =
      parse_all({"block:32x32", "block:8x8", "block:16x16", "layer"});
  const GranularityCost fit = fitting(1), no = refused("too many");
  const GranularityCost fit2 = fitting(2);  // more registers must not keep the refinement out
  std::vector<std::vector<GranularityCost>> cost(5, {fit, fit2, fit, fit});
  for (const auto& c : choose_layer_granularity(g, o, train, cand, cost)) {
    EXPECT_EQ(c.chosen, 1) << c.layer;
    EXPECT_EQ(c.score[1], *std::min_element(c.error.begin(), c.error.end())) << c.layer;
  }
  cost.assign(5, {fit, no, fit, fit});
  for (const auto& c : choose_layer_granularity(g, o, train, cand, cost)) {
    EXPECT_EQ(c.chosen, 2) << c.layer;
    EXPECT_EQ(c.score[2], std::min({c.error[0], c.error[2], c.error[3]})) << c.layer;
  }
}

}  // namespace
}  // namespace tilescale::quant
