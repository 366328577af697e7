#include "tilescale/model/float_executor.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "dnnl_conv.h"
#include "tilescale/core/memory_budget.h"
#include "tilescale/model/float_kernels.h"

namespace tilescale::model {
namespace {

// Ops that treat their activations as a flat array, so they run on any layout as long as all their
// activation operands share it (a constant operand has the NCHW shape, hence not these).
bool layout_free(const Node& n) {
  switch (n.op) {
    case Op::Relu:
    case Op::Clip:
    case Op::FakeQuant:
      return true;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
      return n.inputs.size() == 2;
    default:
      return false;
  }
}

// Which values to keep NHWC, the layout oneDNN's AVX-512 convolutions work in: [C][H][W] values
// produced by a oneDNN Conv or a layout-free op, whose every consumer is a oneDNN Conv (it
// reorders at its boundary if needed), GlobalAveragePool (has an NHWC loop) or a layout-free op
// whose other operands and output are NHWC too. Everything else, the graph's input and output
// included, stays NCHW.
std::vector<bool> plan_nhwc(const Graph& g, const std::vector<bool>& on_dnnl) {
  std::vector<bool> nhwc(g.values.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const int v = n.output;
    nhwc[v] = g.values[v].shape.size() == 3 && v != g.output && (on_dnnl[i] || layout_free(n));
  }
  for (bool changed = true; changed;) {
    changed = false;
    auto drop = [&](int v) {
      if (nhwc[v]) changed = true;
      nhwc[v] = false;
    };
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (on_dnnl[i] || n.op == Op::GlobalAveragePool) continue;
      bool all = nhwc[n.output];
      for (int v : n.inputs) all = all && nhwc[v];
      if (layout_free(n) && all) continue;
      drop(n.output);
      for (int v : n.inputs) drop(v);
    }
  }
  return nhwc;
}

// [n][H][W][C] -> [n][C][H][W]
void nhwc_to_nchw(const float* in, int64_t n, int64_t c, int64_t hw, float* out) {
  for (int64_t s = 0; s < n; ++s)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t ch = 0; ch < c; ++ch) out[(s * c + ch) * hw + p] = in[(s * hw + p) * c + ch];
}

}  // namespace

struct FloatExecutor::Workspace {
  std::vector<std::vector<float>> values;  // [value][chunk * size]
  kernels::Scratch scratch;
  kernels::DnnlScratch dnnl;
};

FloatExecutor::FloatExecutor(const Graph& graph, FloatExecutorOptions options)
    : graph_(graph), options_(options) {
  threads_ = options.threads > 0
                 ? options.threads
                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options_.chunk < 1) options_.chunk = 1;
  // Each worker keeps every value of its chunk. The chunk is not shrunk to fit: oneDNN picks its
  // kernels by minibatch, so the logits would then depend on the machine's memory (chunk 1 and 8
  // differ in the last bits on lenet5); fewer threads need less.
  check_memory_budget(graph.source,
                      "running the network (float activations of " +
                          std::to_string(options_.chunk) + " samples on each of " +
                          std::to_string(threads_) + " threads)",
                      4.0 * graph.activation_elements_per_sample() *
                          static_cast<double>(options_.chunk) * threads_);
  // Parallelism comes from running chunks on separate threads; nested BLAS threads would only
  // fight.
  openblas_set_num_threads(1);

  // Conv on oneDNN, in NHWC between convs. A Conv oneDNN rejects (none known) falls back to the
  // im2col kernel, and the fusions and layouts are planned again without it.
  const std::size_t count = graph.nodes.size();
  std::vector<bool> on_dnnl(count, false);
  for (std::size_t i = 0; i < count; ++i) on_dnnl[i] = graph.nodes[i].op == Op::Conv;
  const kernels::OneOmpThread one_thread;
  for (bool rejected = true; rejected;) {
    rejected = false;
    plan_fusion(on_dnnl);
    nhwc_ = plan_nhwc(graph, on_dnnl);
    dnnl_convs_.clear();
    dnnl_convs_.resize(count);
    for (std::size_t i = 0; i < count && !rejected; ++i) {
      if (!on_dnnl[i]) continue;
      const Node& n = graph.nodes[i];
      const kernels::Clamp clamp =
          fused_into_[i] >= 0 ? kernels::clamp_of(graph.nodes[fused_into_[i]]) : kernels::Clamp{};
      try {
        dnnl_convs_[i] = std::make_unique<kernels::DnnlConv>(
            n, graph.values[n.inputs[0]], graph.values[n.output], options_.chunk,
            fused_add_[i] >= 0, clamp, nhwc_[n.inputs[0]], nhwc_[n.output]);
      } catch (const dnnl::error&) {
        on_dnnl[i] = false;
        rejected = true;
      }
    }
  }
}

