// Conv nodes of the float executor on oneDNN's convolution primitive (fp32, forward_inference).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <utility>
#include <vector>

#include "tilescale/model/float_kernels.h"
#include "tilescale/model/graph.h"

namespace tilescale::model::kernels {

// Per-thread buffers and stream for DnnlConv::run, grown on demand.
struct DnnlScratch {
  DnnlScratch();
  dnnl::stream stream;
  std::vector<float> src;           // input reordered to the primitive's layout
  std::vector<float> dst;           // output in the primitive's layout, before the NCHW reorder
  std::vector<uint8_t> scratchpad;  // the primitive's own temporary memory (scratchpad_mode::user)
};

// Holds OpenMP's thread count of the calling thread at 1 while alive. The executor runs one chunk
// per thread and oneDNN's OpenMP parallelism nested inside would only fight it; a primitive also
// picks its blocking from the thread count, so creating and running every primitive at one thread
// makes the results independent of the executor's thread count.
class OneOmpThread {
 public:
  OneOmpThread();
  ~OneOmpThread();
  OneOmpThread(const OneOmpThread&) = delete;
  OneOmpThread& operator=(const OneOmpThread&) = delete;

 private:
  int saved_;  // omp_get_max_threads() before
};

// One Conv node (any groups, strides, dilations, asymmetric pads) with its bias, and a fused
// variant that also adds the output buffer's prior content (a residual Add) and/or clamps (a
// Relu/Clip). oneDNN picks the weight and activation layouts (format_tag::any); the weights are
// reordered into theirs once, and one primitive is kept per (batch size, fused or not). The
// caller's activations are NCHW or NHWC (per side, fixed at construction); a reorder on that side
// runs when the primitive wants another layout (on AVX-512 its brgemm kernels want NHWC).
class DnnlConv {
 public:
  // Throws dnnl::error when oneDNN has no implementation for the node. Builds the primitive for
  // `batch` samples, the common case, right away. Call under OneOmpThread.
  DnnlConv(const Node& node, const Value& in, const Value& out, int64_t batch, bool fused_sum,
           const Clamp& fused_clamp, bool in_nhwc, bool out_nhwc);

  // in: [n][Cin][H][W] (or [n][H][W][Cin] when in_nhwc); out likewise. fused selects the fused
  // variant (out must then hold the Add's other operand when built with fused_sum).
  // Thread-safe; call under OneOmpThread.
  void run(int64_t n, const float* in, float* out, bool fused, DnnlScratch& scratch) const;

 private:
  struct Variant {
    dnnl::convolution_forward conv;
    dnnl::memory::desc src_md, dst_md;      // the primitive's activation layouts
    dnnl::memory::desc src_user, dst_user;  // the caller's layouts
    dnnl::memory::desc scratchpad_md;       // the primitive's temporary memory
    dnnl::reorder src_reorder;              // src_user -> src_md; empty when they are equal
    dnnl::reorder dst_reorder;              // dst_md -> dst_user; empty when they are equal
    dnnl::reorder dst_in_reorder;           // dst_user -> dst_md for the sum; else empty
    const dnnl::memory* weights = nullptr;  // in the primitive's layout
  };
  const Variant& variant(int64_t n, bool fused) const;
  std::unique_ptr<Variant> make_variant(int64_t n, bool fused) const;  // under mutex_

  const Node& node_;
  dnnl::memory::dims in_dims_, out_dims_;                 // per sample: C, H, W
  dnnl::memory::dims weight_dims_;                        // [O][I][kh][kw] or [G][O/G][I/G][kh][kw]
  dnnl::memory::dims strides_, dilates_, pad_l_, pad_r_;  // elements; dilates as oneDNN counts
  bool fused_sum_;           // the fused variant adds out's prior content (a residual Add)
  Clamp clamp_;              // the fused variant's clamp, after the sum; (-inf, inf) for none
  bool in_nhwc_, out_nhwc_;  // layouts of the caller's activations
  dnnl::memory bias_;
  int64_t batch_;                              // samples of the prebuilt variants
  std::unique_ptr<Variant> batch_variant_[2];  // [fused] for batch_ samples, read lock-free
  mutable std::mutex mutex_;                   // guards variants_ and weights_
  mutable std::map<std::pair<int64_t, bool>, std::unique_ptr<Variant>> variants_;
  // Reordered weights, one per layout some variant asked for (usually exactly one).
  mutable std::vector<std::pair<dnnl::memory::desc, std::unique_ptr<dnnl::memory>>> weights_;
};

}  // namespace tilescale::model::kernels
