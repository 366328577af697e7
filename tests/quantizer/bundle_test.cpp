// The bundle: write -> read reproduces every field of a quantized LeNet-5 bit for bit, the golden
// integer executor gives identical outputs on both, writes are deterministic and atomic, and every
// kind of damage is reported as an InputError naming the file inside the bundle.
#include "tilescale/quant/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "support/expect_input_error.h"
#include "support/scoped_env.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/core/sha256.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::quant {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kModelPath = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";
const std::vector<std::string> kBundleFiles = {"bias.bin",        "manifest.json", "model.onnx",
                                               "multipliers.bin", "scales.bin",    "weights.bin"};

// ----- helpers -----------------------------------------------------------------------------------

// A fresh folder under gtest's temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "tilescale_bundle_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

using test::input_error_message;  // the InputError message of f, or a recorded failure

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp on the null data() of empty vectors is undefined behaviour (UBSan): compare sizes first.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// ----- the models --------------------------------------------------------------------------------

const std::string& onnx_bytes() {
  static const std::string bytes = read_bytes(kModelPath);
  return bytes;
}

const model::Graph& lenet() {
  static const model::Graph g = model::import_onnx(kModelPath);
  return g;
}

const Dataset& mnist_train() {
  static const Dataset d = load_named("mnist", "train", default_data_dir());
  return d;
}

struct Case {
  std::string name;
  std::string granularity;
  SearchMethod search = SearchMethod::Minmax;
  int w_bits = 4;
  int a_bits = 8;
  int first_last_bits = 0;
  int scale_bits = 16;
  int grid_points = 100;
  ReorderMethod reorder = ReorderMethod::None;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"minmax_block4x8_w4", "block:4x8", SearchMethod::Minmax, 4, 8, 0, 16, 100},
      {"output_channel_w3_grid10_fl8", "channel", SearchMethod::Output, 3, 8, 8, 16, 10},
      {"minmax_mx32_w4", "mx:32", SearchMethod::Minmax, 4, 8, 0, 16, 100},
      {"minmax_vsq16_w4", "vsq:16", SearchMethod::Minmax, 4, 6, 0, 12, 100},
      {"minmax_layer_w8_shift_only", "layer", SearchMethod::Minmax, 8, 8, 0, 1, 100},
      {"minmax_channel_float_acts", "channel", SearchMethod::Minmax, 5, 32, 0, 16, 100},
      {"minmax_block2x4_kmeans", "block:2x4", SearchMethod::Minmax, 4, 8, 0, 16, 100,
       ReorderMethod::KMeans},
  };
  return c;
}

QuantOptions options_of(const Case& c) {
  QuantOptions o;
  o.granularity = Granularity::parse(c.granularity);
  o.search = c.search;
  o.w_bits = c.w_bits;
  o.a_bits = c.a_bits;
  o.first_last_bits = c.first_last_bits;
  o.scale_bits = c.scale_bits;
  o.grid_points = c.grid_points;
  o.calib_images = 8;
  o.calib_positions = 256;
  o.seed = 11;
  o.reorder = c.reorder;
  return o;
}

// Quantized once per process and case; model_sha256 set as `tilescale quantize` sets it.
const QuantizedModel& model_of(const Case& c) {
  static std::map<std::string, std::unique_ptr<QuantizedModel>> cache;
  auto& slot = cache[c.name];
  if (!slot) {
    slot = std::make_unique<QuantizedModel>(quantize(lenet(), options_of(c), mnist_train()));
    slot->model_sha256 = sha256_hex(onnx_bytes());
  }
  return *slot;
}

const QuantizedModel& minmax_model() { return model_of(cases()[0]); }
const QuantizedModel& output_model() { return model_of(cases()[1]); }

// 16 test images, NCHW float.
std::vector<float> test_images(int64_t n) {
  static const Dataset test = load_named("mnist", "test", default_data_dir());
  std::vector<float> x(static_cast<std::size_t>(n * test.image_size()));
  test.fill_batch(0, n, x.data());
  return x;
}

// ----- field-by-field comparison -----------------------------------------------------------------

