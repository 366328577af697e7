// Bad quantizer input through the library: an InputError naming the problem (the program:
// cli/quantize_cli_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

const std::string kLenet = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";

TEST(QuantizeErrors, NanOrInfWeightIsRefusedNamingTheLayer) {
  model::Graph g = model::import_onnx(kLenet);
  const Dataset calib = load_named("mnist", "train", default_data_dir());
  QuantOptions o;
  o.search = SearchMethod::Minmax;
  o.calib_images = 4;
  for (float bad : {std::nanf(""), INFINITY}) {
    model::Graph h = g;
    for (model::Node& n : h.nodes)
      if (n.op == model::Op::Conv) {
        n.weight.data[3] = bad;
        break;
      }
    try {
      quantize(h, o, calib);
      FAIL() << "no error for a non-finite weight";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("NaN or Inf"), std::string::npos) << e.what();
    }
  }
}

TEST(QuantizeErrors, CalibrationImagesOfTheWrongShapeAreRefused) {
  const model::Graph g = model::import_onnx(kLenet);
  Dataset d;
  d.source = "cifar.bin";
  d.count = 2;
  d.channels = 3;
  d.height = d.width = 32;
  d.pixels.assign(2 * 3 * 32 * 32, 0);
  d.labels = {0, 1};
  QuantOptions o;
  EXPECT_THROW(quantize(g, o, d), InputError);
}

}  // namespace
}  // namespace tilescale::quant
