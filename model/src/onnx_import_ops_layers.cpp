// The ONNX importer's layers with weights or windows: Conv, Gemm/MatMul, BatchNormalization
// (folded into the producing Conv/Gemm when it is that output's only reader) and the pools.
#include <algorithm>
#include <cmath>

#include "onnx_importer.h"

namespace tilescale::model::onnx_detail {

// --- windows
// --------------------------------------------------------------------------------------

Window Importer::read_window(const onnx::NodeProto& n, int64_t in_h, int64_t in_w, int64_t kh,
                             int64_t kw, bool allow_ceil, bool* ceil_mode) const {
  Window w;
  w.kernel_h = kh;
  w.kernel_w = kw;
  auto strides = attr_ints(n, "strides");
  auto dil = attr_ints(n, "dilations");
  auto pads = attr_ints(n, "pads");
  if (!strides.empty()) {
    if (strides.size() != 2) fail_node(n, "strides must have 2 values (2-D only)");
    w.stride_h = strides[0];
    w.stride_w = strides[1];
  }
  if (!dil.empty()) {
    if (dil.size() != 2) fail_node(n, "dilations must have 2 values (2-D only)");
    w.dilation_h = dil[0];
    w.dilation_w = dil[1];
  }
  if (w.stride_h < 1 || w.stride_w < 1 || w.dilation_h < 1 || w.dilation_w < 1 || kh < 1 || kw < 1)
    fail_node(n, "kernel, strides and dilations must be positive");
  for (int64_t v : {w.stride_h, w.stride_w, w.dilation_h, w.dilation_w, kh, kw})
    if (v > kMaxWindowExtent)
      fail_node(
          n, "kernel, strides and dilations must be at most " + std::to_string(kMaxWindowExtent));
  *ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
  if (*ceil_mode && !allow_ceil) fail_node(n, "ceil_mode is not valid here");
  const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    if (!pads.empty()) {
      if (pads.size() != 4) fail_node(n, "pads must have 4 values (2-D only)");
      w.pad_top = pads[0];
      w.pad_left = pads[1];
      w.pad_bottom = pads[2];
      w.pad_right = pads[3];
      for (int64_t p : pads) {
        if (p < 0) fail_node(n, "negative pads are not supported");
        if (p > kMaxWindowExtent)
          fail_node(n, "pads must be at most " + std::to_string(kMaxWindowExtent));
      }
    }
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // Output = ceil(input / stride); the odd padding element goes after (UPPER) or before (LOWER).
    auto same = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t* lo, int64_t* hi) {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
      *lo = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      *hi = total - *lo;
    };
    same(in_h, kh, w.stride_h, w.dilation_h, &w.pad_top, &w.pad_bottom);
    same(in_w, kw, w.stride_w, w.dilation_w, &w.pad_left, &w.pad_right);
  } else if (auto_pad != "VALID") {
    fail_node(n, "unknown auto_pad '" + auto_pad + "'");
  }
  return w;
}

std::vector<int64_t> Importer::window_output(const onnx::NodeProto& n, const Window& w,
                                             int64_t channels, int64_t in_h, int64_t in_w,
                                             bool ceil_mode) const {
  auto out_dim = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo, int64_t hi) {
    const int64_t span = in + lo + hi - ((k - 1) * d + 1);
    if (span < 0)
      fail_node(n, "window " + std::to_string(k) + " is larger than the padded input " +
                       std::to_string(in + lo + hi));
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    // With ceil_mode the last window must still start inside the input or its leading padding.
    if (ceil_mode && (out - 1) * s >= in + lo) --out;
    return out;
  };
  return {channels, out_dim(in_h, w.kernel_h, w.stride_h, w.dilation_h, w.pad_top, w.pad_bottom),
          out_dim(in_w, w.kernel_w, w.stride_w, w.dilation_w, w.pad_left, w.pad_right)};
}

// --- ops
// ------------------------------------------------------------------------------------------

