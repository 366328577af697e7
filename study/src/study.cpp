#include "tilescale/study/study.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/core/sha256.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/options_json.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/study/granularity_budget.h"

namespace tilescale::study {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

// Errors of the study document: "<source>: <where>: <problem>".
struct Doc {
  std::string source;
  [[noreturn]] void fail(const std::string& where, const std::string& problem) const {
    fail_input(source, where + ": " + problem);
  }
  // Throws naming every key of obj that is not in allowed.
  void check_keys(const ojson& obj, const std::string& where,
                  const std::vector<std::string>& allowed) const {
    if (!obj.is_object()) fail(where, "expected an object, got " + obj.dump());
    std::string unknown, list;
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
        unknown += (unknown.empty() ? "'" : ", '") + it.key() + "'";
    if (unknown.empty()) return;
    for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(where, "unknown key " + unknown + " (allowed: " + list + ")");
  }
  std::string text(const ojson& obj, const std::string& where, const std::string& key) const {
    if (!obj.contains(key)) fail(where, "'" + key + "' is required");
    if (!obj[key].is_string()) fail(where + "." + key, "expected a string");
    return obj[key].get<std::string>();
  }
  template <typename Run>
  auto at(const std::string& where, const Run& run) const -> decltype(run()) {
    try {
      return run();
    } catch (const InputError& e) {
      fail(where, e.what());
    }
  }
};

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// The cross product of an object whose array values are axes (first key outermost), as a list of
// objects with scalar values.
std::vector<ojson> expand_axes(const ojson& obj, const Doc& doc, const std::string& where) {
  std::vector<ojson> out = {ojson::object()};
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    std::vector<ojson> values;
    if (it->is_array()) {
      if (it->empty()) doc.fail(where + "." + it.key(), "the list is empty");
      for (const ojson& v : *it) values.push_back(v);
    } else {
      values.push_back(*it);
    }
    std::vector<ojson> next;
    for (const ojson& partial : out)
      for (const ojson& v : values) {
        ojson p = partial;
        p[it.key()] = v;
        next.push_back(std::move(p));
      }
    out = std::move(next);
  }
  return out;
}

std::string value_text(const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// A config name usable as a file name: letters, digits, '.', '_' and '-'; anything else -> '_'.
std::string file_safe(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return s;
}

std::vector<StudyModel> parse_models(const ojson& doc_json, const Doc& doc,
                                     const std::string& base_dir,
                                     std::vector<model::Graph>& graphs) {
  if (!doc_json.contains("models")) doc.fail("models", "required (a list of {model, dataset})");
  const ojson& list = doc_json["models"];
  if (!list.is_array() || list.empty()) doc.fail("models", "expected a non-empty list");
  std::vector<StudyModel> models;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = "models[" + std::to_string(i) + "]";
    doc.check_keys(list[i], where, {"model", "dataset"});
    StudyModel m;
    m.path = resolve(base_dir, doc.text(list[i], where, "model"));
    m.dataset = doc.text(list[i], where, "dataset");
    doc.at(where + ".dataset", [&] { check_dataset_name(m.dataset); });
    m.name = fs::path(m.path).stem().string();
    const std::string bytes = read_file(m.path);  // InputError names the file
    m.sha256 = sha256_hex(bytes);
    graphs.push_back(model::import_onnx_bytes(bytes, m.path));
    for (const StudyModel& other : models)
      if (other.name == m.name && other.dataset == m.dataset)
        doc.fail(where, "model '" + m.name + "' on " + m.dataset + " is listed twice");
    models.push_back(std::move(m));
  }
  return models;
}

// One expanded quantization setting: the options, and the auto-granularity fields if "granularity"
// is "auto" (StudyQuant).
struct QuantSetting {
  quant::QuantOptions options;
  std::string auto_budget;
  std::string auto_arch_sha256;
  map::ArchConfig auto_arch;
};

