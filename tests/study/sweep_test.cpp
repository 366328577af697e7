// tilescale::study::run_sweep on a tiny LeNet-5 / MNIST sweep: what the scales grow to, repeated
// entries run once, and a bad configuration refused before any run (the program:
// cli/sweep_cli_test.cpp).
#include "tilescale/study/sweep.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale::study {
namespace {

namespace fs = std::filesystem;
const std::string kLenet = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";

SweepConfig tiny_config() {
  SweepConfig c;
  c.model_path = kLenet;
  c.dataset = "mnist";
  c.base.search = quant::SearchMethod::Minmax;
  c.base.first_last_bits = 8;
  c.base.threads = 1;
  c.w_bits = {4};
  c.granularities = {"layer"};
  c.reorders = {"none"};
  c.eval_limit = 64;
  return c;
}

TEST(SweepLibrary, ScalesGrowFromLayerToChannelToBlockAndRepeatedEntriesRunOnce) {
  SweepConfig c = tiny_config();
  c.w_bits = {4, 4};
  c.granularities = {"layer", "channel", "block:4x4", "channel", "block:04x4"};
  std::vector<std::size_t> seen;
  const auto rows = run_sweep(c, [&](const std::vector<SweepRow>& done, std::size_t total) {
    EXPECT_EQ(total, 4u);
    seen.push_back(done.size());
  });
  EXPECT_EQ(seen, (std::vector<std::size_t>{1, 2, 3, 4}));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].granularity, "float");
  EXPECT_EQ(rows[1].granularity, "layer");
  EXPECT_EQ(rows[2].granularity, "channel");
  EXPECT_EQ(rows[3].granularity, "block:4x4");

  // LeNet-5 has 5 Conv/Gemm layers with 6 + 16 + 120 + 84 + 10 output channels.
  const model::Graph g = model::import_onnx(kLenet);
  int64_t layers = 0, channels = 0;
  for (const model::Node& n : g.nodes)
    if (n.op == model::Op::Conv || n.op == model::Op::Gemm) {
      ++layers;
      channels += n.weight.shape[0];
    }
  EXPECT_EQ(rows[1].scales, layers);
  EXPECT_EQ(rows[2].scales, channels);
  EXPECT_GT(rows[3].scales, rows[2].scales);
  EXPECT_LT(rows[1].bits_per_weight, rows[2].bits_per_weight);
  EXPECT_LT(rows[2].bits_per_weight, rows[3].bits_per_weight);
  for (const SweepRow& r : rows) {
    EXPECT_GE(r.top1, 0.0);
    EXPECT_LE(r.top1, 1.0);
  }
}

TEST(SweepLibrary, BadConfigurationThrowsInputErrorBeforeAnyRun) {
  auto expect_error = [](SweepConfig c, const std::string& what) {
    bool ran = false;
    try {
      run_sweep(c, [&](const std::vector<SweepRow>&, std::size_t) { ran = true; });
      ADD_FAILURE() << "no error, expected one naming " << what;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    EXPECT_FALSE(ran) << what;
  };
  SweepConfig c = tiny_config();
  c.granularities = {};
  expect_error(c, "--granularity");
  c = tiny_config();
  c.granularities = {"layer", "tiles"};
  expect_error(c,
               "--granularity: unknown granularity 'tiles' (allowed: layer, channel, "
               "block:BOxBI, mx:N, vsq:N)");
  c = tiny_config();
  c.granularities = {"layer", "block:999x4"};
  expect_error(c, "larger than every layer");
  c = tiny_config();
  c.w_bits = {4, 9};
  // The quantizer's own check names the option field (the CLI names --wbits, cli_tests).
  expect_error(c, "w_bits: 9 is outside 2..8");
  c = tiny_config();
  c.w_bits = {};
  expect_error(c, "--wbits");
  c = tiny_config();
  c.reorders = {"none", "shuffle"};
  expect_error(c, "--reorder: unknown reorder method 'shuffle' (allowed: none, sort, kmeans)");
  c = tiny_config();
  c.model_path = kLenet + ".missing";
  expect_error(c, "lenet5_mnist.onnx.missing");
  c = tiny_config();
  c.eval_limit = 1000000;
  expect_error(c, "--eval-limit");
  c = tiny_config();
  c.base.a_bits = 32;
  expect_error(c, "--abits");
}

}  // namespace
}  // namespace tilescale::study
