// The bundle's on-disk schema, shared by bundle_write.cpp and bundle_read.cpp: file names, the four
// blobs in manifest order, their per-layer sizes and the little-endian encoding of their values.
// The fields of manifest.json: docs/bundle.md.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "tilescale/core/atomic_dir.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant::bundle_detail {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kModelFile = "model.onnx";
// The four blobs, in the order the manifest lists them; BlobKind indexes these arrays.
enum BlobKind { kWeights = 0, kScales = 1, kMultipliers = 2, kBias = 3, kNumBlobs = 4 };
inline constexpr const char* kBlobFiles[kNumBlobs] = {"weights.bin", "scales.bin",
                                                      "multipliers.bin", "bias.bin"};
inline constexpr const char* kBlobKeys[kNumBlobs] = {"weights", "scales", "multipliers", "bias"};

// Bytes of each blob for one layer whose node is `node` and grid `grid`: int8 weight codes, float32
// scales, (int32 m, int32 r) multipliers and int64 bias codes.
inline std::array<uint64_t, kNumBlobs> blob_bytes(const model::Node& node, const BlockGrid& grid) {
  const auto nb = static_cast<uint64_t>(grid.num_blocks());
  return {static_cast<uint64_t>(node.weight.data.size()), 4 * nb, 8 * nb,
          8 * static_cast<uint64_t>(node.bias.data.size())};
}

// Little-endian packing of the blobs' values.
inline void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

inline uint64_t get_le(const std::string& in, std::size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(in[pos + i])} << (8 * i);
  return v;
}

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// A bundle directory for the atomic writer and reader: named "bundle" in messages; an existing
// directory is replaced only if its manifest.json is of format kBundleFormat.
const DirKind& bundle_dir_kind();

}  // namespace tilescale::quant::bundle_detail
