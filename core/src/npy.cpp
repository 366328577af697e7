#include "tilescale/core/npy.h"

#include <cstring>
#include <regex>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale {
namespace {

const char kMagic[] = "\x93NUMPY";

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) s += ", ";
  }
  return s + ")";
}

}  // namespace

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // Magic (6) + version (2) + header length (2) + header + '\n' is padded to a multiple of 64.
  std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(count) * sizeof(float));
  write_file_atomic(path, out);
}

NpyArray read_npy(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) fail_input(path, "not a .npy file");
  const unsigned major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail_input(path, "truncated .npy header");
    header_len = 0;
    for (int i = 3; i >= 0; --i)
      header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    header_start = 12;
  } else {
    fail_input(path, "unsupported .npy version " + std::to_string(major));
  }
  if (header_start + header_len > bytes.size()) fail_input(path, "truncated .npy header");
  const std::string header = bytes.substr(header_start, header_len);

  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'")))
    fail_input(path, "npy header has no descr");
  const std::string descr = m[1];
  if (descr != "<f4" && descr != "<f8") fail_input(path, "unsupported npy dtype " + descr);
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    fail_input(path, "Fortran-order npy arrays are not supported");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    fail_input(path, "npy header has no shape");

  NpyArray arr;
  const std::string dims = m[1];
  int64_t count = 1;
  // A Python tuple of non-negative integers: "", "5,", "2, 3" (a trailing comma is allowed).
  for (std::size_t pos = 0; pos < dims.size();) {
    std::size_t comma = dims.find(',', pos);
    if (comma == std::string::npos) comma = dims.size();
    const std::size_t b = dims.find_first_not_of(" \t", pos);
    const bool empty = b == std::string::npos || b >= comma;
    if (empty && comma == dims.size()) break;  // after the trailing comma
    std::string tok = empty ? "" : dims.substr(b, dims.find_last_not_of(" \t", comma - 1) + 1 - b);
    if (tok.empty() || tok.size() > 15 || tok.find_first_not_of("0123456789") != std::string::npos)
      fail_input(path, "npy shape (" + dims + ") has an invalid dimension '" + tok + "'");
    pos = comma + 1;
    const int64_t d = std::stoll(tok);
    arr.shape.push_back(d);
    if (d != 0 && count > (int64_t{1} << 40) / d) fail_input(path, "npy shape too large");
    count *= d;
  }
  const std::size_t item = descr == "<f4" ? 4 : 8;
  const std::size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != static_cast<std::size_t>(count) * item)
    fail_input(path, "npy data size " + std::to_string(bytes.size() - data_start) +
                         " bytes does not match shape " + shape_text(arr.shape));
  arr.data.resize(static_cast<std::size_t>(count));
  if (item == 4) {
    // An empty array's data() may be null, which memcpy must never get, even for 0 bytes.
    if (!arr.data.empty())
      std::memcpy(arr.data.data(), bytes.data() + data_start, arr.data.size() * 4);
  } else {
    for (std::size_t i = 0; i < arr.data.size(); ++i) {
      double v;
      std::memcpy(&v, bytes.data() + data_start + i * 8, 8);
      arr.data[i] = static_cast<float>(v);
    }
  }
  return arr;
}

}  // namespace tilescale
