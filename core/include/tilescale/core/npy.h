// NumPy .npy files (format version 1.0), the exchange format for logits and fixtures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tilescale {

struct NpyArray {
  std::vector<int64_t> shape;  // C order
  std::vector<float> data;     // converted to float32 whatever the stored dtype (<f4 or <f8)
};

// Writes a little-endian float32 C-order array, atomically.
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// Reads <f4 or <f8 C-order arrays. Throws InputError naming the path on any malformed header,
// unsupported dtype, Fortran order, or a data size that does not match the header.
NpyArray read_npy(const std::string& path);

}  // namespace tilescale
