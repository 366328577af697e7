// The bundle: a directory holding a quantized model, written by the quantizer and read by the
// mapper, the simulators and `tilescale eval --bundle`. Layout and every field: docs/bundle.md.
#pragma once

#include <string>

#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

inline constexpr const char* kBundleFormat = "tilescale-bundle";  // manifest "format"
inline constexpr int kBundleFormatVersion = 1;                    // manifest "format_version"
// Recorded as manifest "tool_version"; kept equal to project(VERSION) in the top CMakeLists.txt
// (tests/bundle checks it).
inline constexpr const char* kToolVersion = "0.1.0";

// Writes `dir` atomically: everything goes to the sibling "<dir>.tmp.<pid>", which is fsynced and
// then renamed into place (an existing bundle is swapped out with renameat2(RENAME_EXCHANGE) and
// removed), so a reader or a killed run sees the old bundle or the complete new one, never a mix.
// onnx_bytes are the source model file's bytes, copied into the bundle so it is self-contained; if
// model.model_sha256 is set it must be their SHA-256. The same model gives a byte-identical bundle.
// Throws InputError naming dir (or the file inside it) if dir exists and is neither an empty
// directory nor a bundle, or on any I/O failure; nothing is left behind then.
void write_bundle(const QuantizedModel& model, const std::string& onnx_bytes,
                  const std::string& dir);

// Reads and validates a bundle: the model is re-imported from model.onnx, its permutations applied,
// the plan rebuilt and the blobs loaded; the stored multipliers and bias codes must be exactly what
// finalize_multipliers() derives from the stored scales. Throws InputError
// "<dir>/<file>: <problem>" for a missing file, bad JSON, a wrong format or version, a model hash
// mismatch, blob sizes that do not match the manifest, or values out of range (codes outside
// w_bits, non-positive scales).
QuantizedModel read_bundle(const std::string& dir);

// SHA-256 of bytes as 64 lowercase hex digits (FIPS 180-4), for QuantizedModel::model_sha256.
std::string sha256_hex(const std::string& bytes);

}  // namespace tilescale::quant