// Quantization settings: an object (array values are axes) or a list of such objects. Besides the
// QuantOptions keys, "granularity" may be "auto", which needs "auto_arch" (a config file) and
// "auto_budget" (as `quantize --budget`); settings of the same object with another granularity
// ignore those two keys, and an object with them but no "auto" granularity is an error.
std::vector<QuantSetting> parse_quants(const ojson& doc_json, const Doc& doc,
                                       const std::string& base_dir) {
  std::vector<std::pair<std::string, ojson>> groups;
  if (!doc_json.contains("quant")) {
    groups.emplace_back("quant", ojson::object());
  } else if (doc_json["quant"].is_array()) {
    const ojson& list = doc_json["quant"];
    if (list.empty()) doc.fail("quant", "the list is empty");
    for (std::size_t i = 0; i < list.size(); ++i)
      groups.emplace_back("quant[" + std::to_string(i) + "]", list[i]);
  } else {
    groups.emplace_back("quant", doc_json["quant"]);
  }
  std::vector<std::string> allowed = quant::quant_option_keys();
  allowed.insert(allowed.end(), {"auto_arch", "auto_budget"});
  std::vector<QuantSetting> out;
  std::vector<std::string> seen;
  for (const auto& [where, obj] : groups) {
    doc.check_keys(obj, where, allowed);
    bool any_auto = false;
    for (const ojson& setting : expand_axes(obj, doc, where)) {
      QuantSetting q;
      std::string arch_path, budget;
      bool is_auto = false;
      for (auto it = setting.begin(); it != setting.end(); ++it) {
        if (it.key() == "auto_arch" || it.key() == "auto_budget") {
          if (!it->is_string()) doc.fail(where + "." + it.key(), "expected a string");
          (it.key() == "auto_arch" ? arch_path : budget) = it->get<std::string>();
        } else if (it.key() == "granularity" && *it == "auto") {
          is_auto = true;
        } else {
          doc.at(where, [&] { quant::set_quant_option(q.options, it.key(), *it); });
        }
      }
      doc.at(where, [&] { q.options.validate(); });
      std::string canon = quant::quant_options_json(q.options).dump();
      if (is_auto) {
        any_auto = true;
        if (arch_path.empty() || budget.empty())
          doc.fail(where, "granularity \"auto\" needs \"auto_arch\" and \"auto_budget\"");
        doc.at(where + ".auto_budget", [&] { parse_budget(budget); });
        const std::string path = resolve(base_dir, arch_path);
        const std::string text = doc.at(where + ".auto_arch", [&] { return read_file(path); });
        q.auto_arch =
            doc.at(where + ".auto_arch", [&] { return map::ArchConfig::parse_file(path); });
        q.auto_arch_sha256 = sha256_hex(text);
        q.auto_budget = budget;
        canon += "\nauto " + q.auto_arch_sha256 + " " + budget;
      }
      if (std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
      seen.push_back(canon);
      out.push_back(std::move(q));
    }
    if (!any_auto && (obj.contains("auto_arch") || obj.contains("auto_budget")))
      doc.fail(where, "\"auto_arch\" and \"auto_budget\" go with \"granularity\": \"auto\"");
  }
  return out;
}

StudyArch make_arch(const ojson& config, const std::string& file, bool generated,
                    const std::string& text, const Doc& doc, const std::string& where) {
  StudyArch a;
  a.file = file;
  a.generated = generated;
  a.text = text;
  a.sha256 = sha256_hex(text);
  a.config = doc.at(where, [&] { return map::ArchConfig::parse(nlohmann::json(config), file); });
  a.name = a.config.name;
  return a;
}

// archs: paths, or {"config": path, "name": prefix, "vary": {key: value or [values]}}; a varied
// entry gives one generated config per combination, named <name>-<key><value>... for its axes.
std::vector<StudyArch> parse_archs(const ojson& doc_json, const Doc& doc,
                                   const std::string& base_dir) {
  std::vector<StudyArch> archs;
  if (!doc_json.contains("archs")) return archs;
  const ojson& list = doc_json["archs"];
  if (!list.is_array()) doc.fail("archs", "expected a list of config files or {config, vary}");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = "archs[" + std::to_string(i) + "]";
    const ojson& e = list[i];
    if (e.is_string()) {
      const std::string path = resolve(base_dir, e.get<std::string>());
      const std::string text = read_file(path);
      ojson config;
      try {
        config = ojson::parse(text);
      } catch (const nlohmann::json::exception& ex) {
        fail_input(path, std::string("bad JSON: ") + ex.what());
      }
      archs.push_back(make_arch(config, path, false, text, doc, where));
      continue;
    }
    doc.check_keys(e, where, {"config", "name", "vary"});
    const std::string path = resolve(base_dir, doc.text(e, where, "config"));
    ojson base;
    try {
      base = ojson::parse(read_file(path));
    } catch (const nlohmann::json::exception& ex) {
      fail_input(path, std::string("bad JSON: ") + ex.what());
    }
    if (!base.is_object()) fail_input(path, "expected a JSON object");
    const ojson vary = e.contains("vary") ? e["vary"] : ojson::object();
    if (!vary.is_object()) doc.fail(where + ".vary", "expected an object {key: value or [values]}");
    if (vary.contains("name")) doc.fail(where + ".vary", "'name' cannot vary (use \"name\")");
    std::string prefix =
        e.contains("name") ? doc.text(e, where, "name")
                           : value_text(base.value("name", ojson(fs::path(path).stem().string())));
    for (const ojson& setting : expand_axes(vary, doc, where + ".vary")) {
      ojson config = base;
      std::string name = prefix;
      for (auto it = setting.begin(); it != setting.end(); ++it) {
        config[it.key()] = *it;
        if (vary[it.key()].is_array()) name += "-" + it.key() + value_text(*it);
      }
      name = file_safe(name);
      config["name"] = name;
      const std::string text = config.dump(2) + "\n";
      archs.push_back(make_arch(config, "archs/" + name + ".json", true, text, doc, where));
    }
  }
  for (std::size_t i = 0; i < archs.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (archs[i].name == archs[j].name)
        doc.fail("archs", "two configs are named '" + archs[i].name + "' (give \"name\")");
  return archs;
}

StudyEval parse_eval(const ojson& doc_json, const Doc& doc) {
  StudyEval ev;
  if (!doc_json.contains("eval")) return ev;
  const ojson& e = doc_json["eval"];
  doc.check_keys(e, "eval",
                 {"images", "executor", "map", "align", "cycle_model", "simulate", "verify",
                  "verify_model", "float_baseline"});
  auto integer = [&](const char* key, int64_t& v) {
    if (!e.contains(key)) return;
    if (!e[key].is_number_integer() || e[key].get<int64_t>() < 0)
      doc.fail(std::string("eval.") + key, "expected an integer >= 0, got " + e[key].dump());
    v = e[key].get<int64_t>();
  };
  auto boolean = [&](const char* key, bool& v) {
    if (!e.contains(key)) return;
    if (!e[key].is_boolean()) doc.fail(std::string("eval.") + key, "expected true or false");
    v = e[key].get<bool>();
  };
  integer("images", ev.images);
  integer("simulate", ev.simulate);
  integer("verify", ev.verify);
  if (e.contains("verify_model")) {
    ev.verify_model = doc.text(e, "eval", "verify_model");
    if (ev.verify_model != "rtl" && ev.verify_model != "systemc" && ev.verify_model != "both")
      doc.fail("eval.verify_model", "expected rtl, systemc or both, got '" + ev.verify_model + "'");
  }
  boolean("map", ev.map);
  boolean("float_baseline", ev.float_baseline);
  if (e.contains("executor"))
    ev.executor = doc.at("eval.executor", [&] {
      return quant::kEvalModeNames.parse(doc.text(e, "eval", "executor"));
    });
  if (e.contains("align"))
    ev.map_options.align =
        doc.at("eval.align", [&] { return map::kAlignNames.parse(doc.text(e, "eval", "align")); });
  if (e.contains("cycle_model"))
    ev.map_options.cycle_model = doc.at("eval.cycle_model", [&] {
      return map::kCycleModelNames.parse(doc.text(e, "eval", "cycle_model"));
    });
  return ev;
}

}  // namespace

