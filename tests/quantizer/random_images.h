// Seeded random 3x8x8 images (pixels uniform in 0..255, all labels 0): the calibration and test set
// of the quantizer tests that run small synthetic graphs. A positive mean input, as after a ReLU.
#pragma once

#include <cstdint>
#include <random>

#include "tilescale/core/dataset.h"

namespace tilescale::test {

inline Dataset random_images(int64_t count, uint64_t seed) {
  Dataset d;
  d.source = "random";
  d.count = count;
  d.channels = 3;
  d.height = d.width = 8;
  d.num_classes = 10;
  std::mt19937_64 rng(seed);
  d.pixels.resize(static_cast<std::size_t>(count * d.image_size()));
  for (uint8_t& p : d.pixels) p = static_cast<uint8_t>(rng() & 0xff);
  d.labels.assign(static_cast<std::size_t>(count), 0);
  return d;
}

}  // namespace tilescale::test