void expect_same_options(const QuantOptions& a, const QuantOptions& b) {
  EXPECT_EQ(a.granularity.str(), b.granularity.str());
  EXPECT_EQ(a.granularity.kind, b.granularity.kind);
  EXPECT_EQ(a.granularity.block_out, b.granularity.block_out);
  EXPECT_EQ(a.granularity.block_in, b.granularity.block_in);
  EXPECT_EQ(a.granularity.run, b.granularity.run);
  EXPECT_EQ(a.granularity.vsq_bits, b.granularity.vsq_bits);
  EXPECT_EQ(a.w_bits, b.w_bits);
  EXPECT_EQ(a.a_bits, b.a_bits);
  EXPECT_EQ(a.first_last_bits, b.first_last_bits);
  EXPECT_EQ(a.scale_bits, b.scale_bits);
  EXPECT_EQ(a.search, b.search);
  EXPECT_EQ(a.metric, b.metric);
  EXPECT_EQ(a.calib_input, b.calib_input);
  EXPECT_EQ(a.grid_points, b.grid_points);
  EXPECT_EQ(a.grid_lo, b.grid_lo);
  EXPECT_EQ(a.grid_hi, b.grid_hi);
  EXPECT_EQ(a.rounds, b.rounds);
  EXPECT_EQ(a.calib_images, b.calib_images);
  EXPECT_EQ(a.calib_positions, b.calib_positions);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.reorder, b.reorder);
}

void expect_same_model(const QuantizedModel& a, const QuantizedModel& b) {
  expect_same_options(a.options, b.options);
  EXPECT_EQ(a.model_sha256, b.model_sha256);

  // Graph: same structure and bit-identical parameters (permutations re-applied on read).
  ASSERT_EQ(a.graph.values.size(), b.graph.values.size());
  ASSERT_EQ(a.graph.nodes.size(), b.graph.nodes.size());
  EXPECT_EQ(a.graph.input, b.graph.input);
  EXPECT_EQ(a.graph.output, b.graph.output);
  for (std::size_t v = 0; v < a.graph.values.size(); ++v) {
    EXPECT_EQ(a.graph.values[v].name, b.graph.values[v].name);
    EXPECT_EQ(a.graph.values[v].shape, b.graph.values[v].shape);
  }
  for (std::size_t n = 0; n < a.graph.nodes.size(); ++n) {
    const model::Node &x = a.graph.nodes[n], &y = b.graph.nodes[n];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.op, y.op);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.weight.shape, y.weight.shape);
    EXPECT_TRUE(same_bits(x.weight.data, y.weight.data)) << x.name;
    EXPECT_TRUE(same_bits(x.bias.data, y.bias.data)) << x.name;
    EXPECT_TRUE(same_bits(x.operand.data, y.operand.data)) << x.name;
  }

  // Plan.
  EXPECT_EQ(a.plan.host_nodes, b.plan.host_nodes);
  EXPECT_EQ(a.plan.scale_source, b.plan.scale_source);
  EXPECT_EQ(a.plan.non_negative, b.plan.non_negative);
  EXPECT_EQ(a.plan.layer_ops, b.plan.layer_ops);
  ASSERT_EQ(a.plan.ops.size(), b.plan.ops.size());
  for (std::size_t i = 0; i < a.plan.ops.size(); ++i) {
    EXPECT_EQ(a.plan.ops[i].kind, b.plan.ops[i].kind);
    EXPECT_EQ(a.plan.ops[i].node, b.plan.ops[i].node);
    EXPECT_EQ(a.plan.ops[i].fused_act, b.plan.ops[i].fused_act);
    EXPECT_EQ(a.plan.ops[i].inputs, b.plan.ops[i].inputs);
    EXPECT_EQ(a.plan.ops[i].output, b.plan.ops[i].output);
  }

  // Activation grids: every entry, scales bit-exact.
  ASSERT_EQ(a.acts.size(), b.acts.size());
  for (std::size_t v = 0; v < a.acts.size(); ++v) {
    uint32_t sa, sb;
    std::memcpy(&sa, &a.acts[v].scale, 4);
    std::memcpy(&sb, &b.acts[v].scale, 4);
    EXPECT_EQ(sa, sb) << "value " << v << ": " << a.acts[v].scale << " vs " << b.acts[v].scale;
    EXPECT_EQ(a.acts[v].bits, b.acts[v].bits) << "value " << v;
    EXPECT_EQ(a.acts[v].is_signed, b.acts[v].is_signed) << "value " << v;
  }

  // Layers.
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    const LayerQuant &x = a.layers[l], &y = b.layers[l];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.op, y.op);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.w_bits, y.w_bits);
    EXPECT_EQ(x.grid.out_channels, y.grid.out_channels);
    EXPECT_EQ(x.grid.cin_g, y.grid.cin_g);
    EXPECT_EQ(x.grid.kernel, y.grid.kernel);
    EXPECT_EQ(x.grid.out_groups, y.grid.out_groups);
    EXPECT_EQ(x.grid.red_groups, y.grid.red_groups);
    EXPECT_EQ(x.grid.out_group, y.grid.out_group);
    EXPECT_EQ(x.grid.red_group, y.grid.red_group);
    EXPECT_EQ(x.q_weight, y.q_weight);
    EXPECT_TRUE(same_bits(x.block_scale, y.block_scale));
    ASSERT_EQ(x.multiplier.size(), y.multiplier.size());
    for (std::size_t b = 0; b < x.multiplier.size(); ++b) {
      EXPECT_EQ(x.multiplier[b].m, y.multiplier[b].m) << "block " << b;
      EXPECT_EQ(x.multiplier[b].r, y.multiplier[b].r) << "block " << b;
    }
    EXPECT_EQ(x.frac_bits, y.frac_bits);
    EXPECT_EQ(x.bias_q, y.bias_q);
  }

  // Permutations: empty lists and all-empty lists both mean identity.
  for (std::size_t v = 0; v < std::max(a.permutations.size(), b.permutations.size()); ++v) {
    const auto pa = v < a.permutations.size() ? a.permutations[v] : std::vector<int64_t>{};
    const auto pb = v < b.permutations.size() ? b.permutations[v] : std::vector<int64_t>{};
    EXPECT_EQ(pa, pb) << "value " << v;
  }
}

