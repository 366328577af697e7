// The trained zoo through tilescale's importer and float executor agrees with PyTorch: logits of
// the first 64 test images match the torch fixture, and top-1 on the whole test split matches
// torch's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/npy.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale {
namespace {

const std::string kModels = std::string(TILESCALE_SOURCE_DIR) + "/models/";

nlohmann::json zoo() { return nlohmann::json::parse(read_file(kModels + "zoo.json")); }

class ZooModel : public ::testing::TestWithParam<std::string> {
 protected:
  nlohmann::json entry() const {
    for (const auto& e : zoo())
      if (e["name"] == GetParam()) return e;
    ADD_FAILURE() << GetParam() << " is not in models/zoo.json";
    return {};
  }
};

TEST_P(ZooModel, LogitsOfFirst64TestImagesMatchTorchFixtureTo1e4Relative) {
  const auto e = entry();
  const model::Graph g = model::import_onnx(kModels + e["onnx"].get<std::string>());
  const Dataset ds = load_named(e["dataset"], "test", default_data_dir());
  const NpyArray fixture = read_npy(kModels + e["fixture_logits64"].get<std::string>());
  ASSERT_EQ(fixture.shape, (std::vector<int64_t>{64, g.output_value().size()}));
  std::vector<float> in(64 * ds.image_size()), out(fixture.data.size());
  ds.fill_batch(0, 64, in.data());
  model::FloatExecutor(g).run(in.data(), 64, out.data());
  float scale = 0.0f;
  for (float v : fixture.data) scale = std::max(scale, std::fabs(v));
  for (std::size_t i = 0; i < out.size(); ++i) {
    // Relative to the element, floored at 1% of the largest logit so near-zero logits are not
    // judged on float32 rounding noise alone.
    const float ref = fixture.data[i];
    const float denom = std::max(std::fabs(ref), 0.01f * scale);
    ASSERT_LE(std::fabs(out[i] - ref) / denom, 1e-4f)
        << "image " << i / 10 << " class " << i % 10 << ": tilescale " << out[i] << " torch "
        << ref;
  }
}

TEST_P(ZooModel, TestSplitTop1EqualsTorchWithin005Points) {
  const auto e = entry();
  const model::Graph g = model::import_onnx(kModels + e["onnx"].get<std::string>());
  const Dataset ds = load_named(e["dataset"], "test", default_data_dir());
  const int64_t classes = g.output_value().size();
  std::vector<float> in(ds.count * ds.image_size()), out(ds.count * classes);
  ds.fill_batch(0, ds.count, in.data());
  model::FloatExecutor(g).run(in.data(), ds.count, out.data());
  int64_t correct = 0;
  for (int64_t i = 0; i < ds.count; ++i) {
    const float* row = out.data() + i * classes;
    correct += std::max_element(row, row + classes) - row == ds.labels[i];
  }
  const double top1 = static_cast<double>(correct) / ds.count;
  EXPECT_NEAR(top1, e["torch_top1"].get<double>(), 0.0005) << correct << " / " << ds.count;
  EXPECT_GE(top1, e["target_top1"].get<double>());
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooModel,
                         ::testing::Values("lenet5_mnist", "resnet8_fmnist", "mobilenet_fmnist"));

}  // namespace
}  // namespace tilescale
