#include "tilescale/map/area_model.h"

#include <cstdlib>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale::map {
namespace {

using nlohmann::json;

json parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large
    fail_input(path, std::string("not valid JSON: ") + e.what());
  }
}

// An entry matches when every requested parameter has the requested value (entries may carry
// more parameters, e.g. a fixed ShiftBits).
bool matches(const json& entry, const std::string& name, const std::map<std::string, int>& params) {
  if (!entry.is_object() || entry.value("component", "") != name) return false;
  const json& p = entry.contains("params") ? entry["params"] : json::object();
  for (const auto& [key, value] : params) {
    if (!p.contains(key) || !p[key].is_number_integer() || p[key].get<int>() != value) return false;
  }
  return true;
}

std::string params_text(const std::map<std::string, int>& params) {
  std::string s;
  for (const auto& [k, v] : params) s += (s.empty() ? "" : ", ") + k + "=" + std::to_string(v);
  return s;
}

}  // namespace

AreaTable AreaTable::load(const std::string& synth_table_path, const std::string& params_path) {
  AreaTable t;
  t.synth_source = synth_table_path;
  t.params_source = params_path;
  t.synth_ = parse_json_file(synth_table_path);
  t.params_ = parse_json_file(params_path);
  if (!t.synth_.is_object() || !t.synth_.contains("components") ||
      !t.synth_["components"].is_array())
    fail_input(synth_table_path, "expected an object with a 'components' array");
  t.yosys_version = t.synth_.value("yosys_version", "?");
  t.liberty = t.synth_.value("liberty", "?");
  if (!t.params_.is_object() || !t.params_.contains("params") || !t.params_["params"].is_object())
    fail_input(params_path, "expected an object with a 'params' object");
  return t;
}

AreaTable AreaTable::load_default() {
  const char* env = std::getenv("TILESCALE_AREA_DIR");
  const std::string dir =
      env && *env ? std::string(env) : std::string(TILESCALE_SOURCE_DIR) + "/mapping";
  return load(dir + "/area_table.json", dir + "/area_params.json");
}

bool AreaTable::has(const std::string& name, const std::map<std::string, int>& params) const {
  for (const json& e : synth_["components"])
    if (matches(e, name, params)) return true;
  return false;
}

double AreaTable::component(const std::string& name,
                            const std::map<std::string, int>& params) const {
  for (const json& e : synth_["components"]) {
    if (!matches(e, name, params)) continue;
    if (!e.contains("area_um2") || !e["area_um2"].is_number())
      fail_input(synth_source, "entry " + name + " (" + params_text(params) + ") has no area_um2");
    return e["area_um2"].get<double>();
  }
  std::string have;
  for (const json& e : synth_["components"])
    if (e.is_object() && e.value("component", "") == name)
      have += "\n  " + (e.contains("params") ? e["params"].dump() : std::string("{}"));
  fail_input(synth_source, "no synthesized " + name + " with " + params_text(params) +
                               " (add it to scripts/synth_area.sh and rerun it); the table has:" +
                               (have.empty() ? std::string(" none") : have));
}

double AreaTable::estimate(const std::string& key) const {
  const json& p = params_["params"];
  if (!p.contains(key)) fail_input(params_source, "no estimate '" + key + "'");
  const json& v = p[key];
  const json& x = v.is_object() ? v["value"] : v;
  if (!x.is_number()) fail_input(params_source, "estimate '" + key + "' has no numeric value");
  return x.get<double>();
}

}  // namespace tilescale::map
