#include "tilescale/quant/float_executor.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "float_kernels.h"

namespace tilescale::quant {

struct FloatExecutor::Workspace {
  std::vector<std::vector<float>> values;  // [value][chunk * size]
  kernels::Scratch scratch;
};

FloatExecutor::FloatExecutor(const Graph& graph, FloatExecutorOptions options)
    : graph_(graph), options_(options) {
  threads_ = options.threads > 0
                 ? options.threads
                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options_.chunk < 1) options_.chunk = 1;
  // Parallelism comes from running chunks on separate threads; nested BLAS threads would only
  // fight.
  openblas_set_num_threads(1);

  const std::size_t count = graph.nodes.size();
  fused_into_.assign(count, -1);
  skipped_.assign(count, false);
  std::vector<int> consumers(graph.values.size(), 0);
  for (const Node& n : graph.nodes)
    for (int v : n.inputs) consumers[v]++;
  for (std::size_t i = 0; i + 1 < count; ++i) {
    const Node& n = graph.nodes[i];
    const Node& next = graph.nodes[i + 1];
    if ((n.op == Op::Conv || n.op == Op::Gemm) && (next.op == Op::Relu || next.op == Op::Clip) &&
        next.inputs[0] == n.output && consumers[n.output] == 1 && n.output != graph.output) {
      fused_into_[i] = static_cast<int>(i + 1);
      skipped_[i + 1] = true;
    }
  }
}

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
    if (fuse && fused_into_[i] >= 0) {
      const Node& act = graph_.nodes[fused_into_[i]];
      clamp = kernels::clamp_of(act);
      out_value = act.output;
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
  std::vector<std::vector<float>> result(values.size());
  for (std::size_t v = 0; v < values.size(); ++v)
    result[v].resize(static_cast<std::size_t>(n * values[v].size()));
  for_each_chunk(input, n, false, [&](int64_t first, int64_t m, const Workspace& ws) {
    for (std::size_t v = 0; v < values.size(); ++v) {
      const int64_t size = values[v].size();
      std::memcpy(result[v].data() + first * size, ws.values[v].data(),
                  sizeof(float) * static_cast<std::size_t>(m * size));
    }
  });
  return result;
}

}  // namespace tilescale::quant
