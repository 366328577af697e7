#include "tilescale/quant/int_executor.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "tilescale/core/error.h"
#include "tilescale/core/memory_budget.h"
#include "tilescale/model/float_kernels.h"
#include "tilescale/model/layout.h"
#include "tilescale/quant/int_add_fast.h"
#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant {

struct IntExecutor::Workspace {
  std::vector<std::vector<float>> host;         // float values of host nodes [value][n * size]
  std::vector<std::vector<int64_t>> codes;      // integer values [value][n * size]
  kernels::GemmScratch gemm;                    // im2col, weights, partial sums, accumulators
  const IntExecutor::GemmHook* hook = nullptr;  // run_codes_chained: computes Conv/Gemm layers
};

namespace {

// Host pre-processing in float, the same arithmetic as the float executor, so both paths quantize
// bit-identical inputs.
void run_host_node(const model::Node& node, int64_t n, int64_t size, const std::vector<float>& a,
                   std::vector<float>& out) {
  out.resize(static_cast<std::size_t>(n * size));
  const float* c = node.operand.data.data();
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < size; ++i)
      out[s * size + i] = node.operand_first
                              ? model::kernels::apply_binary(node.op, c[i], a[s * size + i])
                              : model::kernels::apply_binary(node.op, a[s * size + i], c[i]);
}

}  // namespace

kernels::GemmLayer gemm_layer_of(const QuantizedModel& model, const LayerQuant& layer) {
  const QOp& op = model.plan.ops[layer.op];
  const model::Node& node = model.graph.nodes[op.node];
  kernels::GemmLayer L;
  L.shape = model::layout::conv_shape(node, model.graph.values[op.inputs[0]],
                                      model.graph.values[node.output]);
  L.groups = node.op == model::Op::Conv ? node.window.groups : 1;
  L.out_channels = layer.grid.out_channels;
  L.grid = &layer.grid;
  L.weight = layer.q_weight.data();
  L.multiplier = layer.multiplier.data();
  L.bias_q = layer.bias_q.data();
  L.frac_bits = layer.frac_bits;
  L.keep_acc = model.act_of(op.output).is_float();
  L.range = model.output_range(op);
  return L;
}

IntExecutor::IntExecutor(const QuantizedModel& model, int threads, IntGemm gemm,
                         std::optional<AdcNumerics> adc)
    : model_(model) {
  threads_ =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(1);
  const model::Graph& g = model.graph;
  // Per sample: int64 codes (8 B) and float host values (at most 4 B) of every value; the largest
  // Conv's im2col twice in double (col and its reduction-group copy xb); int64 accumulators and
  // double partial sums of its output, bounded by the activations (8 + 8 B).
  const double elements = g.activation_elements_per_sample();
  bytes_per_sample_ = 28.0 * elements + 16.0 * g.largest_im2col_elements_per_sample();
  chunk_ = samples_within_budget(g.source,
                                 "running the integer network (codes, im2col and accumulators)",
                                 bytes_per_sample_, threads_, chunk_);
  layer_of_op_.assign(model.plan.ops.size(), -1);
  for (std::size_t l = 0; l < model.layers.size(); ++l)
    layer_of_op_[model.layers[l].op] = static_cast<int>(l);
  fast_ = gemm == IntGemm::Fast;
  for (std::size_t v = 0; v < model.acts.size(); ++v)
    if (model.plan.scale_source[v] == static_cast<int>(v) && model.acts[v].is_float() &&
        static_cast<int>(v) != model.graph.output)
      fail_input(model.graph.source,
                 "the integer executor needs integer activations (a_bits 4..8)");
  for (std::size_t i = 0; i < model.plan.ops.size(); ++i)
    if (model.plan.ops[i].kind == QOpKind::Affine &&
        (model.affine.size() != model.plan.ops.size() || model.affine[i].terms.empty()))
      fail_input(model.graph.source, "the Affine op of node '" +
                                         model.graph.nodes[model.plan.ops[i].node].name +
                                         "' has no integer terms (finalize_multipliers not run)");
  if (adc) {
    for (const LayerQuant& layer : model.layers) {
      const ActQuant& in = model.act_of(model.plan.ops[layer.op].inputs[0]);
      cim_.push_back(with_source(layer.name, [&] {
        return kernels::make_cim_gemm(gemm_layer_of(model, layer), *adc, in.bits, in.is_signed,
                                      layer.w_bits);
      }));
    }
  } else if (gemm == IntGemm::Fast) {
    for (const LayerQuant& layer : model.layers)
      folded_.push_back(kernels::fold_gemm(gemm_layer_of(model, layer)));
  }
}

