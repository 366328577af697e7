// .npy files: what write_npy_f32 writes is a valid NumPy 1.0 file (64-byte aligned header, exact
// data), read_npy gives it back bit for bit, and malformed files are refused naming the path.
#include "tilescale/core/npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "support/expect_input_error.h"
#include "support/test_files.h"

namespace tilescale {
namespace {

using test::read_bytes;
using test::TempDir;
using test::write_bytes;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i) - 3.0f;
  return v;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A hand-made npy file: version major.0, the given header dict padded with spaces to 64, then data.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string b = "\x93NUMPY";
  b += static_cast<char>(major);
  b += '\0';
  const std::size_t len = header.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) b += static_cast<char>((len >> (8 * i)) & 0xff);
  return b + header + data;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// --- round trip, one shape per case --------------------------------------------------------------

class NpyShapeTest : public ::testing::TestWithParam<std::vector<int64_t>> {};

TEST_P(NpyShapeTest, WrittenFileIsAlignedNpy10AndReadsBackBitExact) {
  const std::vector<int64_t> shape = GetParam();
  TempDir dir;
  const std::string path = dir.file("a.npy");
  const std::vector<float> data = ramp(static_cast<std::size_t>(numel(shape)));
  write_npy_f32(path, data.data(), shape);

  const std::string b = read_bytes(path);
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(b[6], 1);  // version 1.0
  EXPECT_EQ(b[7], 0);
  const std::size_t hlen = static_cast<unsigned char>(b[8]) | static_cast<unsigned char>(b[9]) << 8;
  EXPECT_EQ((10 + hlen) % 64, 0u) << "data must start on a 64-byte boundary";
  ASSERT_EQ(b.size(), 10 + hlen + data.size() * 4);
  const std::string header = b.substr(10, hlen);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_THAT(header, ::testing::StartsWith("{'descr': '<f4', 'fortran_order': False, 'shape': ("));
  EXPECT_EQ(b.compare(10 + hlen, std::string::npos,
                      std::string(reinterpret_cast<const char*>(data.data()), data.size() * 4)),
            0);

  const NpyArray a = read_npy(path);
  EXPECT_EQ(a.shape, shape);
  EXPECT_THAT(a.data, ElementsAreArray(data));
}

INSTANTIATE_TEST_SUITE_P(Npy, NpyShapeTest,
                         ::testing::Values(std::vector<int64_t>{2, 3}, std::vector<int64_t>{5},
                                           std::vector<int64_t>{}, std::vector<int64_t>{0, 10},
                                           std::vector<int64_t>{7, 1, 3, 2},
                                           // a header longer than 64 bytes: padded to 128
                                           std::vector<int64_t>(20, 1)));

TEST(Npy, OneDimensionalShapeIsWrittenAsAPythonOneTuple) {
  TempDir dir;
  const std::vector<float> v = {1.5f, -2.0f, 0.0f};
  write_npy_f32(dir.file("v.npy"), v.data(), {3});
  const std::string b = read_bytes(dir.file("v.npy"));
  // "(3)" would be an int, not a tuple, for NumPy; "(3,)" and "(3, )" are both 1-tuples.
  const std::size_t at = b.find("'shape': (3,");
  ASSERT_NE(at, std::string::npos) << b.substr(0, 64);
  const std::size_t close = b.find_first_not_of(' ', at + 12);
  EXPECT_EQ(b[close], ')') << b.substr(0, 64);
}

TEST(Npy, SpecialFloatValuesSurviveTheRoundTrip) {
  TempDir dir;
  const std::vector<float> v = {-0.0f, std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::quiet_NaN(), 3.4e38f};
  write_npy_f32(dir.file("s.npy"), v.data(), {5});
  const NpyArray a = read_npy(dir.file("s.npy"));
  ASSERT_EQ(a.data.size(), v.size());
  EXPECT_EQ(std::memcmp(a.data.data(), v.data(), v.size() * 4), 0);
}

