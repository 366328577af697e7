// IDX and CIFAR-10 loaders: exact pixels/labels/shape on small files written byte by byte, and
// every malformed input refused with an InputError that names the file.
#include "tilescale/core/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/alloc_probe.h"
#include "support/expect_input_error.h"
#include "support/scoped_env.h"
#include "support/test_files.h"
#include "tilescale/core/error.h"

namespace tilescale {
namespace {

using test::be32;
using test::cifar_record;
using test::idx_bytes;
using test::kCifarPixels;
using test::TempDir;
using test::write_bytes;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// 3 images of 2x4 pixels; pixel k = k * 11 except the last, which is 255.
std::vector<uint8_t> small_pixels() {
  std::vector<uint8_t> p(3 * 2 * 4);
  for (std::size_t k = 0; k < p.size(); ++k) p[k] = static_cast<uint8_t>(k * 11);
  p.back() = 255;
  return p;
}

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    images_ = dir_.file("images.idx");
    labels_ = dir_.file("labels.idx");
    write_bytes(images_, idx_bytes({3, 2, 4}, small_pixels()));
    write_bytes(labels_, idx_bytes({3}, {7, 0, 9}));
  }
  TempDir dir_;
  std::string images_, labels_;
};

TEST_F(IdxTest, RoundTripKeepsPixelsLabelsAndShape) {
  const Dataset d = load_idx(images_, labels_);
  EXPECT_EQ(d.source, images_);
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, 2);
  EXPECT_EQ(d.width, 4);
  EXPECT_EQ(d.image_size(), 8);
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_THAT(d.pixels, ElementsAreArray(small_pixels()));
  EXPECT_THAT(d.labels, ElementsAre(7, 0, 9));
}

TEST_F(IdxTest, FourDimensionalImagesSetChannels) {
  std::vector<uint8_t> px(2 * 3 * 2 * 2);
  for (std::size_t k = 0; k < px.size(); ++k) px[k] = static_cast<uint8_t>(200 - k);
  write_bytes(images_, idx_bytes({2, 3, 2, 2}, px));
  write_bytes(labels_, idx_bytes({2}, {1, 2}));
  const Dataset d = load_idx(images_, labels_);
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 2);
  EXPECT_EQ(d.width, 2);
  EXPECT_EQ(d.image_size(), 12);
  EXPECT_THAT(d.pixels, ElementsAreArray(px));
}

TEST_F(IdxTest, NumClassesIsMaxLabelPlusOneAndAtLeastTen) {
  write_bytes(labels_, idx_bytes({3}, {12, 0, 3}));
  EXPECT_EQ(load_idx(images_, labels_).num_classes, 13);
  write_bytes(labels_, idx_bytes({3}, {0, 0, 1}));
  EXPECT_EQ(load_idx(images_, labels_).num_classes, 10);
}

TEST_F(IdxTest, FillBatchScalesPixelsByOneOver255FromTheFirstImage) {
  const Dataset d = load_idx(images_, labels_);
  const std::vector<uint8_t> px = small_pixels();
  // Images 1 and 2 (the last, partial-batch style), plus a sentinel that must stay untouched.
  std::vector<float> out(2 * 8 + 1, -7.0f);
  d.fill_batch(1, 2, out.data());
  for (int i = 0; i < 16; ++i)
    EXPECT_FLOAT_EQ(out[i], static_cast<float>(px[8 + i]) / 255.0f) << "element " << i;
  EXPECT_FLOAT_EQ(out[15], 1.0f);  // pixel 255
  EXPECT_EQ(out[16], -7.0f) << "fill_batch wrote past n images";
  d.fill_batch(0, 1, out.data());
  EXPECT_EQ(out[0], 0.0f);  // pixel 0
}

