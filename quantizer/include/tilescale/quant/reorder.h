// Channel reordering (DESIGN.md section 4): one permutation per channel space, chosen so that block
// quantization (block:BOxBI) groups channels of similar weight range, applied so the float network
// computes the same function. The exact rules are in docs/reorder.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant {

enum class ReorderMethod {
  None,    // identity everywhere
  Sort,    // ascending by a per-channel range key
  KMeans,  // seeded k-means on per-channel range features, clusters laid out block by block
};

inline constexpr auto kReorderMethodNames =
    make_enum_names<ReorderMethod>("reorder method", {{ReorderMethod::None, "none"},
                                                      {ReorderMethod::Sort, "sort"},
                                                      {ReorderMethod::KMeans, "kmeans"}});

struct ReorderOptions {
  ReorderMethod method = ReorderMethod::None;
  int64_t block_out = 16;  // output channels per block (bo); <= 0 means the whole dimension
  int64_t block_in = 32;   // input channels per block (bi); <= 0 means the whole dimension
  uint64_t seed = 0;       // k-means++ seed; together with the space index it fixes every draw
};

// One entry per channel space: a set of activation values whose channel axes must share one
// permutation (a producer's output, everything elementwise or per-channel after it, residual
// joins).
struct ChannelPermutation {
  std::vector<int> values;     // value ids in the space, ascending
  int64_t channels = 0;        // channels of the space (a flattened value holds runs of them)
  std::vector<int64_t> order;  // new channel i = old channel order[i]
  bool fixed = false;          // touches the network input/output or an op that cannot be permuted
  // Filled by the error-driven choice (choose_permutations with a ReorderCalibration): which
  // candidate won ("identity", "sort:<side>", "sort:mean", "kmeans:<restart>") and the summed
  // relative output error of the layers around the space with the identity and with that order.
  std::string chosen = "identity";
  double error_identity = 0.0;
  double error_chosen = 0.0;
};

// What the error-driven choice measures with (docs/reorder.md, "Error-driven choice").
struct ReorderCalibration {
  const std::vector<std::vector<float>>* values = nullptr;  // per value id: FloatExecutor::run_all
  int64_t images = 0;                                       // images in `values`
  int64_t positions = 512;  // output positions sampled per layer (seeded by ReorderOptions::seed)
  int a_bits = 8;           // min-max grid of every layer input, per tensor (32: float inputs)
  std::vector<Granularity> granularity;  // per graph node: the Conv/Gemm entries are read
  std::vector<int> w_bits;               // per graph node: the Conv/Gemm entries are read
};

// The channel spaces of the graph with identity orders, ordered by their smallest value id.
std::vector<ChannelPermutation> channel_spaces(const model::Graph& graph);

// channel_spaces() with orders chosen by options.method from weight ranges alone (the feature
// ranking of docs/reorder.md, no error check); fixed spaces keep the identity.
// Deterministic: the same graph, options and seed give identical orders on every platform.
std::vector<ChannelPermutation> choose_permutations(const model::Graph& graph,
                                                    const ReorderOptions& options);

// The error-driven choice: per movable space (in list order, each with the orders already chosen
// for the spaces before it), the candidate order with the least summed relative output error of the
// Conv/Gemm layers whose rows or columns the space moves, their weights block-quantized in the
// reordered frame and their inputs quantized (ReorderCalibration). Candidates: the identity, the
// sort by each block-sensitive side's log range and by their mean (sort), plus two balanced k-means
// restarts on the per-side features (kmeans). The identity is kept unless a candidate lowers the
// error by more than 1e-6 relative. Deterministic for a given graph, options, seed and data.
std::vector<ChannelPermutation> choose_permutations(const model::Graph& graph,
                                                    const ReorderOptions& options,
                                                    const ReorderCalibration& calibration);

// Rewrites Conv/Gemm weights and biases and constant operands so that every value of every space
// holds its channels in the new order; the network input and logits are untouched, so the float
// function is unchanged. Throws InputError("permutations: ...") if the list does not describe this
// graph's spaces, an order is not a permutation, or a fixed space is not the identity.
void apply_permutations(model::Graph& graph, const std::vector<ChannelPermutation>& permutations);

}  // namespace tilescale::quant