// The golden executor and the fake-quant graph give bit-identical results on both models.
// (The integer executor needs integer activations: with a_bits 32 only the fake-quant path runs.)
void expect_same_outputs(const QuantizedModel& a, const QuantizedModel& b) {
  const int64_t n = 16, classes = a.graph.output_value().size();
  const std::vector<float> x = test_images(n);
  if (a.options.a_bits != 32) {
    std::vector<float> ya(n * classes), yb(n * classes);
    IntExecutor(a).run(x.data(), n, ya.data());
    IntExecutor(b).run(x.data(), n, yb.data());
    EXPECT_TRUE(same_bits(ya, yb));
    EXPECT_EQ(IntExecutor(a).run_codes(x.data(), n), IntExecutor(b).run_codes(x.data(), n));
  }
  std::vector<float> fa(n * classes), fb(n * classes);
  model::FloatExecutor(make_fake_quant_graph(a)).run(x.data(), n, fa.data());
  model::FloatExecutor(make_fake_quant_graph(b)).run(x.data(), n, fb.data());
  EXPECT_TRUE(same_bits(fa, fb));
}

// ----- manifest editing for the damage tests -----------------------------------------------------

ojson load_manifest(const std::string& dir) {
  return ojson::parse(read_bytes(dir + "/manifest.json"));
}

void save_manifest(const std::string& dir, const ojson& j) {
  write_bytes(dir + "/manifest.json", j.dump(2) + "\n");
}

// Rewrites a blob and records its new SHA-256, so only the content checks can catch the change.
void rewrite_blob(const std::string& dir, const std::string& name,
                  const std::function<void(std::string&)>& edit) {
  std::string bytes = read_bytes(dir + "/" + name);
  edit(bytes);
  write_bytes(dir + "/" + name, bytes);
  ojson j = load_manifest(dir);
  j["blobs"][name]["sha256"] = sha256_hex(bytes);
  j["blobs"][name]["bytes"] = bytes.size();
  save_manifest(dir, j);
}

void edit_manifest(const std::string& dir, const std::function<void(ojson&)>& edit) {
  ojson j = load_manifest(dir);
  edit(j);
  save_manifest(dir, j);
}

// ----- SHA-256 -----------------------------------------------------------------------------------

