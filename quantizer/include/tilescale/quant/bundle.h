// The bundle: a directory holding a quantized model, written by the quantizer and read by the
// mapper, the simulators and `tilescale eval --bundle`. Layout and every field: docs/bundle.md.
#pragma once

#include <string>

#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

inline constexpr const char* kBundleFormat = "tilescale-bundle";  // manifest "format"
inline constexpr int kBundleFormatVersion = 2;                    // manifest "format_version"
// The manifest's "tool_version" is kToolVersion (tilescale/core/version.h, from project(VERSION)).

// Writes `dir` atomically (write_dir_atomic, tilescale/core/atomic_dir.h): everything goes to a
// temporary sibling, which is fsynced and then renamed into place (an existing bundle is swapped
// out and removed), so a reader or a killed run sees the old bundle or the complete new one.
// onnx_bytes are the source model file's bytes, copied into the bundle so it is self-contained; if
// model.model_sha256 is set it must be their SHA-256 (sha256_hex, tilescale/core/sha256.h). The
// same model gives a byte-identical bundle. Throws InputError naming dir (or the file inside it) if
// dir exists and is neither an empty directory nor a bundle, or on any I/O failure; nothing is left
// behind then.
void write_bundle(const QuantizedModel& model, const std::string& onnx_bytes,
                  const std::string& dir);

// Reads and validates a bundle: the model is re-imported from model.onnx, its permutations applied,
// the plan rebuilt and the blobs loaded; the stored multipliers and bias codes must be exactly what
// finalize_multipliers() derives from the stored scales. Throws InputError
// "<dir>/<file>: <problem>" for a missing file, bad JSON, a wrong format or version, a model hash
// mismatch, blob sizes that do not match the manifest, or values out of range (codes outside
// w_bits, non-positive scales).
QuantizedModel read_bundle(const std::string& dir);

}  // namespace tilescale::quant