void FloatExecutor::plan_fusion(const std::vector<bool>& on_dnnl) {
  const Graph& g = graph_;
  const std::size_t count = g.nodes.size();
  fused_into_.assign(count, -1);
  fused_add_.assign(count, -1);
  sum_operand_.assign(count, -1);
  skipped_.assign(count, false);
  std::vector<std::vector<int>> users(g.values.size());
  std::vector<int> producer(g.values.size(), -1);
  for (std::size_t i = 0; i < count; ++i) {
    for (int v : g.nodes[i].inputs) users[v].push_back(static_cast<int>(i));
    producer[g.nodes[i].output] = static_cast<int>(i);
  }
  // value v feeds node `next` only, and is not the graph's output
  auto only_feeds = [&](int v, int next) {
    return users[v].size() == 1 && users[v][0] == next && v != g.output;
  };
  // A Relu/Clip right after node i on its only consumer folds into it.
  auto fold_clamp = [&](std::size_t i, int value, int into) {
    if (i + 1 >= count) return;
    const Node& next = g.nodes[i + 1];
    if ((next.op == Op::Relu || next.op == Op::Clip) && next.inputs[0] == value &&
        only_feeds(value, static_cast<int>(i + 1))) {
      fused_into_[into] = static_cast<int>(i + 1);
      skipped_[i + 1] = true;
    }
  };
  for (std::size_t i = 0; i < count; ++i) {
    const Node& n = g.nodes[i];
    if (n.op == Op::Conv || n.op == Op::Gemm) fold_clamp(i, n.output, static_cast<int>(i));
  }
  // Add(conv, other) -> the oneDNN conv accumulates into other's buffer (sum post-op), which then
  // becomes the Add's (or its Relu/Clip's) value. Needs: the conv's only consumer is the Add; other
  // is ready before the conv runs, is not the conv's own input, and nothing after the conv reads
  // it but the Add.
  for (std::size_t a = 0; a < count; ++a) {
    const Node& add = g.nodes[a];
    if (add.op != Op::Add || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1]) continue;
    for (int k = 0; k < 2; ++k) {
      const int c = producer[add.inputs[k]], other = add.inputs[1 - k];
      if (c < 0 || !on_dnnl[c] || fused_into_[c] >= 0 || fused_add_[c] >= 0) continue;
      if (!only_feeds(add.inputs[k], static_cast<int>(a))) continue;
      if (other == g.nodes[c].inputs[0] || other == g.output || producer[other] >= c) continue;
      bool read_later = false;
      for (int u : users[other]) read_later = read_later || (u >= c && u != static_cast<int>(a));
      if (read_later) continue;
      fused_add_[c] = static_cast<int>(a);
      sum_operand_[c] = other;
      skipped_[a] = true;
      fold_clamp(a, add.output, c);
      break;
    }
  }
}

FloatExecutor::~FloatExecutor() = default;
FloatExecutor::FloatExecutor(FloatExecutor&&) noexcept = default;

