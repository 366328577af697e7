#include "tilescale/quant/granularity.h"

#include <algorithm>
#include <regex>

#include "tilescale/core/error.h"

namespace tilescale::quant {

namespace {

// What follows "<kind>:" in the text of a kind, for messages; empty for kinds without parameters.
const char* parameter_syntax(GranularityKind kind) {
  switch (kind) {
    case GranularityKind::Block:
      return "BOxBI";
    case GranularityKind::Xbar:
      return "BOxR";
    case GranularityKind::Mx:
    case GranularityKind::Vsq:
      return "N";
    default:
      return "";
  }
}

[[noreturn]] void unknown_granularity(const std::string& text) {
  std::string allowed;
  for (const auto& e : kGranularityKindNames.entries) {
    const std::string syntax = parameter_syntax(e.value);
    allowed +=
        (allowed.empty() ? "" : ", ") + std::string(e.name) + (syntax.empty() ? "" : ":" + syntax);
  }
  throw InputError("unknown granularity '" + text + "' (allowed: " + allowed + ")");
}

}  // namespace

std::vector<std::vector<int64_t>> BlockGrid::onnx_columns() const {
  std::vector<std::vector<int64_t>> cols(static_cast<std::size_t>(red_groups));
  for (int64_t c = 0; c < cin_g; ++c)
    for (int64_t p = 0; p < kernel; ++p)
      cols[red_group[hw_index(c, p)]].push_back(model::layout::onnx_reduction_index(kernel, c, p));
  return cols;
}

Granularity Granularity::parse(const std::string& text) {
  const std::size_t colon = text.find(':');
  const std::string head = text.substr(0, colon);
  const std::string params = colon == std::string::npos ? "" : text.substr(colon + 1);
  Granularity g;
  const auto* entry =
      std::find_if(kGranularityKindNames.entries.begin(), kGranularityKindNames.entries.end(),
                   [&](const auto& e) { return head == e.name; });
  if (entry == kGranularityKindNames.entries.end()) unknown_granularity(text);
  g.kind = entry->value;
  const bool takes_parameters = *parameter_syntax(g.kind) != '\0';
  if (takes_parameters != (colon != std::string::npos)) unknown_granularity(text);
  auto positive = [&](const std::string& s, const char* what) {
    const long long v = std::stoll(s);
    if (v <= 0 || v > (1 << 20))
      throw InputError("'" + text + "': " + what + " must be in 1..1048576");
    return static_cast<int64_t>(v);
  };
  std::smatch m;
  if (g.kind == GranularityKind::Block || g.kind == GranularityKind::Xbar) {
    if (!std::regex_match(params, m, std::regex(R"((\d{1,9})x(\d{1,9}))")))
      unknown_granularity(text);
    g.block_out = positive(m[1], "block output channels");
    if (g.kind == GranularityKind::Block)
      g.block_in = positive(m[2], "block input channels");
    else
      g.run = positive(m[2], "the crossbar rows");
  } else if (g.kind == GranularityKind::Mx || g.kind == GranularityKind::Vsq) {
    if (!std::regex_match(params, m, std::regex(R"(\d{1,9})"))) unknown_granularity(text);
    g.run = positive(m[0], g.kind == GranularityKind::Mx ? "the run length" : "the vector length");
  }
  return g;
}

std::string Granularity::str() const {
  const std::string name = kGranularityKindNames.name(kind);
  switch (kind) {
    case GranularityKind::Block:
      return name + ":" + std::to_string(block_out) + "x" + std::to_string(block_in);
    case GranularityKind::Xbar:
      return name + ":" + std::to_string(block_out) + "x" + std::to_string(run);
    case GranularityKind::Mx:
    case GranularityKind::Vsq:
      return name + ":" + std::to_string(run);
    default:
      return name;
  }
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
    case GranularityKind::Xbar:
      bo = std::min(g.block_out, cout);
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
    throw InputError("block " + std::to_string(g.block_out) + "x" + std::to_string(g.block_in) +
                     " is larger than every layer of " + graph.source +
                     " (largest: " + std::to_string(max_out) + " output x " +
                     std::to_string(max_in) + " input channels)");
}

}  // namespace tilescale::quant
