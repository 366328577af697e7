// `tilescale eval` run as a real process: every bad input ends with exit code 2 and a message
// naming the file or option at fault; a good run reports exact accuracy and dumps logits that agree
// with it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/run_tilescale.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tilescale/core/npy.h"

namespace tilescale {
namespace {

using test::exists;
using test::idx_bytes;
using test::kClasses;
using test::kPixels;
using test::kSide;
using test::Outcome;
using test::read_bytes;
using test::run_tilescale;
using test::TempDir;
using test::write_bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// 12 images of 28x28: image i shows class i % 10 (its band of two rows at 255) plus a row of 17s at
// the bottom, which the tiny model ignores. Labels are the classes except images 3 and 7, which are
// mislabelled, so the tiny model gets exactly 10 of 12 right.
constexpr int kImages = 12;
constexpr int kCorrect = 10;

std::vector<uint8_t> band_images() {
  std::vector<uint8_t> px(static_cast<std::size_t>(kImages) * kPixels, 0);
  for (int i = 0; i < kImages; ++i) {
    uint8_t* img = px.data() + static_cast<std::size_t>(i) * kPixels;
    const int c = i % kClasses;
    std::fill(img + 2 * c * kSide, img + (2 * c + 2) * kSide, 255);
    std::fill(img + 27 * kSide, img + 28 * kSide, 17);
  }
  return px;
}

std::vector<uint8_t> band_labels() {
  std::vector<uint8_t> l(kImages);
  for (int i = 0; i < kImages; ++i) l[i] = static_cast<uint8_t>(i % kClasses);
  l[3] = 5;
  l[7] = 1;
  return l;
}

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = dir_.file("work");
    logs_ = dir_.file("logs");
    ASSERT_EQ(::mkdir(work_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(logs_.c_str(), 0755), 0);
    model_ = work_ + "/tiny.onnx";
    images_ = work_ + "/images.idx";
    labels_ = work_ + "/labels.idx";
    write_bytes(model_, test::tiny_model_bytes());
    write_bytes(images_, idx_bytes({kImages, kSide, kSide}, band_images()));
    write_bytes(labels_, idx_bytes({kImages}, band_labels()));
  }

  // eval with the tiny model on the band images, plus extra options.
  Outcome eval(std::vector<std::string> extra, bool with_model = true, bool with_data = true) {
    std::vector<std::string> args = {"eval", "--threads", "1"};
    if (with_model) args.insert(args.end(), {"--model", model_});
    if (with_data) args.insert(args.end(), {"--images", images_, "--labels", labels_});
    args.insert(args.end(), extra.begin(), extra.end());
    return run_tilescale(args, logs_);
  }

  // The run failed as an input error: exit 2, nothing on stdout, the error line names source and
  // contains problem.
  static void expect_input_error(const Outcome& r, const std::string& source,
                                 const std::string& problem) {
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.out, IsEmpty());
    EXPECT_THAT(r.err, HasSubstr("tilescale eval: error: " + source + ": "));
    EXPECT_THAT(r.err, HasSubstr(problem));
  }

  TempDir dir_;
  std::string work_, logs_, model_, images_, labels_;
};

// --- input errors --------------------------------------------------------------------------------

TEST_F(EvalCli, MissingModelFileExitsTwoNamingIt) {
  const std::string missing = work_ + "/no-such-model.onnx";
  expect_input_error(eval({"--model", missing}, false), missing, "cannot open");
}

TEST_F(EvalCli, TruncatedOnnxFileExitsTwo) {
  const std::string cut = work_ + "/cut.onnx";
  write_bytes(cut, read_bytes(model_).substr(0, 100));
  expect_input_error(eval({"--model", cut}, false), cut, "not a valid ONNX model");
}

TEST_F(EvalCli, EmptyOnnxFileExitsTwo) {
  const std::string empty = work_ + "/empty.onnx";
  write_bytes(empty, "");
  expect_input_error(eval({"--model", empty}, false), empty, "empty file");
}

TEST_F(EvalCli, UnknownOperatorExitsTwoNamingNodeAndOp) {
  const std::string odd = work_ + "/odd.onnx";
  write_bytes(odd, test::tiny_model_bytes(/*unknown_op=*/true));
  const Outcome r = eval({"--model", odd}, false);
  expect_input_error(r, odd, "unsupported operator type 'FrobnicateV2'");
  EXPECT_THAT(r.err, HasSubstr("node 'mystery'"));
}

TEST_F(EvalCli, TruncatedIdxExitsTwoNamingTheFile) {
  write_bytes(images_, read_bytes(images_).substr(0, 16 + kImages * kPixels - 5));
  expect_input_error(eval({}), images_, "truncated IDX file");
}

TEST_F(EvalCli, LabelImageCountMismatchExitsTwoNamingBothFiles) {
  std::vector<uint8_t> labels = band_labels();
  labels.pop_back();
  write_bytes(labels_, idx_bytes({kImages - 1}, labels));
  const Outcome r = eval({});
  expect_input_error(r, labels_, "holds 11 labels");
  EXPECT_THAT(r.err, HasSubstr(images_ + " holds 12 images"));
}