// Under a tight memory budget the golden executor runs fewer samples per chunk and, being exact,
// gives the same bits; with no room for one sample per thread it refuses, naming the model.
// LeNet-5's workspace is 0.76 MiB per sample, so 2 MiB on 2 threads leaves room for 1 each.
TEST(IntExecutorBudget, SmallerChunksUnderATightBudgetGiveIdenticalCodes) {
  const QuantizedModel& m = minmax_model();
  const int64_t n = 20;
  const std::vector<float> x = test_images(n);
  const IntExecutor roomy(m, 2);
  EXPECT_EQ(roomy.chunk(), 8);
  test::ScopedEnv limit("TILESCALE_MEMORY_LIMIT", "2M");
  const IntExecutor tight(m, 2);
  EXPECT_EQ(tight.chunk(), 1);
  const int64_t classes = m.graph.output_value().size();
  std::vector<float> ya(n * classes), yb(n * classes);
  roomy.run(x.data(), n, ya.data());
  tight.run(x.data(), n, yb.data());
  EXPECT_TRUE(same_bits(ya, yb));
  test::ScopedEnv tighter("TILESCALE_MEMORY_LIMIT", "1M");
  EXPECT_INPUT_ERROR(IntExecutor(m, 2), m.graph.source, "running the integer network");
  EXPECT_INPUT_ERROR(roomy.run_codes(x.data(), n), m.graph.source,
                     "the integer codes of 20 samples at once");
}

// ----- round trip --------------------------------------------------------------------------------

class BundleRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(BundleRoundTrip, ReadBackEqualsWrittenFieldByFieldAndRunsIdentically) {
  const QuantizedModel& m = model_of(GetParam());
  TempDir tmp;
  const std::string dir = tmp.file("b");
  write_bundle(m, onnx_bytes(), dir);
  EXPECT_EQ(entries(dir), kBundleFiles);
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"b"});  // no temporary left over
  const QuantizedModel r = read_bundle(dir);
  expect_same_model(m, r);
  EXPECT_EQ(r.graph.source, dir + "/model.onnx");
  expect_same_outputs(m, r);
}

INSTANTIATE_TEST_SUITE_P(Lenet, BundleRoundTrip, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(BundleRoundTrip, PermutedModelIsRebuiltFromTheSourceModelAndThePermutations) {
  // Reorder LeNet's channels (sort, 4x8 blocks), quantize the permuted graph, and record the orders
  // per value as QuantizedModel::permutations does.
  const std::vector<ChannelPermutation> perms =
      choose_permutations(lenet(), {ReorderMethod::Sort, 4, 8, 0});
  model::Graph permuted = lenet();
  apply_permutations(permuted, perms);
  // The graph is already permuted, so quantize() must not reorder again.
  QuantizedModel m = quantize(permuted, options_of(cases()[0]), mnist_train());
  m.model_sha256 = sha256_hex(onnx_bytes());
  m.permutations.assign(m.graph.values.size(), {});
  int moved = 0;
  for (const ChannelPermutation& p : perms) {
    bool identity = true;
    for (std::size_t i = 0; i < p.order.size(); ++i)
      identity &= p.order[i] == static_cast<int64_t>(i);
    if (identity) continue;
    ++moved;
    for (int v : p.values) m.permutations[v] = p.order;
  }
  ASSERT_GT(moved, 0) << "sort left every LeNet space in place; the test would prove nothing";

  TempDir tmp;
  write_bundle(m, onnx_bytes(), tmp.file("b"));
  const QuantizedModel r = read_bundle(tmp.file("b"));
  expect_same_model(m, r);
  expect_same_outputs(m, r);

  // Values of one channel space that state different orders are refused...
  const std::string manifest = read_bytes(tmp.file("b/manifest.json"));
  edit_manifest(tmp.file("b"), [](ojson& j) {
    auto& order = j["permutations"][0]["order"];
    std::swap(order[0], order[1]);
  });
  std::string msg = input_error_message([&] { read_bundle(tmp.file("b")); });
  EXPECT_THAT(msg, StartsWith(tmp.file("b") + "/manifest.json: permutations: "));
  EXPECT_THAT(msg, HasSubstr("share a channel space but have different orders"));

  // ...and so are orders that are not permutations (reorder.h's validation, named after the
  // manifest).
  write_bytes(tmp.file("b/manifest.json"), manifest);
  edit_manifest(tmp.file("b"), [](ojson& j) {
    for (auto& p : j["permutations"]) p["order"][0] = p["order"][1];
  });
  msg = input_error_message([&] { read_bundle(tmp.file("b")); });
  EXPECT_THAT(msg, StartsWith(tmp.file("b") + "/manifest.json: permutations: "));
  EXPECT_THAT(msg, HasSubstr("is not a permutation"));
}

TEST(BundleRoundTrip, WriterComputesTheHashWhenTheModelHasNone) {
  QuantizedModel m = minmax_model();
  m.model_sha256.clear();
  TempDir tmp;
  write_bundle(m, onnx_bytes(), tmp.file("b"));
  EXPECT_EQ(read_bundle(tmp.file("b")).model_sha256, sha256_hex(onnx_bytes()));
}

TEST(BundleRoundTrip, TrailingSlashNamesTheSameDirectory) {
  TempDir tmp;
  write_bundle(minmax_model(), onnx_bytes(), tmp.file("b") + "/");
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"b"});
  expect_same_model(minmax_model(), read_bundle(tmp.file("b") + "//"));
}

