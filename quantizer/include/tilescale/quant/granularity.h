// Quantization granularity: which weights of a Conv/Gemm share one scale (DESIGN.md section 2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/model/graph.h"
#include "tilescale/model/layout.h"

namespace tilescale::quant {

enum class GranularityKind {
  Layer,    // one scale per layer
  Channel,  // one scale per output channel
  Block,    // block_out output channels x block_in input channels x the whole kernel window
  Mx,       // one output channel x runs of `run` along the reduction axis, power-of-two scales
  Vsq,      // one output channel x runs of `run`; small integer scale x per-channel float scale
  Xbar,     // block_out output channels x runs of `run` along the hardware reduction axis: with
            // run = a crossbar's rows, every block fills whole crossbars (CIM array-wise scales)
};
// The kinds' names: the part of a granularity text before its ':' (the whole text for layer and
// channel).
inline constexpr auto kGranularityKindNames =
    make_enum_names<GranularityKind>("granularity", {{GranularityKind::Layer, "layer"},
                                                     {GranularityKind::Channel, "channel"},
                                                     {GranularityKind::Block, "block"},
                                                     {GranularityKind::Mx, "mx"},
                                                     {GranularityKind::Vsq, "vsq"},
                                                     {GranularityKind::Xbar, "xbar"}});

struct Granularity {
  GranularityKind kind = GranularityKind::Channel;
  int64_t block_out = 1;  // Block, Xbar: output channels per block
  int64_t block_in = 0;   // Block: input channels per block
  int64_t run = 0;        // Mx/Vsq/Xbar: reduction elements per block (hardware order)
  int vsq_bits = 4;       // Vsq: bits of the per-vector integer scale

  // "layer", "channel", "block:BOxBI", "mx:N", "vsq:N", "xbar:BOxR". Throws InputError describing
  // the text and the allowed forms (the caller adds the option or field it came from).
  static Granularity parse(const std::string& text);
  std::string str() const;
};

// The block structure of one Conv/Gemm weight. The reduction axis is indexed in hardware order
// k = (ky * kw + kx) * cin_g + c (DESIGN.md section 6), so a block of input channels is, at each
// kernel position, a contiguous run; the ONNX weight layout is [o][c][ky][kx].
struct BlockGrid {
  int64_t out_channels = 0;        // Cout
  int64_t cin_g = 0;               // input channels per group
  int64_t kernel = 1;              // kh * kw
  int64_t out_groups = 0;          // number of output-channel groups
  int64_t red_groups = 0;          // number of reduction groups
  std::vector<int64_t> out_group;  // [Cout] group of each output channel
  std::vector<int64_t> red_group;  // [kernel * cin_g] group of each hardware reduction index

  int64_t reduction() const { return kernel * cin_g; }
  int64_t num_blocks() const { return out_groups * red_groups; }
  int64_t block_of(int64_t o, int64_t k) const { return out_group[o] * red_groups + red_group[k]; }
  // Hardware reduction index of ONNX weight element (c, position) with position = ky * kw + kx.
  int64_t hw_index(int64_t c, int64_t position) const {
    return model::layout::hw_reduction_index(cin_g, c, position);
  }
  // Per reduction group, the ONNX reduction indices c * kernel + position of its members in
  // ascending order: the weight columns and im2col rows one block partial sum runs over.
  std::vector<std::vector<int64_t>> onnx_columns() const;
};

// Builds the grid for a Conv or Gemm node. Depthwise convs (cin_g == 1) get blocks along output
// channels only. A block larger than this layer's dimension covers the whole dimension.
BlockGrid make_block_grid(const model::Node& node, const Granularity& g);

// Checks that a Block granularity fits the network: block_out and block_in may not exceed the
// largest Conv/Gemm output and input channel counts (else every layer would silently be layerwise).
// Throws InputError describing the block and the largest layer, not where the granularity came
// from (the caller adds that with with_source).
void check_granularity_fits(const model::Graph& graph, const Granularity& g);

}  // namespace tilescale::quant
