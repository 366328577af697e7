// Reading a bundle: every field of manifest.json is checked against the model re-imported from
// model.onnx and the plan rebuilt from it, and the stored hardware form (multipliers, bias codes)
// must be exactly what the stored scales give. Every failure is an InputError naming the file.
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundle_schema.h"
#include "tilescale/core/atomic_dir.h"
#include "tilescale/core/error.h"
#include "tilescale/core/sha256.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/quant_plan.h"
#include "tilescale/quant/reorder.h"

namespace tilescale::quant {

namespace bundle_detail {
namespace {

using json = nlohmann::json;

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

  // A string naming one value of an enum's name table.
  template <typename E, std::size_t N>
  E choice(const json& obj, const std::string& where, const std::string& key,
           const EnumNames<E, N>& names) const {
    const std::string text = string(obj, where, key);
    try {
      return names.parse(text);
    } catch (const InputError& e) {
      fail(join(where, key), e.what());
    }
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
  o.search = mf.choice(j, w, "search", kSearchMethodNames);
  o.metric = mf.choice(j, w, "metric", kSearchMetricNames);
  o.calib_input = mf.choice(j, w, "calib_input", kCalibInputNames);
  o.grid_points = mf.int32(j, w, "grid_points");
  o.grid_lo = mf.number(j, w, "grid_lo");
  o.grid_hi = mf.number(j, w, "grid_hi");
  o.rounds = mf.int32(j, w, "rounds");
  o.calib_images = mf.integer(j, w, "calib_images", 0, std::numeric_limits<int64_t>::max());
  o.calib_positions = mf.integer(j, w, "calib_positions", 0, std::numeric_limits<int64_t>::max());
  o.seed = mf.uint(j, w, "seed");
  o.reorder = mf.choice(j, w, "reorder", kReorderMethodNames);
  // Bundles written before bias correction existed have no key: they were made without it.
  o.bias_correction = j.contains("bias_correction")
                          ? mf.choice(j, w, "bias_correction", kBiasCorrectionNames)
                          : BiasCorrection::Off;
  // The CIM numerics an ADC-aware search was run for; absent: a search without ADCs.
  if (j.contains("adc")) {
    const std::string wa = w + ".adc";
    const json& a = mf.at(j, w, "adc");
    AdcNumerics adc;
    adc.xbar_rows = static_cast<int>(mf.integer(a, wa, "xbar_rows", 1, kMaxXbarRows));
    adc.cell_bits = static_cast<int>(mf.integer(a, wa, "cell_bits", 1, 8));
    adc.input_bits_per_cycle = static_cast<int>(mf.integer(a, wa, "input_bits_per_cycle", 1, 8));
    adc.adc_bits = static_cast<int>(mf.integer(a, wa, "adc_bits", 1, kMaxAdcBits));
    adc.range = mf.choice(a, wa, "adc_range", kAdcRangeNames);
    o.adc = adc;
  }
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
    if (kind != kQOpKindNames.name(op.kind) || node != want_node ||
        output != m.graph.values[op.output].name)
      mf.fail(w, std::string("is ") + kind + " '" + node + "' -> '" + output +
                     "', the plan rebuilt from model.onnx has " + kQOpKindNames.name(op.kind) +
                     " '" + want_node + "' -> '" + m.graph.values[op.output].name + "'");
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
  // A StepScale op passes codes through: its output's grid must be derive_step_scales()'s.
  for (const QOp& op : m.plan.ops) {
    if (op.kind != QOpKind::StepScale) continue;
    const ActQuant& in = m.act_of(op.inputs[0]);
    const ActQuant& out = m.acts[op.output];
    const float want = static_cast<float>(double(in.scale) * step_scale_factor(m, op));
    if (out.scale != want || out.bits != in.bits || out.is_signed != in.is_signed)
      mf.fail("activations", "value '" + m.graph.values[op.output].name +
                                 "' (a StepScale output) must have its input's bits, signedness "
                                 "and step times the constant factor");
  }
}

// One layer's place in the blobs, as the manifest states it.
struct LayerEntry {
  int frac_bits = 0;                         // the stated accumulator fraction bits, F
  std::array<uint64_t, kNumBlobs> offset{};  // where the layer starts in each blob, bytes
};

std::vector<LayerEntry> read_layers(const Manifest& mf, const json& root, int64_t version,
                                    QuantizedModel& m, std::array<uint64_t, kNumBlobs>& totals) {
  const json& list = mf.array(root, "", "layers");
  if (list.size() != m.plan.layer_ops.size())
    mf.fail("layers", std::to_string(list.size()) + " entries, model.onnx has " +
                          std::to_string(m.plan.layer_ops.size()) + " Conv/Gemm layers");
  std::vector<LayerEntry> entries(list.size());
  totals.fill(0);
  m.layers.clear();
  const std::string gran = m.options.granularity.str();
  m.options.layer_granularity.clear();
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
    // Version 1 has one granularity for all layers; version 2 lets each layer have its own.
    const std::string layer_gran = mf.string(j, w, "granularity");
    if (version == 1 && layer_gran != gran)
      mf.fail(wn + ".granularity", "differs from options.granularity '" + gran +
                                       "' (format_version 1 has no per-layer granularity)");
    try {
      layer.granularity = Granularity::parse(layer_gran);
    } catch (const InputError& e) {
      mf.fail(wn + ".granularity", e.what());
    }
    if (layer_gran != gran) m.options.layer_granularity[node.name] = layer.granularity;
    layer.granularity = m.options.granularity_of(node.name);
    layer.grid = make_block_grid(node, layer.granularity);
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
    if (j.contains("bias_correction")) {
      const json& bc = mf.array(j, w, "bias_correction");
      if (m.options.bias_correction != BiasCorrection::On || bc.size() != node.bias.data.size())
        mf.fail(wn + ".bias_correction",
                std::to_string(bc.size()) + " values; needs options.bias_correction on and one " +
                    "value per output channel (" + std::to_string(node.bias.data.size()) + ")");
      for (std::size_t o = 0; o < bc.size(); ++o) {
        if (!bc[o].is_number() || !std::isfinite(bc[o].get<double>()))
          mf.fail(wn + ".bias_correction",
                  "value " + std::to_string(o) + " is not a finite number");
        layer.bias_correction.push_back(static_cast<float>(bc[o].get<double>()));
      }
    }
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

using Blobs = std::array<std::string, kNumBlobs>;

json parse_manifest(const DirReader& dir, const Manifest& mf) {
  json root;
  try {
    root = json::parse(dir.read(kManifestFile));
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e999") is out_of_range 406, thrown
    // by the parser too (found by fuzz_bundle).
    mf.fail("", std::string("invalid JSON: ") + e.what());
  }
  if (!root.is_object()) mf.fail("", "is not a JSON object");
  return root;
}

// The manifest's format version: 1 (one granularity for every layer) or 2 (per-layer granularity).
int64_t check_format(const Manifest& mf, const json& root) {
  const std::string format = mf.string(root, "", "format");
  if (format != kBundleFormat)
    mf.fail("format", "'" + format + "', expected '" + kBundleFormat + "'");
  const int64_t version =
      mf.integer(root, "", "format_version", 0, std::numeric_limits<int64_t>::max());
  if (version < 1 || version > kBundleFormatVersion)
    mf.fail("format_version", std::to_string(version) + " is not supported (this tilescale reads " +
                                  "1.." + std::to_string(kBundleFormatVersion) + ")");
  return version;
}

// model.onnx, checked against the manifest's size and hash, imported into m.graph.
void read_model(const DirReader& dir, const Manifest& mf, const json& root, QuantizedModel& m) {
  const json& model = mf.at(root, "", "model");
  m.model_sha256 = mf.sha(model, "model", "sha256");
  const uint64_t model_bytes = mf.uint(model, "model", "bytes");
  const std::string path = dir.path_of(kModelFile);
  const std::string onnx = dir.read(kModelFile);
  if (onnx.size() != model_bytes)
    fail_input(path, std::to_string(onnx.size()) + " bytes, the manifest says " +
                         std::to_string(model_bytes));
  const std::string sha = sha256_hex(onnx);
  if (sha != m.model_sha256)
    fail_input(path, "SHA-256 " + sha + " does not match the manifest's model sha256 " +
                         m.model_sha256 + " (the file was modified)");
  m.graph = model::import_onnx_bytes(onnx, path);
}

// The four blob files, each checked against the manifest's size (which must be what the layers
// add up to) and hash.
Blobs read_blobs(const DirReader& dir, const Manifest& mf, const json& root,
                 const std::array<uint64_t, kNumBlobs>& totals) {
  const json& blob_list = mf.at(root, "", "blobs");
  Blobs blobs;
  for (int b = 0; b < kNumBlobs; ++b) {
    const std::string w = std::string("blobs.") + kBlobFiles[b];
    const json& entry = mf.at(blob_list, "blobs", kBlobFiles[b]);
    const uint64_t bytes = mf.uint(entry, w, "bytes");
    if (bytes != totals[b])
      mf.fail(w + ".bytes",
              std::to_string(bytes) + ", the layers add up to " + std::to_string(totals[b]));
    const std::string want_sha = mf.sha(entry, w, "sha256");
    blobs[b] = dir.read(kBlobFiles[b]);
    if (blobs[b].size() != bytes)
      fail_input(
          dir.path_of(kBlobFiles[b]),
          std::to_string(blobs[b].size()) + " bytes, the manifest says " + std::to_string(bytes));
    if (sha256_hex(blobs[b]) != want_sha)
      fail_input(dir.path_of(kBlobFiles[b]),
                 "SHA-256 does not match the manifest (the file was modified)");
  }
  return blobs;
}

// What the blobs store of the hardware form, which read_bundle derives again from the scales.
struct StoredHardwareForm {
  std::vector<std::vector<FixedMultiplier>> multiplier;  // per layer, per block
  std::vector<std::vector<int64_t>> bias;                // per layer, per output channel
};

// Fills each layer's weight codes and block scales from the blobs (checking their ranges) and
// returns the stored multipliers and bias codes.
StoredHardwareForm decode_layers(const DirReader& dir, const Blobs& blobs,
                                 const std::vector<LayerEntry>& entries, QuantizedModel& m) {
  StoredHardwareForm stored;
  stored.multiplier.resize(m.layers.size());
  stored.bias.resize(m.layers.size());
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    LayerQuant& layer = m.layers[l];
    const model::Node& node = m.graph.nodes[m.plan.ops[layer.op].node];
    const std::size_t nw = node.weight.data.size(), nb = layer.grid.num_blocks();
    const auto& offset = entries[l].offset;
    const IntRange r = signed_range(layer.w_bits);
    layer.q_weight.resize(nw);
    for (std::size_t i = 0; i < nw; ++i) {
      const auto q = static_cast<int8_t>(blobs[kWeights][offset[kWeights] + i]);
      if (q < r.lo || q > r.hi)
        fail_input(dir.path_of(kBlobFiles[kWeights]),
                   "layer '" + layer.name + "' element " + std::to_string(i) + ": code " +
                       std::to_string(q) + " is outside the " + std::to_string(layer.w_bits) +
                       "-bit range [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) + "]");
      layer.q_weight[i] = q;
    }
    layer.block_scale.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) {
      const float s =
          bits_float(static_cast<uint32_t>(get_le(blobs[kScales], offset[kScales] + 4 * b, 4)));
      if (!std::isfinite(s) || !(s > 0.0f))
        fail_input(dir.path_of(kBlobFiles[kScales]),
                   "layer '" + layer.name + "' block " + std::to_string(b) + ": scale " +
                       std::to_string(s) + " is not a positive finite number");
      layer.block_scale[b] = s;
    }
    for (std::size_t b = 0; b < nb; ++b) {
      const std::size_t at = offset[kMultipliers] + 8 * b;
      FixedMultiplier f;
      f.m = static_cast<int32_t>(static_cast<uint32_t>(get_le(blobs[kMultipliers], at, 4)));
      f.r = static_cast<int32_t>(static_cast<uint32_t>(get_le(blobs[kMultipliers], at + 4, 4)));
      stored.multiplier[l].push_back(f);
    }
    for (std::size_t o = 0; o < node.bias.data.size(); ++o)
      stored.bias[l].push_back(
          static_cast<int64_t>(get_le(blobs[kBias], offset[kBias] + 8 * o, 8)));
  }
  return stored;
}

// The hardware form must be exactly what the scales give: derives it again and compares.
void check_hardware_form(const DirReader& dir, const Manifest& mf,
                         const std::vector<LayerEntry>& entries, const StoredHardwareForm& stored,
                         QuantizedModel& m) {
  try {
    finalize_multipliers(m);
  } catch (const InputError& e) {
    fail_input(dir.path_of(kBlobFiles[kScales]), e.what());
  }
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const LayerQuant& layer = m.layers[l];
    for (std::size_t b = 0; b < layer.multiplier.size(); ++b) {
      const FixedMultiplier& want = layer.multiplier[b];
      const FixedMultiplier& got = stored.multiplier[l][b];
      if (got.m != want.m || got.r != want.r)
        fail_input(dir.path_of(kBlobFiles[kMultipliers]),
                   "does not match the scales (layer '" + layer.name + "' block " +
                       std::to_string(b) + ": stored m " + std::to_string(got.m) + " r " +
                       std::to_string(got.r) + ", the scales give m " + std::to_string(want.m) +
                       " r " + std::to_string(want.r) + ")");
    }
    for (std::size_t o = 0; o < layer.bias_q.size(); ++o)
      if (stored.bias[l][o] != layer.bias_q[o])
        fail_input(dir.path_of(kBlobFiles[kBias]),
                   "does not match the scales and model.onnx's biases (layer '" + layer.name +
                       "' channel " + std::to_string(o) + ": stored " +
                       std::to_string(stored.bias[l][o]) + ", expected " +
                       std::to_string(layer.bias_q[o]) + ")");
    if (entries[l].frac_bits != layer.frac_bits)
      mf.fail("layers[" + std::to_string(l) + "].frac_bits", std::to_string(entries[l].frac_bits) +
                                                                 ", the scales give " +
                                                                 std::to_string(layer.frac_bits));
  }
}

}  // namespace

