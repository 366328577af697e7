// The error-driven reorder choice (docs/reorder.md, "Error-driven choice"): on a constructed graph
// it keeps the identity when the blocks are already homogeneous and reorders when they mix ranges;
// on the zoo's LeNet-5 at block:16x16 the network-level check keeps a reorder only when it agrees
// with float on more check images, and on the test images it agrees as often to within 0.1 point.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "graph_builder.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/random.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/quant/reorder.h"

namespace tilescale {
namespace {

using quant::ReorderMethod;

// input {8} -> gemm 16 -> relu -> gemm 4: one movable space of 16 channels, seen by gemm1's rows
// and gemm2's columns. Channel c's weights (both sides) are scaled by scale(c).
template <typename Scale>
model::Graph two_gemms(Scale scale) {
  test::GraphBuilder b({8}, 11);
  const int h = b.gemm(b.input(), 16);
  const int y = b.gemm(b.relu(h), 4);
  model::Graph g = b.finish(y);
  model::Node& g1 = test::GraphBuilder::node_in(g, h);
  model::Node& g2 = test::GraphBuilder::node_in(g, y);
  for (int64_t c = 0; c < 16; ++c) {
    for (int64_t k = 0; k < 8; ++k) g1.weight.data[c * 8 + k] *= scale(c);
    g1.bias.data[c] *= scale(c);
    for (int64_t o = 0; o < 4; ++o) g2.weight.data[o * 16 + c] *= scale(c);
  }
  return g;
}

std::vector<quant::ChannelPermutation> choose(const model::Graph& g, ReorderMethod method) {
  const int64_t n = 64;
  std::vector<float> x(static_cast<std::size_t>(n * 8));
  std::mt19937_64 rng(5);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (float& v : x) v = d(rng);
  const auto values = model::FloatExecutor(g, {1}).run_all(x.data(), n);
  quant::ReorderOptions o;
  o.method = method;
  o.seed = 3;
  quant::ReorderCalibration c;
  c.values = &values;
  c.images = n;
  c.granularity.assign(g.nodes.size(), quant::Granularity::parse("block:4x4"));
  c.w_bits.assign(g.nodes.size(), 3);
  return quant::choose_permutations(g, o, c);
}

quant::ChannelPermutation movable(const std::vector<quant::ChannelPermutation>& perms) {
  for (const auto& p : perms)
    if (!p.fixed && p.channels == 16) return p;
  throw std::logic_error("no movable 16-channel space");
}

bool identity(const std::vector<int64_t>& order) {
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int64_t>(i)) return false;
  return true;
}

TEST(ReorderError, HomogeneousBlocksKeepTheIdentity) {
  // Blocks of 4 channels share a scale and neighbouring blocks differ 16-fold: the identity is
  // already the best grouping, so no candidate lowers the error.
  const model::Graph g = two_gemms([](int64_t c) { return std::ldexp(1.0f, 4 * int(c / 4)); });
  for (ReorderMethod m : {ReorderMethod::Sort, ReorderMethod::KMeans}) {
    const quant::ChannelPermutation p = movable(choose(g, m));
    std::printf("%s: identity error %.6g, chosen %s %.6g\n", quant::kReorderMethodNames.name(m),
                p.error_identity, p.chosen.c_str(), p.error_chosen);
    EXPECT_EQ(p.chosen, "identity");
    EXPECT_TRUE(identity(p.order));
    EXPECT_GT(p.error_identity, 0.0);
    EXPECT_EQ(p.error_chosen, p.error_identity);
  }
}

TEST(ReorderError, InterleavedRangesAreRegroupedAndTheErrorDrops) {
  // Every block of 4 mixes the four scales 1, 16, 256, 4096: grouping equal scales must help.
  const model::Graph g = two_gemms([](int64_t c) { return std::ldexp(1.0f, 4 * int(c % 4)); });
  for (ReorderMethod m : {ReorderMethod::Sort, ReorderMethod::KMeans}) {
    const quant::ChannelPermutation p = movable(choose(g, m));
    std::printf("%s: identity error %.6g, chosen %s %.6g\n", quant::kReorderMethodNames.name(m),
                p.error_identity, p.chosen.c_str(), p.error_chosen);
    EXPECT_NE(p.chosen, "identity");
    EXPECT_LT(p.error_chosen, 0.9 * p.error_identity);
    // Each block of the new order holds one scale class.
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 1; i < 4; ++i) EXPECT_EQ(p.order[b * 4 + i] % 4, p.order[b * 4] % 4);
  }
}