TEST_F(IdxTest, TruncateKeepsTheFirstImagesOnly) {
  Dataset d = load_idx(images_, labels_);
  d.truncate(5);  // more than count: no change
  EXPECT_EQ(d.count, 3);
  d.truncate(2);
  EXPECT_EQ(d.count, 2);
  EXPECT_THAT(d.labels, ElementsAre(7, 0));
  const std::vector<uint8_t> px = small_pixels();
  EXPECT_THAT(d.pixels, ElementsAreArray(px.begin(), px.begin() + 16));
}

TEST_F(IdxTest, ImageLabelCountMismatchNamesBothFiles) {
  write_bytes(labels_, idx_bytes({4}, {1, 2, 3, 4}));
  const std::string msg = test::input_error_message([&] { load_idx(images_, labels_); });
  EXPECT_THAT(msg, ::testing::StartsWith(labels_ + ": "));
  EXPECT_THAT(msg, HasSubstr("4 labels"));
  EXPECT_THAT(msg, HasSubstr(images_));
  EXPECT_THAT(msg, HasSubstr("3 images"));
}

TEST_F(IdxTest, MissingFilesAreNamed) {
  EXPECT_INPUT_ERROR(load_idx(dir_.file("nope.idx"), labels_), dir_.file("nope.idx"),
                     "cannot open");
  EXPECT_INPUT_ERROR(load_idx(images_, dir_.file("nol.idx")), dir_.file("nol.idx"), "cannot open");
}

TEST_F(IdxTest, DirectoryInsteadOfFileRefused) {
  EXPECT_INPUT_ERROR(load_idx(dir_.path(), labels_), dir_.path(), "not a regular file");
}

TEST_F(IdxTest, LabelsWithMoreThanOneDimensionRefused) {
  write_bytes(labels_, idx_bytes({3, 1}, {1, 2, 3}));
  EXPECT_INPUT_ERROR(load_idx(images_, labels_), labels_, "1 dimension");
}

TEST_F(IdxTest, ImagesWithTwoDimensionsRefused) {
  write_bytes(images_, idx_bytes({3, 8}, small_pixels()));
  EXPECT_INPUT_ERROR(load_idx(images_, labels_), images_, "3 ([N][H][W]) or 4");
}

TEST_F(IdxTest, BrokenLabelFileIsNamed) {
  write_bytes(labels_, idx_bytes({3}, {1, 2}));  // one label short
  EXPECT_INPUT_ERROR(load_idx(images_, labels_), labels_, "truncated IDX file");
}

TEST_F(IdxTest, HeaderClaimingAHugeArrayIsRefusedWithoutAllocatingForIt) {
  const test::LargestAllocation probe;
  // 2^96 elements: over the element limit.
  write_bytes(images_, idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, {1, 2, 3}));
  EXPECT_INPUT_ERROR(load_idx(images_, labels_), images_, "absurdly large");
  // 2^36: just over the limit with small dimensions.
  write_bytes(images_, idx_bytes({0x10000, 0x100, 0x1000}, {}));
  EXPECT_INPUT_ERROR(load_idx(images_, labels_), images_, "absurdly large");
  // 2^33: under the limit, so the file size check refuses it (nothing is allocated for the claim).
  write_bytes(images_, idx_bytes({0x8000, 0x8000, 8}, {1}));
  EXPECT_INPUT_ERROR(load_idx(images_, labels_), images_, "truncated IDX file");
  EXPECT_LT(probe.bytes(), std::size_t{1} << 20)
      << "refusing a header must not allocate for its claim";
}

// One malformed image file per case: its bytes and the problem the message must mention.
struct BrokenIdx {
  const char* name;
  std::string bytes;
  const char* problem;
};
void PrintTo(const BrokenIdx& c, std::ostream* os) { *os << c.name; }

std::string raw(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s += static_cast<char>(b);
  return s;
}

std::string append(std::string s, const std::string& more) { return s + more; }

class BrokenIdxTest : public ::testing::TestWithParam<BrokenIdx> {};

