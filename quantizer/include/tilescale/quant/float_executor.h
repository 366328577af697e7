// The float reference executor: runs an imported Graph on batches of NCHW float32 samples.
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/quant/graph.h"

namespace tilescale::quant {

struct FloatExecutorOptions {
  int threads = 0;    // worker threads; 0 = all hardware threads
  int64_t chunk = 8;  // samples one worker runs through the whole network at a time; 8 measured
                      // best with 2 threads on resnet8_fmnist (1,697 vs 1,448 images/s at 4)
};

// Runs the graph in float32 with im2col + OpenBLAS SGEMM for Conv and Gemm, direct loops for the
// rest. Samples are split into chunks that run on separate threads end to end, so a chunk's
// activations stay in cache and no layer waits for another thread; OpenBLAS itself is kept
// single-threaded. Conv/Gemm followed by their only consumer Relu/Clip apply the clamp in the GEMM
// epilogue.
class FloatExecutor {
 public:
  explicit FloatExecutor(const Graph& graph, FloatExecutorOptions options = {});

  // input: [n][input size] NCHW float32; output: [n][output size].
  void run(const float* input, int64_t n, float* output) const;

  // Every value of the graph for n samples (no fusion): result[v] is [n][graph.values[v].size()].
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

  const Graph& graph_;
  FloatExecutorOptions options_;
  int threads_;
  std::vector<int> fused_into_;  // per node: index of the Relu/Clip folded into it, or -1
  std::vector<bool> skipped_;    // per node: a Relu/Clip executed inside its producer
};

}  // namespace tilescale::quant
