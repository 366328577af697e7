#include "tilescale/quant/affine.h"

#include <cmath>

#include "tilescale/core/error.h"

namespace tilescale::quant {

bool is_constant_op(const model::Node& n) {
  return (n.op == model::Op::Add || n.op == model::Op::Sub || n.op == model::Op::Mul ||
          n.op == model::Op::Div) &&
         n.inputs.size() == 1;
}

AffineConstants compose_affine(const model::Graph& g, const std::vector<int>& chain) {
  const model::Node& first = g.nodes[chain.front()];
  const int64_t size = g.values[first.output].size();
  std::vector<double> a(static_cast<std::size_t>(size), 1.0), b(a.size(), 0.0);
  for (int idx : chain) {
    const model::Node& n = g.nodes[idx];
    if (n.op == model::Op::Div && n.operand_first)
      fail_input(g.source, "node '" + n.name +
                               "' (Div) divides a constant by a tensor; the integer path has no "
                               "reciprocal (only x + c, x - c, c - x, x * c and x / c)");
    const std::vector<float>& c = n.operand.data;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double v = c[i];
      switch (n.op) {
        case model::Op::Add:
          b[i] += v;
          break;
        case model::Op::Sub:
          if (n.operand_first) {
            a[i] = -a[i];
            b[i] = v - b[i];
          } else {
            b[i] -= v;
          }
          break;
        case model::Op::Mul:
          a[i] *= v;
          b[i] *= v;
          break;
        default:
          a[i] /= v;
          b[i] /= v;
      }
      if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
        fail_input(g.source, "node '" + n.name + "' (" + n.onnx_op +
                                 ") gives a non-finite factor or offset (a division by zero?)");
    }
  }
  // Compress: uniform, else one entry per channel plane, else per element.
  AffineConstants out;
  auto constant_runs = [&](int64_t run) {
    for (int64_t i = 0; i < size; ++i)
      if (a[i] != a[i - i % run] || b[i] != b[i - i % run]) return false;
    return true;
  };
  const auto& shape = g.values[first.output].shape;
  const int64_t plane = shape.size() > 1 ? size / shape[0] : 1;
  out.run = constant_runs(size) ? size : (plane > 1 && constant_runs(plane) ? plane : 1);
  for (int64_t i = 0; i < size; i += out.run) {
    out.scale.push_back(a[i]);
    out.shift.push_back(b[i]);
  }
  return out;
}

bool is_step_scale(const AffineConstants& c) {
  return c.scale.size() == 1 && c.scale[0] > 0.0 && c.shift[0] == 0.0;
}

}  // namespace tilescale::quant
