#include "tilescale/model/layout.h"

namespace tilescale::model::layout {

int64_t ConvShape::padded_window_count(int64_t oy, int64_t ox) const {
  const int64_t y0 = oy * win.stride_h - win.pad_top;
  const int64_t x0 = ox * win.stride_w - win.pad_left;
  const int64_t y1 = std::min(y0 + win.kernel_h, h + win.pad_bottom);
  const int64_t x1 = std::min(x0 + win.kernel_w, w + win.pad_right);
  return (y1 - std::max(y0, -win.pad_top)) * (x1 - std::max(x0, -win.pad_left));
}

ConvShape conv_shape(const Node& node, const Value& in, const Value& out) {
  ConvShape s;
  if (node.op == Op::Gemm) {
    s.cin_g = node.weight.shape[1];
    return s;
  }
  s.win = node.window;
  s.cin_g = in.shape[0] / node.window.groups;
  s.h = in.shape[1];
  s.w = in.shape[2];
  s.ho = out.shape[1];
  s.wo = out.shape[2];
  return s;
}

}  // namespace tilescale::model::layout
