// Channel reordering on small graphs built in C++: which values share a space, which spaces are
// fixed, how weights, biases and constants move, and what sort and k-means choose on constructed
// ranges.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "graph_builder.h"
#include "reorder_check.h"
#include "tilescale/core/error.h"
#include "tilescale/quant/reorder.h"

namespace tilescale {
namespace {

using model::Graph;
using model::Op;
using quant::ChannelPermutation;
using quant::ReorderMethod;
using quant::ReorderOptions;
using test::GraphBuilder;
using test::space_of;

ReorderOptions options(ReorderMethod method, int64_t bo, int64_t bi, uint64_t seed = 7) {
  ReorderOptions o;
  o.method = method;
  o.block_out = bo;
  o.block_in = bi;
  o.seed = seed;
  return o;
}

// Applies perms to a copy and checks every value against the original, seeded.
Graph apply_and_check(const Graph& g, const std::vector<ChannelPermutation>& perms,
                      uint64_t seed = 1) {
  test::expect_valid(perms);
  Graph p = g;
  quant::apply_permutations(p, perms);
  test::expect_values_permuted(g, p, perms, seed);
  return p;
}

// Every method, a few block sizes, and seeded random orders keep every value a permuted copy.
void check_all_methods(const Graph& g) {
  for (ReorderMethod m : {ReorderMethod::None, ReorderMethod::Sort, ReorderMethod::KMeans})
    for (int64_t b : {2, 4}) {
      SCOPED_TRACE(std::string(quant::kReorderMethodNames.name(m)) + " block " + std::to_string(b));
      apply_and_check(g, quant::choose_permutations(g, options(m, b, 2 * b)));
    }
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE("random orders, seed " + std::to_string(seed));
    apply_and_check(g, test::random_permutations(quant::channel_spaces(g), seed), seed);
  }
}

// input -> conv A -> relu -> conv B --+
//       \-> conv C (projection) ------+-> add -> relu -> conv D -> gap -> flatten -> gemm
struct Residual {
  Graph g;
  int a, b, c, sum, act, d;
};
Residual residual() {
  GraphBuilder gb({3, 6, 6}, 11);
  Residual r;
  r.a = gb.conv(gb.input(), 8, 3);
  r.b = gb.conv(gb.relu(r.a), 8, 3);
  r.c = gb.conv(gb.input(), 8, 1);
  r.sum = gb.binary(Op::Add, r.b, r.c);
  r.act = gb.relu(r.sum);
  r.d = gb.conv(r.act, 5, 3);
  r.g = gb.finish(gb.gemm(gb.flatten(gb.global_avg_pool(gb.relu(r.d))), 4));
  return r;
}

TEST(ReorderSpaces, ResidualAddJoinsBothProducersIntoOneSpace) {
  const Residual r = residual();
  const auto spaces = quant::channel_spaces(r.g);
  const ChannelPermutation& joined = space_of(spaces, r.sum);
  EXPECT_EQ(joined.values, (std::vector<int>{r.b, r.c, r.sum, r.act}));
  EXPECT_EQ(joined.channels, 8);
  EXPECT_FALSE(joined.fixed);
  EXPECT_NE(&space_of(spaces, r.a), &joined);
  check_all_methods(r.g);
}

TEST(ReorderSpaces, IdentityShortcutsChainBlocksIntoOneSpace) {
  // stem -> relu -> [conv -> relu -> conv, + shortcut] -> relu, twice: one space from the stem to
  // the last block, with three producers (stem and both second convs) and three consumers.
  GraphBuilder gb({1, 6, 6}, 12);
  const int stem = gb.relu(gb.conv(gb.input(), 6, 3));
  int x = stem;
  std::vector<int> inner;
  for (int block = 0; block < 2; ++block) {
    inner.push_back(gb.relu(gb.conv(x, 6, 3)));
    x = gb.relu(gb.binary(Op::Add, gb.conv(inner.back(), 6, 3), x));
  }
  const Graph g = gb.finish(gb.gemm(gb.flatten(gb.global_avg_pool(x)), 3));
  const auto spaces = quant::channel_spaces(g);
  EXPECT_EQ(&space_of(spaces, stem), &space_of(spaces, x));
  EXPECT_EQ(space_of(spaces, x).channels, 6);
  EXPECT_NE(&space_of(spaces, inner[0]), &space_of(spaces, inner[1]));
  EXPECT_NE(&space_of(spaces, inner[0]), &space_of(spaces, x));
  check_all_methods(g);
}

TEST(ReorderSpaces, ResidualProducersBothGetTheSharedRowOrder) {
  const Residual r = residual();
  auto perms = test::random_permutations(quant::channel_spaces(r.g), 5);
  Graph p = r.g;
  quant::apply_permutations(p, perms);
  const auto& order = space_of(perms, r.sum).order;
  for (int producer : {r.b, r.c}) {
    const model::Node& n0 = GraphBuilder::node_in(r.g, producer);
    const auto& w0 = n0.weight;
    const auto& w1 = GraphBuilder::node_in(p, producer).weight;
    // Rows follow the shared order; the input channels follow the producer's own input space.
    const auto& in_order = space_of(perms, n0.inputs[0]).order;
    const int64_t cin = w0.shape[1], taps = w0.shape[2] * w0.shape[3];
    for (int64_t o = 0; o < 8; ++o)
      for (int64_t i = 0; i < cin; ++i)
        for (int64_t k = 0; k < taps; ++k)
          ASSERT_EQ(w1.data[(o * cin + i) * taps + k],
                    w0.data[(order[o] * cin + in_order[i]) * taps + k]);
    EXPECT_EQ(GraphBuilder::node_in(p, producer).bias.data[0], n0.bias.data[order[0]]);
  }
}

TEST(ReorderSpaces, DepthwiseConvPassesThroughAndItsWeightsArePermuted) {
  GraphBuilder gb({2, 6, 6}, 3);
  const int pw = gb.clip(gb.conv(gb.input(), 8, 1), 0.0f, 6.0f);
  const int dw = gb.depthwise(pw, 3);
  const int out = gb.conv(gb.relu(dw), 6, 1);
  const Graph g = gb.finish(gb.gemm(gb.flatten(gb.global_avg_pool(out)), 3));
  const auto spaces = quant::channel_spaces(g);
  EXPECT_EQ(&space_of(spaces, pw), &space_of(spaces, dw));
  auto perms = test::random_permutations(spaces, 9);
  const Graph p = apply_and_check(g, perms);
  const auto& order = space_of(perms, dw).order;
  const auto& n0 = GraphBuilder::node_in(g, dw);
  const auto& n1 = GraphBuilder::node_in(p, dw);
  for (int64_t c = 0; c < 8; ++c) {
    EXPECT_EQ(n1.bias.data[c], n0.bias.data[order[c]]);
    for (int64_t k = 0; k < 9; ++k)
      EXPECT_EQ(n1.weight.data[c * 9 + k], n0.weight.data[order[c] * 9 + k]);
  }
  check_all_methods(g);
}

TEST(ReorderSpaces, FlattenThenGemmPermutesRunsOfHTimesWFeatures) {
  GraphBuilder gb({1, 6, 6}, 4);
  const int conv = gb.conv(gb.input(), 4, 3);
  const int flat = gb.flatten(gb.maxpool2(gb.relu(conv)));  // {4 * 3 * 3}
  const int logits = gb.gemm(flat, 5);
  const Graph g = gb.finish(logits);
  const auto spaces = quant::channel_spaces(g);
  const ChannelPermutation& s = space_of(spaces, flat);
  EXPECT_EQ(&s, &space_of(spaces, conv));
  EXPECT_EQ(s.channels, 4);
  auto perms = test::random_permutations(spaces, 2);
  const Graph p = apply_and_check(g, perms);
  const auto& order = space_of(perms, flat).order;
  const auto& w0 = GraphBuilder::node_in(g, logits).weight;
  const auto& w1 = GraphBuilder::node_in(p, logits).weight;
  for (int64_t o = 0; o < 5; ++o)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t r = 0; r < 9; ++r)
        EXPECT_EQ(w1.data[o * 36 + c * 9 + r], w0.data[o * 36 + order[c] * 9 + r]);
  check_all_methods(g);
}

