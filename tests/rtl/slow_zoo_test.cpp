// Issue 12's acceptance on the larger configs (label slow; built only with -DTILESCALE_SLOW_RTL=ON,
// which also Verilates TILESCALE_SLOW_RTL_CONFIGS into `tilescale verify`, sim/CMakeLists.txt):
// one test image of each zoo network at W4A8 (lenet5 layer-wise, resnet8 and mobilenet
// block:16x16) through verify_network with the Verilated ts_top and its SystemC twin in lockstep,
// layers chained (each layer's input is the previous simulated outputs). On every layer: zero
// output lanes differing from the golden integer executor, no output beat differing between the
// two models in value or cycle, no stall, and RTL cycles == twin cycles == the mapper's cycles
// (each model's cycles measured by the bench from its own handshakes).
// One ctest case per (config, network): SystemC elaborates once per process, and the cases run in
// parallel under ctest -j.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "support/zoo_w4a8.h"
#include "tilescale/core/dataset.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/sim/verify.h"

namespace tilescale {
namespace {

using test::kZooW4A8;

// TILESCALE_SLOW_RTL_CONFIGS as CMake passed it ("a,b", entries "<config>[:trace]").
std::vector<std::string> slow_configs() {
  std::vector<std::string> out;
  std::stringstream list(TILESCALE_SLOW_CONFIGS);
  for (std::string entry; std::getline(list, entry, ',');)
    if (!entry.empty()) out.push_back(entry.substr(0, entry.find(':')));
  return out;
}

class SlowZoo : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(SlowZoo, RtlAndTwinBitExactInMapperCyclesOnEveryLayer) {
  const std::string config = std::get<0>(GetParam());
  const test::ZooNet& net = kZooW4A8[std::get<1>(GetParam())];
  const map::ArchConfig arch = map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) +
                                                           "/configs/" + config + ".json");
  const quant::QuantizedModel model = test::quantize_w4a8(net.name, net.data, net.granularity);
  const Dataset test = load_named(net.data, "test", default_data_dir());
  sim::VerifyOptions options;
  options.model = sim::VerifyModel::Both;
  const sim::VerifyRun run = sim::verify_network(model, arch, test, 1, options);

  ASSERT_FALSE(run.layers.empty());
  for (const sim::VerifyLayer& v : run.layers) {
    SCOPED_TRACE(v.name);
    EXPECT_GT(v.outputs, 0);
    EXPECT_EQ(v.mismatches, 0) << v.first_mismatch;
    EXPECT_EQ(v.model_differences, 0) << run.first_model_difference;
    EXPECT_EQ(v.stalls, 0);
    EXPECT_GT(v.mapper_cycles, 0);
    EXPECT_EQ(v.rtl_cycles, v.mapper_cycles) << "RTL vs mapper";
    EXPECT_EQ(v.systemc_cycles, v.mapper_cycles) << "twin vs mapper";
  }
  EXPECT_EQ(run.mismatches, 0);
  EXPECT_EQ(run.rtl_cycles, run.mapper_cycles);
  EXPECT_EQ(run.systemc_cycles, run.mapper_cycles);
  std::cout << config << " " << net.name << " W4A8 " << net.granularity << ": " << run.layers.size()
            << " layers, rtl " << run.rtl_cycles << " = systemc " << run.systemc_cycles
            << " = mapper " << run.mapper_cycles << " cycles, " << run.mismatches << " mismatches, "
            << run.model_differences << " beat differences, top-1 " << run.correct << "/1, "
            << run.seconds << " s\n";
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, SlowZoo,
    ::testing::Combine(::testing::ValuesIn(slow_configs()),
                       ::testing::Range(0, static_cast<int>(std::size(kZooW4A8)))),
    [](const ::testing::TestParamInfo<std::tuple<std::string, int>>& p) {
      return std::get<0>(p.param) + "_" + kZooW4A8[std::get<1>(p.param)].name;
    });

}  // namespace
}  // namespace tilescale
