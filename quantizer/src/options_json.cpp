#include "tilescale/quant/options_json.h"

#include <cmath>
#include <functional>
#include <limits>

#include "tilescale/core/error.h"

namespace tilescale::quant {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

struct OptionField {
  const char* key;                                      // JSON key (the manifest's field name)
  std::function<ojson(const QuantOptions&)> get;        // the value as JSON
  std::function<void(QuantOptions&, const json&)> set;  // throws InputError without the key
};

int64_t as_integer(const json& v, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() &&
      !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    throw InputError("expected an integer, got " + v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw InputError(v.dump() + " is too large");
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw InputError(v.dump() + " is out of range");
  return v.is_number_float() ? static_cast<int64_t>(d) : v.get<int64_t>();
}

int as_int(const json& v) {
  return static_cast<int>(
      as_integer(v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

double as_number(const json& v) {
  if (!v.is_number()) throw InputError("expected a number, got " + v.dump());
  return v.get<double>();
}

const std::string& as_text(const json& v) {
  if (!v.is_string()) throw InputError("expected a string, got " + v.dump());
  return v.get_ref<const std::string&>();
}

// A field whose value is an int member.
OptionField int_field(const char* key, int QuantOptions::*m) {
  return {key, [m](const QuantOptions& o) { return ojson(o.*m); },
          [m](QuantOptions& o, const json& v) { o.*m = as_int(v); }};
}

OptionField int64_field(const char* key, int64_t QuantOptions::*m) {
  return {key, [m](const QuantOptions& o) { return ojson(o.*m); },
          [m](QuantOptions& o, const json& v) {
            o.*m = as_integer(v, std::numeric_limits<int64_t>::min(),
                              std::numeric_limits<int64_t>::max());
          }};
}

OptionField double_field(const char* key, double QuantOptions::*m) {
  return {key, [m](const QuantOptions& o) { return ojson(o.*m); },
          [m](QuantOptions& o, const json& v) { o.*m = as_number(v); }};
}

template <typename E, typename Names>
OptionField enum_field(const char* key, E QuantOptions::*m, const Names& names) {
  return {key, [m, &names](const QuantOptions& o) { return ojson(names.name(o.*m)); },
          [m, &names](QuantOptions& o, const json& v) { o.*m = names.parse(as_text(v)); }};
}

// The table. Order matters where one option refines another: vsq_bits after granularity, since
// parsing a granularity resets it.
const std::vector<OptionField>& fields() {
  static const std::vector<OptionField> table = {
      {"granularity", [](const QuantOptions& o) { return ojson(o.granularity.str()); },
       [](QuantOptions& o, const json& v) {
         const int vsq = o.granularity.vsq_bits;
         o.granularity = Granularity::parse(as_text(v));
         o.granularity.vsq_bits = vsq;
       }},
      {"vsq_bits", [](const QuantOptions& o) { return ojson(o.granularity.vsq_bits); },
       [](QuantOptions& o, const json& v) { o.granularity.vsq_bits = as_int(v); }},
      int_field("w_bits", &QuantOptions::w_bits),
      int_field("a_bits", &QuantOptions::a_bits),
      int_field("first_last_bits", &QuantOptions::first_last_bits),
      int_field("scale_bits", &QuantOptions::scale_bits),
      enum_field("search", &QuantOptions::search, kSearchMethodNames),
      enum_field("metric", &QuantOptions::metric, kSearchMetricNames),
      enum_field("calib_input", &QuantOptions::calib_input, kCalibInputNames),
      int_field("grid_points", &QuantOptions::grid_points),
      double_field("grid_lo", &QuantOptions::grid_lo),
      double_field("grid_hi", &QuantOptions::grid_hi),
      int_field("rounds", &QuantOptions::rounds),
      int64_field("calib_images", &QuantOptions::calib_images),
      int64_field("calib_positions", &QuantOptions::calib_positions),
      {"seed", [](const QuantOptions& o) { return ojson(o.seed); },
       [](QuantOptions& o, const json& v) {
         if (!v.is_number_unsigned()) throw InputError("expected an integer >= 0, got " + v.dump());
         o.seed = v.get<uint64_t>();
       }},
      enum_field("reorder", &QuantOptions::reorder, kReorderMethodNames),
      enum_field("bias_correction", &QuantOptions::bias_correction, kBiasCorrectionNames),
  };
  return table;
}

}  // namespace

const std::vector<std::string>& quant_option_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const OptionField& f : fields()) k.push_back(f.key);
    return k;
  }();
  return keys;
}

void set_quant_option(QuantOptions& o, const std::string& key, const json& value) {
  for (const OptionField& f : fields())
    if (key == f.key) return with_source(key, [&] { f.set(o, value); });
  std::string allowed;
  for (const std::string& k : quant_option_keys()) allowed += (allowed.empty() ? "" : ", ") + k;
  fail_input(key, "unknown quantization option (allowed: " + allowed + ")");
}

ojson quant_options_json(const QuantOptions& o) {
  ojson j = ojson::object();
  for (const OptionField& f : fields()) j[f.key] = f.get(o);
  return j;
}

}  // namespace tilescale::quant