TEST_F(EvalCli, CifarBatchIntoA28x28ModelExitsTwoNamingBothShapes) {
  const std::string batch = work_ + "/data_batch_1.bin";
  write_bytes(batch, test::cifar_record(1, 5) + test::cifar_record(2, 6));
  const Outcome r = eval({"--images", batch, "--format", "cifar10"}, true, false);
  expect_input_error(r, model_, "model expects 1x28x28 images");
  EXPECT_THAT(r.err, HasSubstr(batch + " holds 3x32x32 images"));
}

TEST_F(EvalCli, CifarWithLabelsOptionRefused) {
  const std::string batch = work_ + "/data_batch_1.bin";
  write_bytes(batch, test::cifar_record(1, 5));
  const Outcome r =
      eval({"--images", batch, "--format", "cifar10", "--labels", labels_}, true, false);
  expect_input_error(r, "--labels", "CIFAR-10 batches hold their own labels");
}

TEST_F(EvalCli, UnknownDatasetExitsTwoNamingTheOption) {
  expect_input_error(eval({"--dataset", "cifar100"}, true, false), "--dataset",
                     "unknown data set 'cifar100'");
}

TEST_F(EvalCli, UnknownSplitExitsTwoNamingTheOption) {
  expect_input_error(eval({"--dataset", "mnist", "--split", "val"}, true, false), "--split",
                     "unknown split 'val' (allowed: train, test)");
}

TEST_F(EvalCli, UnknownFormatExitsTwo) {
  expect_input_error(eval({"--format", "png"}), "--format", "unknown format 'png'");
}

TEST_F(EvalCli, NoDataSelectedExitsTwo) {
  expect_input_error(eval({}, true, false), "--dataset", "choose a data set");
}

TEST_F(EvalCli, LimitLargerThanTheDataSetExitsTwo) {
  expect_input_error(eval({"--limit", "13"}), "--limit",
                     "13 is more than the 12 images of " + images_);
}

TEST_F(EvalCli, NegativeLimitOrZeroBatchExitsTwo) {
  expect_input_error(eval({"--limit", "-1"}), "--limit", "must be >= 0");
  expect_input_error(eval({"--batch", "0"}), "--batch", "must be >= 1");
}

TEST_F(EvalCli, UnknownOptionExitsTwoNamingIt) {
  const Outcome r = eval({"--frobnicate", "3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("tilescale eval: error: "));
  EXPECT_THAT(r.err, HasSubstr("'--frobnicate'"));
}

TEST_F(EvalCli, NonNumericOptionValueExitsTwo) {
  const Outcome r = eval({"--limit", "many"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("tilescale eval: error: "));
  EXPECT_THAT(r.err, HasSubstr("many"));
}

TEST_F(EvalCli, NoModelExitsTwo) { expect_input_error(eval({}, false), "--model", "--model"); }

TEST_F(EvalCli, UnknownCommandOrNoCommandExitsTwoWithUsage) {
  Outcome r = run_tilescale({"evaluate"}, logs_);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'evaluate'"));
  EXPECT_THAT(r.err, HasSubstr("usage: tilescale"));
  r = run_tilescale({}, logs_);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("usage: tilescale"));
}

// --- good runs -----------------------------------------------------------------------------------

TEST_F(EvalCli, JsonReportsExactTop1AndPlausibleTiming) {
  const Outcome r = eval({"--json", "--batch", "5"});  // batches of 5, 5 and a partial 2
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());  // no progress bar when stderr is not a terminal
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"top1", "images", "seconds", "images_per_s"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["images"].get<int64_t>(), kImages);
  EXPECT_EQ(j["correct"].get<int64_t>(), kCorrect);
  EXPECT_DOUBLE_EQ(j["top1"].get<double>(), static_cast<double>(kCorrect) / kImages);
  const double seconds = j["seconds"].get<double>();
  EXPECT_GT(seconds, 0.0);
  EXPECT_LT(seconds, 60.0);
  EXPECT_NEAR(j["images_per_s"].get<double>(), kImages / seconds, 1e-6 * kImages / seconds);
  EXPECT_EQ(j["batch"].get<int64_t>(), 5);
  EXPECT_EQ(j["threads"].get<int>(), 1);
  EXPECT_EQ(j["model"].get<std::string>(), model_);
}

TEST_F(EvalCli, TableOutputNamesModelAndAccuracy) {
  const Outcome r = eval({});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("top-1      83.33 %  (10 / 12)"));
  EXPECT_THAT(r.out, HasSubstr(model_));
}

