#include "tilescale/map/synth_top.h"

#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale::map {
namespace {

using nlohmann::json;

// ts_top's parameters as scripts/gen_rtl_config.py derives them from a config file; only the
// ones that change the synthesized logic and that ArchConfig holds directly.
std::map<std::string, int> rtl_params(const ArchConfig& a) {
  return {{"Rows", a.rows},
          {"Cols", a.cols},
          {"Dataflow", a.dataflow == Dataflow::WS ? 0 : 1},
          {"ActBits", a.act_bits},
          {"WeightBits", a.weight_bits},
          {"AccBits", a.acc_bits},
          {"ScaleKind", a.scale_unit.kind == ScaleUnitKind::Shift ? 1 : 0},
          {"MantBits", a.scale_unit.mant_bits},
          {"RegsPerBank", a.scale_regs_per_tile}};
}

}  // namespace

std::optional<SynthesizedTop> find_synthesized_top(const std::string& path,
                                                   const ArchConfig& arch) {
  if (arch.kind != ArchKind::Systolic || arch.dataflow == Dataflow::IS ||
      arch.scale_unit.kind == ScaleUnitKind::None)
    return std::nullopt;  // no RTL for these (gen_rtl_config.py skips them)
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail_input(path, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("configs") || !j["configs"].is_array())
    fail_input(path, "expected an object with a 'configs' array");
  for (const json& c : j["configs"]) {
    if (!c.is_object() || c.value("config", "") != arch.name) continue;
    const json& p = c.contains("params") ? c["params"] : json::object();
    for (const auto& [key, value] : rtl_params(arch))
      if (!p.contains(key) || !p[key].is_number_integer() || p[key].get<int>() != value)
        return std::nullopt;  // synthesized before the config changed
    if (!c.contains("area_um2") || !c["area_um2"].is_number())
      fail_input(path, "config " + arch.name + " has no area_um2");
    SynthesizedTop s;
    s.config = arch.name;
    s.source = path;
    s.area_um2 = c["area_um2"].get<double>();
    s.cells = c.value("cells", int64_t{0});
    s.flops = c.value("flops", int64_t{0});
    s.acc_words = p.value("AccWords", 0);
    s.yosys_version = j.value("yosys_version", "?");
    if (c.contains("parts") && c["parts"].is_object())
      for (const auto& [module, part] : c["parts"].items())
        if (part.is_object() && part.contains("area_um2") && part["area_um2"].is_number())
          s.parts_um2[module] = part["area_um2"].get<double>();
    return s;
  }
  return std::nullopt;
}

std::optional<SynthesizedTop> find_synthesized_top_default(const ArchConfig& arch) {
  const char* env = std::getenv("TILESCALE_RTL_AREA");
  const std::string path =
      env && *env ? std::string(env) : std::string(TILESCALE_SOURCE_DIR) + "/rtl/ts_top_area.json";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return find_synthesized_top(path, arch);
}

}  // namespace tilescale::map