TEST_P(BrokenIdxTest, RefusedWithAnInputErrorNamingTheFile) {
  TempDir dir;
  const std::string images = dir.file("images.idx"), labels = dir.file("labels.idx");
  write_bytes(images, GetParam().bytes);
  write_bytes(labels, idx_bytes({3}, {7, 0, 9}));
  EXPECT_INPUT_ERROR(load_idx(images, labels), images, GetParam().problem);
}

INSTANTIATE_TEST_SUITE_P(
    Idx, BrokenIdxTest,
    ::testing::Values(
        BrokenIdx{"EmptyFile", "", "bad magic number"},
        BrokenIdx{"ShorterThanMagic", raw({0, 0, 8}), "bad magic number"},
        BrokenIdx{"BadMagic", append(raw({1, 0, 8, 3}), be32(3) + be32(2) + be32(4)),
                  "bad magic number"},
        BrokenIdx{"BadMagicSecondByte", idx_bytes({3, 2, 4}, small_pixels()).replace(1, 1, "\x01"),
                  "bad magic number"},
        BrokenIdx{"FloatElementType", idx_bytes({3, 2, 4}, small_pixels(), 0x0D), "unsigned byte"},
        BrokenIdx{"SignedByteElementType", idx_bytes({3, 2, 4}, small_pixels(), 0x09),
                  "unsigned byte"},
        BrokenIdx{"ZeroDimensions", raw({0, 0, 8, 0}), "0 dimensions"},
        BrokenIdx{"FiveDimensions", idx_bytes({1, 1, 1, 1, 1}, {0}), "5 dimensions"},
        BrokenIdx{"TruncatedHeader", append(raw({0, 0, 8, 3}), be32(3) + be32(2)),
                  "truncated IDX header"},
        BrokenIdx{"TruncatedData", idx_bytes({3, 2, 4}, small_pixels()).substr(0, 16 + 23),
                  "header promises 24 bytes of data, file has 23"},
        BrokenIdx{"HeaderOnly", idx_bytes({3, 2, 4}, {}), "truncated IDX file"},
        BrokenIdx{"TrailingBytes", append(idx_bytes({3, 2, 4}, small_pixels()), "xy"),
                  "2 bytes after the data"},
        BrokenIdx{"ZeroCount", idx_bytes({0, 2, 4}, {}), "dimension 0 is zero"},
        BrokenIdx{"ZeroWidth", idx_bytes({3, 2, 0}, {}), "dimension 2 is zero"}),
    [](const ::testing::TestParamInfo<BrokenIdx>& info) { return info.param.name; });

// --- bundled sets --------------------------------------------------------------------------------

TEST(LoadNamed, ReadsNameSplitFilesFromTheDataDir) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("mnist").c_str(), 0755), 0);
  write_bytes(dir.file("mnist/train-images.idx"), idx_bytes({2, 1, 3}, {1, 2, 3, 4, 5, 6}));
  write_bytes(dir.file("mnist/train-labels.idx"), idx_bytes({2}, {4, 5}));
  const Dataset d = load_named("mnist", "train", dir.path());
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.source, dir.file("mnist/train-images.idx"));
  EXPECT_THAT(d.labels, ElementsAre(4, 5));
  // The test split is absent: the message names the file it looked for.
  EXPECT_INPUT_ERROR(load_named("mnist", "test", dir.path()), dir.file("mnist/test-images.idx"),
                     "cannot open");
}

// The library describes the value and the allowed ones; the CLI adds its flag (cli_tests).
TEST(LoadNamed, UnknownNameOrSplitIsDescribedWithTheAllowedValues) {
  EXPECT_EQ(test::input_error_message([] { load_named("imagenet", "test", "/nonexistent"); }),
            "unknown data set 'imagenet' (allowed: fmnist, mnist)");
  EXPECT_EQ(test::input_error_message([] { load_named("fmnist", "val", "/nonexistent"); }),
            "unknown split 'val' (allowed: train, test)");
}