// ----- manifest content and determinism ----------------------------------------------------------

TEST(BundleManifest, RecordsFormatVersionToolAndSourceWithoutPathsOrTimes) {
  TempDir tmp;
  write_bundle(output_model(), onnx_bytes(), tmp.file("b"));
  const std::string text = read_bytes(tmp.file("b/manifest.json"));
  const ojson j = ojson::parse(text);
  EXPECT_EQ(j["format"], "tilescale-bundle");
  EXPECT_EQ(j["format_version"], 2);
  EXPECT_EQ(j["tool_version"], TILESCALE_VERSION);  // project(VERSION) of the build
  EXPECT_EQ(j["model"]["file"], "lenet5_mnist.onnx");
  EXPECT_EQ(j["model"]["sha256"], sha256_hex(onnx_bytes()));
  EXPECT_EQ(j["model"]["bytes"], onnx_bytes().size());
  EXPECT_EQ(read_bytes(tmp.file("b/model.onnx")), onnx_bytes());
  EXPECT_EQ(text.find(TILESCALE_SOURCE_DIR), std::string::npos);
  EXPECT_EQ(text.find(tmp.path()), std::string::npos);
  // Every QuantOptions field.
  for (const char* key :
       {"granularity", "vsq_bits", "w_bits", "a_bits", "first_last_bits", "scale_bits", "search",
        "metric", "calib_input", "grid_points", "grid_lo", "grid_hi", "rounds", "calib_images",
        "calib_positions", "seed", "reorder"})
    EXPECT_TRUE(j["options"].contains(key)) << key;
  // The thread count changes no result, so it must not make bundles differ.
  EXPECT_FALSE(j["options"].contains("threads"));
  EXPECT_EQ(j["options"]["search"], "output");
  EXPECT_EQ(j["options"]["grid_points"], 10);
  // Layers back to back, with their shapes and grids.
  const QuantizedModel& m = output_model();
  ASSERT_EQ(j["layers"].size(), m.layers.size());
  uint64_t offset = 0;
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    EXPECT_EQ(j["layers"][l]["name"], m.layers[l].name);
    EXPECT_EQ(j["layers"][l]["weights"]["offset"], offset);
    EXPECT_EQ(j["layers"][l]["num_blocks"], m.layers[l].grid.num_blocks());
    offset += m.layers[l].q_weight.size();
  }
  EXPECT_EQ(read_bytes(tmp.file("b/weights.bin")).size(), offset);
  // Activation scales: decimal and bit pattern of the same float.
  for (const auto& a : j["activations"]) {
    const float f = static_cast<float>(a["scale"].get<double>());
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    char hex[11];
    std::snprintf(hex, sizeof hex, "0x%08x", bits);
    EXPECT_EQ(a["scale_hex"], hex);
  }
}

TEST(BundleManifest, WritingTheSameModelTwiceGivesByteIdenticalFiles) {
  TempDir tmp;
  write_bundle(output_model(), onnx_bytes(), tmp.file("one"));
  write_bundle(output_model(), onnx_bytes(), tmp.file("two"));
  ASSERT_EQ(entries(tmp.file("one")), kBundleFiles);
  ASSERT_EQ(entries(tmp.file("two")), kBundleFiles);
  for (const std::string& f : kBundleFiles)
    EXPECT_EQ(read_bytes(tmp.file("one/" + f)), read_bytes(tmp.file("two/" + f))) << f;
}

