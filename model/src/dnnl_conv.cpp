#include "dnnl_conv.h"

#include <omp.h>

#include <limits>

namespace tilescale::model::kernels {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::dims batched(int64_t n, const memory::dims& per_sample) {
  memory::dims d{n};
  d.insert(d.end(), per_sample.begin(), per_sample.end());
  return d;
}

float* grown(std::vector<float>& buffer, const memory::desc& md) {
  const std::size_t need = (md.get_size() + sizeof(float) - 1) / sizeof(float);
  if (buffer.size() < need) buffer.resize(need);
  return buffer.data();
}

}  // namespace

DnnlScratch::DnnlScratch() : stream(cpu_engine()) {}

OneOmpThread::OneOmpThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
OneOmpThread::~OneOmpThread() { omp_set_num_threads(saved_); }

DnnlConv::DnnlConv(const Node& node, const Value& in, const Value& out, int64_t batch,
                   bool fused_sum, const Clamp& fused_clamp, bool in_nhwc, bool out_nhwc)
    : node_(node),
      fused_sum_(fused_sum),
      clamp_(fused_clamp),
      in_nhwc_(in_nhwc),
      out_nhwc_(out_nhwc),
      batch_(batch) {
  const Window& w = node.window;
  // With one channel or one pixel, NCHW and NHWC are the same bytes: say NHWC, the layout the
  // primitive usually wants, and skip a reorder.
  if (in.shape[0] == 1 || in.shape[1] * in.shape[2] == 1) in_nhwc_ = true;
  if (out.shape[0] == 1 || out.shape[1] * out.shape[2] == 1) out_nhwc_ = true;
  in_dims_ = {in.shape[0], in.shape[1], in.shape[2]};
  out_dims_ = {out.shape[0], out.shape[1], out.shape[2]};
  const int64_t g = w.groups, cout = out.shape[0], cin = in.shape[0];
  if (g == 1)
    weight_dims_ = {cout, cin, w.kernel_h, w.kernel_w};
  else
    weight_dims_ = {g, cout / g, cin / g, w.kernel_h, w.kernel_w};
  strides_ = {w.stride_h, w.stride_w};
  dilates_ = {w.dilation_h - 1, w.dilation_w - 1};
  pad_l_ = {w.pad_top, w.pad_left};
  pad_r_ = {w.pad_bottom, w.pad_right};
  bias_ = memory({{cout}, memory::data_type::f32, tag::x}, cpu_engine(),
                 const_cast<float*>(node.bias.data.data()));
  std::lock_guard<std::mutex> lock(mutex_);
  for (int c = 0; c < 2; ++c) batch_variant_[c] = make_variant(batch, c == 1);
}

std::unique_ptr<DnnlConv::Variant> DnnlConv::make_variant(int64_t n, bool fused) const {
  const auto f32 = memory::data_type::f32;
  auto v = std::make_unique<Variant>();
  v->src_user = memory::desc(batched(n, in_dims_), f32, in_nhwc_ ? tag::nhwc : tag::nchw);
  v->dst_user = memory::desc(batched(n, out_dims_), f32, out_nhwc_ ? tag::nhwc : tag::nchw);
  const memory::desc any_src(batched(n, in_dims_), f32, tag::any);
  const memory::desc any_dst(batched(n, out_dims_), f32, tag::any);
  const memory::desc any_w(weight_dims_, f32, tag::any);
  const memory::desc bias_md({out_dims_[0]}, f32, tag::x);
  const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                             dnnl::algorithm::convolution_direct, any_src, any_w,
                                             bias_md, any_dst, strides_, dilates_, pad_l_, pad_r_);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (fused) {
    // dst = clamp(conv + bias + dst): the unfused Add and Relu/Clip give the same bits.
    dnnl::post_ops ops;
    if (fused_sum_) ops.append_sum(1.0f);
    const float inf = std::numeric_limits<float>::infinity();
    if (clamp_.lo > -inf || clamp_.hi < inf)
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, clamp_.lo, clamp_.hi);
    attr.set_post_ops(ops);
  }
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, cpu_engine());
  v->conv = dnnl::convolution_forward(pd);
  v->src_md = pd.src_desc();
  v->dst_md = pd.dst_desc();
  v->scratchpad_md = pd.scratchpad_desc();
  if (v->src_md != v->src_user)
    v->src_reorder = dnnl::reorder(
        dnnl::reorder::primitive_desc(cpu_engine(), v->src_user, cpu_engine(), v->src_md));
  if (v->dst_md != v->dst_user) {
    v->dst_reorder = dnnl::reorder(
        dnnl::reorder::primitive_desc(cpu_engine(), v->dst_md, cpu_engine(), v->dst_user));
    if (fused && fused_sum_)
      v->dst_in_reorder = dnnl::reorder(
          dnnl::reorder::primitive_desc(cpu_engine(), v->dst_user, cpu_engine(), v->dst_md));
  }

  const memory::desc w_md = pd.weights_desc();
  for (const auto& [md, mem] : weights_)
    if (md == w_md) v->weights = mem.get();
  if (v->weights == nullptr) {
    const auto plain = weight_dims_.size() == 4 ? tag::oihw : tag::goihw;
    memory user({weight_dims_, f32, plain}, cpu_engine(),
                const_cast<float*>(node_.weight.data.data()));
    auto mem = std::make_unique<memory>(w_md, cpu_engine());
    dnnl::stream s(cpu_engine());
    dnnl::reorder(user, *mem).execute(s, user, *mem);
    s.wait();
    v->weights = mem.get();
    weights_.emplace_back(w_md, std::move(mem));
  }
  return v;
}

const DnnlConv::Variant& DnnlConv::variant(int64_t n, bool fused) const {
  if (n == batch_) return *batch_variant_[fused ? 1 : 0];
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = variants_[{n, fused}];
  if (!slot) slot = make_variant(n, fused);
  return *slot;
}

void DnnlConv::run(int64_t n, const float* in, float* out, bool fused, DnnlScratch& scratch) const {
  const Variant& v = variant(n, fused);
  const dnnl::engine& eng = cpu_engine();
  memory src_user(v.src_user, eng, const_cast<float*>(in));
  memory dst_user(v.dst_user, eng, out);
  memory src = src_user, dst = dst_user;
  if (v.src_reorder) {
    src = memory(v.src_md, eng, grown(scratch.src, v.src_md));
    v.src_reorder.execute(scratch.stream, src_user, src);
  }
  if (v.dst_reorder) dst = memory(v.dst_md, eng, grown(scratch.dst, v.dst_md));
  if (v.dst_in_reorder) v.dst_in_reorder.execute(scratch.stream, dst_user, dst);
  const std::size_t pad_bytes = v.scratchpad_md.get_size();
  if (scratch.scratchpad.size() < pad_bytes) scratch.scratchpad.resize(pad_bytes);
  memory pad(v.scratchpad_md, eng, scratch.scratchpad.data());
  v.conv.execute(scratch.stream, {{DNNL_ARG_SRC, src},
                                  {DNNL_ARG_WEIGHTS, *v.weights},
                                  {DNNL_ARG_BIAS, bias_},
                                  {DNNL_ARG_DST, dst},
                                  {DNNL_ARG_SCRATCHPAD, pad}});
  if (v.dst_reorder) v.dst_reorder.execute(scratch.stream, dst, dst_user);
  scratch.stream.wait();
}

}  // namespace tilescale::model::kernels
