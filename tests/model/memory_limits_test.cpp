// Activation sizes a file claims are checked against the memory budget before the executors
// allocate: a model whose Pad blows one 28x28 image up to a billion elements imports (its shapes
// are within the importer's per-tensor limit) but running it is refused with an error naming the
// file.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/alloc_probe.h"
#include "support/expect_input_error.h"
#include "support/onnx_builder.h"
#include "support/scoped_env.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale::quant {
namespace {

using test::OnnxBuilder;

const std::string kSource = "huge.onnx";

// x [N,1,28,28] -> Pad(pad on each side of H and W) -> y.
model::Graph padded_model(int64_t pad) {
  OnnxBuilder b(13);
  b.input("x", {1, 28, 28});
  b.initializer_i64("pads", {8}, {0, 0, pad, pad, 0, 0, pad, pad});
  b.node("Pad", {"x", "pads"}, {"y"}, {}, "pad");
  b.output("y");
  return model::import_onnx_bytes(b.bytes(), kSource);
}

TEST(MemoryLimits, BillionElementActivationImportsButIsNotRun) {
  test::ScopedEnv limit("TILESCALE_MEMORY_LIMIT", "2G");
  const model::Graph g = padded_model(16000);  // 32028^2 = 1.03e9 elements per image, 4.1 GB
  EXPECT_DOUBLE_EQ(g.activation_elements_per_sample(), 784.0 + 32028.0 * 32028.0);
  EXPECT_INPUT_ERROR(model::FloatExecutor(g, model::FloatExecutorOptions{1, 1}), kSource,
                     "running the network (float activations of 1 samples on each of 1 threads) "
                     "needs 3.8 GiB, more than the memory budget of 2.0 GiB");
}

// The importer expands a constant operand (and an unfolded BN's scale and shift) to the per-sample
// shape: after a huge Pad that is gigabytes from a few bytes of file, refused before allocating.
TEST(MemoryLimits, ConstantsExpandedBeyondTheBudgetAreRefusedAtImport) {
  test::ScopedEnv limit("TILESCALE_MEMORY_LIMIT", "2G");
  for (const std::string op : {"Add", "BatchNormalization"}) {
    SCOPED_TRACE(op);
    OnnxBuilder b(13);
    b.input("x", {1, 28, 28});
    b.initializer_i64("pads", {8}, {0, 0, 16000, 16000, 0, 0, 16000, 16000});
    b.node("Pad", {"x", "pads"}, {"p"}, {}, "pad");
    if (op == "Add") {
      b.initializer("one", {1}, {1.0f});
      b.node("Add", {"p", "one"}, {"y"}, {}, "big");
    } else {
      for (const char* name : {"gamma", "beta", "mean", "var"}) b.initializer(name, {1}, {1.0f});
      b.node("BatchNormalization", {"p", "gamma", "beta", "mean", "var"}, {"y"}, {}, "big");
    }
    b.output("y");
    const test::LargestAllocation probe;
    EXPECT_INPUT_ERROR(model::import_onnx_bytes(b.bytes(), kSource), kSource,
                       "node 'big' (" + op + "): the constants expanded to per-sample shapes");
    EXPECT_LT(probe.bytes(), std::size_t{64} << 20);
  }
}

TEST(MemoryLimits, ChunkPerThreadCountsAgainstTheBudget) {
  const model::Graph g = padded_model(2);  // 784 + 1024 elements: 7,232 bytes per image
  {
    test::ScopedEnv limit("TILESCALE_MEMORY_LIMIT", std::to_string(7232 * 8 * 2));
    EXPECT_NO_THROW(model::FloatExecutor(g, model::FloatExecutorOptions{2, 8}));
  }
  test::ScopedEnv limit("TILESCALE_MEMORY_LIMIT", std::to_string(7232 * 8 * 2 - 1));
  EXPECT_INPUT_ERROR(model::FloatExecutor(g, model::FloatExecutorOptions{2, 8}), kSource,
                     "8 samples on each of 2 threads");
  EXPECT_NO_THROW(
      model::FloatExecutor(g, model::FloatExecutorOptions{1, 8}));  // fewer threads need less
}

TEST(MemoryLimits, RunAllRefusesToKeepMoreSamplesThanFit) {
  const model::Graph g = padded_model(2);
  test::ScopedEnv limit("TILESCALE_MEMORY_LIMIT", "200K");
  const model::FloatExecutor exec(g, model::FloatExecutorOptions{1, 1});
  std::vector<float> images(64 * 784, 0.5f);
  EXPECT_EQ(exec.run_all(images.data(), 16).size(), g.values.size());  // (16 + 1) x 7,232 B
  EXPECT_INPUT_ERROR(exec.run_all(images.data(), 64), kSource,
                     "keeping every activation of 64 samples needs 459.1 KiB");
}

}  // namespace
}  // namespace tilescale::quant
