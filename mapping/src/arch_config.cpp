#include "tilescale/map/arch_config.h"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale::map {
namespace {

using nlohmann::json;

// Reads one field with a type and range check; every error names the file and the field.
class FieldReader {
 public:
  FieldReader(const json& j, const std::string& source) : j_(j), source_(source) {}

  int integer(const std::string& key, int lo, int hi, std::optional<int> fallback = {}) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      if (fallback) return *fallback;
      missing(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    const json& v = j_.at(key);
    if (!v.is_number_integer())
      bad(key, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      bad(key, std::to_string(x) + " is out of range (allowed: " + std::to_string(lo) + ".." +
                   std::to_string(hi) + ")");
    return static_cast<int>(x);
  }

  double number(const std::string& key, double lo, double hi, std::optional<double> fallback = {}) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      if (fallback) return *fallback;
      missing(key, "a number in [" + fmt(lo) + ", " + fmt(hi) + "]");
    }
    const json& v = j_.at(key);
    if (!v.is_number()) bad(key, "must be a number in [" + fmt(lo) + ", " + fmt(hi) + "]");
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi))
      bad(key, fmt(x) + " is out of range (allowed: " + fmt(lo) + ".." + fmt(hi) + ")");
    return x;
  }

  std::string text(const std::string& key, const std::string& allowed,
                   std::optional<std::string> fallback = {}) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      if (fallback) return *fallback;
      missing(key, allowed);
    }
    const json& v = j_.at(key);
    if (!v.is_string()) bad(key, "must be a string (allowed: " + allowed + ")");
    return v.get<std::string>();
  }

  // A string field naming one value of an enum's name table.
  template <typename E, std::size_t N>
  E choice(const std::string& key, const EnumNames<E, N>& names,
           std::optional<std::string> fallback = {}) {
    const std::string value = text(key, names.list(" | "), fallback);
    try {
      return names.parse(value);
    } catch (const InputError& e) {
      bad(key, e.what());
    }
  }

  // Fields of the other architecture kind, or typos, are rejected rather than ignored.
  void reject_unknown() const {
    for (const auto& [key, value] : j_.items())
      if (!seen_.count(key)) bad(key, "unknown field for this architecture kind");
  }

  [[noreturn]] void bad(const std::string& key, const std::string& problem) const {
    fail_input(source_, "field '" + key + "': " + problem);
  }

 private:
  [[noreturn]] void missing(const std::string& key, const std::string& allowed) const {
    fail_input(source_, "field '" + key + "' is missing (expected " + allowed + ")");
  }
  static std::string fmt(double x) {
    std::ostringstream s;
    s << x;
    return s.str();
  }

  const json& j_;
  std::string source_;
  std::set<std::string> seen_;
};

// The forms of a scale_unit text, joined by sep: "none, fixed:<m>, shift".
std::string scale_unit_forms(const char* sep) {
  std::string forms;
  for (const auto& e : kScaleUnitKindNames.entries)
    forms += (forms.empty() ? "" : sep) + std::string(e.name) +
             (e.value == ScaleUnitKind::Fixed ? ":<m>" : "");
  return forms;
}

