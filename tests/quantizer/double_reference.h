// A slow, direct-loop evaluation of a Graph in double precision, one sample at a time. It exists so
// the reorder tests can check "same function" far below float32 rounding: a permuted float32
// network sums its reductions in a different order, which on a deep model moves logits by a few
// ulps of the largest logit - already 1e-5 relative to a logit of 1% of the largest.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::test {

namespace double_ref {

using model::Graph;
using model::Node;
using model::Op;
using model::Value;

inline std::vector<double> conv(const Node& n, const Value& iv, const Value& ov,
                                const std::vector<double>& in) {
  const model::Window& w = n.window;
  const int64_t cin = iv.shape[0], h = iv.shape[1], wd = iv.shape[2];
  const int64_t cout = ov.shape[0], ho = ov.shape[1], wo = ov.shape[2];
  const int64_t cin_g = cin / w.groups, cout_g = cout / w.groups;
  std::vector<double> out(static_cast<std::size_t>(ov.size()));
  // One weight tap at a time over the whole output plane: sequential memory, few index
  // computations.
  for (int64_t o = 0; o < cout; ++o) {
    double* plane = out.data() + o * ho * wo;
    std::fill(plane, plane + ho * wo, static_cast<double>(n.bias.data[o]));
    for (int64_t ci = 0; ci < cin_g; ++ci) {
      const double* src = in.data() + ((o / cout_g) * cin_g + ci) * h * wd;
      for (int64_t ky = 0; ky < w.kernel_h; ++ky)
        for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
          const double wt = n.weight.data[((o * cin_g + ci) * w.kernel_h + ky) * w.kernel_w + kx];
          for (int64_t oy = 0; oy < ho; ++oy) {
            const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
            if (iy < 0 || iy >= h) continue;
            for (int64_t ox = 0; ox < wo; ++ox) {
              const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
              if (ix >= 0 && ix < wd) plane[oy * wo + ox] += wt * src[iy * wd + ix];
            }
          }
        }
    }
  }
  return out;
}

inline std::vector<double> gemm(const Node& n, const std::vector<double>& in) {
  const int64_t nout = n.weight.shape[0], k = n.weight.shape[1];
  std::vector<double> out(static_cast<std::size_t>(nout));
  for (int64_t o = 0; o < nout; ++o) {
    double acc = n.bias.data[o];
    for (int64_t i = 0; i < k; ++i) acc += static_cast<double>(n.weight.data[o * k + i]) * in[i];
    out[o] = acc;
  }
  return out;
}

inline double binary_op(Op op, double a, double b) {
  switch (op) {
    case Op::Add:
      return a + b;
    case Op::Sub:
      return a - b;
    case Op::Mul:
      return a * b;
    default:
      return a / b;
  }
}

// MaxPool, AveragePool (same padding rules as the float executor) and GlobalAveragePool.
inline std::vector<double> pool(const Node& n, const Value& iv, const Value& ov,
                                const std::vector<double>& in) {
  const int64_t c = iv.shape[0], h = iv.shape[1], wd = iv.shape[2], ho = ov.shape[1],
                wo = ov.shape[2];
  model::Window w = n.window;
  if (n.op == Op::GlobalAveragePool) {
    w = model::Window{};
    w.kernel_h = h;
    w.kernel_w = wd;
  }
  std::vector<double> out(static_cast<std::size_t>(ov.size()));
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        double acc = n.op == Op::MaxPool ? -std::numeric_limits<double>::infinity() : 0.0;
        int64_t inside = 0;
        for (int64_t ky = 0; ky < w.kernel_h; ++ky)
          for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
            const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
            const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            const double v = in[(ch * h + iy) * wd + ix];
            acc = n.op == Op::MaxPool ? std::max(acc, v) : acc + v;
            ++inside;
          }
        if (n.op != Op::MaxPool) {
          int64_t divisor = inside;
          if (n.count_include_pad) {
            const int64_t y0 = oy * w.stride_h - w.pad_top, x0 = ox * w.stride_w - w.pad_left;
            const int64_t y1 = std::min(y0 + w.kernel_h, h + w.pad_bottom);
            const int64_t x1 = std::min(x0 + w.kernel_w, wd + w.pad_right);
            divisor = (y1 - std::max(y0, -w.pad_top)) * (x1 - std::max(x0, -w.pad_left));
          }
          acc = divisor > 0 ? acc / static_cast<double>(divisor) : 0.0;
        }
        out[(ch * ho + oy) * wo + ox] = acc;
      }
  return out;
}

inline std::vector<double> run_node(const Graph& g, const Node& n,
                                    const std::vector<std::vector<double>>& v) {
  const Value& iv = g.values[n.inputs[0]];
  const Value& ov = g.values[n.output];
  const std::vector<double>& in = v[n.inputs[0]];
  std::vector<double> out = in;
  switch (n.op) {
    case Op::Conv:
      return conv(n, iv, ov, in);
    case Op::Gemm:
      return gemm(n, in);
    case Op::Relu:
      for (double& x : out) x = std::max(x, 0.0);
      return out;
    case Op::Clip:
      for (double& x : out)
        x = std::min(std::max(x, static_cast<double>(n.clip_min)), static_cast<double>(n.clip_max));
      return out;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      for (std::size_t i = 0; i < out.size(); ++i) {
        const double b = n.inputs.size() == 2 ? v[n.inputs[1]][i] : n.operand.data[i];
        out[i] = n.operand_first && n.inputs.size() == 1 ? binary_op(n.op, b, in[i])
                                                         : binary_op(n.op, in[i], b);
      }
      return out;
    case Op::MaxPool:
    case Op::AveragePool:
    case Op::GlobalAveragePool:
      return pool(n, iv, ov, in);
    case Op::Reshape:
      return out;
    default:
      ADD_FAILURE() << "double reference: unsupported op " << model::op_name(n.op);
      return {};
  }
}

}  // namespace double_ref

// Logits [n][output size] of the graph in double precision for input [n][input size].
inline std::vector<double> run_double(const model::Graph& g, const std::vector<float>& input,
                                      int64_t n) {
  const int64_t in_size = g.input_value().size(), out_size = g.output_value().size();
  std::vector<double> logits;
  for (int64_t s = 0; s < n; ++s) {
    std::vector<std::vector<double>> v(g.values.size());
    v[g.input].assign(input.begin() + s * in_size, input.begin() + (s + 1) * in_size);
    for (const model::Node& node : g.nodes) v[node.output] = double_ref::run_node(g, node, v);
    if (static_cast<int64_t>(v[g.output].size()) != out_size) return {};
    logits.insert(logits.end(), v[g.output].begin(), v[g.output].end());
  }
  return logits;
}

}  // namespace tilescale::test
