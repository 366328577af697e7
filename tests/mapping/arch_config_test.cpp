// Architecture configs: the shipped files parse; every malformed field is named in the error.
#include "tilescale/map/arch_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tilescale/core/error.h"
#include "tilescale/map/workload.h"

namespace tilescale::map {
namespace {

using nlohmann::json;

json base() {
  return json::parse(R"({"kind": "systolic", "rows": 8, "cols": 8, "dataflow": "ws",
    "act_bits": 8, "weight_bits": 8, "acc_bits": 32, "scale_unit": "fixed:16",
    "scale_regs_per_tile": 8, "ifmap_sram_kib": 32, "weight_sram_kib": 32, "ofmap_sram_kib": 32,
    "clock_mhz": 500})");
}

std::string error_of(const json& j) {
  try {
    ArchConfig::parse(j, "arch.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ArchConfig, ShippedConfigsParse) {
  for (const char* name : {"sa8x8_ws", "sa16x16_ws", "sa32x32_os", "cim128_2b"}) {
    const ArchConfig a =
        ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/configs/" + name + ".json");
    EXPECT_EQ(a.name, name);
  }
  const ArchConfig os =
      ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/configs/sa32x32_os.json");
  EXPECT_EQ(os.rows, 32);
  EXPECT_EQ(os.dataflow, Dataflow::OS);
}

TEST(ArchConfig, ErrorsNameTheFieldAndTheAllowedValues) {
  json j = base();
  j["dataflow"] = "rs";
  EXPECT_NE(error_of(j).find("field 'dataflow': unknown dataflow 'rs' (allowed: ws, os, is)"),
            std::string::npos)
      << error_of(j);
  j = base();
  j["rows"] = 0;
  EXPECT_NE(error_of(j).find("field 'rows': 0 is out of range (allowed: 1..1024)"),
            std::string::npos)
      << error_of(j);
  j = base();
  j.erase("cols");
  EXPECT_NE(error_of(j).find("field 'cols' is missing"), std::string::npos) << error_of(j);
  j = base();
  j["colums"] = 8;
  EXPECT_NE(error_of(j).find("field 'colums': unknown field"), std::string::npos) << error_of(j);
  j = base();
  j["scale_unit"] = "fixed:99";
  EXPECT_NE(error_of(j).find("fixed:<m> needs m in 2..31"), std::string::npos) << error_of(j);
  j = base();
  j["acc_bits"] = "32";
  EXPECT_NE(error_of(j).find("field 'acc_bits': must be an integer"), std::string::npos)
      << error_of(j);
  EXPECT_NE(error_of(json::array()).find("must be a JSON object"), std::string::npos);
}

TEST(ArchConfig, CimFieldsAreChecked) {
  json j = json::parse(R"({"kind": "cim", "xbar_rows": 128, "xbar_cols": 128, "cell_bits": 2,
    "adc_bits": 6, "cols_per_adc": 7, "input_bits_per_cycle": 1, "macros": 4, "act_bits": 8,
    "weight_bits": 8, "scale_unit": "shift", "scale_regs_per_tile": 64, "ifmap_sram_kib": 64,
    "weight_sram_kib": 64, "ofmap_sram_kib": 64, "clock_mhz": 200})");
  EXPECT_NE(error_of(j).find("field 'cols_per_adc': 7 does not divide xbar_cols 128"),
            std::string::npos)
      << error_of(j);
  j["cols_per_adc"] = 8;
  const ArchConfig a = ArchConfig::parse(j, "cim.json");
  EXPECT_EQ(a.weight_slices(8), 4);
  EXPECT_EQ(a.weight_slices(3), 2);
  EXPECT_EQ(a.scale_unit.kind, ScaleUnitKind::Shift);
  j["rows"] = 8;  // a systolic field in a CIM config
  EXPECT_NE(error_of(j).find("field 'rows': unknown field"), std::string::npos);
}

TEST(ArchConfig, ReadsScaleSimCfg) {
  const std::string path = ::testing::TempDir() + "/google.cfg";
  std::ofstream(path) << "[general]\nrun_name = tpu_like\n\n[architecture_presets]\n"
                         "ArrayHeight:    32\nArrayWidth:     16\nIfmapSramSzkB:    64\n"
                         "FilterSramSzkB:   64\nOfmapSramSzkB:    64\nIfmapOffset:    0\n"
                         "Dataflow : os\nBandwidth : 10\n\n[run_presets]\n"
                         "InterfaceBandwidth: USER\n";
  const ArchConfig a = ArchConfig::from_scalesim_cfg(path);
  EXPECT_EQ(a.name, "tpu_like");
  EXPECT_EQ(a.rows, 32);
  EXPECT_EQ(a.cols, 16);
  EXPECT_EQ(a.dataflow, Dataflow::OS);
  EXPECT_EQ(a.ifmap_bw, 10);
  std::ofstream(path) << "[architecture_presets]\nArrayHeight: x\n";
  EXPECT_THROW(ArchConfig::from_scalesim_cfg(path), InputError);
}

TEST(Workload, ReadsScaleSimTopologyWithValidConvolutionAndDepthwise) {
  const std::string path = ::testing::TempDir() + "/topo.csv";
  std::ofstream(path) << "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                         "Channels, Num Filter, Strides,\n"
                         "Conv1, 224, 224, 11, 11, 3, 96, 4,\n"
                         "DP1, 10, 10, 3, 3, 8, 1, 1,\n";
  const auto layers = read_scalesim_topology(path, 8, 8);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].ofmap_h, 55);  // ceil((224 - 11 + 4) / 4)
  EXPECT_EQ(layers[0].m, 55 * 55);
  EXPECT_EQ(layers[0].k, 363);
  EXPECT_EQ(layers[0].n, 96);
  EXPECT_EQ(layers[1].groups, 8);  // one single-channel layer per channel, as SCALE-Sim expands
  EXPECT_EQ(layers[1].k, 9);
  EXPECT_EQ(layers[1].m, 64);
  std::ofstream(path) << "header\nConv1, 224, x, 11, 11, 3, 96, 4,\n";
  try {
    read_scalesim_topology(path, 8, 8);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2: IFMAP width 'x'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tilescale::map
