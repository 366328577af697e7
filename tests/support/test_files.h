// Test helpers shared by the test folders (core, cli, fuzz_regressions): a self-deleting temporary
// folder and byte-exact builders for the IDX and CIFAR-10 files the loaders read.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace tilescale::test {

// A fresh folder from mkdtemp under gtest's temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "tilescale_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Names of everything in the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

// Big-endian 32-bit, as IDX headers store dimensions.
inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline constexpr uint8_t kIdxUbyte = 0x08;

// An IDX file: magic 00 00 <type> <ndim>, then big-endian dims, then data (written as given, so a
// test can make it shorter or longer than the header promises).
inline std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                             uint8_t type = kIdxUbyte) {
  std::string b;
  b += '\0';
  b += '\0';
  b += static_cast<char>(type);
  b += static_cast<char>(dims.size());
  for (uint32_t d : dims) b += be32(d);
  b.append(data.begin(), data.end());
  return b;
}

// One CIFAR-10 record: label byte then 3x32x32 pixels, pixel k = (seed + k) mod 256.
inline constexpr int kCifarPixels = 3 * 32 * 32;
inline std::string cifar_record(uint8_t label, uint8_t seed) {
  std::string r(1 + kCifarPixels, '\0');
  r[0] = static_cast<char>(label);
  for (int k = 0; k < kCifarPixels; ++k) r[1 + k] = static_cast<char>((seed + k) & 0xff);
  return r;
}

}  // namespace tilescale::test
