// The lowering of windows and convolutions, in one place: which input element a kernel tap reads,
// the im2col patch matrix in ONNX reduction order (the float kernels, the golden integer executor,
// the scale search) and in the hardware's [kh][kw][cin] order (DESIGN.md section 6; the array's
// ifmap feeder), and the packing of weights into that order. Every executor and simulator lowers
// through these functions, so they cannot disagree on a padded tap or an index order.
//
// Index orders of a group's reduction axis, with kernel position p = ky * kw + kx:
//   ONNX      k = c * kernel + p   (weight layout [Cout][Cin/groups][kh][kw])
//   hardware  k = p * cin_g + c    (a fold of R array rows covers input channels of one position)
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::model::layout {

constexpr int64_t onnx_reduction_index(int64_t kernel, int64_t c, int64_t p) {
  return c * kernel + p;
}
constexpr int64_t hw_reduction_index(int64_t cin_g, int64_t c, int64_t p) { return p * cin_g + c; }

// One group of a Conv, or one channel plane of a pool, over one sample. A Gemm is the 1x1 case:
// cin_g = K input channels on a 1x1 plane, so it lowers through the same functions.
struct ConvShape {
  Window win;              // kernel, stride, dilation, pads (win.groups is not used here)
  int64_t cin_g = 1;       // input channels of one group (pools: channels)
  int64_t h = 1, w = 1;    // input plane, elements
  int64_t ho = 1, wo = 1;  // output plane, elements

  int64_t kernel() const { return win.kernel_h * win.kernel_w; }
  int64_t k() const { return cin_g * kernel(); }  // reduction length of one group
  int64_t positions() const { return ho * wo; }   // output pixels
  // Input coordinates of kernel tap (ky, kx) of output pixel (oy, ox); outside [0, h) x [0, w)
  // the tap reads padding.
  int64_t input_y(int64_t oy, int64_t ky) const {
    return oy * win.stride_h - win.pad_top + ky * win.dilation_h;
  }
  int64_t input_x(int64_t ox, int64_t kx) const {
    return ox * win.stride_w - win.pad_left + kx * win.dilation_w;
  }
  // Elements of the window of (oy, ox) inside the input plus its declared padding, dilation not
  // counted: AveragePool's count_include_pad divisor. A ceil_mode overhang past the padding is
  // never counted.
  int64_t padded_window_count(int64_t oy, int64_t ox) const;
};

// The shape of a Conv (one group), a pool (cin_g = channels) or a Gemm (1x1, cin_g = K) node
// with input value `in` and output value `out`.
ConvShape conv_shape(const Node& node, const Value& in, const Value& out);

// Calls tap(input_offset, p) for every kernel tap of output pixel (oy, ox) that lies inside the
// input plane, ky outer and kx inner (the order sums are taken in); input_offset = iy * w + ix,
// p = ky * kw + kx.
template <typename Tap>
inline void for_each_tap(const ConvShape& s, int64_t oy, int64_t ox, Tap&& tap) {
  for (int64_t ky = 0; ky < s.win.kernel_h; ++ky) {
    const int64_t iy = s.input_y(oy, ky);
    if (iy < 0 || iy >= s.h) continue;
    for (int64_t kx = 0; kx < s.win.kernel_w; ++kx) {
      const int64_t ix = s.input_x(ox, kx);
      if (ix < 0 || ix >= s.w) continue;
      tap(iy * s.w + ix, ky * s.win.kernel_w + kx);
    }
  }
}

// The patch matrix of one sample and one group in ONNX reduction order: row c * kernel + p,
// column oy * wo + ox, rows `ld` elements apart (so several samples can sit side by side); taps in
// the padding are 0. `in` points at the group's first input plane, [cin_g][h][w].
template <typename In, typename Out>
void im2col_onnx(const ConvShape& s, const In* in, Out* col, int64_t ld) {
  const int64_t kh = s.win.kernel_h, kw = s.win.kernel_w, wo = s.wo;
  for (int64_t c = 0; c < s.cin_g; ++c) {
    const In* plane = in + c * s.h * s.w;
    for (int64_t ky = 0; ky < kh; ++ky) {
      for (int64_t kx = 0; kx < kw; ++kx) {
        Out* row = col + onnx_reduction_index(s.kernel(), c, ky * kw + kx) * ld;
        const int64_t x0 = s.input_x(0, kx);
        for (int64_t oy = 0; oy < s.ho; ++oy) {
          const int64_t iy = s.input_y(oy, ky);
          Out* dst = row + oy * wo;
          if (iy < 0 || iy >= s.h) {
            std::fill(dst, dst + wo, Out(0));
            continue;
          }
          const In* src = plane + iy * s.w;
          if (s.win.stride_w == 1) {
            // A contiguous run: zeros left of the input, a copy, zeros right of it.
            const int64_t lo = std::clamp<int64_t>(-x0, 0, wo);
            const int64_t hi = std::clamp<int64_t>(s.w - x0, lo, wo);
            std::fill(dst, dst + lo, Out(0));
            std::copy(src + x0 + lo, src + x0 + hi, dst + lo);
            std::fill(dst + hi, dst + wo, Out(0));
          } else {
            for (int64_t ox = 0; ox < wo; ++ox) {
              const int64_t ix = ox * s.win.stride_w + x0;
              dst[ox] = (ix >= 0 && ix < s.w) ? static_cast<Out>(src[ix]) : Out(0);
            }
          }
        }
      }
    }
  }
}

// Column `position` (= oy * wo + ox) of im2col_onnx's matrix alone, rows `ld` apart: the scale
// search lowers only the output pixels it samples.
template <typename In, typename Out>
void im2col_onnx_column(const ConvShape& s, const In* in, int64_t position, Out* col, int64_t ld) {
  const int64_t oy = position / s.wo, ox = position % s.wo, kernel = s.kernel();
  for (int64_t c = 0; c < s.cin_g; ++c) {
    Out* dst = col + onnx_reduction_index(kernel, c, 0) * ld;
    for (int64_t p = 0; p < kernel; ++p) dst[p * ld] = Out(0);
    const In* plane = in + c * s.h * s.w;
    for_each_tap(s, oy, ox,
                 [&](int64_t offset, int64_t p) { dst[p * ld] = static_cast<Out>(plane[offset]); });
  }
}

// The patch matrix of one sample and one group in hardware order: [positions][k], one row per
// output pixel with the reduction index p * cin_g + c, as the array's ifmap feeder streams it;
// taps in the padding are 0. `in` as for im2col_onnx.
template <typename In, typename Out>
void im2col_hw(const ConvShape& s, const In* in, Out* rows) {
  const int64_t k = s.k(), plane = s.h * s.w;
  for (int64_t m = 0; m < s.positions(); ++m) {
    Out* row = rows + m * k;
    std::fill(row, row + k, Out(0));
    for_each_tap(s, m / s.wo, m % s.wo, [&](int64_t offset, int64_t p) {
      for (int64_t c = 0; c < s.cin_g; ++c)
        row[hw_reduction_index(s.cin_g, c, p)] = static_cast<Out>(in[c * plane + offset]);
    });
  }
}

// Weights from the ONNX layout [groups * n][cin_g][kernel] into the array's [groups][k][n]: a
// group's GEMM operand with the reduction index in hardware order, output channels along columns.
template <typename In, typename Out>
void pack_weights_hw(const In* onnx, int64_t groups, int64_t n, int64_t cin_g, int64_t kernel,
                     Out* packed) {
  const int64_t k = cin_g * kernel;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t o = 0; o < n; ++o)
      for (int64_t c = 0; c < cin_g; ++c)
        for (int64_t p = 0; p < kernel; ++p)
          packed[(g * k + hw_reduction_index(cin_g, c, p)) * n + o] =
              static_cast<Out>(onnx[(g * n + o) * k + onnx_reduction_index(kernel, c, p)]);
}

// Copies n samples of shape in_shape into a tensor of shape out_shape, each element moved by the
// per-axis `pads` (begin values first, as Node::pads): Pad's placement. Elements of `out` that no
// input lands on are left as they are (the caller fills the pad value).
template <typename T>
void place_padded(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
                  const std::vector<int64_t>& pads, int64_t n, const T* in, T* out) {
  int64_t in_size = 1, out_size = 1;
  for (int64_t d : in_shape) in_size *= d;
  for (int64_t d : out_shape) out_size *= d;
  const std::size_t rank = in_shape.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t s = 0; s < n; ++s) {
    std::fill(idx.begin(), idx.end(), 0);
    for (int64_t i = 0; i < in_size; ++i) {
      int64_t dst = 0;
      for (std::size_t a = 0; a < rank; ++a) dst = dst * out_shape[a] + idx[a] + pads[a];
      out[s * out_size + dst] = in[s * in_size + i];
      for (int a = static_cast<int>(rank) - 1; a >= 0; --a) {
        if (++idx[a] < in_shape[a]) break;
        idx[a] = 0;
      }
    }
  }
}

}  // namespace tilescale::model::layout
