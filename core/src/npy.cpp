#include "tilescale/core/npy.h"

#include <cstring>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale {
namespace {

const char kMagic[] = "\x93NUMPY";

// np.load refuses longer headers too (max_header_size, NumPy >= 1.24): a header is a short Python
// dict literal, and a longer one is either damaged or an attempt to exhaust the parser.
constexpr std::size_t kMaxHeaderLen = 10000;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Where the value of 'key' starts in the header dict ("'key': value", blanks allowed around the
// colon), or npos if the key is absent. A plain scan: std::regex recurses per character matched
// and overflowed the stack on a long header.
std::size_t value_of(const std::string& header, const std::string& key) {
  const std::string quoted = "'" + key + "'";
  std::size_t p = header.find(quoted);
  if (p == std::string::npos) return p;
  p += quoted.size();
  while (p < header.size() && is_blank(header[p])) ++p;
  if (p >= header.size() || header[p] != ':') return std::string::npos;
  ++p;
  while (p < header.size() && is_blank(header[p])) ++p;
  return p;
}

// The text between `open` at position p and the next `close`; false if either is missing.
bool enclosed(const std::string& text, std::size_t p, char open, char close, std::string* out) {
  if (p == std::string::npos || p >= text.size() || text[p] != open) return false;
  const std::size_t end = text.find(close, p + 1);
  if (end == std::string::npos) return false;
  *out = text.substr(p + 1, end - p - 1);
  return true;
}

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
  if (header_len > kMaxHeaderLen)
    fail_input(path, "npy header of " + std::to_string(header_len) + " bytes is longer than the " +
                         std::to_string(kMaxHeaderLen) + " NumPy accepts");
  if (header_start + header_len > bytes.size()) fail_input(path, "truncated .npy header");
  const std::string header = bytes.substr(header_start, header_len);

  std::string descr, dims;
  if (!enclosed(header, value_of(header, "descr"), '\'', '\'', &descr))
    fail_input(path, "npy header has no descr");
  if (descr != "<f4" && descr != "<f8") fail_input(path, "unsupported npy dtype " + descr);
  const std::size_t fortran = value_of(header, "fortran_order");
  if (fortran != std::string::npos && header.compare(fortran, 4, "True") == 0)
    fail_input(path, "Fortran-order npy arrays are not supported");
  if (!enclosed(header, value_of(header, "shape"), '(', ')', &dims))
    fail_input(path, "npy header has no shape");

  NpyArray arr;
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
