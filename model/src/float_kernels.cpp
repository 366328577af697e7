#include "tilescale/model/float_kernels.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "tilescale/model/grid.h"
#include "tilescale/model/layout.h"

namespace tilescale::model::kernels {
namespace {

// Calls visit with the functor of a binary op (Add, Sub, Mul, Div): the one place the float path
// maps these ops to arithmetic.
template <typename Visit>
auto with_binary_op(Op op, Visit visit) {
  switch (op) {
    case Op::Add:
      return visit(std::plus<float>());
    case Op::Sub:
      return visit(std::minus<float>());
    case Op::Mul:
      return visit(std::multiplies<float>());
    default:
      return visit(std::divides<float>());
  }
}

inline float clampf(float x, const Clamp& c) { return std::min(std::max(x, c.lo), c.hi); }

void conv_depthwise(const Node& node, const Value& in_v, const Value& out_v, int64_t n,
                    const float* in, float* out, const Clamp& clamp) {
  const layout::ConvShape shape = layout::conv_shape(node, in_v, out_v);
  const int64_t c = in_v.shape[0], plane = shape.h * shape.w, ho = shape.ho, wo = shape.wo;
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* src = in + (s * c + ch) * plane;
      const float* k = node.weight.data.data() + ch * shape.kernel();
      float* dst = out + (s * c + ch) * ho * wo;
      const float b = node.bias.data[ch];
      for (int64_t oy = 0; oy < ho; ++oy) {
        for (int64_t ox = 0; ox < wo; ++ox) {
          float acc = b;
          layout::for_each_tap(shape, oy, ox,
                               [&](int64_t offset, int64_t p) { acc += src[offset] * k[p]; });
          dst[oy * wo + ox] = clampf(acc, clamp);
        }
      }
    }
  }
}

void conv(const Node& node, const Value& in_v, const Value& out_v, int64_t n, const float* in,
          float* out, const Clamp& clamp, Scratch& scratch) {
  const layout::ConvShape shape = layout::conv_shape(node, in_v, out_v);
  const int64_t cin = in_v.shape[0], cout = out_v.shape[0], plane = shape.h * shape.w;
  const int64_t groups = node.window.groups, cin_g = shape.cin_g, cout_g = cout / groups;
  if (cin_g == 1 && cout_g == 1) {
    conv_depthwise(node, in_v, out_v, n, in, out, clamp);
    return;
  }
  const int64_t k = shape.k();
  const int64_t p = shape.positions();
  const int64_t cols = n * p;
  scratch.col.resize(static_cast<std::size_t>(k * cols));
  scratch.gemm.resize(static_cast<std::size_t>(cout_g * cols));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t s = 0; s < n; ++s)
      layout::im2col_onnx(shape, in + (s * cin + g * cin_g) * plane, scratch.col.data() + s * p,
                          cols);
    const float* wg = node.weight.data.data() + g * cout_g * k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(cout_g),
                static_cast<int>(cols), static_cast<int>(k), 1.0f, wg, static_cast<int>(k),
                scratch.col.data(), static_cast<int>(cols), 0.0f, scratch.gemm.data(),
                static_cast<int>(cols));
    for (int64_t o = 0; o < cout_g; ++o) {
      const float b = node.bias.data[g * cout_g + o];
      const float* src = scratch.gemm.data() + o * cols;
      for (int64_t s = 0; s < n; ++s) {
        float* dst = out + (s * cout + g * cout_g + o) * p;
        const float* row = src + s * p;
        for (int64_t j = 0; j < p; ++j) dst[j] = clampf(row[j] + b, clamp);
      }
    }
  }
}

void gemm(const Node& node, int64_t n, const float* in, float* out, const Clamp& clamp) {
  const int64_t nout = node.weight.shape[0], k = node.weight.shape[1];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(nout),
              static_cast<int>(k), 1.0f, in, static_cast<int>(k), node.weight.data.data(),
              static_cast<int>(k), 0.0f, out, static_cast<int>(nout));
  for (int64_t s = 0; s < n; ++s)
    for (int64_t o = 0; o < nout; ++o)
      out[s * nout + o] = clampf(out[s * nout + o] + node.bias.data[o], clamp);
}

