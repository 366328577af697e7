#include "tilescale/quant/granularity.h"

#include <algorithm>
#include <regex>

#include "tilescale/core/error.h"

namespace tilescale::quant {

std::vector<std::vector<int64_t>> BlockGrid::onnx_columns() const {
  std::vector<std::vector<int64_t>> cols(static_cast<std::size_t>(red_groups));
  for (int64_t c = 0; c < cin_g; ++c)
    for (int64_t p = 0; p < kernel; ++p)
      cols[red_group[hw_index(c, p)]].push_back(model::layout::onnx_reduction_index(kernel, c, p));
  return cols;
}

Granularity Granularity::parse(const std::string& text) {
  Granularity g;
  std::smatch m;
  auto positive = [&](const std::string& s, const char* what) {
    const long long v = std::stoll(s);
    if (v <= 0 || v > (1 << 20))
      fail_input("--granularity", "'" + text + "': " + what + " must be in 1..1048576");
    return static_cast<int64_t>(v);
  };
  if (text == "layer") {
    g.kind = GranularityKind::Layer;
  } else if (text == "channel") {
    g.kind = GranularityKind::Channel;
  } else if (std::regex_match(text, m, std::regex(R"(block:(\d{1,9})x(\d{1,9}))"))) {
    g.kind = GranularityKind::Block;
    g.block_out = positive(m[1], "block output channels");
    g.block_in = positive(m[2], "block input channels");
  } else if (std::regex_match(text, m, std::regex(R"(mx:(\d{1,9}))"))) {
    g.kind = GranularityKind::Mx;
    g.run = positive(m[1], "the run length");
  } else if (std::regex_match(text, m, std::regex(R"(vsq:(\d{1,9}))"))) {
    g.kind = GranularityKind::Vsq;
    g.run = positive(m[1], "the vector length");
  } else {
    fail_input("--granularity",
               "unknown granularity '" + text + "' (layer, channel, block:BOxBI, mx:N, vsq:N)");
  }
  return g;
}

std::string Granularity::str() const {
  switch (kind) {
    case GranularityKind::Layer:
      return "layer";
    case GranularityKind::Channel:
      return "channel";
    case GranularityKind::Block:
      return "block:" + std::to_string(block_out) + "x" + std::to_string(block_in);
    case GranularityKind::Mx:
      return "mx:" + std::to_string(run);
    case GranularityKind::Vsq:
      return "vsq:" + std::to_string(run);
  }
  return "?";
}

BlockGrid make_block_grid(const model::Node& node, const Granularity& g) {
  BlockGrid grid;
  const auto& ws = node.weight.shape;
  grid.out_channels = ws[0];
  grid.cin_g = ws[1];
  grid.kernel = node.op == model::Op::Conv ? ws[2] * ws[3] : 1;
  const int64_t cout = grid.out_channels, k = grid.reduction();
  const bool depthwise = node.op == model::Op::Conv && grid.cin_g == 1 && node.window.groups > 1;
  int64_t bo = cout;  // output channels per group
  grid.out_group.resize(static_cast<std::size_t>(cout));
  grid.red_group.assign(static_cast<std::size_t>(k), 0);
  switch (g.kind) {
    case GranularityKind::Layer:
      break;
    case GranularityKind::Channel:
      bo = 1;
      break;
    case GranularityKind::Block: {
      bo = std::min(g.block_out, cout);
      const int64_t bi = depthwise ? grid.cin_g : std::min(g.block_in, grid.cin_g);
      for (int64_t kk = 0; kk < k; ++kk) grid.red_group[kk] = (kk % grid.cin_g) / bi;
      break;
    }
    case GranularityKind::Mx:
    case GranularityKind::Vsq:
      bo = 1;
      for (int64_t kk = 0; kk < k; ++kk) grid.red_group[kk] = kk / g.run;
      break;
  }
  for (int64_t o = 0; o < cout; ++o) grid.out_group[o] = o / bo;
  grid.out_groups = (cout + bo - 1) / bo;
  grid.red_groups = *std::max_element(grid.red_group.begin(), grid.red_group.end()) + 1;
  return grid;
}

void check_granularity_fits(const model::Graph& graph, const Granularity& g) {
  if (g.kind != GranularityKind::Block) return;
  int64_t max_out = 0, max_in = 0;
  for (const model::Node& n : graph.nodes) {
    if (n.op != model::Op::Conv && n.op != model::Op::Gemm) continue;
    max_out = std::max(max_out, n.weight.shape[0]);
    max_in = std::max(max_in, n.weight.shape[1]);
  }
  if (g.block_out > max_out || g.block_in > max_in)
    fail_input("--granularity", "block " + std::to_string(g.block_out) + "x" +
                                    std::to_string(g.block_in) + " is larger than every layer of " +
                                    graph.source + " (largest: " + std::to_string(max_out) +
                                    " output x " + std::to_string(max_in) + " input channels)");
}

}  // namespace tilescale::quant