TEST(ReorderError, NoneChoosesNothing) {
  const model::Graph g = two_gemms([](int64_t c) { return std::ldexp(1.0f, 4 * int(c % 4)); });
  EXPECT_TRUE(identity(movable(choose(g, ReorderMethod::None)).order));
}

// Test images (of the first n) whose integer-path top-1 is the float network's.
int64_t agreement(const model::Graph& g, const quant::QuantizedModel& m, const Dataset& test,
                  int64_t n) {
  std::vector<float> x(static_cast<std::size_t>(n * test.image_size()));
  test.fill_batch(0, n, x.data());
  const int64_t classes = g.output_value().size();
  std::vector<float> f(static_cast<std::size_t>(n * classes)), q(f.size());
  model::FloatExecutor(g, {2}).run(x.data(), n, f.data());
  quant::IntExecutor(m, 2).run(x.data(), n, q.data());
  int64_t agree = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* a = f.data() + i * classes;
    const float* b = q.data() + i * classes;
    agree += std::max_element(a, a + classes) - a == std::max_element(b, b + classes) - b;
  }
  return agree;
}

// LeNet-5 W2A8 block:16x16 (first/last 8 bit), output search, seed 0: k-means reorders two spaces
// and the network-level check decides (with main's bit-width search grid it refuses them: 2044 vs
// 2045 of 2048 check images agree with float); on the 2,000 test images the returned model agrees
// with float as often as the unreordered one to within 0.1 point.
TEST(ReorderError, NetworkLevelCheckOnLenetBlock16x16) {
  const std::string path = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";
  const model::Graph g = model::import_onnx(path);
  const Dataset train = load_named("mnist", "train", default_data_dir());
  const Dataset test = load_named("mnist", "test", default_data_dir());
  quant::QuantOptions o;
  o.granularity = quant::Granularity::parse("block:16x16");
  o.w_bits = 2;
  o.first_last_bits = 8;
  o.threads = 2;
  const quant::QuantizedModel none = quant::quantize(g, o, train);
  o.reorder = ReorderMethod::KMeans;
  const quant::QuantizedModel km = quant::quantize(g, o, train);
  const quant::ReorderCheck& c = km.reorder_check;
  std::printf(
      "kmeans: %d spaces reordered; check agreement %lld vs %lld, KL %.5f vs %.5f, kept %d\n",
      c.spaces_reordered, static_cast<long long>(c.agree_reordered),
      static_cast<long long>(c.agree_identity), c.kl_reordered, c.kl_identity, c.kept);
  ASSERT_TRUE(c.checked);
  EXPECT_GT(c.spaces_reordered, 0);
  EXPECT_EQ(c.kept, c.agree_reordered > c.agree_identity ||
                        (c.agree_reordered == c.agree_identity && c.kl_reordered < c.kl_identity));
  // Whichever model the check returned: reordered exactly when kept.
  bool permuted = false;
  for (const auto& p : km.permutations) permuted |= !p.empty();
  EXPECT_EQ(permuted, c.kept);
  const int64_t n = test.count;
  const int64_t a_none = agreement(g, none, test, n), a_km = agreement(g, km, test, n);
  std::printf("test images agreeing with float: none %lld, kmeans %lld of %lld\n",
              static_cast<long long>(a_none), static_cast<long long>(a_km),
              static_cast<long long>(n));
  // At most 0.1 point below (issue 14's tolerance floor): 1976 vs 1978 when written.
  EXPECT_GE(a_km, a_none - n / 1000);
}

}  // namespace
}  // namespace tilescale
