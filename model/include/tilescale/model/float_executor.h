// The float reference executor: runs an imported Graph on batches of NCHW float32 samples.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tilescale/model/graph.h"

namespace tilescale::model {

namespace kernels {
class DnnlConv;
}

struct FloatExecutorOptions {
  int threads = 0;    // worker threads; 0 = all hardware threads
  int64_t chunk = 8;  // samples one worker runs through the whole network at a time; 8 measured
                      // best on resnet8_fmnist with the oneDNN convs (CPU seconds for 10,000
                      // images: 1.65 at 8, 1.85 at 4 and at 12, 2.19 at 32)
};

// Runs the graph in float32: Conv on oneDNN's convolution primitive (weights reordered once into
// its blocked layout), Gemm on OpenBLAS SGEMM, direct loops for the rest (and im2col + SGEMM for
// a Conv oneDNN rejects). Activations between oneDNN convs stay NHWC, the layout its kernels
// want; the caller sees NCHW only (input, output and run_all's values). Samples are split into
// chunks that run on separate threads end to end, so a chunk's activations stay in cache and no
// layer waits for another thread; oneDNN and OpenBLAS run single-threaded inside a chunk, which
// also makes every result independent of the thread count. Conv/Gemm followed by their only
// consumer Relu/Clip apply the clamp in the epilogue, and a oneDNN Conv feeding a residual Add
// (then maybe Relu/Clip) accumulates into the Add's other operand (run() only; run_all() keeps
// every value). The graph must outlive the executor and keep
// its weights unchanged.
class FloatExecutor {
 public:
  // Throws InputError naming graph.source if the activations of one chunk per thread would not
  // fit the memory budget (core/memory_budget.h).
  explicit FloatExecutor(const Graph& graph, FloatExecutorOptions options = {});
  ~FloatExecutor();
  FloatExecutor(FloatExecutor&&) noexcept;

  // input: [n][input size] NCHW float32; output: [n][output size].
  void run(const float* input, int64_t n, float* output) const;

  // Every value of the graph for n samples (no fusion): result[v] is [n][graph.values[v].size()].
  // Throws InputError naming the graph's file if they would not fit the memory budget.
  std::vector<std::vector<float>> run_all(const float* input, int64_t n) const;

  const Graph& graph() const { return graph_; }
  int threads() const { return threads_; }

 private:
  struct Workspace;
  void run_chunk(const float* input, int64_t n, bool fuse, Workspace& ws) const;
  // Runs the samples chunk by chunk on the worker threads; collect(first, count, workspace) copies
  // a finished chunk's results out.
  template <typename Collect>
  void for_each_chunk(const float* input, int64_t n, bool fuse, Collect collect) const;
  // Sets fused_into_, fused_add_, sum_operand_ and skipped_ given the nodes that run on oneDNN.
  void plan_fusion(const std::vector<bool>& on_dnnl);

  const Graph& graph_;
  FloatExecutorOptions options_;
  int threads_;
  std::vector<int> fused_into_;   // per node: index of the Relu/Clip folded into it, or -1
  std::vector<int> fused_add_;    // per oneDNN Conv: index of the Add folded into it, or -1
  std::vector<int> sum_operand_;  // per oneDNN Conv with a fused Add: the Add's other operand
  std::vector<bool> skipped_;     // per node: a Relu/Clip executed inside its producer
  std::vector<std::unique_ptr<kernels::DnnlConv>> dnnl_convs_;  // per node: Conv on oneDNN, or null
  std::vector<bool> nhwc_;  // per value: held as [n][H][W][C] inside the executor, else NCHW
};

}  // namespace tilescale::model
