// The memory budget seen from the command line (TILESCALE_MEMORY_LIMIT): a run whose activations
// would not fit exits 2 naming the model and writes nothing; the integer executor runs fewer
// samples per chunk instead, with byte-identical logits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/run_tilescale.h"
#include "support/test_files.h"

namespace tilescale {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kModel = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";

class MemoryBudgetCli : public ::testing::Test {
 protected:
  test::Outcome run(const std::vector<std::string>& args, const std::string& limit) {
    return test::run_tilescale(args, out_dir_.path(),
                               limit.empty()
                                   ? std::vector<std::string>{}
                                   : std::vector<std::string>{"TILESCALE_MEMORY_LIMIT=" + limit});
  }
  test::TempDir dir_, out_dir_;
};

// lenet5 keeps 67.8 KiB of float activations per image: 8 images on 2 threads need 1.1 MiB.
TEST_F(MemoryBudgetCli, EvalBeyondTheBudgetExitsTwoNamingTheModelAndWritesNothing) {
  const std::string logits = dir_.file("logits.npy");
  const test::Outcome r = run({"eval", "--model", kModel, "--dataset", "mnist", "--limit", "100",
                               "--threads", "2", "--dump-logits", logits},
                              "1M");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(kModel + ": running the network (float activations of 8 samples on "
                                        "each of 2 threads) needs 1.1 MiB, more than the memory "
                                        "budget of 1.0 MiB (set by TILESCALE_MEMORY_LIMIT)"));
  EXPECT_TRUE(dir_.entries().empty());
  // One thread needs half and runs.
  const test::Outcome one = run({"eval", "--model", kModel, "--dataset", "mnist", "--limit", "100",
                                 "--threads", "1", "--dump-logits", logits},
                                "1M");
  EXPECT_EQ(one.code, 0) << one.err;
}

TEST_F(MemoryBudgetCli, IntegerEvalRunsSmallerChunksWithIdenticalLogits) {
  const std::string bundle = dir_.file("bundle");
  const test::Outcome q = test::quantize_lenet5("channel", bundle, out_dir_.path());
  ASSERT_EQ(q.code, 0) << q.err;
  auto eval = [&](const std::string& limit, const std::string& out) {
    return run({"eval", "--bundle", bundle, "--mode", "int", "--dataset", "mnist", "--limit", "300",
                "--threads", "2", "--dump-logits", out},
               limit);
  };
  // 0.76 MiB per image (codes, im2col and accumulators), 1.5 MiB for one on each of 2 threads:
  // 2M allows chunks of 1 image instead of 8 (quantizer/bundle_test.cpp checks the chunk itself).
  const test::Outcome full = eval("", dir_.file("full.npy"));
  const test::Outcome small = eval("2M", dir_.file("small.npy"));
  ASSERT_EQ(full.code, 0) << full.err;
  ASSERT_EQ(small.code, 0) << small.err;
  EXPECT_EQ(test::read_bytes(dir_.file("small.npy")), test::read_bytes(dir_.file("full.npy")));
  const test::Outcome refused = eval("1M", dir_.file("none.npy"));
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("/model.onnx: running the integer network"));
  EXPECT_FALSE(test::exists(dir_.file("none.npy")));
}

TEST_F(MemoryBudgetCli, CalibrationThatDoesNotFitIsRefusedAndNoBundleIsWritten) {
  // Every activation of 64 calibration images, plus the workspace of one chunk of 8: 4.8 MiB.
  const std::string bundle = dir_.file("bundle");
  const test::Outcome r = run({"quantize", "--model", kModel, "--dataset", "mnist", "--search",
                               "minmax", "--calib", "64", "--threads", "1", "--out", bundle},
                              "3M");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(kModel + ": keeping every activation of 64 samples needs"));
  EXPECT_TRUE(dir_.entries().empty());
}

TEST_F(MemoryBudgetCli, MalformedLimitExitsTwoNamingTheVariable) {
  const test::Outcome r =
      run({"eval", "--model", kModel, "--dataset", "mnist", "--limit", "10"}, "lots");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("TILESCALE_MEMORY_LIMIT: 'lots' is not a byte count"));
}

}  // namespace
}  // namespace tilescale