void FloatExecutor::run_chunk(const float* input, int64_t n, bool fuse, Workspace& ws) const {
  const auto& values = graph_.values;
  if (ws.values.size() != values.size()) ws.values.resize(values.size());
  for (std::size_t v = 0; v < values.size(); ++v) {
    const std::size_t need = static_cast<std::size_t>(n * values[v].size());
    if (ws.values[v].size() < need) ws.values[v].resize(need);
  }
  std::memcpy(ws.values[graph_.input].data(), input,
              sizeof(float) * static_cast<std::size_t>(n * values[graph_.input].size()));

  for (std::size_t i = 0; i < graph_.nodes.size(); ++i) {
    if (fuse && skipped_[i]) continue;
    const Node& node = graph_.nodes[i];
    kernels::Clamp clamp;
    int out_value = node.output;
    if (fuse && fused_add_[i] >= 0) out_value = graph_.nodes[fused_add_[i]].output;
    if (fuse && fused_into_[i] >= 0) {
      const Node& act = graph_.nodes[fused_into_[i]];
      clamp = kernels::clamp_of(act);
      out_value = act.output;
    }
    if (dnnl_convs_[i]) {
      const float* in = ws.values[node.inputs[0]].data();
      if (fuse && fused_add_[i] >= 0) {
        // Accumulate into the other operand's buffer, then hand that buffer to the result.
        const int other = sum_operand_[i];
        dnnl_convs_[i]->run(n, in, ws.values[other].data(), true, ws.dnnl);
        std::swap(ws.values[other], ws.values[out_value]);
      } else {
        dnnl_convs_[i]->run(n, in, ws.values[out_value].data(), fuse && fused_into_[i] >= 0,
                            ws.dnnl);
      }
      continue;
    }
    if (node.op == Op::GlobalAveragePool && nhwc_[node.inputs[0]]) {
      const auto& shape = values[node.inputs[0]].shape;
      kernels::global_average_pool_nhwc(n, shape[0], shape[1] * shape[2],
                                        ws.values[node.inputs[0]].data(),
                                        ws.values[out_value].data());
      continue;
    }
    std::vector<const float*> ins;
    for (int v : node.inputs) ins.push_back(ws.values[v].data());
    kernels::run_node(graph_, node, n, ins, ws.values[out_value].data(), clamp, ws.scratch);
  }
}

template <typename Collect>
void FloatExecutor::for_each_chunk(const float* input, int64_t n, bool fuse,
                                   Collect collect) const {
  const int64_t in_size = graph_.input_value().size();
  const int64_t chunk = options_.chunk;
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<Workspace> spaces(static_cast<std::size_t>(threads_));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
  for (int64_t c = 0; c < chunks; ++c) {
    const kernels::OneOmpThread one_thread;  // oneDNN inside the chunk runs on this thread alone
    Workspace& ws = spaces[static_cast<std::size_t>(omp_get_thread_num())];
    const int64_t first = c * chunk;
    const int64_t m = std::min(chunk, n - first);
    run_chunk(input + first * in_size, m, fuse, ws);
    collect(first, m, ws);
  }
}

void FloatExecutor::run(const float* input, int64_t n, float* output) const {
  const int64_t out_size = graph_.output_value().size();
  for_each_chunk(input, n, true, [&](int64_t first, int64_t m, const Workspace& ws) {
    std::memcpy(output + first * out_size, ws.values[graph_.output].data(),
                sizeof(float) * static_cast<std::size_t>(m * out_size));
  });
}

std::vector<std::vector<float>> FloatExecutor::run_all(const float* input, int64_t n) const {
  const auto& values = graph_.values;
  // The result, plus the workspaces of the chunks that compute it.
  check_memory_budget(graph_.source,
                      "keeping every activation of " + std::to_string(n) + " samples",
                      4.0 * static_cast<double>(n + options_.chunk * threads_) *
                          graph_.activation_elements_per_sample());
  std::vector<std::vector<float>> result(values.size());
  for (std::size_t v = 0; v < values.size(); ++v)
    result[v].resize(static_cast<std::size_t>(n * values[v].size()));
  for_each_chunk(input, n, false, [&](int64_t first, int64_t m, const Workspace& ws) {
    for (std::size_t v = 0; v < values.size(); ++v) {
      const int64_t size = values[v].size();
      if (nhwc_[v]) {
        const auto& shape = values[v].shape;
        nhwc_to_nchw(ws.values[v].data(), m, shape[0], shape[1] * shape[2],
                     result[v].data() + first * size);
      } else {
        std::memcpy(result[v].data() + first * size, ws.values[v].data(),
                    sizeof(float) * static_cast<std::size_t>(m * size));
      }
    }
  });
  return result;
}

}  // namespace tilescale::model