void IntExecutor::run_chunk(const float* input, int64_t n, Workspace& ws) const {
  const model::Graph& g = model_.graph;
  ws.host.resize(g.values.size());
  ws.codes.resize(g.values.size());
  ws.host[g.input].assign(input, input + n * g.input_value().size());
  for (int idx : model_.plan.host_nodes) {
    const model::Node& node = g.nodes[idx];
    run_host_node(node, n, g.values[node.output].size(), ws.host[node.inputs[0]],
                  ws.host[node.output]);
  }
  for (std::size_t oi = 0; oi < model_.plan.ops.size(); ++oi) run_op(oi, n, ws);
}

void IntExecutor::run_op(std::size_t oi, int64_t n, Workspace& ws) const {
  const model::Graph& g = model_.graph;
  const QOp& op = model_.plan.ops[oi];
  // The Quantize op has no graph node (op.node < 0): look the node up only in the cases with one.
  auto node = [&]() -> const model::Node& { return g.nodes[op.node]; };
  auto& out = ws.codes[op.output];
  // Every kernel writes each of its outputs, so the buffer is only sized, not cleared.
  out.resize(static_cast<std::size_t>(n * g.values[op.output].size()));
  const int64_t count = static_cast<int64_t>(out.size());
  const ActQuant& oq = model_.act_of(op.output);
  const kernels::OutGrid grid{oq.scale, model_.options.scale_bits, model_.output_range(op)};
  auto in = [&](std::size_t i) { return ws.codes[op.inputs[i]].data(); };
  auto step = [&](std::size_t i) -> double { return model_.act_of(op.inputs[i]).scale; };
  const model::Value& in_v = g.values[op.inputs[0]];
  switch (op.kind) {
    case QOpKind::Quantize:
      kernels::quantize_f32(ws.host[op.inputs[0]].data(), count, oq.scale, oq.range(), out.data());
      break;
    case QOpKind::Gemm: {
      const int l = layer_of_op_[oi];
      if (ws.hook != nullptr) {
        (*ws.hook)(static_cast<std::size_t>(l), in(0), out.data());
        break;
      }
      if (!cim_.empty()) {
        kernels::conv_gemm_cim(gemm_layer_of(model_, model_.layers[l]), cim_[l], n, in(0),
                               out.data(), ws.gemm);
        break;
      }
      const kernels::GemmPath path = kernels::conv_gemm(gemm_layer_of(model_, model_.layers[l]),
                                                        folded_.empty() ? nullptr : &folded_[l], n,
                                                        in(0), out.data(), ws.gemm);
      ++(*path_calls_)[static_cast<std::size_t>(path)];
      break;
    }
    case QOpKind::Add:
      (fast_ ? kernels::add_fast : kernels::add)(in(0), step(0), in(1), step(1), count, grid,
                                                 out.data());
      break;
    case QOpKind::MaxPool:
      kernels::max_pool(model::layout::conv_shape(node(), in_v, g.values[op.output]),
                        n * in_v.shape[0], in(0), out.data());
      break;
    case QOpKind::AvgPool:
      kernels::avg_pool(model::layout::conv_shape(node(), in_v, g.values[op.output]),
                        node().count_include_pad, n * in_v.shape[0], in(0), step(0), grid,
                        out.data());
      break;
    case QOpKind::GlobalAvgPool:
      kernels::global_avg_pool(n * in_v.shape[0], in_v.size() / in_v.shape[0], in(0), step(0), grid,
                               out.data());
      break;
    case QOpKind::Reshape:
      out = ws.codes[op.inputs[0]];
      break;
    case QOpKind::Concat: {
      std::vector<kernels::ConcatInput> ins;
      for (std::size_t i = 0; i < op.inputs.size(); ++i)
        ins.push_back({in(i), g.values[op.inputs[i]].size(), step(i)});
      int64_t outer = 1;
      for (int a = 0; a < node().axis; ++a) outer *= g.values[op.output].shape[a];
      kernels::concat(ins, n, outer, grid, out.data());
      break;
    }
    case QOpKind::Pad:
      kernels::pad(in_v.shape, g.values[op.output].shape, node().pads, node().pad_value, oq.scale,
                   oq.range(), n, in(0), out.data());
      break;
    case QOpKind::Affine: {
      const AffineQuant& a = model_.affine[oi];
      kernels::affine(in(0), n, in_v.size(), a.terms.data(), static_cast<int64_t>(a.terms.size()),
                      a.run, grid.range, out.data());
      break;
    }
    case QOpKind::StepScale:  // the same codes on a grid of another step
      out = ws.codes[op.inputs[0]];
      break;
    case QOpKind::Clamp:
      kernels::clamp(in(0), count,
                     kernels::activation_range(node(), oq.scale,
                                               {std::numeric_limits<int64_t>::min(),
                                                std::numeric_limits<int64_t>::max()}),
                     out.data());
      break;
  }
}

