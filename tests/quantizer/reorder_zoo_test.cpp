// The acceptance property of channel reordering on the trained zoo: for every model, method and
// block size, the permuted float graph gives the original's logits on 64 test images to 1e-5
// relative, with valid and (for sort/kmeans) non-trivial permutations. A model whose .onnx is
// absent is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "double_reference.h"
#include "reorder_check.h"
#include "tilescale/core/dataset.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/reorder.h"

namespace tilescale {
namespace quant {
// Readable test parameters in ctest listings.
void PrintTo(ReorderMethod m, std::ostream* os) { *os << quant::kReorderMethodNames.name(m); }
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

// Loads the model (skipping if absent) and its test images, chooses and applies the permutations.
class ReorderZoo : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const auto [zoo, method, blocks] = GetParam();
    const std::string path =
        std::string(TILESCALE_SOURCE_DIR) + "/models/" + kZoo[zoo].model + ".onnx";
    if (!std::ifstream(path).good()) GTEST_SKIP() << path << " is not there yet";
    graph_ = model::import_onnx(path);
    const Dataset ds = load_named(kZoo[zoo].dataset, "test", default_data_dir());
    images_.resize(static_cast<std::size_t>(kImages * ds.image_size()));
    ds.fill_batch(0, kImages, images_.data());
    options_.method = method;
    options_.block_out = blocks.first;
    options_.block_in = blocks.second;
    options_.seed = 2024;
    perms_ = quant::choose_permutations(graph_, options_);
    permuted_ = graph_;
    quant::apply_permutations(permuted_, perms_);
  }

  std::vector<float> float_logits(const model::Graph& g) const {
    std::vector<float> out(static_cast<std::size_t>(kImages * g.output_value().size()));
    model::FloatExecutor(g, model::FloatExecutorOptions{2, 8})
        .run(images_.data(), kImages, out.data());
    return out;
  }

  static constexpr int64_t kImages = 64;
  model::Graph graph_, permuted_;
  std::vector<float> images_;  // [kImages][C][H][W]
  quant::ReorderOptions options_;
  std::vector<quant::ChannelPermutation> perms_;
};

TEST_P(ReorderZoo, PermutationsAreValidAndNonTrivialForSortAndKMeans) {
  test::expect_valid(perms_);
  if (options_.method == ReorderMethod::None)
    EXPECT_EQ(test::count_reordered(perms_), 0);
  else
    EXPECT_GT(test::count_reordered(perms_), 0) << "no space was reordered";
}

// The function itself, free of float32 rounding: both graphs evaluated in double precision.
TEST_P(ReorderZoo, PermutedGraphGivesTheSameLogitsOn64TestImagesTo1e5Relative) {
  // The original's logits are the same for every method: computed once per model.
  static std::map<int, std::vector<double>> original;
  const int zoo = std::get<0>(GetParam());
  if (!original.count(zoo)) original[zoo] = test::run_double(graph_, images_, kImages);
  const std::vector<double>& want = original[zoo];
  const std::vector<double> got = test::run_double(permuted_, images_, kImages);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  const double err = test::max_relative_error(got, want);
  std::printf("double-precision logits, max relative difference %.3g\n", err);
  EXPECT_LE(err, 1e-5);
}

// The float32 executor on both graphs. The permuted graph sums every consumer's reduction in
// another order, so logits move by float32 rounding: a few ulps of the largest logit, measured up
// to 1.6e-5 relative on MobileNet (absolute 9e-7 with a largest logit of 5.2), hence the zoo
// fixture test's 1e-4 here; a wrong permutation moves logits by O(1).
TEST_P(ReorderZoo, FloatExecutorLogitsAgreeWithinFloat32Rounding) {
  const double err = test::max_relative_error(float_logits(permuted_), float_logits(graph_));
  std::printf("float32 executor logits, max relative difference %.3g\n", err);
  EXPECT_LE(err, 1e-4);
}

// Mean over Conv/Gemm weights, bo x bi blocks (DESIGN section 2) and the rows and columns of each
// block of log2(block max |W| / row or column max |W| inside the block): the bits a channel loses
// by sharing its block's scale. Depthwise blocks run along output channels only.
double block_range_loss(const model::Graph& g, int64_t bo, int64_t bi) {
  double sum = 0.0;
  int64_t count = 0;
  auto lost = [&](float block_max, float channel_max) {
    sum += block_max > 0.0f ? std::min(std::log2(block_max / std::max(channel_max, 1e-30f)), 24.0f)
                            : 0.0;
    ++count;
  };
  for (const model::Node& n : g.nodes) {
    if (n.op != model::Op::Conv && n.op != model::Op::Gemm) continue;
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

TEST_P(ReorderZoo, SortAndKMeansLowerTheBlockRangeLossNoneKeepsIt) {
  const int64_t bo = options_.block_out, bi = options_.block_in;
  const double before = block_range_loss(graph_, bo, bi);
  const double after = block_range_loss(permuted_, bo, bi);
  std::printf("mean bits lost to block scales %.4f -> %.4f\n", before, after);
  if (options_.method == ReorderMethod::None)
    EXPECT_EQ(after, before);
  else
    EXPECT_LT(after, before);
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  const auto [zoo, method, blocks] = info.param;
  return std::string(kZoo[zoo].model) + "_" + quant::kReorderMethodNames.name(method) + "_" +
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