TEST(ReorderSpaces, NetworkInputAndOutputSpacesAreFixed) {
  GraphBuilder gb({3, 4, 4}, 5);
  const int mid = gb.relu(gb.conv(gb.input(), 6, 3));
  const int out = gb.relu(gb.conv(mid, 4, 3));  // the logits are a {C,H,W} conv output
  const Graph g = gb.finish(out);
  for (ReorderMethod m : {ReorderMethod::Sort, ReorderMethod::KMeans}) {
    const auto perms = quant::choose_permutations(g, options(m, 2, 2));
    EXPECT_TRUE(space_of(perms, g.input).fixed);
    EXPECT_TRUE(space_of(perms, out).fixed);
    EXPECT_TRUE(test::is_identity(space_of(perms, g.input).order));
    EXPECT_TRUE(test::is_identity(space_of(perms, out).order));
    EXPECT_FALSE(space_of(perms, mid).fixed);
  }
  check_all_methods(g);
}

TEST(ReorderSpaces, PerChannelConstantOperandsArePermuted) {
  GraphBuilder gb({2, 4, 4}, 6);
  const int conv = gb.conv(gb.input(), 4, 3);
  const int scaled = gb.binary_const(Op::Mul, conv, {1.0f, 2.0f, 3.0f, 4.0f});
  const int shifted = gb.binary_const(Op::Sub, scaled, {-1.0f, 0.5f, 0.25f, 2.0f}, /*first=*/true);
  const int divided = gb.binary_const(Op::Div, gb.relu(shifted), {1.0f, 2.0f, 4.0f, 8.0f});
  const Graph g = gb.finish(gb.gemm(gb.flatten(gb.conv(divided, 3, 1)), 2));
  const auto spaces = quant::channel_spaces(g);
  EXPECT_EQ(&space_of(spaces, conv), &space_of(spaces, divided));
  auto perms = test::random_permutations(spaces, 3);
  const Graph p = apply_and_check(g, perms);
  const auto& order = space_of(perms, conv).order;
  const auto& k0 = GraphBuilder::node_in(g, scaled).operand.data;
  const auto& k1 = GraphBuilder::node_in(p, scaled).operand.data;
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t r = 0; r < 16; ++r) EXPECT_EQ(k1[c * 16 + r], k0[order[c] * 16 + r]);
  check_all_methods(g);
}