TEST(BundleManifest, RewritingAReadBundleChangesOnlyTheRecordedSourceName) {
  TempDir tmp;
  write_bundle(output_model(), onnx_bytes(), tmp.file("one"));
  write_bundle(read_bundle(tmp.file("one")), onnx_bytes(), tmp.file("two"));
  for (const std::string& f : kBundleFiles) {
    if (f != "manifest.json") {
      EXPECT_EQ(read_bytes(tmp.file("one/" + f)), read_bytes(tmp.file("two/" + f))) << f;
    }
  }
  ojson one = load_manifest(tmp.file("one")), two = load_manifest(tmp.file("two"));
  EXPECT_EQ(two["model"]["file"], "model.onnx");  // the read model's source is the bundle's copy
  two["model"]["file"] = one["model"]["file"];
  EXPECT_EQ(one.dump(), two.dump());
}

// ----- atomic replacement and failed writes ------------------------------------------------------

TEST(BundleWrite, OverwritingAnExistingBundleReplacesItFully) {
  TempDir tmp;
  const std::string dir = tmp.file("b");
  write_bundle(minmax_model(), onnx_bytes(), dir);
  write_bytes(dir + "/stale.txt", "left by someone");
  write_bundle(output_model(), onnx_bytes(), dir);
  EXPECT_EQ(entries(dir), kBundleFiles);  // nothing of the old bundle survives
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"b"});
  write_bundle(output_model(), onnx_bytes(), tmp.file("fresh"));
  for (const std::string& f : kBundleFiles)
    EXPECT_EQ(read_bytes(dir + "/" + f), read_bytes(tmp.file("fresh/" + f))) << f;
  expect_same_model(output_model(), read_bundle(dir));
}

TEST(BundleWrite, AnEmptyDirectoryMayBeTheTarget) {
  TempDir tmp;
  fs::create_directory(tmp.file("b"));
  write_bundle(minmax_model(), onnx_bytes(), tmp.file("b"));
  EXPECT_EQ(entries(tmp.file("b")), kBundleFiles);
}

TEST(BundleWrite, RefusesToReplaceSomethingThatIsNotABundle) {
  TempDir tmp;
  fs::create_directory(tmp.file("notes"));
  write_bytes(tmp.file("notes/todo.txt"), "keep me");
  std::string msg =
      input_error_message([&] { write_bundle(minmax_model(), onnx_bytes(), tmp.file("notes")); });
  EXPECT_THAT(msg, StartsWith(tmp.file("notes") + ": "));
  EXPECT_THAT(msg, HasSubstr("refusing to replace"));
  EXPECT_EQ(read_bytes(tmp.file("notes/todo.txt")), "keep me");

  write_bytes(tmp.file("plain"), "a file");
  msg = input_error_message([&] { write_bundle(minmax_model(), onnx_bytes(), tmp.file("plain")); });
  EXPECT_THAT(msg, StartsWith(tmp.file("plain") + ": "));
  EXPECT_THAT(msg, HasSubstr("not a directory"));
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"notes", "plain"}));
}

TEST(BundleWrite, UnwritableParentFailsWithoutLeavingAnything) {
  TempDir tmp;
  write_bytes(tmp.file("file"), "x");  // a regular file cannot hold a bundle
  const std::string dir = tmp.file("file") + "/b";
  const std::string msg =
      input_error_message([&] { write_bundle(minmax_model(), onnx_bytes(), dir); });
  EXPECT_THAT(msg, StartsWith(dir + ": "));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"file"});
}

TEST(BundleWrite, WrongOnnxBytesForTheModelAreRefusedBeforeWriting) {
  TempDir tmp;
  const std::string msg =
      input_error_message([&] { write_bundle(minmax_model(), onnx_bytes() + "x", tmp.file("b")); });
  EXPECT_THAT(msg, StartsWith(tmp.file("b") + ": "));
  EXPECT_THAT(msg, HasSubstr("model_sha256"));
  EXPECT_TRUE(entries(tmp.path()).empty());
}

// A file-size limit makes the first large write fail with EFBIG after the temporary directory
// exists and model.onnx is partly written: a real failure in the middle of a write.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &lim) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t old_handler_ = nullptr;
  bool ok_ = false;
};