Study Study::parse(const ojson& doc_json, const std::string& source, const std::string& base_dir) {
  const Doc doc{source};
  doc.check_keys(doc_json, "top level",
                 {"schema_version", "name", "data_dir", "models", "quant", "archs", "eval"});
  if (doc_json.contains("schema_version") && doc_json["schema_version"] != ojson(1) &&
      doc_json["schema_version"] != ojson(kStudySchemaVersion))
    doc.fail("schema_version", doc_json["schema_version"].dump() +
                                   " is not supported (this is 1 or " +
                                   std::to_string(kStudySchemaVersion) + ")");
  Study s;
  s.source = source;
  s.name = doc_json.contains("name") ? doc.text(doc_json, "top level", "name")
                                     : fs::path(source).stem().string();
  if (doc_json.contains("data_dir"))
    s.data_dir = resolve(base_dir, doc.text(doc_json, "top level", "data_dir"));
  std::vector<model::Graph> graphs;
  s.models = parse_models(doc_json, doc, base_dir, graphs);
  const std::vector<QuantSetting> quants = parse_quants(doc_json, doc, base_dir);
  s.archs = parse_archs(doc_json, doc, base_dir);
  s.eval = parse_eval(doc_json, doc);
  for (const QuantSetting& q : quants) {
    if (s.eval.executor == quant::EvalMode::Int && q.options.a_bits == 32)
      doc.fail("quant", "a_bits 32 (float activations) needs \"executor\": \"fake\" in eval");
  }

  int64_t id = 0;
  for (std::size_t m = 0; m < s.models.size(); ++m) {
    const StudyModel& model = s.models[m];
    if (s.eval.float_baseline) s.points.push_back({id++, static_cast<int>(m), -1, -1});
    for (const QuantSetting& setting : quants) {
      const quant::QuantOptions& o = setting.options;
      doc.at("quant", [&] { quant::check_granularity_fits(graphs[m], o.granularity); });
      StudyQuant q;
      q.model = static_cast<int>(m);
      q.options = o;
      q.auto_budget = setting.auto_budget;
      q.auto_arch_sha256 = setting.auto_arch_sha256;
      q.auto_arch = setting.auto_arch;
      // Keys of plain settings stay as they were, so existing caches keep serving them.
      q.key = sha256_hex(model.sha256 + "\n" + model.dataset + "\n" +
                         quant::quant_options_json(o).dump() +
                         (q.is_auto() ? "\nauto " + q.auto_arch_sha256 + " " + q.auto_budget : ""));
      s.quants.push_back(q);
      const int qi = static_cast<int>(s.quants.size() - 1);
      if (s.archs.empty()) {
        s.points.push_back({id++, static_cast<int>(m), qi, -1});
      } else {
        for (std::size_t a = 0; a < s.archs.size(); ++a)
          s.points.push_back({id++, static_cast<int>(m), qi, static_cast<int>(a)});
      }
    }
  }
  return s;
}

