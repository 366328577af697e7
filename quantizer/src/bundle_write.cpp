// Writing a bundle: the manifest (key order fixed by ordered_json, so the same model gives the
// same bytes) and the four blobs, then one atomic directory write (core/atomic_dir.h).
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "bundle_schema.h"
#include "tilescale/core/atomic_dir.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/sha256.h"
#include "tilescale/core/version.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/options_json.h"

namespace tilescale::quant {

namespace bundle_detail {
namespace {

using ojson = nlohmann::ordered_json;

// The bundle's files apart from model.onnx, which is copied as given.
struct BundleFiles {
  std::string manifest;          // manifest.json
  std::string blobs[kNumBlobs];  // indexed by BlobKind
};

[[noreturn]] void bad_model(const std::string& problem) {
  throw std::invalid_argument("write_bundle: malformed QuantizedModel: " + problem);
}

std::string hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// True if the directory holds a tilescale manifest, so write_bundle may replace it.
bool holds_bundle_manifest(const std::string& path) {
  const std::string manifest = path + "/" + kManifestFile;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(manifest, ec)) return false;
  try {
    return read_file(manifest).find(std::string("\"") + kBundleFormat + "\"") != std::string::npos;
  } catch (const InputError&) {
    return false;
  }
}

ojson plan_json(const QuantizedModel& m) {
  const model::Graph& g = m.graph;
  ojson host = ojson::array();
  for (int n : m.plan.host_nodes) host.push_back(g.nodes[n].name);
  ojson ops = ojson::array();
  for (const QOp& op : m.plan.ops) {
    ojson o;
    o["kind"] = kQOpKindNames.name(op.kind);
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

// Appends layer l's values to the blobs and returns its manifest entry, which records where they
// went.
ojson layer_json(const QuantizedModel& m, std::size_t l, BundleFiles& files) {
  const LayerQuant& layer = m.layers[l];
  if (layer.op != m.plan.layer_ops[l]) bad_model("layer " + layer.name + " has the wrong op");
  const model::Node& node = m.graph.nodes[m.plan.ops[layer.op].node];
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
  j["granularity"] = layer.granularity.str();
  j["out_groups"] = grid.out_groups;
  j["red_groups"] = grid.red_groups;
  j["num_blocks"] = grid.num_blocks();
  j["frac_bits"] = layer.frac_bits;
  // Floats widened to double: JSON numbers that read back to the same float32.
  if (!layer.bias_correction.empty())
    j["bias_correction"] =
        std::vector<double>(layer.bias_correction.begin(), layer.bias_correction.end());
  for (int b = 0; b < kNumBlobs; ++b) {
    ojson where;
    where["offset"] = files.blobs[b].size();
    where["bytes"] = sizes[b];
    j[kBlobKeys[b]] = std::move(where);
  }

  for (int8_t q : layer.q_weight) files.blobs[kWeights] += static_cast<char>(q);
  for (float s : layer.block_scale) put_le(files.blobs[kScales], float_bits(s), 4);
  for (const FixedMultiplier& f : layer.multiplier) {
    if (f.m < 0 || f.m > std::numeric_limits<int32_t>::max())
      bad_model("layer " + layer.name + " has a multiplier mantissa outside int32");
    put_le(files.blobs[kMultipliers], static_cast<uint32_t>(f.m), 4);
    put_le(files.blobs[kMultipliers], static_cast<uint32_t>(static_cast<int32_t>(f.r)), 4);
  }
  for (int64_t b : layer.bias_q) put_le(files.blobs[kBias], static_cast<uint64_t>(b), 8);
  return j;
}

// The grids of the tensors that carry their own scale, scale both as a number and as its bits.
ojson activations_json(const QuantizedModel& m) {
  ojson acts = ojson::array();
  for (std::size_t v = 0; v < m.graph.values.size(); ++v) {
    if (m.plan.scale_source[v] != static_cast<int>(v)) continue;
    const ActQuant& a = m.acts[v];
    ojson j;
    j["value"] = m.graph.values[v].name;
    j["scale"] = static_cast<double>(a.scale);  // exact: every float is a double
    j["scale_hex"] = hex32(float_bits(a.scale));
    j["bits"] = a.bits;
    j["signed"] = a.is_signed;
    acts.push_back(std::move(j));
  }
  return acts;
}

ojson permutations_json(const QuantizedModel& m) {
  ojson perms = ojson::array();
  for (std::size_t v = 0; v < m.permutations.size(); ++v) {
    if (m.permutations[v].empty()) continue;
    ojson j;
    j["value"] = m.graph.values[v].name;
    j["order"] = m.permutations[v];
    perms.push_back(std::move(j));
  }
  return perms;
}

ojson model_json(const QuantizedModel& m, const std::string& sha, std::size_t bytes) {
  std::string model_file = std::filesystem::path(m.graph.source).filename().string();
  if (model_file.empty()) model_file = kModelFile;
  ojson model;
  model["file"] = model_file;
  model["sha256"] = sha;
  model["bytes"] = bytes;
  return model;
}

BundleFiles serialize(const QuantizedModel& m, const std::string& onnx_bytes,
                      const std::string& target) {
  const std::size_t num_values = m.graph.values.size();
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
  for (std::size_t l = 0; l < m.layers.size(); ++l) layers.push_back(layer_json(m, l, files));

  ojson man;
  man["format"] = kBundleFormat;
  man["format_version"] = kBundleFormatVersion;
  man["tool"] = "tilescale";
  man["tool_version"] = kToolVersion;
  man["model"] = model_json(m, sha, onnx_bytes.size());
  // The same table the study driver keys its cache on (options_json.h); "threads" is not in it: it
  // changes no result, and the bundle must be byte-identical whatever the thread count.
  man["options"] = quant_options_json(m.options);
  ojson blobs;
  for (int b = 0; b < kNumBlobs; ++b) {
    ojson j;
    j["bytes"] = files.blobs[b].size();
    j["sha256"] = sha256_hex(files.blobs[b]);
    blobs[kBlobFiles[b]] = std::move(j);
  }
  man["blobs"] = std::move(blobs);
  man["layers"] = std::move(layers);
  man["activations"] = activations_json(m);
  man["permutations"] = permutations_json(m);
  man["plan"] = plan_json(m);
  files.manifest = man.dump(2) + "\n";
  return files;
}

}  // namespace

const DirKind& bundle_dir_kind() {
  static const DirKind kind{"bundle", "a tilescale bundle",
                            std::string("no ") + kManifestFile + " of format " + kBundleFormat,
                            holds_bundle_manifest};
  return kind;
}

}  // namespace bundle_detail

void write_bundle(const QuantizedModel& model, const std::string& onnx_bytes,
                  const std::string& dir) {
  namespace bd = bundle_detail;
  const std::string target = normalize_dir_name(dir, bd::bundle_dir_kind());
  const bd::BundleFiles files = bd::serialize(model, onnx_bytes, target);
  std::vector<DirFile> entries = {{bd::kModelFile, &onnx_bytes}};
  for (int b = 0; b < bd::kNumBlobs; ++b) entries.push_back({bd::kBlobFiles[b], &files.blobs[b]});
  entries.push_back({bd::kManifestFile, &files.manifest});
  write_dir_atomic(target, entries, bd::bundle_dir_kind());
}

}  // namespace tilescale::quant