TEST(Npy, WriteReplacesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("a.npy");
  write_bytes(path, "old and longer content that must disappear entirely");
  const std::vector<float> v = {4.0f};
  write_npy_f32(path, v.data(), {1});
  EXPECT_THAT(read_npy(path).data, ElementsAre(4.0f));
  EXPECT_THAT(dir.entries(), ElementsAre("a.npy"));
}

TEST(Npy, ReadsFloat64AsFloat32) {
  TempDir dir;
  const std::vector<double> v = {0.5, -1.25, 1e10, 3.0};
  write_bytes(dir.file("d.npy"),
              npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", bytes_of(v)));
  const NpyArray a = read_npy(dir.file("d.npy"));
  EXPECT_THAT(a.shape, ElementsAre(2, 2));
  EXPECT_THAT(a.data, ElementsAre(0.5f, -1.25f, 1e10f, 3.0f));
}

TEST(Npy, ReadsVersion2HeadersAndNumpysOwnSpacing) {
  TempDir dir;
  const std::vector<float> v = ramp(6);
  write_bytes(dir.file("v2.npy"),
              npy_file("{'descr':'<f4','fortran_order':False,'shape':(6,)}", bytes_of(v), 2));
  const NpyArray a = read_npy(dir.file("v2.npy"));
  EXPECT_THAT(a.shape, ElementsAre(6));
  EXPECT_THAT(a.data, ElementsAreArray(v));
}

TEST(Npy, HeaderLongerThanNumpysLimitIsRefusedWithoutParsingIt) {
  // A 100 KB descr once overflowed the stack inside std::regex; NumPy caps headers at 10,000 bytes.
  TempDir dir;
  const std::vector<float> v = ramp(1);
  const std::string fill(100000, 'x');
  write_bytes(dir.file("long.npy"),
              npy_file("{'descr': '<f4" + fill + "', 'fortran_order': False, 'shape': (1,), }",
                       bytes_of(v), 2));
  EXPECT_INPUT_ERROR(read_npy(dir.file("long.npy")), dir.file("long.npy"),
                     "bytes is longer than the 10000 NumPy accepts");
  // Just under the limit the header is parsed (and this descr refused by name).
  write_bytes(dir.file("under.npy"), npy_file("{'descr': '<f4" + std::string(9000, 'x') +
                                                  "', 'fortran_order': False, 'shape': (1,), }",
                                              bytes_of(v), 2));
  EXPECT_INPUT_ERROR(read_npy(dir.file("under.npy")), dir.file("under.npy"),
                     "unsupported npy dtype <f4xxx");
}

TEST(Npy, BlanksAroundTheColonAndMissingKeys) {
  TempDir dir;
  const std::vector<float> v = ramp(2);
  write_bytes(
      dir.file("a.npy"),
      npy_file("{'descr' :  '<f4', 'fortran_order' : False, 'shape' :\t(2,)}", bytes_of(v)));
  EXPECT_THAT(read_npy(dir.file("a.npy")).shape, ElementsAre(2));
  write_bytes(dir.file("f.npy"),
              npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", bytes_of(v)));
  EXPECT_INPUT_ERROR(read_npy(dir.file("f.npy")), dir.file("f.npy"), "Fortran-order");
  write_bytes(dir.file("s.npy"), npy_file("{'descr': '<f4', 'shape': 2}", bytes_of(v)));
  EXPECT_INPUT_ERROR(read_npy(dir.file("s.npy")), dir.file("s.npy"), "no shape");
  write_bytes(dir.file("d.npy"), npy_file("{'descr': <f4, 'shape': (2,)}", bytes_of(v)));
  EXPECT_INPUT_ERROR(read_npy(dir.file("d.npy")), dir.file("d.npy"), "no descr");
  write_bytes(dir.file("u.npy"), npy_file("{'descr': '<f4', 'shape': (2,", bytes_of(v)));
  EXPECT_INPUT_ERROR(read_npy(dir.file("u.npy")), dir.file("u.npy"), "no shape");
}

TEST(Npy, MissingFileRefused) {
  TempDir dir;
  EXPECT_INPUT_ERROR(read_npy(dir.file("none.npy")), dir.file("none.npy"), "cannot open");
}

TEST(Npy, WriteIntoAMissingFolderRefusedNamingThePath) {
  TempDir dir;
  const float x = 1.0f;
  EXPECT_INPUT_ERROR(write_npy_f32(dir.file("no/such/a.npy"), &x, {1}), dir.file("no/such/a.npy"),
                     "cannot create output file");
}

// --- malformed files -----------------------------------------------------------------------------

struct BrokenNpy {
  const char* name;
  std::string bytes;
  const char* problem;
};
void PrintTo(const BrokenNpy& c, std::ostream* os) { *os << c.name; }

const std::string kF4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
const std::string kSixFloats = bytes_of(ramp(6));

class BrokenNpyTest : public ::testing::TestWithParam<BrokenNpy> {};

TEST_P(BrokenNpyTest, RefusedWithAnInputErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.file("bad.npy");
  write_bytes(path, GetParam().bytes);
  EXPECT_INPUT_ERROR(read_npy(path), path, GetParam().problem);
}

std::string with_dict(const std::string& dict, const std::string& data = kSixFloats) {
  return npy_file(dict, data);
}

INSTANTIATE_TEST_SUITE_P(
    Npy, BrokenNpyTest,
    ::testing::Values(
        BrokenNpy{"Empty", "", "not a .npy file"},
        BrokenNpy{"BadMagic", "\x93NUMPX" + npy_file(kF4, kSixFloats).substr(6), "not a .npy file"},
        BrokenNpy{"ShorterThanPrefix", std::string("\x93NUMPY\x01", 7), "not a .npy file"},
        BrokenNpy{"Version4", npy_file(kF4, kSixFloats).replace(6, 1, "\x04"),
                  "unsupported .npy version 4"},
        BrokenNpy{"HeaderLengthPastEnd", npy_file(kF4, "").substr(0, 40), "truncated .npy header"},
        BrokenNpy{"NoDescr", with_dict("{'fortran_order': False, 'shape': (2, 3), }"), "no descr"},
        BrokenNpy{"IntDtype",
                  with_dict("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }"),
                  "unsupported npy dtype <i4"},
        BrokenNpy{"BigEndian",
                  with_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }"),
                  "unsupported npy dtype >f4"},
        BrokenNpy{"FortranOrder",
                  with_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"),
                  "Fortran-order"},
        BrokenNpy{"NoShape", with_dict("{'descr': '<f4', 'fortran_order': False, }"), "no shape"},
        BrokenNpy{"TruncatedData", npy_file(kF4, kSixFloats.substr(0, 23)),
                  "npy data size 23 bytes does not match shape (2, 3)"},
        BrokenNpy{"NoData", npy_file(kF4, ""), "npy data size 0 bytes"},
        BrokenNpy{"TrailingData", npy_file(kF4, kSixFloats + "abcd"), "npy data size 28 bytes"},
        BrokenNpy{"ShapeTooLarge",
                  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, "
                            "1048576), }"),
                  "too large"},
        BrokenNpy{"DimensionOverflowsInt64",
                  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': "
                            "(99999999999999999999999, ), }"),
                  "invalid dimension"},
        BrokenNpy{"NegativeDimension",
                  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }"),
                  "invalid dimension"},
        BrokenNpy{"NonIntegerDimension",
                  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1.5), }"),
                  "invalid dimension"},
        BrokenNpy{"EmptyDimension",
                  with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, , 3), }"),
                  "invalid dimension"}),
    [](const ::testing::TestParamInfo<BrokenNpy>& info) { return info.param.name; });

}  // namespace
}  // namespace tilescale
