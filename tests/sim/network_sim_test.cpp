// Zoo bundles on the SystemC model: every output element of every Conv/Gemm layer equals the golden
// integer executor's, and each layer's cycles equal map::native_systolic_cycles() (stall free on
// the shipped configs; with narrowed SRAM ports the difference is exactly the counted stalls).
// Default run: 2 test images per case; TILESCALE_SIM_IMAGES raises it (the `slow` variant).
#include "tilescale/sim/network_sim.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "tilescale/map/cycle_model.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/sim/ts_job.h"

namespace tilescale::sim {
namespace {

const std::string kSource = TILESCALE_SOURCE_DIR;

int64_t images_per_case() {
  const char* env = std::getenv("TILESCALE_SIM_IMAGES");
  return env ? std::max<int64_t>(1, std::atoll(env)) : 2;
}

struct Case {
  std::string model;        // models/<model>.onnx
  std::string dataset;      // mnist | fmnist
  int w_bits;               // weight bits
  std::string granularity;  // quantizer granularity
  std::string arch;         // configs/<arch>.json
  map::Align align;         // strict where blocks line up with folds, else pad
  std::string name;
};

const quant::QuantizedModel& bundle(const Case& c) {
  static std::map<std::string, quant::QuantizedModel> cache;
  const std::string key = c.model + std::to_string(c.w_bits) + c.granularity;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  quant::QuantOptions o;
  o.granularity = quant::Granularity::parse(c.granularity);
  o.w_bits = c.w_bits;
  o.a_bits = 8;
  o.first_last_bits = 8;
  o.search = quant::SearchMethod::Minmax;
  o.calib_images = 8;
  o.seed = 1;
  const Dataset train = load_named(c.dataset, "train", default_data_dir());
  return cache
      .emplace(key, quant::quantize(model::import_onnx(kSource + "/models/" + c.model + ".onnx"), o,
                                    train))
      .first->second;
}

const Dataset& test_set(const std::string& name) {
  static std::map<std::string, Dataset> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, load_named(name, "test", default_data_dir())).first;
  return it->second;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const auto& [model, ds] : {std::pair<std::string, std::string>{"lenet5_mnist", "mnist"},
                                  {"resnet8_fmnist", "fmnist"},
                                  {"mobilenet_fmnist", "fmnist"}})
    for (int w : {4, 2})
      for (const std::string g : {"layer", "channel", "block:8x8", "mx:32"})
        for (const std::string a : {"sa8x8_ws", "sa16x16_ws"}) {
          // 8-channel blocks straddle 16-row folds: the mapper refuses them unless padded.
          const map::Align align =
              g == "block:8x8" && a == "sa16x16_ws" ? map::Align::Pad : map::Align::Strict;
          std::string name = model + "_w" + std::to_string(w) + "_" + g + "_" + a;
          for (char& ch : name)
            if (ch == ':') ch = '_';
          out.push_back({model, ds, w, g, a, align, name});
        }
  // Output stationary on the 32x32 config: every granularity at W4 (segments of any length).
  for (const auto& [model, ds] : {std::pair<std::string, std::string>{"lenet5_mnist", "mnist"},
                                  {"resnet8_fmnist", "fmnist"},
                                  {"mobilenet_fmnist", "fmnist"}})
    for (const std::string g : {"layer", "channel", "block:8x8", "mx:32"}) {
      std::string name = model + "_w4_" + g + "_sa32x32_os";
      for (char& ch : name)
        if (ch == ':') ch = '_';
      out.push_back({model, ds, 4, g, "sa32x32_os", map::Align::Strict, name});
    }
  return out;
}

// gtest would otherwise print the struct's bytes, padding included.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ZooBundle : public ::testing::TestWithParam<Case> {};