void pool(const Node& node, const Value& in_v, const Value& out_v, int64_t n, const float* in,
          float* out) {
  const layout::ConvShape shape = layout::conv_shape(node, in_v, out_v);
  const int64_t c = in_v.shape[0], plane = shape.h * shape.w, ho = shape.ho, wo = shape.wo;
  const bool is_max = node.op == Op::MaxPool;
  for (int64_t sc = 0; sc < n * c; ++sc) {
    const float* src = in + sc * plane;
    float* dst = out + sc * ho * wo;
    for (int64_t oy = 0; oy < ho; ++oy) {
      for (int64_t ox = 0; ox < wo; ++ox) {
        float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
        int64_t inside = 0;
        layout::for_each_tap(shape, oy, ox, [&](int64_t offset, int64_t) {
          const float v = src[offset];
          acc = is_max ? std::max(acc, v) : acc + v;
          ++inside;
        });
        if (!is_max) {
          const int64_t divisor =
              node.count_include_pad ? shape.padded_window_count(oy, ox) : inside;
          acc = divisor > 0 ? acc / static_cast<float>(divisor) : 0.0f;
        }
        dst[oy * wo + ox] = acc;
      }
    }
  }
}

// a op b over n samples of `size` elements, b another activation or a per-sample constant. The
// op is a template argument so each loop vectorizes; the results are apply_binary's bits.
template <typename F>
void binary_with(F f, const Node& node, int64_t size, int64_t n,
                 const std::vector<const float*>& ins, float* out) {
  const float* a = ins[0];
  if (node.inputs.size() == 2) {
    const float* b = ins[1];
    for (int64_t i = 0; i < n * size; ++i) out[i] = f(a[i], b[i]);
    return;
  }
  const float* c = node.operand.data.data();
  for (int64_t s = 0; s < n; ++s) {
    const float* x = a + s * size;
    float* y = out + s * size;
    if (node.operand_first)
      for (int64_t i = 0; i < size; ++i) y[i] = f(c[i], x[i]);
    else
      for (int64_t i = 0; i < size; ++i) y[i] = f(x[i], c[i]);
  }
}

void binary(const Node& node, int64_t size, int64_t n, const std::vector<const float*>& ins,
            float* out) {
  with_binary_op(node.op, [&](auto f) { binary_with(f, node, size, n, ins, out); });
}

void concat(const Graph& g, const Node& node, int64_t n, const std::vector<const float*>& ins,
            float* out) {
  // Per sample, the axis splits the tensor into `outer` runs; each input contributes its run in
  // turn.
  const auto& os = g.values[node.output].shape;
  int64_t outer = 1;
  for (int i = 0; i < node.axis; ++i) outer *= os[i];
  const int64_t out_size = g.values[node.output].size();
  for (int64_t s = 0; s < n; ++s) {
    float* dst = out + s * out_size;
    for (int64_t o = 0; o < outer; ++o) {
      for (std::size_t k = 0; k < node.inputs.size(); ++k) {
        const int64_t size = g.values[node.inputs[k]].size();
        const int64_t run = size / outer;
        std::memcpy(dst, ins[k] + s * size + o * run,
                    sizeof(float) * static_cast<std::size_t>(run));
        dst += run;
      }
    }
  }
}

void pad(const Graph& g, const Node& node, int64_t n, const float* in, float* out) {
  const Value& out_v = g.values[node.output];
  std::fill(out, out + n * out_v.size(), node.pad_value);
  layout::place_padded(g.values[node.inputs[0]].shape, out_v.shape, node.pads, n, in, out);
}

}  // namespace

float apply_binary(Op op, float a, float b) {
  return with_binary_op(op, [&](auto f) { return f(a, b); });
}

Clamp clamp_of(const Node& act) {
  Clamp c;
  if (act.op == Op::Relu) c.lo = 0.0f;
  if (act.op == Op::Clip) {
    c.lo = act.clip_min;
    c.hi = act.clip_max;
  }
  return c;
}

void global_average_pool_nhwc(int64_t n, int64_t c, int64_t hw, const float* in, float* out) {
  for (int64_t s = 0; s < n; ++s) {
    float* acc = out + s * c;
    std::fill(acc, acc + c, 0.0f);
    for (int64_t p = 0; p < hw; ++p) {
      const float* px = in + (s * hw + p) * c;
      for (int64_t ch = 0; ch < c; ++ch) acc[ch] += px[ch];
    }
    for (int64_t ch = 0; ch < c; ++ch) acc[ch] /= static_cast<float>(hw);
  }
}