// read_bundle's work, inside the namespace of the schema's names.
QuantizedModel read(const std::string& dir_name) {
  // Every file is read through one directory handle, so a writer swapping in a new bundle
  // meanwhile cannot mix files of two bundles into one read.
  const DirReader dir(dir_name, bundle_dir_kind());
  const Manifest mf(dir.path_of(kManifestFile));
  const json root = parse_manifest(dir, mf);
  QuantizedModel m;
  try {
    const int64_t version = check_format(mf, root);
    m.options = parse_options(mf, root);
    read_model(dir, mf, root, m);
    std::map<std::string, int> value_id;
    for (std::size_t v = 0; v < m.graph.values.size(); ++v)
      value_id.emplace(m.graph.values[v].name, static_cast<int>(v));
    read_permutations(mf, root, value_id, m);
    m.plan = make_quant_plan(m.graph);
    check_plan(mf, root, m);
    read_activations(mf, root, value_id, m);
    std::array<uint64_t, kNumBlobs> totals{};
    const std::vector<LayerEntry> entries = read_layers(mf, root, version, m, totals);
    const Blobs blobs = read_blobs(dir, mf, root, totals);
    const StoredHardwareForm stored = decode_layers(dir, blobs, entries, m);
    check_hardware_form(dir, mf, entries, stored, m);
  } catch (const json::exception& e) {  // a type mismatch the checks above did not foresee
    mf.fail("", std::string("unexpected content: ") + e.what());
  }
  return m;
}

}  // namespace bundle_detail

QuantizedModel read_bundle(const std::string& dir) { return bundle_detail::read(dir); }

}  // namespace tilescale::quant