std::string file_stem(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  const auto dot = base.find_last_of('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

void ArchConfig::require_kind(ArchKind wanted, const std::string& what) const {
  if (kind != wanted)
    fail_input(source, std::string("kind '") + kArchKindNames.name(kind) + "': " + what +
                           " needs a '" + kArchKindNames.name(wanted) + "' config");
}

ScaleUnit ScaleUnit::parse(const std::string& text, const std::string& source) {
  const std::size_t colon = text.find(':');
  ScaleUnit u;
  bool known = true;
  try {
    u.kind = kScaleUnitKindNames.parse(text.substr(0, colon));
  } catch (const InputError&) {
    known = false;
  }
  const bool has_bits = colon != std::string::npos;
  if (!known || has_bits != (u.kind == ScaleUnitKind::Fixed))
    fail_input(source,
               "unknown scale unit '" + text + "' (allowed: " + scale_unit_forms(", ") + ")");
  if (u.kind == ScaleUnitKind::None) {
    u.mant_bits = 0;
  } else if (u.kind == ScaleUnitKind::Shift) {
    u.mant_bits = 1;
  } else {
    const std::string bits = text.substr(colon + 1);
    std::size_t used = 0;
    int m = 0;
    try {
      m = std::stoi(bits, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (bits.empty() || used != bits.size() || m < 2 || m > 31)
      fail_input(source, "scale unit '" + text + "': fixed:<m> needs m in 2..31");
    u.mant_bits = m;
  }
  return u;
}

std::string ScaleUnit::str() const {
  const std::string name = kScaleUnitKindNames.name(kind);
  return kind == ScaleUnitKind::Fixed ? name + ":" + std::to_string(mant_bits) : name;
}

ArchConfig ArchConfig::parse(const json& j, const std::string& source) {
  if (!j.is_object()) fail_input(source, "an architecture config must be a JSON object");
  FieldReader r(j, source);
  ArchConfig a;
  a.source = source;
  a.name = r.text("name", "a string", file_stem(source));
  a.kind = r.choice("kind", kArchKindNames);
  a.act_bits = r.integer("act_bits", 2, 16);
  a.weight_bits = r.integer("weight_bits", 2, 16);
  a.scale_unit = ScaleUnit::parse(r.text("scale_unit", scale_unit_forms(" | ")),
                                  source + ": field 'scale_unit'");
  a.scale_regs_per_tile = r.integer("scale_regs_per_tile", 1, 1 << 16);
  a.ifmap_sram_kib = r.number("ifmap_sram_kib", 0.125, 1 << 20);
  a.weight_sram_kib = r.number("weight_sram_kib", 0.125, 1 << 20);
  a.ofmap_sram_kib = r.number("ofmap_sram_kib", 0.125, 1 << 20);
  a.ifmap_bw = r.integer("ifmap_bw", 0, 1 << 16, 0);
  a.weight_bw = r.integer("weight_bw", 0, 1 << 16, 0);
  a.ofmap_bw = r.integer("ofmap_bw", 0, 1 << 16, 0);
  a.clock_mhz = r.number("clock_mhz", 1, 10000);
  if (a.kind == ArchKind::Systolic) {
    a.rows = r.integer("rows", 1, 1024);
    a.cols = r.integer("cols", 1, 1024);
    a.dataflow = r.choice("dataflow", kDataflowNames);
    a.acc_bits = r.integer("acc_bits", 8, 64);
  } else {
    a.xbar_rows = r.integer("xbar_rows", 1, quant::kMaxXbarRows);
    a.xbar_cols = r.integer("xbar_cols", 1, 4096);
    a.cell_bits = r.integer("cell_bits", 1, 8);
    a.adc_bits = r.integer("adc_bits", 1, quant::kMaxAdcBits);
    a.cols_per_adc = r.integer("cols_per_adc", 1, a.xbar_cols);
    a.input_bits_per_cycle = r.integer("input_bits_per_cycle", 1, 8);
    a.macros = r.integer("macros", 1, 1 << 16);
    a.adc_range = r.choice("adc_range", quant::kAdcRangeNames,
                           std::string(quant::kAdcRangeNames.name(quant::AdcRange::Clip)));
    if (a.xbar_cols % a.cols_per_adc != 0)
      r.bad("cols_per_adc", std::to_string(a.cols_per_adc) + " does not divide xbar_cols " +
                                std::to_string(a.xbar_cols));
    if (a.weight_slices(a.weight_bits) > a.xbar_cols)
      r.bad("weight_bits", "one weight needs " + std::to_string(a.weight_slices(a.weight_bits)) +
                               " columns, more than xbar_cols");
  }
  r.reject_unknown();
  return a;
}

ArchConfig ArchConfig::parse_file(const std::string& path) {
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large
    fail_input(path, std::string("not valid JSON: ") + e.what());
  }
  return parse(j, path);
}

ArchConfig ArchConfig::from_scalesim_cfg(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_input(path, "cannot open the SCALE-Sim config");
  std::map<std::string, std::string> kv;  // lower-case key -> value, sections flattened
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const auto sep = line.find_first_of(":=");
    if (sep == std::string::npos)
      fail_input(path, "line " + std::to_string(line_no) + ": expected 'Key : value'");
    std::string key = trim(line.substr(0, sep));
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    kv[key] = trim(line.substr(sep + 1));
  }
  auto get_int = [&](const std::string& key, int lo, int hi) {
    auto it = kv.find(key);
    if (it == kv.end()) fail_input(path, "SCALE-Sim key '" + key + "' is missing");
    std::size_t used = 0;
    long v = 0;
    try {
      v = std::stol(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != it->second.size() || v < lo || v > hi)
      fail_input(path, "SCALE-Sim key '" + key + "': '" + it->second + "' is not an integer in " +
                           std::to_string(lo) + ".." + std::to_string(hi));
    return static_cast<int>(v);
  };
  json j = {{"name", kv.count("run_name") ? kv["run_name"] : file_stem(path)},
            {"kind", kArchKindNames.name(ArchKind::Systolic)},
            {"rows", get_int("arrayheight", 1, 1024)},
            {"cols", get_int("arraywidth", 1, 1024)},
            {"dataflow", kv.count("dataflow") ? kv["dataflow"] : std::string("?")},
            {"act_bits", 8},
            {"weight_bits", 8},
            {"acc_bits", 32},
            {"scale_unit", "fixed:16"},
            {"ifmap_sram_kib", get_int("ifmapsramszkb", 1, 1 << 20)},
            {"weight_sram_kib", get_int("filtersramszkb", 1, 1 << 20)},
            {"ofmap_sram_kib", get_int("ofmapsramszkb", 1, 1 << 20)},
            {"clock_mhz", 1000}};
  j["scale_regs_per_tile"] = j["cols"];
  // SCALE-Sim's CALC mode sizes the interface to never stall; USER takes Bandwidth words/cycle.
  const std::string mode = kv.count("interfacebandwidth") ? kv["interfacebandwidth"] : "CALC";
  if (mode == "USER") {
    const int bw = get_int("bandwidth", 1, 1 << 16);
    j["ifmap_bw"] = bw;
    j["weight_bw"] = bw;
    j["ofmap_bw"] = bw;
  } else if (mode != "CALC") {
    fail_input(path, "SCALE-Sim key 'interfacebandwidth': '" + mode + "' (allowed: CALC, USER)");
  }
  return parse(j, path);
}

quant::AdcNumerics ArchConfig::cim_numerics() const {
  require_kind(ArchKind::Cim, "the ADC numerics");
  quant::AdcNumerics n;
  n.xbar_rows = xbar_rows;
  n.cell_bits = cell_bits;
  n.input_bits_per_cycle = input_bits_per_cycle;
  n.adc_bits = adc_bits;
  n.range = adc_range;
  return n;
}

json ArchConfig::to_json() const {
  json j = {{"name", name},
            {"kind", kArchKindNames.name(kind)},
            {"act_bits", act_bits},
            {"weight_bits", weight_bits},
            {"scale_unit", scale_unit.str()},
            {"scale_regs_per_tile", scale_regs_per_tile},
            {"ifmap_sram_kib", ifmap_sram_kib},
            {"weight_sram_kib", weight_sram_kib},
            {"ofmap_sram_kib", ofmap_sram_kib},
            {"ifmap_bw", ifmap_bw},
            {"weight_bw", weight_bw},
            {"ofmap_bw", ofmap_bw},
            {"clock_mhz", clock_mhz}};
  if (kind == ArchKind::Systolic) {
    j["rows"] = rows;
    j["cols"] = cols;
    j["dataflow"] = kDataflowNames.name(dataflow);
    j["acc_bits"] = acc_bits;
  } else {
    j["xbar_rows"] = xbar_rows;
    j["xbar_cols"] = xbar_cols;
    j["cell_bits"] = cell_bits;
    j["adc_bits"] = adc_bits;
    j["cols_per_adc"] = cols_per_adc;
    j["input_bits_per_cycle"] = input_bits_per_cycle;
    j["macros"] = macros;
    // Written only when not the default, so reports of older configs keep their bytes.
    if (adc_range != quant::AdcRange::Clip) j["adc_range"] = quant::kAdcRangeNames.name(adc_range);
  }
  return j;
}

}  // namespace tilescale::map
