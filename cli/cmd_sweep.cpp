// tilescale sweep: a design-space study (study/): models x quantization settings x architectures,
// from a study file (--config) or, as a shorthand for a one-model study, from flags.
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "parse_options.h"
#include "quant_flags.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"
#include "tilescale/core/subprocess.h"
#include "tilescale/quant/options_json.h"
#include "tilescale/study/study.h"
#include "tilescale/study/study_run.h"

namespace po = boost::program_options;

namespace tilescale::cli {
namespace {

// "a,b,c" -> {"a", "b", "c"}, blanks around items removed; an empty item is an error.
std::vector<std::string> split_list(const std::string& option, const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b == std::string::npos) fail_input(option, "empty entry in the list '" + text + "'");
    items.push_back(item.substr(b, e - b + 1));
  }
  if (items.empty()) fail_input(option, "the list is empty");
  if (text.back() == ',') fail_input(option, "empty entry in the list '" + text + "'");
  return items;
}

std::vector<int> split_ints(const std::string& option, const std::string& text) {
  std::vector<int> values;
  for (const std::string& item : split_list(option, text)) {
    std::size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || used == 0) fail_input(option, "'" + item + "' is not a number");
    values.push_back(v);
  }
  return values;
}

// The flags of the one-model shorthand, as typed.
struct FlagStudy {
  std::string model, dataset, data_dir;
  std::string wbits = "4", granularity = "layer,channel,block:16x16";
  std::string reorder = quant::kReorderMethodNames.name(quant::ReorderMethod::None);
  std::string search = quant::kSearchMethodNames.name(quant::SearchMethod::Output);
  std::string mode = quant::kEvalModeNames.name(quant::EvalMode::Int);
  std::vector<std::string> archs;
  quant::QuantOptions base;  // a_bits, first_last_bits, calib_images, seed
  int64_t eval_limit = 0;
};

// The shorthand as a study document, parsed by the same Study::parse as a study file. The flags are
// checked here first, so their errors name the flags.
nlohmann::ordered_json flag_study(const FlagStudy& f) {
  using ojson = nlohmann::ordered_json;
  if (f.model.empty()) fail_input("--model", "required (an ONNX file)");
  if (f.dataset.empty()) fail_input("--dataset", "required (a bundled data set: mnist, fmnist)");
  if (f.eval_limit < 0) fail_input("--eval-limit", "must be >= 0");
  quant::QuantOptions o = f.base;
  o.search = parse_flag("--search", f.search, quant::kSearchMethodNames);
  const quant::EvalMode mode = parse_flag("--mode", f.mode, quant::kEvalModeNames);
  ojson wbits = ojson::array(), grans = ojson::array(), reorders = ojson::array();
  for (int w : split_ints("--wbits", f.wbits)) {
    o.w_bits = w;
    check_quant_flags(o);
    wbits.push_back(w);
  }
  check_quant_flags(o);
  for (const std::string& g : split_list("--granularity", f.granularity)) {
    with_source("--granularity", [&] { return quant::Granularity::parse(g); });
    grans.push_back(g);
  }
  for (const std::string& r : split_list("--reorder", f.reorder)) {
    parse_flag("--reorder", r, quant::kReorderMethodNames);
    reorders.push_back(r);
  }
  if (mode == quant::EvalMode::Int && o.a_bits == 32)
    fail_input("--abits", "the integer executor needs integer activations (4..8); use --mode fake");
  ojson quant = quant::quant_options_json(o);
  quant["w_bits"] = wbits;
  quant["granularity"] = grans;
  quant["reorder"] = reorders;
  ojson doc;
  doc["name"] = std::filesystem::path(f.model).stem().string();
  if (!f.data_dir.empty()) doc["data_dir"] = f.data_dir;
  doc["models"] = ojson::array({ojson{{"model", f.model}, {"dataset", f.dataset}}});
  doc["quant"] = quant;
  if (!f.archs.empty()) doc["archs"] = f.archs;
  doc["eval"] = {{"images", f.eval_limit},
                 {"executor", quant::kEvalModeNames.name(mode)},
                 {"map", !f.archs.empty()}};
  return doc;
}

}  // namespace