TEST(BundleWrite, FailureMidwayLeavesTheOldBundleAndNoPartialDirectory) {
  TempDir tmp;
  const std::string dir = tmp.file("b");
  write_bundle(minmax_model(), onnx_bytes(), dir);
  std::map<std::string, std::string> before;
  for (const std::string& f : kBundleFiles) before[f] = read_bytes(dir + "/" + f);

  std::string msg;
  {
    FileSizeLimit limit(onnx_bytes().size() / 2);
    ASSERT_TRUE(limit.ok());
    msg = input_error_message([&] { write_bundle(output_model(), onnx_bytes(), dir); });
  }
  EXPECT_THAT(msg, StartsWith(dir + "/model.onnx: "));
  EXPECT_THAT(msg, HasSubstr("write failed"));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"b"});
  for (const std::string& f : kBundleFiles) EXPECT_EQ(read_bytes(dir + "/" + f), before[f]) << f;

  // Same for a target that does not exist yet: nothing appears.
  {
    FileSizeLimit limit(onnx_bytes().size() / 2);
    ASSERT_TRUE(limit.ok());
    msg = input_error_message([&] { write_bundle(output_model(), onnx_bytes(), tmp.file("new")); });
  }
  EXPECT_THAT(msg, StartsWith(tmp.file("new") + "/model.onnx: "));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"b"});
}

// ----- damaged bundles ---------------------------------------------------------------------------

struct Damage {
  std::string name;                               // test name
  std::function<void(const std::string&)> apply;  // damages the bundle in the given dir
  std::string file;                               // the file the message must name
  std::string problem;                            // a substring of the message
};

void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

void flip_first_weight_to(const std::string& dir, int8_t code) {
  rewrite_blob(dir, "weights.bin", [&](std::string& b) { b[0] = static_cast<char>(code); });
}

void set_float(std::string& b, std::size_t at, float f) { std::memcpy(&b[at], &f, 4); }
float get_float(const std::string& b, std::size_t at) {
  float f;
  std::memcpy(&f, &b[at], 4);
  return f;
}

