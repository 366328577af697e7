#include "tilescale/quant/bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/quant_plan.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::quant {

// ------------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), written out so the bundle needs no crypto library.

namespace {

constexpr uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// One 64-byte block into the state h.
void sha256_block(uint32_t h[8], const unsigned char* p) {
  uint32_t w[64];
  for (int t = 0; t < 16; ++t)
    w[t] = uint32_t{p[4 * t]} << 24 | uint32_t{p[4 * t + 1]} << 16 | uint32_t{p[4 * t + 2]} << 8 |
           uint32_t{p[4 * t + 3]};
  for (int t = 16; t < 64; ++t) {
    const uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int t = 0; t < 64; ++t) {
    const uint32_t t1 =
        k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kSha256K[t] + w[t];
    const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
}

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t full = bytes.size() / 64 * 64;
  for (std::size_t i = 0; i < full; i += 64) sha256_block(h, data + i);
  // Tail: remaining bytes, 0x80, zeros, then the message length in bits as a big-endian uint64.
  unsigned char tail[128] = {};
  const std::size_t rest = bytes.size() - full;
  std::memcpy(tail, data + full, rest);
  tail[rest] = 0x80;
  const std::size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  const uint64_t bits = static_cast<uint64_t>(bytes.size()) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  for (std::size_t i = 0; i < tail_len; i += 64) sha256_block(h, tail + i);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint32_t v : h)
    for (int s = 28; s >= 0; s -= 4) out += kHex[(v >> s) & 0xf];
  return out;
}

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kModelFile = "model.onnx";
constexpr const char* kWeightsFile = "weights.bin";
constexpr const char* kScalesFile = "scales.bin";
constexpr const char* kMultipliersFile = "multipliers.bin";
constexpr const char* kBiasFile = "bias.bin";
// The four blobs, in the order the manifest lists them; BlobKind indexes this array.
constexpr const char* kBlobFiles[] = {kWeightsFile, kScalesFile, kMultipliersFile, kBiasFile};
constexpr const char* kBlobKeys[] = {"weights", "scales", "multipliers", "bias"};
enum BlobKind { kWeights = 0, kScales = 1, kMultipliers = 2, kBias = 3, kNumBlobs = 4 };

// ----- names of the enums ------------------------------------------------------------------------

const char* metric_name(SearchMetric m) { return m == SearchMetric::Cosine ? "cosine" : "l2"; }

const char* calib_input_name(CalibInput c) {
  return c == CalibInput::Quantized ? "quantized" : "float";
}

const char* qop_kind_name(QOpKind k) {
  switch (k) {
    case QOpKind::Quantize:
      return "Quantize";
    case QOpKind::Gemm:
      return "Gemm";
    case QOpKind::Add:
      return "Add";
    case QOpKind::MaxPool:
      return "MaxPool";
    case QOpKind::AvgPool:
      return "AvgPool";
    case QOpKind::GlobalAvgPool:
      return "GlobalAvgPool";
    case QOpKind::Reshape:
      return "Reshape";
    case QOpKind::Concat:
      return "Concat";
    case QOpKind::Pad:
      return "Pad";
    case QOpKind::Clamp:
      return "Clamp";
  }
  return "?";
}

// ----- little-endian packing ---------------------------------------------------------------------

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_le(const std::string& in, std::size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(in[pos + i])} << (8 * i);
  return v;
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::string hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// ----- per-layer sizes ---------------------------------------------------------------------------

const model::Node& layer_node(const QuantizedModel& m, const LayerQuant& layer) {
  return m.graph.nodes[m.plan.ops[layer.op].node];
}

// Bytes of each blob for one layer whose node is `node` and grid `grid`.
std::array<uint64_t, kNumBlobs> blob_bytes(const model::Node& node, const BlockGrid& grid) {
  const auto nb = static_cast<uint64_t>(grid.num_blocks());
  return {static_cast<uint64_t>(node.weight.data.size()), 4 * nb, 8 * nb,
          8 * static_cast<uint64_t>(node.bias.data.size())};
}

// ----- file system helpers -----------------------------------------------------------------------

