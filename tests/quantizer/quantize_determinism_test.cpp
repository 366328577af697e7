// The same model, options and seed give a byte-identical bundle whatever the thread count.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

namespace fs = std::filesystem;

TEST(QuantizeDeterminism, OneAndTwoThreadsGiveByteIdenticalBundles) {
  const std::string path = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";
  const std::string bytes = read_file(path);
  const model::Graph g = model::import_onnx_bytes(bytes, path);
  const Dataset calib = load_named("mnist", "train", default_data_dir());
  const fs::path root = fs::temp_directory_path() / ("ts_det_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  for (int threads : {1, 2}) {
    QuantOptions o;
    o.granularity = Granularity::parse("block:8x4");
    o.reorder = ReorderMethod::KMeans;
    o.grid_points = 10;
    o.calib_images = 16;
    o.seed = 3;
    o.threads = threads;
    QuantizedModel m = quantize(g, o, calib);
    write_bundle(m, bytes, (root / ("t" + std::to_string(threads))).string());
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(root / "t1")) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(read_file(e.path().string()), read_file((root / "t2" / name).string())) << name;
    ++files;
  }
  EXPECT_GE(files, 6);
  fs::remove_all(root);
}

}  // namespace
}  // namespace tilescale::quant