void Importer::import_conv(const onnx::NodeProto& n) {
  const int in = value_of(n, 0);
  const auto& s = graph_.values[in].shape;
  if (s.size() != 3)
    fail_node(n, "only 2-D convolution is supported; input per-sample shape is " + shape_str(s));
  const Constant& wc = constant(n, 1);
  if (wc.shape.size() != 4)
    fail_node(n, "weight must be [Cout][Cin/groups][kh][kw], got " + shape_str(wc.shape));
  const int64_t groups = attr_int(n, "group", 1);
  const int64_t cout = wc.shape[0], cin_g = wc.shape[1];
  if (groups < 1 || s[0] % groups != 0 || cout % groups != 0 || cin_g * groups != s[0])
    fail_node(n, "weight " + shape_str(wc.shape) + " with group=" + std::to_string(groups) +
                     " does not fit an input of " + std::to_string(s[0]) + " channels");
  auto ks = attr_ints(n, "kernel_shape");
  if (!ks.empty() && (ks.size() != 2 || ks[0] != wc.shape[2] || ks[1] != wc.shape[3]))
    fail_node(n, "kernel_shape does not match the weight");
  bool ceil_mode = false;
  Window w = read_window(n, s[1], s[2], wc.shape[2], wc.shape[3], false, &ceil_mode);
  w.groups = groups;
  auto out_shape = window_output(n, w, cout, s[1], s[2], false);
  Tensor bias;
  bias.shape = {cout};
  bias.data.assign(static_cast<std::size_t>(cout), 0.0f);
  if (n.input_size() > 2 && !n.input(2).empty()) {
    const Constant& bc = constant(n, 2);
    if (bc.numel() != cout)
      fail_node(n, "bias has " + std::to_string(bc.numel()) + " values for " +
                       std::to_string(cout) + " output channels");
    bias.data.assign(bc.data.begin(), bc.data.end());
  }
  Node& node = add_node(n, Op::Conv, {in}, out_shape);
  node.window = w;
  node.weight = to_tensor(wc);
  node.bias = std::move(bias);
}

void Importer::import_gemm(const onnx::NodeProto& n, bool matmul) {
  const int in = value_of(n, 0);
  const auto& s = graph_.values[in].shape;
  if (s.size() != 1)
    fail_node(n, "expects a [batch][K] input, got per-sample shape " + shape_str(s) +
                     " (insert a Flatten)");
  const int64_t k = s[0];
  const Constant& bc = constant(n, 1);
  if (bc.shape.size() != 2) fail_node(n, "weight must be 2-D, got " + shape_str(bc.shape));
  const bool trans_a = !matmul && attr_int(n, "transA", 0) != 0;
  const bool trans_b = !matmul && attr_int(n, "transB", 0) != 0;
  if (trans_a) fail_node(n, "transA=1 would transpose the batch axis; not supported");
  const float alpha = matmul ? 1.0f : attr_float(n, "alpha", 1.0f);
  const float beta = matmul ? 1.0f : attr_float(n, "beta", 1.0f);
  const int64_t rows = trans_b ? bc.shape[1] : bc.shape[0];  // must equal K
  const int64_t nout = trans_b ? bc.shape[0] : bc.shape[1];
  if (rows != k)
    fail_node(n, "weight " + shape_str(bc.shape) + " does not fit an input of " +
                     std::to_string(k) + " features");
  Tensor w;
  w.shape = {nout, k};
  w.data.resize(static_cast<std::size_t>(nout * k));
  for (int64_t o = 0; o < nout; ++o)
    for (int64_t i = 0; i < k; ++i)
      w.data[o * k + i] =
          alpha * static_cast<float>(trans_b ? bc.data[o * k + i] : bc.data[i * nout + o]);
  Tensor bias;
  bias.shape = {nout};
  bias.data.assign(static_cast<std::size_t>(nout), 0.0f);
  if (!matmul && n.input_size() > 2 && !n.input(2).empty()) {
    const Constant& cc = constant(n, 2);
    const int64_t cn = cc.numel();
    if (cn != 1 && cn != nout)
      fail_node(n, "bias C of shape " + shape_str(cc.shape) +
                       " does not broadcast per sample to [" + std::to_string(nout) + "]");
    for (int64_t o = 0; o < nout; ++o)
      bias.data[o] = beta * static_cast<float>(cc.data[cn == 1 ? 0 : o]);
  }
  Node& node = add_node(n, Op::Gemm, {in}, {nout});
  node.weight = std::move(w);
  node.bias = std::move(bias);
}

