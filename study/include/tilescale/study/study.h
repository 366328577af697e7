// A design-space study (`tilescale sweep --config study.json`): models x quantization settings x
// architecture configs x one evaluation, parsed and expanded into points (study file format:
// docs/study.md). Parse -> validate -> expand happens here, before any work; running the points is
// study_run.h's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/mapper.h"
#include "tilescale/quant/eval_mode.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::study {

// Version of study.json and the result rows (docs/study.md). 2: a CIM point's top1 is measured
// with the arch's ADCs in the loop (1: the ideal integer top-1), new columns top1_ideal, adc_bits,
// energy_bound_pj. A study file may say 1 or 2: its format is the same.
inline constexpr int kStudySchemaVersion = 2;

struct StudyModel {
  std::string path;     // ONNX file (relative paths resolved against the study file's folder)
  std::string name;     // file stem: the rows' "model"
  std::string dataset;  // bundled data set: mnist | fmnist
  std::string sha256;   // of the ONNX file's bytes
};

struct StudyArch {
  std::string name;        // config "name": the rows' "arch"; unique within the study
  std::string file;        // the config file; for a generated one, archs/<name>.json in the out dir
  bool generated = false;  // true if varied from a base config (written to the out dir)
  std::string text;        // the config file's bytes (what arch_sha256 hashes)
  std::string sha256;      // SHA-256 of text
  map::ArchConfig config;  // parsed and validated
};

// What every point measures. Top-1 is per quantization (computed once, reused across archs).
struct StudyEval {
  int64_t images = 0;  // first N test images for top-1; 0 = the whole split
  quant::EvalMode executor = quant::EvalMode::Int;  // golden integer or fake-quant float
  bool map = true;                                  // map each bundle onto each arch: cycles, area
  map::MapOptions map_options;                      // alignment and cycle model of the mapper
  int64_t simulate = 0;              // images per point on the SystemC model (systolic)
  int64_t verify = 0;                // images per point through `tilescale verify` (systolic)
  std::string verify_model = "rtl";  // rtl | systemc | both (tilescale verify --model)
  bool float_baseline = true;        // one float row per model
};

// One quantization of one model: computed once, cached under key, shared by its points.
struct StudyQuant {
  int model = 0;                // index into Study::models
  quant::QuantOptions options;  // threads left 0: the runner sets it
  std::string key;  // SHA-256 of model sha, dataset and quant_options_json (and the auto fields)
  // "granularity": "auto": every layer's granularity chosen as `quantize --auto-granularity` does
  // (study/granularity_budget.h), on auto_arch under auto_budget. Empty auto_budget: not auto.
  std::string auto_budget;       // "scale-regs=R" | "scale-area-um2=X"
  std::string auto_arch_sha256;  // of the config file's bytes; part of the key
  map::ArchConfig auto_arch;     // the config the candidates are costed on
  bool is_auto() const { return !auto_budget.empty(); }
  // The rows' "granularity": options.granularity, or "auto:<budget>@<arch name>".
  std::string granularity_label() const;
};

// One row of the results. quant < 0: the model's float baseline (no arch).
struct StudyPoint {
  int64_t id = 0;  // position in the expansion order; rows are sorted by it
  int model = 0;   // index into Study::models
  int quant = -1;  // index into Study::quants, or -1 for the float baseline
  int arch = -1;   // index into Study::archs, or -1 for none
};

struct Study {
  std::string source;    // the study file (or "sweep flags"), for messages
  std::string name;      // "name", else the file stem
  std::string data_dir;  // folder of the bundled data sets; empty = default_data_dir()
  std::vector<StudyModel> models;
  std::vector<StudyArch> archs;
  std::vector<StudyQuant> quants;
  StudyEval eval;
  std::vector<StudyPoint> points;

  // Parses, validates and expands a study document. base_dir resolves relative paths. Every error
  // is an InputError "<source>: <key path>: <problem>"; unknown keys are errors naming them. Reads
  // the model files (for their SHA-256 and to check granularities and datasets) and arch configs.
  static Study parse(const nlohmann::ordered_json& doc, const std::string& source,
                     const std::string& base_dir);
  static Study parse_file(const std::string& path);

  // The expanded study as written to <out>/study.json: schema_version, name, models, archs (with
  // their SHA-256), quantizations (options and keys), the evaluation and every point. A rerun into
  // the same folder must produce the same text, or it is refused (the results would not mix).
  nlohmann::ordered_json manifest() const;
};

}  // namespace tilescale::study