int64_t IntExecutor::folded_layers() const {
  return std::count_if(folded_.begin(), folded_.end(),
                       [](const kernels::FoldedGemm& f) { return !f.weight.empty(); });
}

int64_t IntExecutor::path_calls(kernels::GemmPath path) const {
  return (*path_calls_)[static_cast<std::size_t>(path)].load();
}

void IntExecutor::real_output(const Workspace& ws, int64_t n, float* out) const {
  const int v = model_.graph.output;
  const int64_t size = model_.graph.values[v].size();
  const ActQuant& q = model_.act_of(v);
  double unit = q.scale;
  if (q.is_float()) {
    for (const LayerQuant& layer : model_.layers)
      if (model_.plan.ops[layer.op].output == v)
        unit = std::ldexp(double(q.scale), -layer.frac_bits);
  }
  const auto& codes = ws.codes[v];
  for (int64_t i = 0; i < n * size; ++i)
    out[i] = static_cast<float>(static_cast<double>(codes[i]) * unit);
}

void IntExecutor::run(const float* input, int64_t n, float* output) const {
  const int64_t in_size = model_.graph.input_value().size();
  const int64_t out_size = model_.graph.output_value().size();
  const int64_t chunks = (n + chunk_ - 1) / chunk_;
  std::vector<Workspace> spaces(static_cast<std::size_t>(threads_));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
  for (int64_t c = 0; c < chunks; ++c) {
    Workspace& ws = spaces[static_cast<std::size_t>(omp_get_thread_num())];
    const int64_t first = c * chunk_, m = std::min(chunk_, n - first);
    run_chunk(input + first * in_size, m, ws);
    real_output(ws, m, output + first * out_size);
  }
}

std::vector<std::vector<int64_t>> IntExecutor::run_codes(const float* input, int64_t n) const {
  check_memory_budget(model_.graph.source,
                      "the integer codes of " + std::to_string(n) + " samples at once",
                      static_cast<double>(n) * bytes_per_sample_);
  Workspace ws;
  run_chunk(input, n, ws);
  return std::move(ws.codes);
}

std::vector<std::vector<int64_t>> IntExecutor::run_codes_chained(const float* input,
                                                                 const GemmHook& gemm) const {
  Workspace ws;
  ws.hook = &gemm;
  run_chunk(input, 1, ws);
  return std::move(ws.codes);
}

}  // namespace tilescale::quant