int run_sweep(const std::vector<std::string>& args) {
  FlagStudy f;
  f.base.first_last_bits = 8;
  std::string config;
  study::RunOptions run;
  bool json = false, no_timing = false, quiet = false;
  const std::string reorder_help = "comma-separated: " + quant::kReorderMethodNames.list(" | ");
  const std::string search_help = "scale search: " + quant::kSearchMethodNames.list(" | ");
  po::options_description desc(
      "tilescale sweep: a design-space study, models x quantization settings x architectures\n"
      "(docs/study.md); writes DIR/results.csv and DIR/results.jsonl row by row, resumable.\n"
      "  tilescale sweep --config study.json --out DIR\n"
      "  tilescale sweep --model M.onnx --dataset D [--wbits ..] [--granularity ..] --out DIR\n"
      "Under mpirun the points are spread over the ranks; rank 0 writes the results.\n"
      "options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("config", po::value(&config), "study file (JSON, docs/study.md); the flags below marked [flag study] are then not allowed")
      ("out", po::value(&run.out_dir), "results folder (study.json, results.csv, results.jsonl, archs/, cache/)")
      ("cache", po::value(&run.cache_dir), "folder of the cached bundles (default: DIR/cache; share it between studies or cluster nodes)")
      ("jobs", po::value(&run.jobs)->default_value(0), "points run at once by this process (0 = the cores; 1 on MPI rank 0)")
      ("threads", po::value(&run.threads)->default_value(0), "threads per point (0 = cores / jobs; 1 under MPI)")
      ("no-timing", po::bool_switch(&no_timing), "leave out the *_seconds columns (files then depend only on the inputs)")
      ("quiet", po::bool_switch(&quiet), "no line per point, no progress bar")
      ("json", po::bool_switch(&json), "print results.jsonl on stdout at the end (the point lines go to stderr)")
      ("model", po::value(&f.model), "[flag study] ONNX model to quantize")
      ("dataset", po::value(&f.dataset), "[flag study] bundled data set: mnist | fmnist (train split calibrates, test split evaluates)")
      ("data-dir", po::value(&f.data_dir), "[flag study] folder of the bundled data sets (default: $TILESCALE_DATA or <source>/data)")
      ("wbits", po::value(&f.wbits)->default_value(f.wbits), "[flag study] comma-separated weight bits, each 2..8")
      ("abits", po::value(&f.base.a_bits)->default_value(f.base.a_bits), "[flag study] activation bits, 4..8 (32 = float, needs --mode fake)")
      ("first-last", po::value(&f.base.first_last_bits)->default_value(f.base.first_last_bits), "[flag study] bits of the first and last layer (0 = as the rest)")
      ("granularity", po::value(&f.granularity)->default_value(f.granularity), "[flag study] comma-separated: layer | channel | block:BOxBI | mx:N | vsq:N")
      ("reorder", po::value(&f.reorder)->default_value(f.reorder), ("[flag study] " + reorder_help).c_str())
      ("search", po::value(&f.search)->default_value(f.search), ("[flag study] " + search_help).c_str())
      ("calib", po::value(&f.base.calib_images)->default_value(f.base.calib_images), "[flag study] calibration images (seeded sample of the train split)")
      ("seed", po::value(&f.base.seed)->default_value(f.base.seed), "[flag study] calibration sample and k-means seed")
      ("eval-limit", po::value(&f.eval_limit)->default_value(0), "[flag study] evaluate the first N test images only (0 = all)")
      ("mode", po::value(&f.mode)->default_value(f.mode), "[flag study] evaluation: int (golden integer executor) | fake (fake-quant float)")
      ("arch", po::value(&f.archs)->multitoken(), "[flag study] architecture configs to map every bundle onto (cycles, area)");
  // clang-format on
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (run.out_dir.empty()) fail_input("--out", "required (the results folder to write)");
  if (run.jobs < 0) fail_input("--jobs", "must be >= 0");
  if (run.threads < 0) fail_input("--threads", "must be >= 0");
  run.timing = !no_timing;
  run.tool = self_executable();  // verify points start this binary again
  run.verbose = !quiet;

  study::Study s;
  if (!config.empty()) {
    for (const char* flag : {"model", "dataset", "data-dir", "arch"})
      if (vm.count(flag))
        fail_input(std::string("--") + flag,
                   "not allowed with --config (set it in the study file)");
    for (const char* flag : {"wbits", "abits", "first-last", "granularity", "reorder", "search",
                             "calib", "seed", "eval-limit", "mode"})
      if (!vm[flag].defaulted())
        fail_input(std::string("--") + flag,
                   "not allowed with --config (set it in the study file)");
    s = study::Study::parse_file(config);
  } else {
    s = study::Study::parse(flag_study(f), "sweep flags", "");
  }

  run.log_to_stderr = json;  // stdout then carries the JSON only
  study::RunSummary sum;
  if (study::mpi_launched()) {
    sum = study::run_study_mpi(s, run);
    if (sum.points < 0) return kInputErrorExit;  // rank 0 reported the error
  } else {
    study::prepare_out_dir(s, run);
    sum = study::run_study_local(s, run);
  }
  if (!sum.writer) return 0;  // an MPI worker rank: rank 0 reports
  if (run.verbose)
    std::fprintf(stderr,
                 "sweep: %lld points: %lld run now, %lld from before, %lld with errors; %s\n",
                 static_cast<long long>(sum.points), static_cast<long long>(sum.ran),
                 static_cast<long long>(sum.skipped), static_cast<long long>(sum.failed),
                 (run.out_dir + "/results.csv").c_str());
  if (json) std::cout << read_file(run.out_dir + "/results.jsonl");
  return 0;
}

}  // namespace tilescale::cli
