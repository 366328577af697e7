// The golden CIM numerics' crossbar row tiles (quant/adc.h, crossbar_row_tiles) are the mapper's
// CIM folds (reduction_folds with pad alignment, and strict where strict accepts the layer), so the
// ADC the golden executor models sits on the sums the macro really forms.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "layer_builder.h"
#include "tilescale/core/error.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/tiling.h"
#include "tilescale/quant/adc.h"

namespace tilescale::map {
namespace {

using test::make_layer;

void expect_same(const std::vector<KFold>& folds, const std::vector<quant::RowTile>& tiles) {
  ASSERT_EQ(folds.size(), tiles.size());
  for (std::size_t i = 0; i < folds.size(); ++i) {
    EXPECT_EQ(folds[i].k0, tiles[i].k0) << "fold " << i;
    EXPECT_EQ(folds[i].length, tiles[i].length) << "fold " << i;
    EXPECT_EQ(folds[i].red_group, tiles[i].red_group) << "fold " << i;
  }
}

TEST(CimTiles, RowTilesAreThePadFoldsAndTheStrictOnesWhereStrictAccepts) {
  // kernel x cin_g x (bo, bi) shapes of the zoo and odd ones; rows from 7 to 256.
  const int64_t shapes[][4] = {{9, 16, 16, 16}, {9, 32, 16, 16}, {9, 64, 16, 32}, {1, 64, 1, 64},
                               {9, 6, 2, 4},    {25, 6, 4, 3},   {1, 256, 8, 8},  {9, 1, 1, 1}};
  for (const auto& s : shapes)
    for (const int64_t rows : {7, 16, 64, 128, 256}) {
      SCOPED_TRACE("kernel " + std::to_string(s[0]) + " cin " + std::to_string(s[1]) + " bi " +
                   std::to_string(s[3]) + " rows " + std::to_string(rows));
      const LayerWorkload l = make_layer(1, 4, 8, s[0], s[1], s[2], s[3]);
      const auto tiles = quant::crossbar_row_tiles(l.red_group, rows);
      expect_same(reduction_folds(l, rows, Align::Pad), tiles);
      try {
        expect_same(reduction_folds(l, rows, Align::Strict), tiles);
      } catch (const AlignError&) {
        // strict refuses this layer; pad is what runs
      }
    }
}

}  // namespace
}  // namespace tilescale::map

namespace tilescale::map {
namespace {

TEST(CimTiles, AdcRangeIsParsedDefaultsToClipAndFeedsTheNumerics) {
  nlohmann::json j = nlohmann::json::parse(R"({"kind": "cim", "xbar_rows": 64, "xbar_cols": 128,
    "cell_bits": 2, "adc_bits": 7, "cols_per_adc": 8, "input_bits_per_cycle": 2, "macros": 4,
    "act_bits": 8, "weight_bits": 8, "scale_unit": "shift", "scale_regs_per_tile": 64,
    "ifmap_sram_kib": 64, "weight_sram_kib": 64, "ofmap_sram_kib": 64, "clock_mhz": 200})");
  quant::AdcNumerics n = ArchConfig::parse(j, "cim.json").cim_numerics();
  EXPECT_EQ(n.xbar_rows, 64);
  EXPECT_EQ(n.cell_bits, 2);
  EXPECT_EQ(n.input_bits_per_cycle, 2);
  EXPECT_EQ(n.adc_bits, 7);
  EXPECT_EQ(n.range, quant::AdcRange::Clip);
  EXPECT_FALSE(ArchConfig::parse(j, "cim.json").to_json().contains("adc_range"));
  j["adc_range"] = "rows";
  EXPECT_EQ(ArchConfig::parse(j, "cim.json").cim_numerics().range, quant::AdcRange::Rows);
  EXPECT_EQ(ArchConfig::parse(j, "cim.json").to_json()["adc_range"], "rows");
  j["adc_range"] = "calibrated";
  try {
    ArchConfig::parse(j, "cim.json");
    ADD_FAILURE() << "accepted adc_range 'calibrated'";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("field 'adc_range'"), std::string::npos) << e.what();
  }
  for (const int bits : {0, 17}) {
    j["adc_range"] = "clip";
    j["adc_bits"] = bits;
    EXPECT_THROW(ArchConfig::parse(j, "cim.json"), InputError);
  }
}

}  // namespace
}  // namespace tilescale::map