// y = scale[o] * x + shift[o] per output channel o of x, folded into the Conv/Gemm that produces
// x when it is the last node and this node is x's only reader: W[o] *= scale[o], b[o] = b[o] *
// scale[o] + shift[o], in double, rounded once to float32. Exact in real arithmetic (the layer
// computes the same function); the folded float32 weights differ from the unfolded products by
// float rounding only. n's output becomes an alias of x. Returns false (nothing changed) otherwise.
bool Importer::fold_into_producer(const onnx::NodeProto& n, int in,
                                  const std::vector<double>& scale,
                                  const std::vector<double>& shift) {
  if (graph_.nodes.empty()) return false;
  Node& prev = graph_.nodes.back();
  if ((prev.op != Op::Conv && prev.op != Op::Gemm) || prev.output != in || readers(in) != 1)
    return false;
  const int64_t c = static_cast<int64_t>(scale.size());
  if (prev.bias.numel() != c) return false;
  for (int64_t o = 0; o < c; ++o)
    if (!std::isfinite(scale[o]) || !std::isfinite(shift[o])) return false;
  const int64_t per_out = prev.weight.numel() / c;
  for (int64_t o = 0; o < c; ++o) {
    for (int64_t j = 0; j < per_out; ++j)
      prev.weight.data[o * per_out + j] =
          static_cast<float>(prev.weight.data[o * per_out + j] * scale[o]);
    prev.bias.data[o] = static_cast<float>(prev.bias.data[o] * scale[o] + shift[o]);
  }
  value_ids_[n.output(0)] = in;
  graph_.values[in].name = n.output(0);
  return true;
}

void Importer::import_batchnorm(const onnx::NodeProto& n) {
  if (n.output_size() > 1) {
    for (int i = 1; i < n.output_size(); ++i)
      if (!n.output(i).empty() && onnx_consumers_[n.output(i)] > 0)
        fail_node(n,
                  "training-mode outputs (running mean/var) are used; only inference is supported");
  }
  if (attr_int(n, "training_mode", 0) != 0) fail_node(n, "training_mode=1 is not supported");
  const int in = value_of(n, 0);
  const auto s = graph_.values[in].shape;  // a copy: add_node below grows graph_.values
  const int64_t c = s[0];
  const Constant& gamma = constant(n, 1);
  const Constant& beta = constant(n, 2);
  const Constant& mean = constant(n, 3);
  const Constant& var = constant(n, 4);
  for (const Constant* p : {&gamma, &beta, &mean, &var})
    if (p->numel() != c)
      fail_node(n, "parameters must have one value per channel (" + std::to_string(c) + ")");
  const double eps = attr_float(n, "epsilon", 1e-5f);
  std::vector<double> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = gamma.data[i] / std::sqrt(var.data[i] + eps);
    shift[i] = beta.data[i] - mean.data[i] * scale[i];
  }
  // Fold into the producing Conv/Gemm when this BN is that output's only consumer.
  if (fold_into_producer(n, in, scale, shift)) return;
  // Otherwise a per-channel affine: Mul by scale then Add shift, both broadcast over H and W.
  const int64_t per_c = graph_.values[in].size() / c;
  reserve_expanded(n, 2.0 * static_cast<double>(c) * static_cast<double>(per_c));
  Tensor sc, sh;
  sc.shape = sh.shape = s;
  sc.data.resize(static_cast<std::size_t>(c * per_c));
  sh.data.resize(sc.data.size());
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < per_c; ++j) {
      sc.data[i * per_c + j] = static_cast<float>(scale[i]);
      sh.data[i * per_c + j] = static_cast<float>(shift[i]);
    }
  onnx::NodeProto mul_proto = n;
  mul_proto.set_output(0, n.output(0) + "/scale");
  mul_proto.set_name(node_label(n) + "/scale");
  Node& mul = add_node(mul_proto, Op::Mul, {in}, s);
  mul.operand = std::move(sc);
  const int mid = mul.output;
  onnx::NodeProto add_proto = n;
  add_proto.set_name(node_label(n) + "/shift");
  Node& add = add_node(add_proto, Op::Add, {mid}, s);
  add.operand = std::move(sh);
}

void Importer::import_pool(const onnx::NodeProto& n, Op op) {
  const int in = value_of(n, 0);
  const auto s = graph_.values[in].shape;
  if (s.size() != 3)
    fail_node(n, "only 2-D pooling is supported; input per-sample shape is " + shape_str(s));
  if (n.output_size() > 1 && !n.output(1).empty() && onnx_consumers_[n.output(1)] > 0)
    fail_node(n, "the Indices output is not supported");
  auto ks = attr_ints(n, "kernel_shape");
  if (ks.size() != 2) fail_node(n, "kernel_shape must have 2 values");
  bool ceil_mode = false;
  Window w = read_window(n, s[1], s[2], ks[0], ks[1], true, &ceil_mode);
  if (op == Op::AveragePool && (w.dilation_h != 1 || w.dilation_w != 1))
    fail_node(n, "dilated AveragePool is not supported");
  auto out = window_output(n, w, s[0], s[1], s[2], ceil_mode);
  Node& node = add_node(n, op, {in}, out);
  node.window = w;
  node.count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
}

}  // namespace tilescale::model::onnx_detail