const std::vector<Damage>& damages() {
  static const std::vector<Damage> d = {
      {"MissingManifest", [](const std::string& dir) { fs::remove(dir + "/manifest.json"); },
       "manifest.json", "cannot open"},
      {"MissingScales", [](const std::string& dir) { fs::remove(dir + "/scales.bin"); },
       "scales.bin", "cannot open"},
      {"BadJson",
       [](const std::string& dir) {
         std::string t = read_bytes(dir + "/manifest.json");
         write_bytes(dir + "/manifest.json", t.substr(0, t.size() / 2));
       },
       "manifest.json", "invalid JSON"},
      {"WrongFormat",
       [](const std::string& dir) { edit_manifest(dir, [](ojson& j) { j["format"] = "zip"; }); },
       "manifest.json", "expected 'tilescale-bundle'"},
      {"WrongFormatVersion",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["format_version"] = 3; });
       },
       "manifest.json", "format_version: 3 is not supported"},
      {"MissingOption",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["options"].erase("seed"); });
       },
       "manifest.json", "options.seed: is missing"},
      {"OptionOutOfRange",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["options"]["w_bits"] = 9; });
       },
       "manifest.json", "w_bits: 9 is outside 2..8"},
      {"UnknownSearchMethod",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["options"]["search"] = "best"; });
       },
       "manifest.json",
       "options.search: unknown search method 'best' (allowed: minmax, wmse, output)"},
      {"UnknownReorderMethod",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["options"]["reorder"] = "shuffle"; });
       },
       "manifest.json",
       "options.reorder: unknown reorder method 'shuffle' (allowed: none, sort, kmeans)"},
      {"UnknownGranularity",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["options"]["granularity"] = "tiles"; });
       },
       "manifest.json", "options.granularity: unknown granularity 'tiles'"},
      {"ModifiedModel",
       [](const std::string& dir) {
         std::string b = read_bytes(dir + "/model.onnx");
         b[b.size() / 2] ^= 0x01;
         write_bytes(dir + "/model.onnx", b);
       },
       "model.onnx", "does not match the manifest's model sha256"},
      {"TruncatedWeights",
       [](const std::string& dir) {
         std::string b = read_bytes(dir + "/weights.bin");
         write_bytes(dir + "/weights.bin", b.substr(0, b.size() - 7));
       },
       "weights.bin", "bytes, the manifest says"},
      {"ModifiedWeightsWithoutHash",
       [](const std::string& dir) {
         std::string b = read_bytes(dir + "/weights.bin");
         b[3] = static_cast<char>(b[3] == 1 ? 2 : 1);
         write_bytes(dir + "/weights.bin", b);
       },
       "weights.bin", "SHA-256 does not match"},
      {"CodeAboveRange", [](const std::string& dir) { flip_first_weight_to(dir, 8); },
       "weights.bin", "code 8 is outside the 4-bit range [-8, 7]"},
      {"CodeBelowRange", [](const std::string& dir) { flip_first_weight_to(dir, -9); },
       "weights.bin", "code -9 is outside the 4-bit range"},
      {"NegativeScale",
       [](const std::string& dir) {
         rewrite_blob(dir, "scales.bin", [](std::string& b) { set_float(b, 4, -get_float(b, 4)); });
       },
       "scales.bin", "not a positive finite number"},
      {"NanScale",
       [](const std::string& dir) {
         rewrite_blob(dir, "scales.bin", [](std::string& b) { set_float(b, 0, std::nanf("")); });
       },
       "scales.bin", "not a positive finite number"},
      {"ScaleChangedButNotMultipliers",
       [](const std::string& dir) {
         rewrite_blob(dir, "scales.bin",
                      [](std::string& b) { set_float(b, 0, get_float(b, 0) * 1.5f); });
       },
       "multipliers.bin", "does not match the scales"},
      {"MultiplierChanged",
       [](const std::string& dir) {
         rewrite_blob(dir, "multipliers.bin",
                      [](std::string& b) { b[0] = static_cast<char>(b[0] ^ 1); });
       },
       "multipliers.bin", "does not match the scales"},
      {"BiasChanged",
       [](const std::string& dir) {
         rewrite_blob(dir, "bias.bin", [](std::string& b) { b[8] = static_cast<char>(b[8] ^ 4); });
       },
       "bias.bin", "does not match the scales"},
      {"LayerBlobLengthWrong",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["layers"][0]["scales"]["bytes"] = 4; });
       },
       "manifest.json", "scales.bytes: 4, the layer's shape needs"},
      {"LayerNameWrong",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["layers"][1]["name"] = "x"; });
       },
       "manifest.json", "layers[1].name"},
      {"NonPositiveActivationScale",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) {
           j["activations"][0]["scale"] = 0.0;
           j["activations"][0]["scale_hex"] = "0x00000000";
         });
       },
       "manifest.json", "not a positive finite number"},
      {"ActivationScaleDecimalAndHexDisagree",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["activations"][0]["scale"] = 1234.5; });
       },
       "manifest.json", "scale and scale_hex disagree"},
      {"ActivationMissing",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["activations"].erase(1); });
       },
       "manifest.json", "has no entry"},
      {"ActivationBitsOutOfRange",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["activations"][0]["bits"] = 3; });
       },
       "manifest.json", "3 is outside 4..8"},
      {"PlanMismatch",
       [](const std::string& dir) {
         edit_manifest(dir, [](ojson& j) { j["plan"]["ops"][1]["kind"] = "MaxPool"; });
       },
       "manifest.json", "plan.ops[1]"},
  };
  return d;
}

class BundleDamage : public ::testing::TestWithParam<Damage> {};

TEST_P(BundleDamage, IsAnInputErrorNamingTheFile) {
  const Damage& d = GetParam();
  TempDir tmp;
  const std::string dir = tmp.file("b");
  write_bundle(minmax_model(), onnx_bytes(), dir);  // block:4x8, w_bits 4
  d.apply(dir);
  const std::string msg = input_error_message([&] { read_bundle(dir); });
  EXPECT_THAT(msg, StartsWith(dir + "/" + d.file + ": "));
  EXPECT_THAT(msg, HasSubstr(d.problem));
}

INSTANTIATE_TEST_SUITE_P(Lenet, BundleDamage, ::testing::ValuesIn(damages()),
                         [](const ::testing::TestParamInfo<Damage>& i) { return i.param.name; });

TEST(BundleRead, MissingDirectoryIsNamed) {
  TempDir tmp;
  const std::string msg = input_error_message([&] { read_bundle(tmp.file("nope")); });
  EXPECT_THAT(msg, StartsWith(tmp.file("nope") + ": "));
}

}  // namespace
}  // namespace tilescale::quant