TEST_P(ZooBundle, EveryLayerBitExactAndCyclesEqualNativeModel) {
  const Case& c = GetParam();
  const quant::QuantizedModel& model = bundle(c);
  const map::ArchConfig arch =
      map::ArchConfig::parse_file(kSource + "/configs/" + c.arch + ".json");
  SimOptions opt;
  opt.align = c.align;
  const int64_t n = images_per_case();
  const NetworkRun run = simulate_network(model, arch, test_set(c.dataset), n, opt);
  EXPECT_EQ(run.mismatches, 0) << run.first_mismatch;
  ASSERT_EQ(run.layers.size(), model.layers.size());
  for (const LayerTotals& l : run.layers) {
    EXPECT_EQ(l.cycles, n * l.native_cycles) << l.name;
    EXPECT_EQ(l.stalls, n * (l.native_cycles - l.native_stall_free)) << l.name;
    EXPECT_EQ(l.mismatches, 0) << l.name;
  }
  EXPECT_EQ(static_cast<int64_t>(run.predictions.size()), n);
}

INSTANTIATE_TEST_SUITE_P(Sim, ZooBundle, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// ts_top's host view of network layers (ts_job.h): per conv group, host::reference (int_arith.h,
// what the RTL testbench checks against) equals the golden executor's output on every element, and
// the output grid fits the RTL's 8-bit activation lanes.
TEST(HostLayers, EveryZooLayerOfOneImageEqualsTheGoldenExecutor) {
  for (const auto& [model_name, ds] : {std::pair<std::string, std::string>{"lenet5_mnist", "mnist"},
                                       {"resnet8_fmnist", "fmnist"},
                                       {"mobilenet_fmnist", "fmnist"}}) {
    SCOPED_TRACE(model_name);
    const Case c{model_name, ds, 4, "channel", "sa8x8_ws", map::Align::Strict, ""};
    const quant::QuantizedModel& model = bundle(c);
    const Dataset& data = test_set(ds);
    std::vector<float> input(static_cast<std::size_t>(data.image_size()));
    data.fill_batch(0, 1, input.data());
    quant::IntExecutor golden(model, 1);
    const auto codes = golden.run_codes(input.data(), 1);
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(model.layers[l].op)];
      const GemmJob job =
          make_gemm_job(model, l, codes[static_cast<std::size_t>(op.inputs[0])].data(),
                        codes[static_cast<std::size_t>(op.output)].data());
      SCOPED_TRACE("layer " + job.layer.name);
      const std::vector<host::GemmLayer> groups = host_layers(job);
      ASSERT_EQ(static_cast<int64_t>(groups.size()), job.layer.groups);
      int64_t differing = 0;
      for (std::size_t g = 0; g < groups.size(); ++g) {
        if (!groups[g].keep_acc) {
          EXPECT_LE(groups[g].out_bits, 8);
        }
        const std::vector<int64_t> ref = host::reference(groups[g]);
        const int64_t base = static_cast<int64_t>(g) * job.layer.n * job.layer.m;
        for (std::size_t i = 0; i < ref.size(); ++i)
          differing += ref[i] != job.expected[static_cast<std::size_t>(base) + i];
      }
      EXPECT_EQ(differing, 0);
    }
  }
}

TEST(ZooBundleBandwidth, NarrowPortsAddExactlyTheCountedStalls) {
  const Case c{"resnet8_fmnist", "fmnist", 4, "channel", "sa8x8_ws", map::Align::Strict, ""};
  map::ArchConfig arch = map::ArchConfig::parse_file(kSource + "/configs/sa8x8_ws.json");
  arch.ifmap_bw = 3;
  arch.weight_bw = 5;
  arch.ofmap_bw = 2;
  const NetworkRun run = simulate_network(bundle(c), arch, test_set("fmnist"), 1, SimOptions{});
  EXPECT_EQ(run.mismatches, 0) << run.first_mismatch;
  int64_t stalls = 0;
  for (const LayerTotals& l : run.layers) {
    EXPECT_EQ(l.cycles, l.native_cycles) << l.name;
    EXPECT_EQ(l.cycles - l.stalls, l.native_stall_free) << l.name;
    stalls += l.stalls;
  }
  EXPECT_GT(stalls, 0);
  EXPECT_EQ(run.stalls, stalls);
}

}  // namespace
}  // namespace tilescale::sim
