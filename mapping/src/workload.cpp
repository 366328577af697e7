#include "tilescale/map/workload.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "tilescale/core/error.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::map {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Splits a SCALE-Sim CSV row; its rows end in a comma, so a trailing empty field is dropped.
std::vector<std::string> split_row(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream s(line);
  std::string cell;
  while (std::getline(s, cell, ',')) f.push_back(trim(cell));
  if (!f.empty() && f.back().empty()) f.pop_back();
  return f;
}

int64_t field_int(const std::vector<std::string>& f, std::size_t i, const std::string& what,
                  const std::string& where) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(f[i], &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != f[i].size() || v < 1 || v > (int64_t{1} << 31))
    fail_input(where, what + " '" + f[i] + "' is not a positive integer");
  return v;
}

// Refuses a layer whose MAC count exceeds 2^50, computed in double so the product of four fields
// of up to 2^31 each cannot overflow int64 before the check (found by review of fuzz_topology).
void too_large(const LayerWorkload& w, const std::string& where) {
  const double macs = static_cast<double>(w.groups) * static_cast<double>(w.m) *
                      static_cast<double>(w.n) * static_cast<double>(w.k);
  if (macs > std::ldexp(1.0, 50)) fail_input(where, "layer too large (more than 2^50 MACs)");
}

// A dense layer with one scale: every weight in block 0.
void one_scale(LayerWorkload& w) {
  w.out_group.assign(static_cast<std::size_t>(w.groups * w.n), 0);
  w.red_group.assign(static_cast<std::size_t>(w.k), 0);
  w.out_groups = 1;
  w.red_groups = 1;
  w.granularity = quant::kGranularityKindNames.name(quant::GranularityKind::Layer);
}

template <typename RowFn>
std::vector<LayerWorkload> read_csv(const std::string& path, RowFn&& row) {
  std::ifstream in(path);
  if (!in) fail_input(path, "cannot open the SCALE-Sim CSV");
  std::vector<LayerWorkload> layers;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 || trim(line).empty()) continue;  // header
    row(split_row(line), path + ": line " + std::to_string(line_no), layers);
  }
  if (layers.empty()) fail_input(path, "no layers (expected a header line and one row per layer)");
  return layers;
}

}  // namespace

std::vector<LayerWorkload> workloads_from_model(const quant::QuantizedModel& model) {
  std::vector<LayerWorkload> out;
  for (const quant::LayerQuant& lq : model.layers) {
    const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(lq.op)];
    const model::Node& node = model.graph.nodes[static_cast<std::size_t>(op.node)];
    const quant::ActQuant& in_act = model.act_of(op.inputs.at(0));
    LayerWorkload w;
    w.name = lq.name;
    w.is_conv = node.op == model::Op::Conv;
    const auto& out_shape = model.graph.values[static_cast<std::size_t>(node.output)].shape;
    w.groups = w.is_conv ? node.window.groups : 1;
    if (w.is_conv) {
      w.ofmap_h = out_shape.at(1);
      w.ofmap_w = out_shape.at(2);
    }
    w.m = w.ofmap_h * w.ofmap_w;
    w.n = lq.grid.out_channels / w.groups;
    w.kernel = lq.grid.kernel;
    w.cin_g = lq.grid.cin_g;
    w.k = lq.grid.reduction();
    w.w_bits = lq.w_bits;
    w.a_bits = in_act.bits;
    w.act_signed = in_act.is_signed;
    w.out_group = lq.grid.out_group;
    w.red_group = lq.grid.red_group;
    w.out_groups = lq.grid.out_groups;
    w.red_groups = lq.grid.red_groups;
    w.granularity = lq.granularity.str();
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<LayerWorkload> read_scalesim_topology(const std::string& path, int a_bits, int w_bits) {
  return read_csv(path, [&](const std::vector<std::string>& f, const std::string& where,
                            std::vector<LayerWorkload>& layers) {
    if (f.size() < 8)
      fail_input(where,
                 "expected 'name, IFMAP h, IFMAP w, filter h, filter w, channels, "
                 "filters, stride' (got " +
                     std::to_string(f.size()) + " fields)");
    const int64_t ih = field_int(f, 1, "IFMAP height", where);
    const int64_t iw = field_int(f, 2, "IFMAP width", where);
    const int64_t fh = field_int(f, 3, "filter height", where);
    const int64_t fw = field_int(f, 4, "filter width", where);
    const int64_t ch = field_int(f, 5, "channels", where);
    const int64_t filters = field_int(f, 6, "filters", where);
    const int64_t sh = field_int(f, 7, "stride", where);
    const int64_t sw = f.size() > 8 ? field_int(f, 8, "stride width", where) : sh;
    if (fh > ih || fw > iw) fail_input(where, "filter larger than the IFMAP (valid convolution)");
    LayerWorkload w;
    w.name = f[0];
    w.ofmap_h = (ih - fh + sh + sh - 1) / sh;
    w.ofmap_w = (iw - fw + sw + sw - 1) / sw;
    w.m = w.ofmap_h * w.ofmap_w;
    w.kernel = fh * fw;
    w.a_bits = a_bits;
    w.w_bits = w_bits;
    if (f[0].find("DP") != std::string::npos) {
      // SCALE-Sim runs a depthwise layer as one single-channel layer per channel.
      w.groups = ch;
      w.cin_g = 1;
      w.n = filters;
    } else {
      w.cin_g = ch;
      w.n = filters;
    }
    w.k = w.kernel * w.cin_g;
    too_large(w, where);
    one_scale(w);
    layers.push_back(std::move(w));
  });
}

std::vector<LayerWorkload> read_scalesim_gemm(const std::string& path, int a_bits, int w_bits) {
  return read_csv(path, [&](const std::vector<std::string>& f, const std::string& where,
                            std::vector<LayerWorkload>& layers) {
    if (f.size() < 4)
      fail_input(where, "expected 'name, M, N, K' (got " + std::to_string(f.size()) + " fields)");
    LayerWorkload w;
    w.name = f[0];
    w.is_conv = false;
    w.m = field_int(f, 1, "M", where);
    w.n = field_int(f, 2, "N", where);
    w.k = field_int(f, 3, "K", where);
    w.ofmap_h = w.m;
    w.cin_g = w.k;
    w.a_bits = a_bits;
    w.w_bits = w_bits;
    too_large(w, where);
    one_scale(w);
    layers.push_back(std::move(w));
  });
}

}  // namespace tilescale::map