std::string errno_text(int err) { return std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close()'s result (0 or errno).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// "<dir>" without trailing slashes; "." and ".." are refused since a sibling cannot be made for
// them.
std::string normalize_dir(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const std::string base = fs::path(d).filename().string();
  if (d.empty() || base.empty() || base == "." || base == ".." || d == "/")
    fail_input(dir.empty() ? "bundle" : dir, "not a usable bundle directory name");
  return d;
}

// Writes name inside the directory open as dirfd, fsynced. display names the final path in errors.
void write_file_at(int dirfd, const std::string& name, const std::string& bytes,
                   const std::string& display) {
  Fd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail_input(display, "cannot create: " + errno_text(errno));
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_input(display, "write failed: " + errno_text(errno));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail_input(display, "fsync failed: " + errno_text(errno));
  if (const int err = fd.close()) fail_input(display, "close failed: " + errno_text(err));
}

// Makes a rename inside path durable. Best effort: it runs after the commit, when the new bundle is
// already in place and an exception would wrongly report the write as failed.
void fsync_dir_best_effort(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

// Reads a regular file inside the directory open as dirfd; display names it in errors.
std::string read_file_at(int dirfd, const char* name, const std::string& display) {
  Fd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_input(display, "cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail_input(display, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail_input(display, "not a regular file");
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_input(display, "read error: " + errno_text(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Removes a directory tree; on exception paths errors are ignored (best effort).
void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// Removes the temporary directory unless released (i.e. on every error path).
class TempDirGuard {
 public:
  explicit TempDirGuard(std::string path) : path_(std::move(path)) {}
  ~TempDirGuard() {
    if (armed_) remove_tree(path_);
  }
  void release() { armed_ = false; }

 private:
  std::string path_;
  bool armed_ = true;
};

// ----- writing -----------------------------------------------------------------------------------

[[noreturn]] void bad_model(const std::string& problem) {
  throw std::invalid_argument("write_bundle: malformed QuantizedModel: " + problem);
}

ojson options_json(const QuantOptions& o) {
  ojson j;
  j["granularity"] = o.granularity.str();
  j["vsq_bits"] = o.granularity.vsq_bits;
  j["w_bits"] = o.w_bits;
  j["a_bits"] = o.a_bits;
  j["first_last_bits"] = o.first_last_bits;
  j["scale_bits"] = o.scale_bits;
  j["search"] = search_method_name(o.search);
  j["metric"] = metric_name(o.metric);
  j["calib_input"] = calib_input_name(o.calib_input);
  j["grid_points"] = o.grid_points;
  j["grid_lo"] = o.grid_lo;
  j["grid_hi"] = o.grid_hi;
  j["rounds"] = o.rounds;
  j["calib_images"] = o.calib_images;
  j["calib_positions"] = o.calib_positions;
  j["seed"] = o.seed;
  j["reorder"] = o.reorder;
  // threads is deliberately not recorded: it changes no result, and the bundle must be
  // byte-identical whatever the thread count.
  return j;
}

ojson plan_json(const QuantizedModel& m) {
  const model::Graph& g = m.graph;
  ojson host = ojson::array();
  for (int n : m.plan.host_nodes) host.push_back(g.nodes[n].name);
  ojson ops = ojson::array();
  for (const QOp& op : m.plan.ops) {
    ojson o;
    o["kind"] = qop_kind_name(op.kind);
    if (op.node >= 0) o["node"] = g.nodes[op.node].name;
    if (op.fused_act >= 0) o["fused"] = g.nodes[op.fused_act].name;
    ojson in = ojson::array();
    for (int v : op.inputs) in.push_back(g.values[v].name);
    o["inputs"] = std::move(in);
    o["output"] = g.values[op.output].name;
    ops.push_back(std::move(o));
  }
  ojson j;
  j["host_nodes"] = std::move(host);
  j["ops"] = std::move(ops);
  return j;
}

struct BundleFiles {
  std::string manifest;
  std::string blobs[kNumBlobs];
};

BundleFiles serialize(const QuantizedModel& m, const std::string& onnx_bytes,
                      const std::string& target) {
  const model::Graph& g = m.graph;
  const std::size_t num_values = g.values.size();
  if (m.acts.size() != num_values) bad_model("acts has the wrong size");
  if (!m.permutations.empty() && m.permutations.size() != num_values)
    bad_model("permutations has the wrong size");
  if (m.layers.size() != m.plan.layer_ops.size()) bad_model("layers do not match plan.layer_ops");

  const std::string sha = sha256_hex(onnx_bytes);
  if (!m.model_sha256.empty() && m.model_sha256 != sha)
    fail_input(target, "the ONNX bytes given (SHA-256 " + sha +
                           ") are not the model's source file (model_sha256 " + m.model_sha256 +
                           ")");

  BundleFiles files;
  ojson layers = ojson::array();
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const LayerQuant& layer = m.layers[l];
    if (layer.op != m.plan.layer_ops[l]) bad_model("layer " + layer.name + " has the wrong op");
    const model::Node& node = layer_node(m, layer);
    const BlockGrid& grid = layer.grid;
    const auto nb = static_cast<std::size_t>(grid.num_blocks());
    if (layer.q_weight.size() != node.weight.data.size() || layer.block_scale.size() != nb ||
        layer.multiplier.size() != nb || layer.bias_q.size() != node.bias.data.size())
      bad_model("layer " + layer.name + " has blobs of the wrong size");
    const auto sizes = blob_bytes(node, grid);

    ojson j;
    j["name"] = layer.name;
    j["op"] = model::op_name(node.op);
    j["onnx_op"] = node.onnx_op;
    j["weight_shape"] = node.weight.shape;
    j["groups"] = node.window.groups;
    j["w_bits"] = layer.w_bits;
    j["granularity"] = m.options.granularity.str();
    j["out_groups"] = grid.out_groups;
    j["red_groups"] = grid.red_groups;
    j["num_blocks"] = grid.num_blocks();
    j["frac_bits"] = layer.frac_bits;
    for (int b = 0; b < kNumBlobs; ++b) {
      ojson where;
      where["offset"] = files.blobs[b].size();
      where["bytes"] = sizes[b];
      j[kBlobKeys[b]] = std::move(where);
    }
    layers.push_back(std::move(j));

    for (int8_t q : layer.q_weight) files.blobs[kWeights] += static_cast<char>(q);
    for (float s : layer.block_scale) put_le(files.blobs[kScales], float_bits(s), 4);
    for (const FixedMultiplier& f : layer.multiplier) {
      if (f.m < 0 || f.m > std::numeric_limits<int32_t>::max())
        bad_model("layer " + layer.name + " has a multiplier mantissa outside int32");
      put_le(files.blobs[kMultipliers], static_cast<uint32_t>(f.m), 4);
      put_le(files.blobs[kMultipliers], static_cast<uint32_t>(static_cast<int32_t>(f.r)), 4);
    }
    for (int64_t b : layer.bias_q) put_le(files.blobs[kBias], static_cast<uint64_t>(b), 8);
  }

  ojson acts = ojson::array();
  for (std::size_t v = 0; v < num_values; ++v) {
    if (m.plan.scale_source[v] != static_cast<int>(v)) continue;
    const ActQuant& a = m.acts[v];
    ojson j;
    j["value"] = g.values[v].name;
    j["scale"] = static_cast<double>(a.scale);  // exact: every float is a double
    j["scale_hex"] = hex32(float_bits(a.scale));
    j["bits"] = a.bits;
    j["signed"] = a.is_signed;
    acts.push_back(std::move(j));
  }

  ojson perms = ojson::array();
  for (std::size_t v = 0; v < m.permutations.size(); ++v) {
    if (m.permutations[v].empty()) continue;
    ojson j;
    j["value"] = g.values[v].name;
    j["order"] = m.permutations[v];
    perms.push_back(std::move(j));
  }

  std::string model_file = fs::path(g.source).filename().string();
  if (model_file.empty()) model_file = kModelFile;

  ojson man;
  man["format"] = kBundleFormat;
  man["format_version"] = kBundleFormatVersion;
  man["tool"] = "tilescale";
  man["tool_version"] = kToolVersion;
  ojson model;
  model["file"] = model_file;
  model["sha256"] = sha;
  model["bytes"] = onnx_bytes.size();
  man["model"] = std::move(model);
  man["options"] = options_json(m.options);
  ojson blobs;
  for (int b = 0; b < kNumBlobs; ++b) {
    ojson j;
    j["bytes"] = files.blobs[b].size();
    j["sha256"] = sha256_hex(files.blobs[b]);
    blobs[kBlobFiles[b]] = std::move(j);
  }
  man["blobs"] = std::move(blobs);
  man["layers"] = std::move(layers);
  man["activations"] = std::move(acts);
  man["permutations"] = std::move(perms);
  man["plan"] = plan_json(m);
  files.manifest = man.dump(2) + "\n";
  return files;
}

// True if path is a directory that may be replaced: empty, or holding a tilescale manifest.
bool replaceable_dir(const std::string& path) {
  std::error_code ec;
  if (fs::is_empty(path, ec) && !ec) return true;
  const std::string manifest = path + "/" + kManifestFile;
  if (!fs::is_regular_file(manifest, ec)) return false;
  try {
    return read_file(manifest).find(std::string("\"") + kBundleFormat + "\"") != std::string::npos;
  } catch (const InputError&) {
    return false;
  }
}

}  // namespace

void write_bundle(const QuantizedModel& model, const std::string& onnx_bytes,
                  const std::string& dir) {
  const std::string target = normalize_dir(dir);
  const BundleFiles files = serialize(model, onnx_bytes, target);

  struct stat st;
  bool exists = false;
  if (::lstat(target.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail_input(target, "exists and is not a directory");
    if (!replaceable_dir(target))
      fail_input(target,
                 "exists and is neither empty nor a tilescale bundle (no manifest.json of "
                 "format tilescale-bundle); refusing to replace it");
    exists = true;
  } else if (errno != ENOENT) {
    fail_input(target, "cannot access: " + errno_text(errno));
  }

  remove_stale_temporaries(target);  // left by killed runs of this host
  const std::string tmp = atomic_temp_path(target);
  remove_tree(tmp);  // left over by a killed run that had the same pid
  if (::mkdir(tmp.c_str(), 0777) != 0)
    fail_input(target, "cannot create the temporary directory " + tmp + ": " + errno_text(errno));
  TempDirGuard guard(tmp);
  {
    Fd dirfd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dirfd.get() < 0) fail_input(tmp, "cannot open: " + errno_text(errno));
    const auto put = [&](const char* name, const std::string& bytes) {
      write_file_at(dirfd.get(), name, bytes, target + "/" + name);
    };
    put(kModelFile, onnx_bytes);
    for (int b = 0; b < kNumBlobs; ++b) put(kBlobFiles[b], files.blobs[b]);
    put(kManifestFile, files.manifest);
    if (::fsync(dirfd.get()) != 0)
      fail_input(tmp, "cannot fsync the directory: " + errno_text(errno));
  }

  // Commit. A new name: plain rename. An existing bundle: swap both names in one step, then remove
  // the old bundle, which now lives at tmp (the guard removes it).
  bool done = false;
  if (!exists) {
    if (::rename(tmp.c_str(), target.c_str()) == 0) {
      done = true;
    } else if (errno != EEXIST && errno != ENOTEMPTY) {
      fail_input(target, "cannot rename " + tmp + " into place: " + errno_text(errno));
    } else if (!replaceable_dir(target)) {  // created by someone else meanwhile
      fail_input(target, "appeared while writing and is not a tilescale bundle; not replaced");
    }
  }
  if (!done) {
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
      const int err = errno;
      if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP)
        fail_input(target, "cannot swap in the new bundle: " + errno_text(err));
      // No RENAME_EXCHANGE on this file system: move the old bundle aside, then rename. A crash
      // between the two renames leaves the old bundle at "<dir>.old.<pid>[.<n>]", possibly its only
      // copy, so an existing name of that form is never reused or removed: the first free one is.
      std::string old = target + ".old." + std::to_string(::getpid());
      struct stat old_st;
      for (int n = 1; ::lstat(old.c_str(), &old_st) == 0 || errno != ENOENT; ++n) {
        if (n > 1000) fail_input(target, "no free name to move the old bundle aside as " + old);
        old = target + ".old." + std::to_string(::getpid()) + "." + std::to_string(n);
      }
      if (::rename(target.c_str(), old.c_str()) != 0)
        fail_input(target, "cannot move the old bundle aside: " + errno_text(errno));
      if (::rename(tmp.c_str(), target.c_str()) != 0) {
        const int err2 = errno;
        ::rename(old.c_str(), target.c_str());
        fail_input(target, "cannot rename " + tmp + " into place: " + errno_text(err2));
      }
      remove_tree(old);
    }
  }
  // The guard now removes the old bundle (after an exchange) or nothing (tmp was renamed away).
  std::string parent = fs::path(target).parent_path().string();
  if (parent.empty()) parent = ".";
  fsync_dir_best_effort(parent);
}

// ------------------------------------------------------------------------------------------------
// Reading

namespace {

std::string join(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

// Typed access to manifest.json; every failure is InputError("<dir>/manifest.json: <field>: ...").
class Manifest {
 public:
  explicit Manifest(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& where, const std::string& problem) const {
    fail_input(path_, where.empty() ? problem : where + ": " + problem);
  }

  const json& at(const json& obj, const std::string& where, const std::string& key) const {
    if (!obj.is_object()) fail(where, "is not a JSON object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail(join(where, key), "is missing");
    return *it;
  }

  int64_t integer(const json& obj, const std::string& where, const std::string& key, int64_t lo,
                  int64_t hi) const {
    const json& v = at(obj, where, key);
    const std::string w = join(where, key);
    if (!v.is_number_integer()) fail(w, "is not an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
      fail(w, v.dump() + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    const auto x = v.get<int64_t>();
    if (x < lo || x > hi)
      fail(w, std::to_string(x) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    return x;
  }

  int int32(const json& obj, const std::string& where, const std::string& key) const {
    return static_cast<int>(integer(obj, where, key, std::numeric_limits<int32_t>::min(),
                                    std::numeric_limits<int32_t>::max()));
  }

  uint64_t uint(const json& obj, const std::string& where, const std::string& key) const {
    const json& v = at(obj, where, key);
    if (!v.is_number_unsigned()) fail(join(where, key), "is not a non-negative integer");
    return v.get<uint64_t>();
  }

  double number(const json& obj, const std::string& where, const std::string& key) const {
    const json& v = at(obj, where, key);
    if (!v.is_number()) fail(join(where, key), "is not a number");
    const auto x = v.get<double>();
    if (!std::isfinite(x)) fail(join(where, key), "is not finite");
    return x;
  }

  std::string string(const json& obj, const std::string& where, const std::string& key) const {
    const json& v = at(obj, where, key);
    if (!v.is_string()) fail(join(where, key), "is not a string");
    return v.get<std::string>();
  }

  bool boolean(const json& obj, const std::string& where, const std::string& key) const {
    const json& v = at(obj, where, key);
    if (!v.is_boolean()) fail(join(where, key), "is not true or false");
    return v.get<bool>();
  }

  const json& array(const json& obj, const std::string& where, const std::string& key) const {
    const json& v = at(obj, where, key);
    if (!v.is_array()) fail(join(where, key), "is not an array");
    return v;
  }

  std::vector<int64_t> int_list(const json& obj, const std::string& where, const std::string& key,
                                int64_t lo, int64_t hi) const {
    const json& a = array(obj, where, key);
    std::vector<int64_t> out;
    out.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string w = join(where, key) + "[" + std::to_string(i) + "]";
      if (!a[i].is_number_integer()) fail(w, "is not an integer");
      const auto x = a[i].get<int64_t>();
      if ((a[i].is_number_unsigned() && a[i].get<uint64_t>() > static_cast<uint64_t>(hi)) ||
          x < lo || x > hi)
        fail(w, a[i].dump() + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
      out.push_back(x);
    }
    return out;
  }

  // 64 lowercase hex digits.
  std::string sha(const json& obj, const std::string& where, const std::string& key) const {
    std::string s = string(obj, where, key);
    bool ok = s.size() == 64;
    for (char c : s) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) fail(join(where, key), "is not 64 lowercase hex digits");
    return s;
  }

 private:
  std::string path_;
};

QuantOptions parse_options(const Manifest& mf, const json& root) {
  const std::string w = "options";
  const json& j = mf.at(root, "", w);
  QuantOptions o;
  const std::string gran = mf.string(j, w, "granularity");
  try {
    o.granularity = Granularity::parse(gran);
  } catch (const InputError& e) {
    mf.fail(w + ".granularity", e.what());
  }
  o.granularity.vsq_bits = static_cast<int>(mf.integer(j, w, "vsq_bits", 1, 16));
  o.w_bits = mf.int32(j, w, "w_bits");
  o.a_bits = mf.int32(j, w, "a_bits");
  o.first_last_bits = mf.int32(j, w, "first_last_bits");
  o.scale_bits = mf.int32(j, w, "scale_bits");
  const std::string search = mf.string(j, w, "search");
  if (search == "minmax")
    o.search = SearchMethod::Minmax;
  else if (search == "wmse")
    o.search = SearchMethod::Wmse;
  else if (search == "output")
    o.search = SearchMethod::Output;
  else
    mf.fail(w + ".search", "unknown method '" + search + "' (minmax, wmse, output)");
  const std::string metric = mf.string(j, w, "metric");
  if (metric == "l2")
    o.metric = SearchMetric::L2;
  else if (metric == "cosine")
    o.metric = SearchMetric::Cosine;
  else
    mf.fail(w + ".metric", "unknown metric '" + metric + "' (l2, cosine)");
  const std::string calib = mf.string(j, w, "calib_input");
  if (calib == "float")
    o.calib_input = CalibInput::Float;
  else if (calib == "quantized")
    o.calib_input = CalibInput::Quantized;
  else
    mf.fail(w + ".calib_input", "unknown value '" + calib + "' (float, quantized)");
  o.grid_points = mf.int32(j, w, "grid_points");
  o.grid_lo = mf.number(j, w, "grid_lo");
  o.grid_hi = mf.number(j, w, "grid_hi");
  o.rounds = mf.int32(j, w, "rounds");
  o.calib_images = mf.integer(j, w, "calib_images", 0, std::numeric_limits<int64_t>::max());
  o.calib_positions = mf.integer(j, w, "calib_positions", 0, std::numeric_limits<int64_t>::max());
  o.seed = mf.uint(j, w, "seed");
  o.reorder = mf.string(j, w, "reorder");
  try {
    o.validate();
  } catch (const InputError& e) {
    mf.fail(w, e.what());
  }
  return o;
}

// Per value id the stored channel order (empty = none stated), applied to the graph. A space takes
// the order stated for any of its values; values of one space may not state different orders.
void read_permutations(const Manifest& mf, const json& root,
                       const std::map<std::string, int>& value_id, QuantizedModel& m) {
  const json& list = mf.array(root, "", "permutations");
  m.permutations.assign(m.graph.values.size(), {});
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string w = "permutations[" + std::to_string(i) + "]";
    const std::string name = mf.string(list[i], w, "value");
    const auto it = value_id.find(name);
    if (it == value_id.end()) mf.fail(w, "unknown value '" + name + "'");
    if (!m.permutations[it->second].empty()) mf.fail(w, "value '" + name + "' appears twice");
    m.permutations[it->second] = mf.int_list(list[i], w, "order", 0, int64_t{1} << 40);
    if (m.permutations[it->second].empty()) mf.fail(w + ".order", "is empty");
  }
  if (list.empty()) return;

  std::vector<ChannelPermutation> spaces = channel_spaces(m.graph);
  std::vector<bool> covered(m.graph.values.size(), false);
  for (ChannelPermutation& space : spaces) {
    int chosen = -1;
    for (int v : space.values) {
      covered[v] = true;
      if (m.permutations[v].empty()) continue;
      if (chosen >= 0 && m.permutations[v] != m.permutations[chosen])
        mf.fail("permutations", "values '" + m.graph.values[chosen].name + "' and '" +
                                    m.graph.values[v].name +
                                    "' share a channel space but have different orders");
      chosen = v;
    }
    if (chosen >= 0) space.order = m.permutations[chosen];
  }
  for (std::size_t v = 0; v < covered.size(); ++v)
    if (!m.permutations[v].empty() && !covered[v])
      mf.fail("permutations",
              "value '" + m.graph.values[v].name + "' has no permutable channel axis");
  try {
    apply_permutations(m.graph, spaces);
  } catch (const InputError& e) {
    mf.fail("", e.what());  // "permutations: space N ..."
  }
}

// The stored plan summary must be the plan rebuilt from model.onnx (else the layer list, whose
// order comes from the plan, would be read against the wrong layers).
void check_plan(const Manifest& mf, const json& root, const QuantizedModel& m) {
  const json& plan = mf.at(root, "", "plan");
  const json& ops = mf.array(plan, "plan", "ops");
  if (ops.size() != m.plan.ops.size())
    mf.fail("plan.ops", std::to_string(ops.size()) + " ops, the plan rebuilt from model.onnx has " +
                            std::to_string(m.plan.ops.size()));
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::string w = "plan.ops[" + std::to_string(i) + "]";
    const QOp& op = m.plan.ops[i];
    const std::string kind = mf.string(ops[i], w, "kind");
    const std::string want_node = op.node >= 0 ? m.graph.nodes[op.node].name : "";
    const std::string node = ops[i].is_object() && ops[i].contains("node")
                                 ? mf.string(ops[i], w, "node")
                                 : std::string();
    const std::string output = mf.string(ops[i], w, "output");
    if (kind != qop_kind_name(op.kind) || node != want_node ||
        output != m.graph.values[op.output].name)
      mf.fail(w, std::string("is ") + kind + " '" + node + "' -> '" + output +
                     "', the plan rebuilt from model.onnx has " + qop_kind_name(op.kind) + " '" +
                     want_node + "' -> '" + m.graph.values[op.output].name + "'");
  }
}

void read_activations(const Manifest& mf, const json& root,
                      const std::map<std::string, int>& value_id, QuantizedModel& m) {
  // Values without their own grid hold what quantize() leaves there; only act_of() entries matter.
  m.acts.assign(m.graph.values.size(), ActQuant{});
  for (std::size_t v = 0; v < m.acts.size(); ++v) {
    m.acts[v].bits = m.options.a_bits;
    m.acts[v].is_signed = !m.plan.non_negative[v];
  }
  std::vector<bool> seen(m.acts.size(), false);
  const json& list = mf.array(root, "", "activations");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string w = "activations[" + std::to_string(i) + "]";
    const std::string name = mf.string(list[i], w, "value");
    const auto it = value_id.find(name);
    if (it == value_id.end()) mf.fail(w, "unknown value '" + name + "'");
    const int v = it->second;
    const std::string wn = w + " ('" + name + "')";
    if (m.plan.scale_source[v] != v) mf.fail(wn, "this value has no grid of its own in the plan");
    if (seen[v]) mf.fail(wn, "appears twice");
    seen[v] = true;
    ActQuant& a = m.acts[v];
    const std::string hex = mf.string(list[i], w, "scale_hex");
    uint32_t bits = 0;
    bool ok = hex.size() == 10 && hex.compare(0, 2, "0x") == 0;
    for (std::size_t k = 2; ok && k < hex.size(); ++k) {
      const char c = hex[k];
      const int d = c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
      ok = d >= 0;
      bits = bits << 4 | static_cast<uint32_t>(d);
    }
    if (!ok) mf.fail(wn + ".scale_hex", "'" + hex + "' is not 0x and 8 lowercase hex digits");
    a.scale = bits_float(bits);
    if (!std::isfinite(a.scale) || !(a.scale > 0.0f))
      mf.fail(wn + ".scale",
              "the scale " + std::to_string(a.scale) + " is not a positive finite number");
    if (static_cast<float>(mf.number(list[i], w, "scale")) != a.scale)
      mf.fail(wn, "scale and scale_hex disagree");
    a.bits = mf.int32(list[i], w, "bits");
    if (!((a.bits >= 4 && a.bits <= 8) || a.bits == 32))
      mf.fail(wn + ".bits", std::to_string(a.bits) + " is outside 4..8 (or 32 for float)");
    a.is_signed = mf.boolean(list[i], w, "signed");
    if (!a.is_signed && !a.is_float() && !m.plan.non_negative[v])
      mf.fail(wn + ".signed", "an unsigned grid for a tensor that can be negative");
  }
  for (std::size_t v = 0; v < m.acts.size(); ++v)
    if (m.plan.scale_source[v] == static_cast<int>(v) && !seen[v])
      mf.fail("activations", "value '" + m.graph.values[v].name + "' has no entry");
}

// One layer's place in the blobs, as the manifest states it.
struct LayerEntry {
  int frac_bits = 0;
  std::array<uint64_t, kNumBlobs> offset{};
};

std::vector<LayerEntry> read_layers(const Manifest& mf, const json& root, QuantizedModel& m,
                                    std::array<uint64_t, kNumBlobs>& totals) {
  const json& list = mf.array(root, "", "layers");
  if (list.size() != m.plan.layer_ops.size())
    mf.fail("layers", std::to_string(list.size()) + " entries, model.onnx has " +
                          std::to_string(m.plan.layer_ops.size()) + " Conv/Gemm layers");
  std::vector<LayerEntry> entries(list.size());
  totals.fill(0);
  m.layers.clear();
  const std::string gran = m.options.granularity.str();
  for (std::size_t l = 0; l < list.size(); ++l) {
    const json& j = list[l];
    const std::string w = "layers[" + std::to_string(l) + "]";
    LayerQuant layer;
    layer.op = m.plan.layer_ops[l];
    const model::Node& node = m.graph.nodes[m.plan.ops[layer.op].node];
    layer.name = mf.string(j, w, "name");
    if (layer.name != node.name)
      mf.fail(w + ".name", "'" + layer.name + "', model.onnx's layer " + std::to_string(l) +
                               " is '" + node.name + "'");
    const std::string wn = w + " ('" + node.name + "')";
    if (mf.string(j, w, "op") != model::op_name(node.op))
      mf.fail(wn + ".op", "does not match model.onnx");
    if (mf.int_list(j, w, "weight_shape", 0, std::numeric_limits<int64_t>::max()) !=
        node.weight.shape)
      mf.fail(wn + ".weight_shape", "does not match model.onnx");
    if (mf.integer(j, w, "groups", 1, std::numeric_limits<int64_t>::max()) != node.window.groups)
      mf.fail(wn + ".groups", "does not match model.onnx");
    layer.w_bits = static_cast<int>(mf.integer(j, w, "w_bits", 2, 8));
    if (mf.string(j, w, "granularity") != gran)
      mf.fail(wn + ".granularity", "differs from options.granularity '" + gran + "'");
    layer.grid = make_block_grid(node, m.options.granularity);
    if (mf.integer(j, w, "out_groups", 0, std::numeric_limits<int64_t>::max()) !=
            layer.grid.out_groups ||
        mf.integer(j, w, "red_groups", 0, std::numeric_limits<int64_t>::max()) !=
            layer.grid.red_groups ||
        mf.integer(j, w, "num_blocks", 0, std::numeric_limits<int64_t>::max()) !=
            layer.grid.num_blocks())
      mf.fail(wn, "block grid differs from the one the granularity gives (" +
                      std::to_string(layer.grid.out_groups) + " x " +
                      std::to_string(layer.grid.red_groups) + " blocks)");
    entries[l].frac_bits = mf.int32(j, w, "frac_bits");
    const auto sizes = blob_bytes(node, layer.grid);
    for (int b = 0; b < kNumBlobs; ++b) {
      const std::string wb = wn + "." + kBlobKeys[b];
      const json& where = mf.at(j, w, kBlobKeys[b]);
      const uint64_t offset = mf.uint(where, wb, "offset"), bytes = mf.uint(where, wb, "bytes");
      if (offset != totals[b])
        mf.fail(wb + ".offset", std::to_string(offset) + ", expected " + std::to_string(totals[b]) +
                                    " (layers are stored back to back in layer order)");
      if (bytes != sizes[b])
        mf.fail(wb + ".bytes",
                std::to_string(bytes) + ", the layer's shape needs " + std::to_string(sizes[b]));
      entries[l].offset[b] = offset;
      totals[b] += bytes;
    }
    m.layers.push_back(std::move(layer));
  }
  return entries;
}

}  // namespace

QuantizedModel read_bundle(const std::string& dir) {
  const std::string root_dir = normalize_dir(dir);
  const auto path_of = [&](const std::string& name) { return root_dir + "/" + name; };
  // Every file is opened relative to one directory handle, so a writer swapping in a new bundle
  // meanwhile cannot mix files of two bundles into one read.
  Fd dirfd(::open(root_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0)
    fail_input(root_dir, "cannot open the bundle directory: " + errno_text(errno));
  const Manifest mf(path_of(kManifestFile));

  json root;
  try {
    root = json::parse(read_file_at(dirfd.get(), kManifestFile, mf.path()));
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e999") is out_of_range 406, thrown
    // by the parser too (found by fuzz_bundle).
    mf.fail("", std::string("invalid JSON: ") + e.what());
  }
  if (!root.is_object()) mf.fail("", "is not a JSON object");

  QuantizedModel m;
  try {
    const std::string format = mf.string(root, "", "format");
    if (format != kBundleFormat)
      mf.fail("format", "'" + format + "', expected '" + kBundleFormat + "'");
    const int64_t version =
        mf.integer(root, "", "format_version", 0, std::numeric_limits<int64_t>::max());
    if (version != kBundleFormatVersion)
      mf.fail("format_version", std::to_string(version) +
                                    " is not supported (this tilescale reads " +
                                    std::to_string(kBundleFormatVersion) + ")");
    m.options = parse_options(mf, root);

    // The model: hash, import, permutations, plan.
    const json& model = mf.at(root, "", "model");
    m.model_sha256 = mf.sha(model, "model", "sha256");
    const uint64_t model_bytes = mf.uint(model, "model", "bytes");
    const std::string onnx = read_file_at(dirfd.get(), kModelFile, path_of(kModelFile));
    if (onnx.size() != model_bytes)
      fail_input(path_of(kModelFile), std::to_string(onnx.size()) + " bytes, the manifest says " +
                                          std::to_string(model_bytes));
    const std::string sha = sha256_hex(onnx);
    if (sha != m.model_sha256)
      fail_input(path_of(kModelFile), "SHA-256 " + sha +
                                          " does not match the manifest's model sha256 " +
                                          m.model_sha256 + " (the file was modified)");
    m.graph = model::import_onnx_bytes(onnx, path_of(kModelFile));
    std::map<std::string, int> value_id;
    for (std::size_t v = 0; v < m.graph.values.size(); ++v)
      value_id.emplace(m.graph.values[v].name, static_cast<int>(v));
    read_permutations(mf, root, value_id, m);
    m.plan = make_quant_plan(m.graph);
    check_plan(mf, root, m);
    read_activations(mf, root, value_id, m);

    // Layers and blobs.
    std::array<uint64_t, kNumBlobs> totals{};
    const std::vector<LayerEntry> entries = read_layers(mf, root, m, totals);
    const json& blob_list = mf.at(root, "", "blobs");
    std::string blobs[kNumBlobs];
    for (int b = 0; b < kNumBlobs; ++b) {
      const std::string w = std::string("blobs.") + kBlobFiles[b];
      const json& entry = mf.at(blob_list, "blobs", kBlobFiles[b]);
      const uint64_t bytes = mf.uint(entry, w, "bytes");
      if (bytes != totals[b])
        mf.fail(w + ".bytes",
                std::to_string(bytes) + ", the layers add up to " + std::to_string(totals[b]));
      const std::string want_sha = mf.sha(entry, w, "sha256");
      blobs[b] = read_file_at(dirfd.get(), kBlobFiles[b], path_of(kBlobFiles[b]));
      if (blobs[b].size() != bytes)
        fail_input(
            path_of(kBlobFiles[b]),
            std::to_string(blobs[b].size()) + " bytes, the manifest says " + std::to_string(bytes));
      if (sha256_hex(blobs[b]) != want_sha)
        fail_input(path_of(kBlobFiles[b]),
                   "SHA-256 does not match the manifest (the file was "
                   "modified)");
    }

    std::vector<std::vector<FixedMultiplier>> stored_mult(m.layers.size());
    std::vector<std::vector<int64_t>> stored_bias(m.layers.size());
    for (std::size_t l = 0; l < m.layers.size(); ++l) {
      LayerQuant& layer = m.layers[l];
      const model::Node& node = m.graph.nodes[m.plan.ops[layer.op].node];
      const std::size_t nw = node.weight.data.size(), nb = layer.grid.num_blocks();
      const IntRange r = signed_range(layer.w_bits);
      layer.q_weight.resize(nw);
      for (std::size_t i = 0; i < nw; ++i) {
        const auto q = static_cast<int8_t>(blobs[kWeights][entries[l].offset[kWeights] + i]);
        if (q < r.lo || q > r.hi)
          fail_input(path_of(kWeightsFile),
                     "layer '" + layer.name + "' element " + std::to_string(i) + ": code " +
                         std::to_string(q) + " is outside the " + std::to_string(layer.w_bits) +
                         "-bit range [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) + "]");
        layer.q_weight[i] = q;
      }
      layer.block_scale.resize(nb);
      for (std::size_t b = 0; b < nb; ++b) {
        const float s = bits_float(
            static_cast<uint32_t>(get_le(blobs[kScales], entries[l].offset[kScales] + 4 * b, 4)));
        if (!std::isfinite(s) || !(s > 0.0f))
          fail_input(path_of(kScalesFile), "layer '" + layer.name + "' block " + std::to_string(b) +
                                               ": scale " + std::to_string(s) +
                                               " is not a positive finite number");
        layer.block_scale[b] = s;
      }
      for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t at = entries[l].offset[kMultipliers] + 8 * b;
        FixedMultiplier f;
        f.m = static_cast<int32_t>(static_cast<uint32_t>(get_le(blobs[kMultipliers], at, 4)));
        f.r = static_cast<int32_t>(static_cast<uint32_t>(get_le(blobs[kMultipliers], at + 4, 4)));
        stored_mult[l].push_back(f);
      }
      for (std::size_t o = 0; o < node.bias.data.size(); ++o)
        stored_bias[l].push_back(
            static_cast<int64_t>(get_le(blobs[kBias], entries[l].offset[kBias] + 8 * o, 8)));
    }

    // The hardware form must be exactly what the scales give.
    try {
      finalize_multipliers(m);
    } catch (const InputError& e) {
      fail_input(path_of(kScalesFile), e.what());
    }
    for (std::size_t l = 0; l < m.layers.size(); ++l) {
      const LayerQuant& layer = m.layers[l];
      for (std::size_t b = 0; b < layer.multiplier.size(); ++b) {
        const FixedMultiplier& want = layer.multiplier[b];
        const FixedMultiplier& got = stored_mult[l][b];
        if (got.m != want.m || got.r != want.r)
          fail_input(path_of(kMultipliersFile),
                     "does not match the scales (layer '" + layer.name + "' block " +
                         std::to_string(b) + ": stored m " + std::to_string(got.m) + " r " +
                         std::to_string(got.r) + ", the scales give m " + std::to_string(want.m) +
                         " r " + std::to_string(want.r) + ")");
      }
      for (std::size_t o = 0; o < layer.bias_q.size(); ++o)
        if (stored_bias[l][o] != layer.bias_q[o])
          fail_input(path_of(kBiasFile),
                     "does not match the scales and model.onnx's biases (layer '" + layer.name +
                         "' channel " + std::to_string(o) + ": stored " +
                         std::to_string(stored_bias[l][o]) + ", expected " +
                         std::to_string(layer.bias_q[o]) + ")");
      if (entries[l].frac_bits != layer.frac_bits)
        mf.fail("layers[" + std::to_string(l) + "].frac_bits",
                std::to_string(entries[l].frac_bits) + ", the scales give " +
                    std::to_string(layer.frac_bits));
    }
  } catch (const json::exception& e) {  // a type mismatch the checks above did not foresee
    mf.fail("", std::string("unexpected content: ") + e.what());
  }
  return m;
}

}  // namespace tilescale::quant
