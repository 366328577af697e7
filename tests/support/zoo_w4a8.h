// The zoo as the RTL tests run it (issue 12's acceptance): each network quantized at W4A8 (first
// and last layer 8-bit), min-max scales from 8 calibration images of its training split, seed 1;
// lenet5 layer-wise, resnet8 and mobilenet block:16x16 (kZooW4A8), or another granularity.
#pragma once

#include <string>

#include "tilescale/core/dataset.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::test {

struct ZooNet {
  const char* name;         // models/<name>.onnx
  const char* data;         // its data set
  const char* granularity;  // the acceptance's quantization granularity
};
inline constexpr ZooNet kZooW4A8[] = {{"lenet5_mnist", "mnist", "layer"},
                                      {"resnet8_fmnist", "fmnist", "block:16x16"},
                                      {"mobilenet_fmnist", "fmnist", "block:16x16"}};

inline quant::QuantizedModel quantize_w4a8(const std::string& net, const std::string& data,
                                           const std::string& granularity) {
  quant::QuantOptions o;
  o.granularity = quant::Granularity::parse(granularity);
  o.w_bits = 4;
  o.a_bits = 8;
  o.first_last_bits = 8;
  o.search = quant::SearchMethod::Minmax;
  o.calib_images = 8;
  o.seed = 1;
  return quant::quantize(
      model::import_onnx(std::string(TILESCALE_SOURCE_DIR) + "/models/" + net + ".onnx"), o,
      load_named(data, "train", default_data_dir()));
}

}  // namespace tilescale::test