TEST(ReorderSpaces, SpatialPadAndPoolsPassThroughChannelPadIsFixed) {
  GraphBuilder gb({2, 6, 6}, 8);
  const int conv = gb.conv(gb.input(), 4, 3);
  const int padded = gb.pad(conv, {0, 1, 1, 0, 1, 1}, 0.5f);
  const int pooled = gb.maxpool2(padded);
  const int chan_padded = gb.pad(gb.conv(pooled, 3, 1), {1, 0, 0, 0, 0, 0}, 0.0f);
  const Graph g = gb.finish(gb.gemm(gb.flatten(gb.conv(chan_padded, 2, 1)), 2));
  const auto spaces = quant::channel_spaces(g);
  EXPECT_EQ(&space_of(spaces, conv), &space_of(spaces, pooled));
  EXPECT_FALSE(space_of(spaces, conv).fixed);
  EXPECT_TRUE(space_of(spaces, chan_padded).fixed);
  EXPECT_TRUE(space_of(spaces, GraphBuilder::node_in(g, chan_padded).inputs[0]).fixed);
  check_all_methods(g);
}

TEST(ReorderSpaces, PerTensorFakeQuantPassesThrough) {
  GraphBuilder gb({2, 4, 4}, 10);
  const int conv = gb.relu(gb.conv(gb.input(), 6, 3));
  // A fine grid: summation-order noise may flip a rounding, which must stay within the tolerance.
  const int fq = gb.fake_quant(conv, 0x1.0p-20f, 0.0f, 0x1.0p30f);
  const Graph g = gb.finish(gb.gemm(gb.flatten(gb.conv(fq, 3, 1)), 2));
  const auto spaces = quant::channel_spaces(g);
  EXPECT_EQ(&space_of(spaces, conv), &space_of(spaces, fq));
  EXPECT_FALSE(space_of(spaces, fq).fixed);
  check_all_methods(g);
}

