// Channel reordering (DESIGN.md section 4): one permutation per channel space, chosen so that block
// quantization (block:BOxBI) groups channels of similar weight range, applied so the float network
// computes the same function. The exact rules are in docs/reorder.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/model/graph.h"

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
};

// The channel spaces of the graph with identity orders, ordered by their smallest value id.
std::vector<ChannelPermutation> channel_spaces(const model::Graph& graph);

// channel_spaces() with orders chosen by options.method; fixed spaces keep the identity.
// Deterministic: the same graph, options and seed give identical orders on every platform.
std::vector<ChannelPermutation> choose_permutations(const model::Graph& graph,
                                                    const ReorderOptions& options);

// Rewrites Conv/Gemm weights and biases and constant operands so that every value of every space
// holds its channels in the new order; the network input and logits are untouched, so the float
// function is unchanged. Throws InputError("permutations: ...") if the list does not describe this
// graph's spaces, an order is not a permutation, or a fixed space is not the identity.
void apply_permutations(model::Graph& graph, const std::vector<ChannelPermutation>& permutations);

}  // namespace tilescale::quant
