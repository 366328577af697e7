// The acceptance property of channel reordering on the trained zoo: for every model, method and
// block size, the permuted float graph gives the original's logits on 64 test images to 1e-5
// relative, with valid and (for sort/kmeans) non-trivial permutations. A model whose .onnx is
// absent is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>
#include <utility>

#include "reorder_check.h"
#include "tilescale/core/dataset.h"
#include "tilescale/quant/float_executor.h"
#include "tilescale/quant/onnx_import.h"
#include "tilescale/quant/reorder.h"

namespace tilescale {
namespace quant {
// Readable test parameters in ctest listings.
void PrintTo(ReorderMethod m, std::ostream* os) { *os << reorder_method_name(m); }
}  // namespace quant

namespace {

using quant::ReorderMethod;

struct ZooCase {
  const char* model;    // models/<model>.onnx
  const char* dataset;  // its test split
};

constexpr ZooCase kZoo[] = {
    {"lenet5_mnist", "mnist"}, {"resnet8_fmnist", "fmnist"}, {"mobilenet_fmnist", "fmnist"}};

using Blocks = std::pair<int64_t, int64_t>;            // block_out x block_in
using Param = std::tuple<int, ReorderMethod, Blocks>;  // zoo index, method, blocks

class ReorderZoo : public ::testing::TestWithParam<Param> {};

TEST_P(ReorderZoo, PermutedGraphGivesTheSameLogitsOn64TestImagesTo1e5Relative) {
  const auto [zoo, method, blocks] = GetParam();
  const auto [bo, bi] = blocks;
  const std::string path =
      std::string(TILESCALE_SOURCE_DIR) + "/models/" + kZoo[zoo].model + ".onnx";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " is not there yet";
  const quant::Graph g = quant::import_onnx(path);
  const Dataset ds = load_named(kZoo[zoo].dataset, "test", default_data_dir());

  quant::ReorderOptions opt;
  opt.method = method;
  opt.block_out = bo;
  opt.block_in = bi;
  opt.seed = 2024;
  const auto perms = quant::choose_permutations(g, opt);
  test::expect_valid(perms);
  if (method != ReorderMethod::None) {
    EXPECT_GT(test::count_reordered(perms), 0) << "no space was reordered";
  } else {
    EXPECT_EQ(test::count_reordered(perms), 0);
  }
  quant::Graph permuted = g;
  quant::apply_permutations(permuted, perms);

  const int64_t n = 64, classes = g.output_value().size();
  std::vector<float> in(static_cast<std::size_t>(n * ds.image_size()));
  ds.fill_batch(0, n, in.data());
  std::vector<float> want(static_cast<std::size_t>(n * classes)), got(want.size());
  const quant::FloatExecutorOptions two_threads{2, 8};
  quant::FloatExecutor(g, two_threads).run(in.data(), n, want.data());
  quant::FloatExecutor(permuted, two_threads).run(in.data(), n, got.data());
  EXPECT_LE(test::max_relative_error(got, want), 1e-5);
}

// Mean over Conv/Gemm weights, bo x bi blocks (DESIGN section 2) and the rows and columns of each
// block of log2(block max |W| / row or column max |W| inside the block): the bits a channel loses
// by sharing its block's scale. Depthwise blocks run along output channels only.
double block_range_loss(const quant::Graph& g, int64_t bo, int64_t bi) {
  double sum = 0.0;
  int64_t count = 0;
  auto lost = [&](float block_max, float channel_max) {
    sum += block_max > 0.0f ? std::min(std::log2(block_max / std::max(channel_max, 1e-30f)), 24.0f)
                            : 0.0;
    ++count;
  };
  for (const quant::Node& n : g.nodes) {
    if (n.op != quant::Op::Conv && n.op != quant::Op::Gemm) continue;
    const int64_t rows = n.weight.shape[0], cols = n.weight.shape[1];
    const int64_t taps = n.weight.numel() / (rows * cols);
    const int64_t bcols = cols == 1 ? 1 : bi;
    for (int64_t r0 = 0; r0 < rows; r0 += bo)
      for (int64_t c0 = 0; c0 < cols; c0 += bcols) {
        const int64_t r1 = std::min(rows, r0 + bo), c1 = std::min(cols, c0 + bcols);
        std::vector<float> row_max(r1 - r0, 0.0f), col_max(c1 - c0, 0.0f);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c)
            for (int64_t t = 0; t < taps; ++t) {
              const float a = std::fabs(n.weight.data[(r * cols + c) * taps + t]);
              row_max[r - r0] = std::max(row_max[r - r0], a);
              col_max[c - c0] = std::max(col_max[c - c0], a);
            }
        const float m = *std::max_element(row_max.begin(), row_max.end());
        for (float v : row_max) lost(m, v);
        if (cols > 1)
          for (float v : col_max) lost(m, v);
      }
  }
  return sum / count;
}

TEST_P(ReorderZoo, ReorderingLowersTheBlockRangeLoss) {
  const auto [zoo, method, blocks] = GetParam();
  const std::string path =
      std::string(TILESCALE_SOURCE_DIR) + "/models/" + kZoo[zoo].model + ".onnx";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " is not there yet";
  if (method == ReorderMethod::None) GTEST_SKIP() << "nothing to compare";
  const quant::Graph g = quant::import_onnx(path);
  quant::ReorderOptions opt;
  opt.method = method;
  opt.block_out = blocks.first;
  opt.block_in = blocks.second;
  quant::Graph permuted = g;
  quant::apply_permutations(permuted, quant::choose_permutations(g, opt));
  const double before = block_range_loss(g, blocks.first, blocks.second);
  const double after = block_range_loss(permuted, blocks.first, blocks.second);
  std::cout << kZoo[zoo].model << " " << quant::reorder_method_name(method) << " " << blocks.first
            << "x" << blocks.second << ": mean bits lost to block scales " << before << " -> "
            << after << "\n";
  EXPECT_LT(after, before);
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  const auto [zoo, method, blocks] = info.param;
  return std::string(kZoo[zoo].model) + "_" + quant::reorder_method_name(method) + "_" +
         std::to_string(blocks.first) + "x" + std::to_string(blocks.second);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ReorderZoo,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::Values(ReorderMethod::None,
                                                              ReorderMethod::Sort,
                                                              ReorderMethod::KMeans),
                                            ::testing::Values(Blocks{4, 8}, Blocks{16, 32})),
                         name);

}  // namespace
}  // namespace tilescale