TEST(ReorderSpaces, GroupedConvAndConcatKeepTheirSpacesFixed) {
  GraphBuilder gb({2, 4, 4}, 9);
  const int a = gb.relu(gb.conv(gb.input(), 4, 3));
  const int grouped = gb.conv(a, 4, 3, /*groups=*/2);
  const int b = gb.relu(gb.conv(grouped, 3, 1));
  const int c = gb.relu(gb.conv(gb.input(), 2, 1));
  const int cat = gb.concat_channels({b, c});
  const int free = gb.relu(gb.conv(cat, 5, 1));
  const Graph g = gb.finish(gb.gemm(gb.flatten(free), 2));
  const auto spaces = quant::channel_spaces(g);
  for (int v : {a, grouped, b, c, cat}) EXPECT_TRUE(space_of(spaces, v).fixed) << "value " << v;
  EXPECT_FALSE(space_of(spaces, free).fixed);
  check_all_methods(g);
}

// The InputError message of f ("<source>: <problem>"), or a recorded failure.
template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw InputError";
  return {};
}

#define EXPECT_INPUT_ERROR(call, source, problem)                     \
  do {                                                                \
    const std::string msg_ = input_error([&] { call; });              \
    EXPECT_EQ(msg_.rfind(std::string(source) + ": ", 0), 0u) << msg_; \
    EXPECT_NE(msg_.find(problem), std::string::npos) << msg_;         \
  } while (0)

TEST(ReorderApply, RejectsPermutationsThatDoNotDescribeTheGraph) {
  const Residual r = residual();
  const auto spaces = quant::channel_spaces(r.g);
  Graph g = r.g;
  auto fewer = spaces;
  fewer.pop_back();
  EXPECT_INPUT_ERROR(quant::apply_permutations(g, fewer), "permutations", "spaces given");
  auto repeated = spaces;
  for (auto& p : repeated)
    if (!p.fixed) p.order[0] = p.order[1];
  EXPECT_INPUT_ERROR(quant::apply_permutations(g, repeated), "permutations", "not a permutation");
  auto moved_fixed = spaces;
  for (auto& p : moved_fixed)
    if (p.fixed && p.channels > 1) std::swap(p.order[0], p.order[1]);
  EXPECT_INPUT_ERROR(quant::apply_permutations(g, moved_fixed), "permutations", "fixed");
}

TEST(ReorderMethodNames, AcceptsTheThreeNamesAndRejectsOthersListingThem) {
  for (ReorderMethod m : {ReorderMethod::None, ReorderMethod::Sort, ReorderMethod::KMeans})
    EXPECT_EQ(quant::kReorderMethodNames.parse(quant::kReorderMethodNames.name(m)), m);
  // The library names the value and the choices; the CLI puts "--reorder: " in front.
  EXPECT_EQ(input_error([&] { quant::kReorderMethodNames.parse("random"); }),
            "unknown reorder method 'random' (allowed: none, sort, kmeans)");
}