std::string StudyQuant::granularity_label() const {
  return is_auto() ? "auto:" + auto_budget + "@" + auto_arch.name : options.granularity.str();
}

Study Study::parse_file(const std::string& path) {
  const std::string text = read_file(path);
  ojson doc;
  try {
    doc = ojson::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail_input(path, std::string("bad JSON: ") + e.what());
  }
  return parse(doc, path, fs::path(path).parent_path().string());
}

ojson Study::manifest() const {
  ojson j;
  j["schema_version"] = kStudySchemaVersion;
  j["name"] = name;
  ojson ms = ojson::array();
  for (const StudyModel& m : models)
    ms.push_back({{"name", m.name}, {"dataset", m.dataset}, {"sha256", m.sha256}});
  j["models"] = ms;
  ojson as = ojson::array();
  for (const StudyArch& a : archs)
    as.push_back({{"name", a.name},
                  {"file", a.generated ? a.file : fs::path(a.file).filename().string()},
                  {"generated", a.generated},
                  {"sha256", a.sha256}});
  j["archs"] = as;
  ojson qs = ojson::array();
  for (const StudyQuant& q : quants) {
    ojson e = {{"model", models[q.model].name},
               {"key", q.key},
               {"options", quant::quant_options_json(q.options)}};
    if (q.is_auto())
      e["auto"] = {{"arch", q.auto_arch.name},
                   {"arch_sha256", q.auto_arch_sha256},
                   {"budget", q.auto_budget}};
    qs.push_back(std::move(e));
  }
  j["quantizations"] = qs;
  j["eval"] = {{"images", eval.images},
               {"executor", quant::kEvalModeNames.name(eval.executor)},
               {"map", eval.map},
               {"align", map::kAlignNames.name(eval.map_options.align)},
               {"cycle_model", map::kCycleModelNames.name(eval.map_options.cycle_model)},
               {"simulate", eval.simulate},
               {"float_baseline", eval.float_baseline}};
  // Written only when used, so the study.json of a study without verification stays the text
  // earlier versions wrote (a rerun into its folder resumes instead of being refused).
  if (eval.verify > 0) {
    j["eval"]["verify"] = eval.verify;
    j["eval"]["verify_model"] = eval.verify_model;
  }
  ojson ps = ojson::array();
  for (const StudyPoint& p : points) ps.push_back({p.id, p.model, p.quant, p.arch});
  j["points"] = ps;
  return j;
}

}  // namespace tilescale::study
