// PTQ-SL post-training quantization (DESIGN.md sections 3-5): calibration, channel reordering,
// scale search and integer weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::quant {

// Deterministic pseudo-random numbers (SplitMix64): the same seed gives the same stream on every
// platform and standard library, unlike std::uniform_int_distribution.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n) by 128-bit multiply-shift (Lemire), n > 0.
  uint64_t below(uint64_t n);

 private:
  uint64_t state_;
};

// `count` distinct indices of [0, total) chosen by a seeded partial Fisher-Yates shuffle, sorted.
std::vector<int64_t> sample_indices(int64_t total, int64_t count, uint64_t seed);

// Quantizes `graph` with the options, calibrating on images drawn (seeded) from `calib_set`.
// The calibration images are options.calib_images distinct images chosen by sample_indices.
// Each layer's search sees the float model's input of that layer (CalibInput::Float, default) or
// the output of the already quantized layers before it (CalibInput::Quantized).
QuantizedModel quantize(const model::Graph& graph, const QuantOptions& options,
                        const Dataset& calib_set);

}  // namespace tilescale::quant
