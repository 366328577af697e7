// How each fuzz target turns one fuzz input into the files a loader reads, and calls the loader.
// The fuzz targets (fuzz/*.cpp) and the regression tests (tests/fuzz_regressions/) share these
// functions, so a saved crash input replays exactly as the fuzzer ran it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/npy.h"
#include "tilescale/core/sha256.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"

namespace tilescale::fuzz {

// fuzz_onnx: the input is the model file.
inline void onnx_input(const uint8_t* data, std::size_t size) {
  model::import_onnx_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
}

// fuzz_idx: the first two bytes (little-endian) modulo (rest + 1) give the image file's length; the
// image file is the next that many bytes, the label file the remainder. Both go into dir.
inline void idx_input(const uint8_t* data, std::size_t size, const std::string& dir) {
  std::size_t split = 0, skip = std::min<std::size_t>(size, 2);
  if (size >= 2) split = (data[0] | static_cast<std::size_t>(data[1]) << 8) % (size - 2 + 1);
  const std::string images = dir + "/images.idx", labels = dir + "/labels.idx";
  put_file(images, data + skip, split);
  put_file(labels, data + skip + split, size - skip - split);
  load_idx(images, labels);
}

// fuzz_cifar: the first byte modulo 3, plus 1, is the number of batch files; the rest is cut into
// that many nearly equal parts (the last takes the remainder), written into dir.
inline void cifar_input(const uint8_t* data, std::size_t size, const std::string& dir) {
  const std::size_t files = size > 0 ? data[0] % 3 + 1 : 1, skip = std::min<std::size_t>(size, 1);
  const std::size_t rest = size - skip, part = rest / files;
  std::vector<std::string> paths;
  for (std::size_t f = 0; f < files; ++f) {
    paths.push_back(dir + "/data_batch_" + std::to_string(f + 1) + ".bin");
    const std::size_t begin = skip + f * part, len = f + 1 == files ? rest - f * part : part;
    put_file(paths.back(), data + begin, len);
  }
  load_cifar10(paths);
}

// fuzz_npy: the input is the .npy file, written into dir.
inline void npy_input(const uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = dir + "/array.npy";
  put_file(path, data, size);
  read_npy(path);
}

// fuzz_bundle: bundle_dir holds a copy of a real bundle; the input becomes its manifest.json.
inline void bundle_manifest_input(const uint8_t* data, std::size_t size,
                                  const std::string& bundle_dir) {
  put_file(bundle_dir + "/manifest.json", data, size);
  quant::read_bundle(bundle_dir);
}

// A real bundle kept in memory, the starting point of the fuzz_bundle_blob inputs.
struct BundleTemplate {
  nlohmann::ordered_json manifest;  // parsed manifest.json
  std::string blobs[4];             // weights.bin, scales.bin, multipliers.bin, bias.bin
};

inline constexpr const char* kBundleBlobs[] = {"weights.bin", "scales.bin", "multipliers.bin",
                                               "bias.bin"};

inline BundleTemplate load_bundle_template(const std::string& dir) {
  BundleTemplate t;
  t.manifest = nlohmann::ordered_json::parse(read_file(dir + "/manifest.json"));
  for (int b = 0; b < 4; ++b) t.blobs[b] = read_file(dir + "/" + kBundleBlobs[b]);
  return t;
}

// fuzz_bundle_blob: bundle_dir holds a copy of the bundle t was loaded from. The input patches one
// blob: byte 0 picks it (low two bits: weights, scales, multipliers, bias; bit 7: cut the blob off
// after the patch), bytes 1-4 (little-endian) give the patch offset modulo the blob size, the
// remaining bytes are written there (clipped at the blob's end). The manifest's bytes and sha256 of
// that blob are updated, so the reader gets past the checksums to the checks of the values
// themselves. Every blob is rewritten, so no patch outlives its input.
inline void bundle_blob_input(const uint8_t* data, std::size_t size, const std::string& bundle_dir,
                              const BundleTemplate& t) {
  if (size < 5) return;
  const int which = data[0] & 3;
  const bool cut = (data[0] & 0x80) != 0;
  std::string blob = t.blobs[which];
  const uint32_t at32 =
      data[1] | uint32_t{data[2]} << 8 | uint32_t{data[3]} << 16 | uint32_t{data[4]} << 24;
  const std::size_t at = blob.empty() ? 0 : at32 % blob.size();
  const std::size_t n = std::min(size - 5, blob.size() - at);
  std::copy(data + 5, data + 5 + n, blob.begin() + static_cast<std::ptrdiff_t>(at));
  if (cut) blob.resize(at + n);
  nlohmann::ordered_json manifest = t.manifest;
  manifest["blobs"][kBundleBlobs[which]]["bytes"] = blob.size();
  manifest["blobs"][kBundleBlobs[which]]["sha256"] = sha256_hex(blob);
  const std::string text = manifest.dump(2) + "\n";
  put_file(bundle_dir + "/manifest.json", text.data(), text.size());
  for (int b = 0; b < 4; ++b) {
    const std::string& bytes = b == which ? blob : t.blobs[b];
    put_file(bundle_dir + "/" + kBundleBlobs[b], bytes.data(), bytes.size());
  }
  quant::read_bundle(bundle_dir);
}

// fuzz_arch: the input is an architecture config file (configs/*.json), read with parse_file.
inline void arch_input(const uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = dir + "/arch.json";
  put_file(path, data, size);
  map::ArchConfig::parse_file(path);
}

// fuzz_scalesim: the input is a SCALE-Sim v2 .cfg file, read with ArchConfig::from_scalesim_cfg.
inline void scalesim_input(const uint8_t* data, std::size_t size, const std::string& dir) {
  const std::string path = dir + "/arch.cfg";
  put_file(path, data, size);
  map::ArchConfig::from_scalesim_cfg(path);
}

// fuzz_topology: byte 0 picks the reader (even: SCALE-Sim topology CSV, odd: GEMM CSV), the rest
// is the file (what `tilescale map --topology` / `--gemm` read).
inline void topology_input(const uint8_t* data, std::size_t size, const std::string& dir) {
  const bool gemm = size > 0 && (data[0] & 1) != 0;
  const std::size_t skip = std::min<std::size_t>(size, 1);
  const std::string path = dir + "/layers.csv";
  put_file(path, data + skip, size - skip);
  if (gemm)
    map::read_scalesim_gemm(path, 8, 8);
  else
    map::read_scalesim_topology(path, 8, 8);
}

// Copies the regular files of a bundle directory from into to (created if missing).
inline void copy_bundle(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file())
      fs::copy_file(e.path(), to + "/" + e.path().filename().string(),
                    fs::copy_options::overwrite_existing);
}

}  // namespace tilescale::fuzz