TEST(LoadNamed, DefaultDataDirIsEnvironmentThenSourceTree) {
  {
    test::ScopedEnv data("TILESCALE_DATA", "/some/where");
    EXPECT_EQ(default_data_dir(), "/some/where");
  }
  {
    test::ScopedEnv data("TILESCALE_DATA", "");
    EXPECT_EQ(default_data_dir(), std::string(TILESCALE_SOURCE_DIR) + "/data");
  }
  test::ScopedEnv data("TILESCALE_DATA", std::nullopt);
  EXPECT_EQ(default_data_dir(), std::string(TILESCALE_SOURCE_DIR) + "/data");
}

// --- CIFAR-10 ------------------------------------------------------------------------------------

class CifarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = dir_.file("data_batch_1.bin");
    b_ = dir_.file("data_batch_2.bin");
    write_bytes(a_, cifar_record(3, 10) + cifar_record(9, 20));
    write_bytes(b_, cifar_record(0, 30));
  }
  TempDir dir_;
  std::string a_, b_;
};

TEST_F(CifarTest, TwoBatchesAreConcatenatedInOrder) {
  const Dataset d = load_cifar10({a_, b_});
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 32);
  EXPECT_EQ(d.width, 32);
  EXPECT_EQ(d.image_size(), kCifarPixels);
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.source, a_ + "," + b_);
  EXPECT_THAT(d.labels, ElementsAre(3, 9, 0));
  ASSERT_EQ(d.pixels.size(), 3u * kCifarPixels);
  const int seeds[] = {10, 20, 30};
  for (int i = 0; i < 3; ++i)
    for (int k : {0, 1, 1023, 1024, 2048, kCifarPixels - 1})
      EXPECT_EQ(d.pixels[i * kCifarPixels + k], (seeds[i] + k) & 0xff)
          << "image " << i << " px " << k;
}

TEST_F(CifarTest, FillBatchKeepsChannelMajorOrder) {
  const Dataset d = load_cifar10({a_, b_});
  std::vector<float> out(kCifarPixels);
  d.fill_batch(2, 1, out.data());
  // Channel 1 (green) starts at element 1024 in the file and in the NCHW batch.
  EXPECT_FLOAT_EQ(out[1024], static_cast<float>((30 + 1024) & 0xff) / 255.0f);
  EXPECT_FLOAT_EQ(out[kCifarPixels - 1],
                  static_cast<float>((30 + kCifarPixels - 1) & 0xff) / 255.0f);
}

TEST_F(CifarTest, LabelAboveNineRefusedNamingFileAndRecord) {
  write_bytes(b_, cifar_record(0, 1) + cifar_record(10, 2));
  EXPECT_INPUT_ERROR(load_cifar10({a_, b_}), b_, "record 1 has label 10");
}

TEST_F(CifarTest, SizeNotAMultipleOfTheRecordRefused) {
  write_bytes(b_, cifar_record(1, 1) + "extra");
  EXPECT_INPUT_ERROR(load_cifar10({a_, b_}), b_, "size 3078 is not a whole number");
  write_bytes(b_, cifar_record(1, 1).substr(0, 3072));
  EXPECT_INPUT_ERROR(load_cifar10({b_}), b_, "3073 bytes each");
}

TEST_F(CifarTest, EmptyFileRefused) {
  write_bytes(b_, "");
  EXPECT_INPUT_ERROR(load_cifar10({b_}), b_, "size 0 is not a whole number");
}

TEST_F(CifarTest, MissingBatchOrNoBatchRefused) {
  EXPECT_INPUT_ERROR(load_cifar10({a_, dir_.file("x.bin")}), dir_.file("x.bin"), "cannot open");
  EXPECT_INPUT_ERROR(load_cifar10({}), "CIFAR-10", "no batch file given");
}

TEST(Error, FailInputFormatsSourceColonProblemAndInputErrorsExitWithTwo) {
  EXPECT_EQ(test::input_error_message([] { fail_input("a/b.idx", "is broken"); }),
            "a/b.idx: is broken");
  EXPECT_EQ(kInputErrorExit, 2);
  EXPECT_EQ(kInternalErrorExit, 1);
}

}  // namespace
}  // namespace tilescale
