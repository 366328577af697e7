#include "tilescale/core/dataset.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

#ifndef TILESCALE_SOURCE_DIR
#define TILESCALE_SOURCE_DIR "."
#endif

namespace tilescale {
namespace {

struct IdxFile {
  std::vector<int64_t> dims;
  std::string bytes;   // whole file
  std::size_t offset;  // start of data
};

// Largest element count any header may claim; bigger claims are refused before allocating.
constexpr int64_t kMaxIdxElements = int64_t{1} << 34;

IdxFile read_idx(const std::string& path) {
  IdxFile f;
  f.bytes = read_file(path);
  const auto* b = reinterpret_cast<const unsigned char*>(f.bytes.data());
  if (f.bytes.size() < 4 || b[0] != 0 || b[1] != 0)
    fail_input(path, "not an IDX file (bad magic number)");
  if (b[2] != 0x08) fail_input(path, "IDX element type must be unsigned byte (0x08)");
  const int ndim = b[3];
  if (ndim < 1 || ndim > 4)
    fail_input(path, "IDX file has " + std::to_string(ndim) + " dimensions");
  if (f.bytes.size() < 4 + 4 * static_cast<std::size_t>(ndim))
    fail_input(path, "truncated IDX header");
  int64_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    const unsigned char* p = b + 4 + 4 * i;
    int64_t d = (int64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (d == 0) fail_input(path, "IDX dimension " + std::to_string(i) + " is zero");
    f.dims.push_back(d);
    if (count > kMaxIdxElements / d) fail_input(path, "IDX header claims an absurdly large array");
    count *= d;
  }
  f.offset = 4 + 4 * static_cast<std::size_t>(ndim);
  const std::size_t have = f.bytes.size() - f.offset;
  if (have < static_cast<std::size_t>(count))
    fail_input(path, "truncated IDX file: header promises " + std::to_string(count) +
                         " bytes of data, file has " + std::to_string(have));
  if (have > static_cast<std::size_t>(count))
    fail_input(path, "IDX file has " + std::to_string(have - count) + " bytes after the data");
  return f;
}

void set_num_classes(Dataset& d) {
  int max_label = 0;
  for (uint8_t l : d.labels) max_label = std::max<int>(max_label, l);
  d.num_classes = std::max(10, max_label + 1);
}

}  // namespace

void Dataset::fill_batch(int64_t first, int64_t n, float* out) const {
  const int64_t size = image_size();
  const uint8_t* src = pixels.data() + first * size;
  constexpr float kScale = 1.0f / 255.0f;
  for (int64_t i = 0; i < n * size; ++i) out[i] = static_cast<float>(src[i]) * kScale;
}

void Dataset::truncate(int64_t n) {
  if (n >= count) return;
  count = n;
  pixels.resize(static_cast<std::size_t>(n * image_size()));
  labels.resize(static_cast<std::size_t>(n));
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path) {
  IdxFile img = read_idx(images_path);
  IdxFile lab = read_idx(labels_path);
  if (img.dims.size() != 3 && img.dims.size() != 4)
    fail_input(images_path, "IDX images must have 3 ([N][H][W]) or 4 ([N][C][H][W]) dimensions");
  if (lab.dims.size() != 1) fail_input(labels_path, "IDX labels must have 1 dimension");
  if (img.dims[0] != lab.dims[0])
    fail_input(labels_path, "holds " + std::to_string(lab.dims[0]) + " labels but " + images_path +
                                " holds " + std::to_string(img.dims[0]) + " images");
  Dataset d;
  d.source = images_path;
  d.count = img.dims[0];
  d.channels = img.dims.size() == 4 ? img.dims[1] : 1;
  d.height = img.dims[img.dims.size() - 2];
  d.width = img.dims.back();
  d.pixels.assign(img.bytes.begin() + static_cast<std::ptrdiff_t>(img.offset), img.bytes.end());
  d.labels.assign(lab.bytes.begin() + static_cast<std::ptrdiff_t>(lab.offset), lab.bytes.end());
  set_num_classes(d);
  return d;
}

Dataset load_cifar10(const std::vector<std::string>& batch_paths) {
  constexpr int64_t kPixels = 3 * 32 * 32;
  constexpr int64_t kRecord = 1 + kPixels;
  if (batch_paths.empty()) throw InputError("CIFAR-10: no batch file given");
  Dataset d;
  d.channels = 3;
  d.height = 32;
  d.width = 32;
  for (const std::string& path : batch_paths) {
    const std::string bytes = read_file(path);
    if (bytes.empty() || bytes.size() % kRecord != 0)
      fail_input(path, "size " + std::to_string(bytes.size()) +
                           " is not a whole number of CIFAR-10 records (3073 bytes each)");
    const int64_t n = static_cast<int64_t>(bytes.size()) / kRecord;
    for (int64_t i = 0; i < n; ++i) {
      const auto* rec = reinterpret_cast<const uint8_t*>(bytes.data()) + i * kRecord;
      if (rec[0] > 9)
        fail_input(path, "record " + std::to_string(i) + " has label " + std::to_string(rec[0]) +
                             " (CIFAR-10 labels are 0..9)");
      d.labels.push_back(rec[0]);
      d.pixels.insert(d.pixels.end(), rec + 1, rec + kRecord);
    }
    d.count += n;
    d.source += (d.source.empty() ? "" : ",") + path;
  }
  set_num_classes(d);
  return d;
}

void check_dataset_name(const std::string& name) {
  if (name != "fmnist" && name != "mnist")
    throw InputError("unknown data set '" + name + "' (allowed: fmnist, mnist)");
}

void check_split(const std::string& split) {
  if (split != "train" && split != "test")
    throw InputError("unknown split '" + split + "' (allowed: train, test)");
}

Dataset load_named(const std::string& name, const std::string& split, const std::string& data_dir) {
  check_dataset_name(name);
  check_split(split);
  const std::string base = data_dir + "/" + name + "/" + split;
  return load_idx(base + "-images.idx", base + "-labels.idx");
}

std::string default_data_dir() {
  if (const char* env = std::getenv("TILESCALE_DATA"); env && *env) return env;
  return std::string(TILESCALE_SOURCE_DIR) + "/data";
}

}  // namespace tilescale
