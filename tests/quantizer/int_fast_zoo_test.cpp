// The integer executor's fast Conv/Gemm path (quant/int_gemm_fast.h) on every zoo model: the codes
// of every tensor and the logits are byte-identical to the reference kernels'
// (kernels::conv_gemm_blocks) for each granularity and weight bit widths 2..8, with each int16
// kernel the CPU runs and with none, and independent of the thread count. Bundles are quantized
// here with the minmax search on a few calibration images (the codes' values do not matter, only
// that both paths agree on them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

const std::string kModels = std::string(TILESCALE_SOURCE_DIR) + "/models/";

struct ZooModel {
  std::string name, dataset, block;  // block: a block granularity that fits the model
};

void PrintTo(const ZooModel& z, std::ostream* os) { *os << z.name << " " << z.block; }

class IntFastZoo : public ::testing::TestWithParam<ZooModel> {};

TEST_P(IntFastZoo, FastPathCodesAndLogitsMatchReferenceEveryGranularityAndBitWidth) {
  const ZooModel z = GetParam();
  const std::string path = kModels + z.name + ".onnx";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not trained yet";
  const model::Graph g = model::import_onnx(path);
  const Dataset train = load_named(z.dataset, "train", default_data_dir());
  Dataset test = load_named(z.dataset, "test", default_data_dir());
  test.truncate(40);
  const int64_t n = test.count, classes = g.output_value().size();
  std::vector<float> in(static_cast<std::size_t>(n * test.image_size()));
  test.fill_batch(0, n, in.data());
  const std::string granularities[] = {"layer", "channel", z.block, "mx:32", "vsq:16"};
  int w_bits = 2;  // 2..8 in turn over the granularities and activation widths
  for (const std::string& gran : granularities)
    for (const int a_bits : {8, 4}) {
      QuantOptions o;
      o.granularity = Granularity::parse(gran);
      o.w_bits = w_bits;
      o.a_bits = a_bits;
      o.search = SearchMethod::Minmax;
      o.calib_images = 8;
      o.seed = 100 + static_cast<uint64_t>(w_bits);
      o.threads = 2;
      w_bits = w_bits == 8 ? 2 : w_bits + 1;
      const std::string what = z.name + " " + gran + " W" + std::to_string(o.w_bits) + "A" +
                               std::to_string(a_bits) + " seed " + std::to_string(o.seed);
      SCOPED_TRACE(what);
      const QuantizedModel m = quantize(g, o, train);
      const IntExecutor ref(m, 2, IntGemm::Reference);
      const auto want = ref.run_codes(in.data(), n);
      std::vector<float> lr(static_cast<std::size_t>(n * classes));
      ref.run(in.data(), n, lr.data());
      // Each int16 kernel this CPU runs, and none (the folded double GEMM alone).
      for (const char* kernel : {"avx512-vnni", "avx2", "none"}) {
        if (!kernels::select_int16_kernel(kernel)) continue;
        SCOPED_TRACE(std::string("int16 kernel ") + kernel);
        const IntExecutor fast(m, 2, IntGemm::Fast);
        const auto got = fast.run_codes(in.data(), n);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t v = 0; v < got.size(); ++v)
          EXPECT_TRUE(got[v] == want[v]) << "codes of value " << g.values[v].name << " differ";
        // Logits through run(): chunked over 2 threads, and over 1 thread, and by the reference.
        std::vector<float> l2(lr.size()), l1(lr.size());
        fast.run(in.data(), n, l2.data());
        IntExecutor(m, 1, IntGemm::Fast).run(in.data(), n, l1.data());
        EXPECT_EQ(std::memcmp(l2.data(), lr.data(), l2.size() * sizeof(float)), 0)
            << "fast and reference logits differ";
        EXPECT_EQ(std::memcmp(l2.data(), l1.data(), l2.size() * sizeof(float)), 0)
            << "logits depend on the thread count";
        const int64_t int16 = fast.path_calls(kernels::GemmPath::Int16);
        // 8-bit activations and these layers keep every int16 bound: the route is taken.
        if (std::string(kernel) != "none") EXPECT_GT(int16, 0);
        std::printf(
            "%s, int16 kernel %s: %lld of %zu layers folded; calls int16 %lld, folded "
            "%lld, blocks %lld\n",
            what.c_str(), kernel, static_cast<long long>(fast.folded_layers()), m.layers.size(),
            static_cast<long long>(int16),
            static_cast<long long>(fast.path_calls(kernels::GemmPath::Folded)),
            static_cast<long long>(fast.path_calls(kernels::GemmPath::Blocks)));
      }
      kernels::select_int16_kernel("auto");
    }
}

INSTANTIATE_TEST_SUITE_P(Zoo, IntFastZoo,
                         ::testing::Values(ZooModel{"lenet5_mnist", "mnist", "block:8x4"},
                                           ZooModel{"resnet8_fmnist", "fmnist", "block:16x16"},
                                           ZooModel{"mobilenet_fmnist", "fmnist", "block:16x16"}),
                         [](const ::testing::TestParamInfo<ZooModel>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace tilescale::quant
