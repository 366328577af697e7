// Labelled image data sets: IDX (MNIST-style) and CIFAR-10 binary batches, held as uint8 pixels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tilescale {

struct Dataset {
  std::string source;           // file(s) it came from, for messages
  int64_t count = 0;            // images
  int64_t channels = 0;         // C
  int64_t height = 0;           // H, pixels
  int64_t width = 0;            // W, pixels
  int num_classes = 0;          // max label + 1, at least 10 for the bundled sets
  std::vector<uint8_t> pixels;  // [count][C][H][W], 0..255
  std::vector<uint8_t> labels;  // [count]

  int64_t image_size() const { return channels * height * width; }
  // Writes images [first, first + n) as NCHW float32 pixel / 255 (the models' input convention).
  void fill_batch(int64_t first, int64_t n, float* out) const;
  // Keeps only the first n images (n <= count).
  void truncate(int64_t n);
};

// Reads an IDX image file (ubyte, dims [N][H][W] or [N][C][H][W]) and an IDX label file (ubyte,
// [N]). Throws InputError naming the file for a bad magic number, a non-ubyte type, a size that
// does not match the header (truncated or trailing bytes), or image and label counts that differ.
Dataset load_idx(const std::string& images_path, const std::string& labels_path);

// Reads CIFAR-10 binary batches (records of 1 label byte + 3x32x32 pixel bytes) and concatenates
// them. Throws InputError naming the file if its size is not a whole number of records or a label
// is > 9.
Dataset load_cifar10(const std::vector<std::string>& batch_paths);

// The names of the bundled sets ("fmnist", "mnist") and splits ("train", "test"). Each check throws
// InputError describing the value and the allowed ones, not where it came from (the CLI adds its
// flag with with_source).
void check_dataset_name(const std::string& name);
void check_split(const std::string& split);

// The bundled sets: name "fmnist" or "mnist", split "train" or "test" (checked as above), read from
// data_dir/<name>/.
Dataset load_named(const std::string& name, const std::string& split, const std::string& data_dir);

// $TILESCALE_DATA if set, else the data/ folder of the source tree this binary was built from.
std::string default_data_dir();

}  // namespace tilescale