// input -> conv P (8 out) -> relu -> conv Q (consumer) -> flatten -> gemm. Channel c of P's output
// has producer row range out_range[c] and consumer column range in_range[c].
Graph two_population_graph(const std::vector<float>& out_range, const std::vector<float>& in_range,
                           uint64_t seed, int* space_value) {
  GraphBuilder gb({2, 4, 4}, seed);
  const int p = gb.conv(gb.input(), 8, 3);
  const int q = gb.conv(gb.relu(p), 4, 3);
  Graph g = gb.finish(gb.gemm(gb.flatten(q), 2));
  model::Tensor& wp = GraphBuilder::node_in(g, p).weight;
  const int64_t row = wp.numel() / 8;
  for (int64_t c = 0; c < 8; ++c)
    for (int64_t k = 0; k < row; ++k) wp.data[c * row + k] *= out_range[c];
  model::Tensor& wq = GraphBuilder::node_in(g, q).weight;
  for (int64_t o = 0; o < 4; ++o)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t k = 0; k < 9; ++k) wq.data[(o * 8 + c) * 9 + k] *= in_range[c];
  *space_value = p;
  return g;
}

// The blocks of `block` consecutive new channels, each as the set of population labels it holds.
std::vector<std::set<int>> block_populations(const std::vector<int64_t>& order,
                                             const std::vector<int>& label, int64_t block) {
  std::vector<std::set<int>> blocks;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i % block == 0) blocks.emplace_back();
    blocks.back().insert(label[order[i]]);
  }
  return blocks;
}

TEST(ReorderChoose, SortMakesInterleavedRangePopulationsContiguous) {
  // Even channels are large (~1), odd ones small (~0.01), on both sides.
  const std::vector<float> range{1.0f, 0.01f, 0.9f, 0.012f, 1.1f, 0.008f, 0.95f, 0.011f};
  const std::vector<int> label{0, 1, 0, 1, 0, 1, 0, 1};
  int v = -1;
  const Graph g = two_population_graph(range, range, 21, &v);
  const auto perms = quant::choose_permutations(g, options(ReorderMethod::Sort, 4, 4));
  const auto& order = space_of(perms, v).order;
  for (const auto& blk : block_populations(order, label, 4)) EXPECT_EQ(blk.size(), 1u);
  apply_and_check(g, perms);
}

TEST(ReorderChoose, KMeansWithBlockOfPopulationSizeGivesEachPopulationItsOwnBlocks) {
  // Populations A (large producer rows, small consumer columns) and B (the reverse) have the same
  // mean log range, so a single key cannot tell them apart; the two-sided features can.
  const std::vector<float> out{1.0f, 0.01f, 0.9f, 0.011f, 0.95f, 0.012f, 1.05f, 0.009f};
  const std::vector<float> in{0.01f, 1.0f, 0.011f, 0.9f, 0.012f, 0.95f, 0.009f, 1.05f};
  const std::vector<int> label{0, 1, 0, 1, 0, 1, 0, 1};
  int v = -1;
  const Graph g = two_population_graph(out, in, 22, &v);
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const auto perms = quant::choose_permutations(g, options(ReorderMethod::KMeans, 4, 4, seed));
    const auto& order = space_of(perms, v).order;
    for (const auto& blk : block_populations(order, label, 4))
      EXPECT_EQ(blk.size(), 1u) << "seed " << seed;
    apply_and_check(g, perms);
  }
}

TEST(ReorderChoose, SameGraphOptionsAndSeedGiveIdenticalPermutations) {
  const Residual r = residual();
  for (ReorderMethod m : {ReorderMethod::Sort, ReorderMethod::KMeans}) {
    const auto first = quant::choose_permutations(r.g, options(m, 2, 4, 99));
    const auto second = quant::choose_permutations(r.g, options(m, 2, 4, 99));
    ASSERT_EQ(first.size(), second.size());
    for (std::size_t s = 0; s < first.size(); ++s) EXPECT_EQ(first[s].order, second[s].order);
    EXPECT_GT(test::count_reordered(first), 0);
  }
}

}  // namespace
}  // namespace tilescale