namespace {

// FakeQuant: exactly the integer path's rounding, quantize_to_grid (model/grid.h, as int_arith.h:
// the division in double, half up, saturate). The scalar loop calls floor per element on
// x86-64's baseline (no roundsd before SSE4.1), which took half of a fake-quant run; so it gets an
// SSE4.1 build, and AVX-512DQ CPUs an intrinsic loop whose every step has the scalar step's
// result: vcvtps2pd is exact, vdivpd and vaddpd are IEEE like divsd and addsd, vrndscalepd rounds
// down like floor, vcvttpd2qq returns the same value as cvttsd2si (also out of range and for
// NaN), min/max is the saturation when lo <= hi, vcvtqq2ps rounds like cvtsi2ss, vmulps is mulss.
[[gnu::always_inline]] inline void fake_quant_body(const float* x, int64_t count, double step,
                                                   float fstep, int64_t lo, int64_t hi,
                                                   float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const int64_t q = static_cast<int64_t>(std::floor(static_cast<double>(x[i]) / step + 0.5));
    out[i] = static_cast<float>(q < lo ? lo : (q > hi ? hi : q)) * fstep;  // saturate
  }
}
// GCC 12 warns (-Wmaybe-uninitialized) inside avx512fintrin.h on intrinsics that start from
// _mm512_undefined_*: a false positive of the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
[[gnu::target("avx512f,avx512dq,avx512vl")]] void fake_quant_avx512(const float* x, int64_t count,
                                                                    double step, float fstep,
                                                                    int64_t lo, int64_t hi,
                                                                    float* out) {
  int64_t i = 0;
  if (lo <= hi) {
    const __m512d vstep = _mm512_set1_pd(step), half = _mm512_set1_pd(0.5);
    const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
    const __m256 vfstep = _mm256_set1_ps(fstep);
    for (; i + 8 <= count; i += 8) {
      const __m512d t =
          _mm512_add_pd(_mm512_div_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vstep), half);
      __m512i q =
          _mm512_cvttpd_epi64(_mm512_roundscale_pd(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
      q = _mm512_min_epi64(_mm512_max_epi64(q, vlo), vhi);
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm512_cvtepi64_ps(q), vfstep));
    }
  }
  fake_quant_body(x + i, count - i, step, fstep, lo, hi, out + i);
}
#pragma GCC diagnostic pop
[[gnu::target("sse4.1")]] void fake_quant_sse41(const float* x, int64_t count, double step,
                                                float fstep, int64_t lo, int64_t hi, float* out) {
  fake_quant_body(x, count, step, fstep, lo, hi, out);
}
void fake_quant_baseline(const float* x, int64_t count, double step, float fstep, int64_t lo,
                         int64_t hi, float* out) {
  fake_quant_body(x, count, step, fstep, lo, hi, out);
}

void fake_quant(const float* x, int64_t count, const Node& node, float* out) {
  static const auto kernel = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
                                 ? fake_quant_avx512
                             : __builtin_cpu_supports("sse4.1") ? fake_quant_sse41
                                                                : fake_quant_baseline;
  kernel(x, count, node.fq_step, node.fq_step, static_cast<int64_t>(node.fq_lo),
         static_cast<int64_t>(node.fq_hi), out);
}

}  // namespace

void run_node(const Graph& g, const Node& node, int64_t n, const std::vector<const float*>& ins,
              float* out, const Clamp& clamp, Scratch& scratch) {
  const Value& in_v = g.values[node.inputs[0]];
  const Value& out_v = g.values[node.output];
  const int64_t size = out_v.size();
  switch (node.op) {
    case Op::Conv:
      conv(node, in_v, out_v, n, ins[0], out, clamp, scratch);
      break;
    case Op::Gemm:
      gemm(node, n, ins[0], out, clamp);
      break;
    case Op::Relu:
    case Op::Clip: {
      const Clamp c = clamp_of(node);
      for (int64_t i = 0; i < n * size; ++i) out[i] = clampf(ins[0][i], c);
      break;
    }
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      binary(node, size, n, ins, out);
      break;
    case Op::MaxPool:
    case Op::AveragePool:
      pool(node, in_v, out_v, n, ins[0], out);
      break;
    case Op::GlobalAveragePool: {
      const int64_t c = in_v.shape[0], hw = in_v.size() / c;
      for (int64_t sc = 0; sc < n * c; ++sc) {
        float acc = 0.0f;
        for (int64_t j = 0; j < hw; ++j) acc += ins[0][sc * hw + j];
        out[sc] = acc / static_cast<float>(hw);
      }
      break;
    }
    case Op::Reshape:
      std::memcpy(out, ins[0], sizeof(float) * static_cast<std::size_t>(n * size));
      break;
    case Op::Concat:
      concat(g, node, n, ins, out);
      break;
    case Op::Pad:
      pad(g, node, n, ins[0], out);
      break;
    case Op::FakeQuant:
      fake_quant(ins[0], n * size, node, out);
      break;
  }
}

}  // namespace tilescale::model::kernels