TEST_F(EvalCli, LimitEvaluatesTheFirstImagesOnly) {
  const Outcome r = eval({"--json", "--limit", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"].get<int64_t>(), 4);
  EXPECT_DOUBLE_EQ(j["top1"].get<double>(), 0.75);  // image 3 is mislabelled
}

TEST_F(EvalCli, BundledDataSetIsReadFromDataDir) {
  const std::string data = work_ + "/data";
  ASSERT_EQ(::mkdir(data.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((data + "/fmnist").c_str(), 0755), 0);
  write_bytes(data + "/fmnist/train-images.idx", read_bytes(images_));
  write_bytes(data + "/fmnist/train-labels.idx", read_bytes(labels_));
  const Outcome r =
      eval({"--json", "--dataset", "fmnist", "--split", "train", "--data-dir", data}, true, false);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["data"].get<std::string>(), "fmnist train");
  EXPECT_EQ(j["correct"].get<int64_t>(), kCorrect);
  // The test split is missing from that folder: the message names the file it looked for.
  expect_input_error(eval({"--dataset", "fmnist", "--data-dir", data}, true, false),
                     data + "/fmnist/test-images.idx", "cannot open");
}

TEST_F(EvalCli, DumpedLogitsAreAValidNpyWhoseArgmaxMatchesTop1) {
  const std::string npy = work_ + "/logits.npy";
  const Outcome r = eval({"--json", "--batch", "5", "--dump-logits", npy});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);

  // A NumPy 1.0 file with a 64-byte aligned header, float32, [12, 10].
  const std::string b = read_bytes(npy);
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t hlen = static_cast<unsigned char>(b[8]) | static_cast<unsigned char>(b[9]) << 8;
  EXPECT_EQ((10 + hlen) % 64, 0u);
  EXPECT_THAT(b.substr(10, hlen), HasSubstr("'descr': '<f4'"));
  EXPECT_THAT(b.substr(10, hlen), HasSubstr("'shape': (12, 10)"));
  EXPECT_EQ(b.size(), 10 + hlen + kImages * kClasses * 4);

  const NpyArray a = read_npy(npy);
  ASSERT_THAT(a.shape, ElementsAre(kImages, kClasses));
  const std::vector<uint8_t> px = band_images(), labels = band_labels();
  int64_t correct = 0;
  for (int i = 0; i < kImages; ++i) {
    const float* row = a.data.data() + i * kClasses;
    const std::vector<double> want =
        test::tiny_logits(px.data() + static_cast<std::size_t>(i) * kPixels);
    for (int k = 0; k < kClasses; ++k)
      EXPECT_NEAR(row[k], want[k], 1e-4) << "image " << i << " class " << k;
    correct += (std::max_element(row, row + kClasses) - row) == labels[i];
  }
  EXPECT_EQ(correct, kCorrect);
  EXPECT_EQ(correct, j["correct"].get<int64_t>());
  EXPECT_DOUBLE_EQ(static_cast<double>(correct) / kImages, j["top1"].get<double>());
  EXPECT_THAT(dir_.entries(), ElementsAre("logs", "work"));
}

TEST_F(EvalCli, LogitsDoNotDependOnBatchSize) {
  const std::string one = work_ + "/b1.npy", seven = work_ + "/b7.npy";
  ASSERT_EQ(eval({"--batch", "1", "--dump-logits", one}).code, 0);
  ASSERT_EQ(eval({"--batch", "7", "--dump-logits", seven}).code, 0);
  EXPECT_EQ(read_npy(one).data, read_npy(seven).data);
}

TEST_F(EvalCli, BatchLargerThanTheDataSetIsFine) {
  const Outcome r = eval({"--json", "--batch", "1000000000000"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["correct"].get<int64_t>(), kCorrect);
}

// --- failed runs leave no output -----------------------------------------------------------------

std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_F(EvalCli, FailedRunCreatesNoOutputFile) {
  const std::string npy = work_ + "/logits.npy";
  write_bytes(labels_, idx_bytes({3}, {1, 2, 3}));
  const Outcome r = eval({"--dump-logits", npy});
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(exists(npy));
  EXPECT_THAT(entries_of(work_), ElementsAre("images.idx", "labels.idx", "tiny.onnx"));
}

TEST_F(EvalCli, FailedRunLeavesAnExistingOutputUntouched) {
  const std::string npy = work_ + "/logits.npy";
  write_bytes(npy, "previous results");
  const Outcome r = eval({"--limit", "99", "--dump-logits", npy});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(read_bytes(npy), "previous results");
  EXPECT_THAT(entries_of(work_),
              ElementsAre("images.idx", "labels.idx", "logits.npy", "tiny.onnx"));
}

TEST_F(EvalCli, UnwritableOutputExitsTwoAndLeavesNoTemporary) {
  // The output path is an existing folder: the final rename fails after the data was written.
  const std::string folder = work_ + "/out";
  ASSERT_EQ(::mkdir(folder.c_str(), 0755), 0);
  Outcome r = eval({"--dump-logits", folder});
  expect_input_error(r, folder, "rename failed");
  EXPECT_THAT(entries_of(work_), ElementsAre("images.idx", "labels.idx", "out", "tiny.onnx"));
  EXPECT_THAT(entries_of(folder), IsEmpty());
  // The output folder does not exist.
  const std::string missing = work_ + "/missing/logits.npy";
  r = eval({"--dump-logits", missing});
  expect_input_error(r, missing, "cannot create output file");
  EXPECT_FALSE(exists(work_ + "/missing"));
}

}  // namespace
}  // namespace tilescale
