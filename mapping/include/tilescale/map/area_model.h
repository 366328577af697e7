// Silicon area of an accelerator built for a mapped network, composed from synthesized building
// blocks (mapping/area_table.json, written by scripts/synth_area.sh: yosys onto the OSU 0.18um
// library) and, for SRAM and analog CIM parts, a documented table of estimates with sources
// (mapping/area_params.json). Areas in um^2.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace tilescale::map {

class AreaTable {
 public:
  // Reads both files; bad JSON or a missing key names the file.
  static AreaTable load(const std::string& synth_table_path, const std::string& params_path);
  // The default files of the source tree this binary was built from ($TILESCALE_AREA_DIR
  // overrides the folder).
  static AreaTable load_default();

  // Area of one synthesized component at exactly these parameters (e.g. "pe_ws", {ActBits: 8,
  // WeightBits: 4, AccBits: 32}). Throws InputError naming the table and the entries it has.
  double component(const std::string& name, const std::map<std::string, int>& params) const;
  // Whether the table has that exact entry.
  bool has(const std::string& name, const std::map<std::string, int>& params) const;
  // A parameter of the estimate table by key (e.g. "sram_um2_per_kib"); throws if absent.
  double estimate(const std::string& key) const;

  std::string synth_source;   // path of area_table.json
  std::string params_source;  // path of area_params.json
  std::string yosys_version;  // as recorded by the synthesis script
  std::string liberty;        // liberty file name

 private:
  nlohmann::json synth_;
  nlohmann::json params_;
};

}  // namespace tilescale::map
