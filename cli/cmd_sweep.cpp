// tilescale sweep: accuracy versus scale cost over weight bits x granularity x channel reordering.
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "parse_options.h"
#include "quant_flags.h"
#include "tilescale/core/error.h"
#include "tilescale/study/sweep.h"

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

void print_header(FILE* f) {
  std::fprintf(f, "%7s  %-6s %-4s %-16s %-7s %-7s %8s %8s %7s %9s %8s\n", "run", "W/A", "f/l",
               "granularity", "reorder", "exec", "top-1 %", "scales", "bits/w", "quant s",
               "eval s");
}

void print_row(FILE* f, const study::SweepRow& r, std::size_t index, std::size_t total) {
  const std::string run = std::to_string(index + 1) + "/" + std::to_string(total);
  const std::string wa = r.executor == "float"
                             ? std::string("float")
                             : "W" + std::to_string(r.w_bits) + "A" + std::to_string(r.a_bits);
  const std::string fl = r.executor == "float" ? "-" : std::to_string(r.first_last);
  std::fprintf(f, "%7s  %-6s %-4s %-16s %-7s %-7s %8.2f %8lld %7.3f %9.2f %8.2f\n", run.c_str(),
               wa.c_str(), fl.c_str(), r.granularity.c_str(), r.reorder.c_str(), r.executor.c_str(),
               100.0 * r.top1, static_cast<long long>(r.scales), r.bits_per_weight,
               r.quantize_seconds, r.eval_seconds);
  std::fflush(f);
}

}  // namespace

int run_sweep(const std::vector<std::string>& args) {
  study::SweepConfig cfg;
  cfg.base.first_last_bits = 8;
  std::string wbits = "4", granularity = "layer,channel,block:16x16", out_dir;
  std::string reorder = quant::kReorderMethodNames.name(cfg.base.reorder);
  std::string search = quant::kSearchMethodNames.name(cfg.base.search);
  std::string mode = quant::kEvalModeNames.name(cfg.executor);
  bool json = false, no_timing = false;
  const std::string reorder_help = "comma-separated: " + quant::kReorderMethodNames.list(" | ");
  const std::string search_help = "scale search: " + quant::kSearchMethodNames.list(" | ");
  po::options_description desc(
      "tilescale sweep: top-1 versus scale cost for every combination of weight bits, granularity\n"
      "and channel reordering (plus a float baseline); writes DIR/results.csv and "
      "DIR/results.json\n"
      "options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&cfg.model_path), "ONNX model to quantize")
      ("dataset", po::value(&cfg.dataset), "bundled data set: mnist | fmnist (train split calibrates, test split evaluates)")
      ("data-dir", po::value(&cfg.data_dir), "folder of the bundled data sets (default: $TILESCALE_DATA or <source>/data)")
      ("wbits", po::value(&wbits)->default_value(wbits), "comma-separated weight bits, each 2..8")
      ("abits", po::value(&cfg.base.a_bits)->default_value(cfg.base.a_bits), "activation bits, 4..8 (32 = float, needs --mode fake)")
      ("first-last", po::value(&cfg.base.first_last_bits)->default_value(cfg.base.first_last_bits), "bits of the first and last layer (0 = as the rest)")
      ("granularity", po::value(&granularity)->default_value(granularity), "comma-separated: layer | channel | block:BOxBI | mx:N | vsq:N")
      ("reorder", po::value(&reorder)->default_value(reorder), reorder_help.c_str())
      ("search", po::value(&search)->default_value(search), search_help.c_str())
      ("calib", po::value(&cfg.base.calib_images)->default_value(cfg.base.calib_images), "calibration images (seeded sample of the train split)")
      ("seed", po::value(&cfg.base.seed)->default_value(cfg.base.seed), "calibration sample and k-means seed")
      ("eval-limit", po::value(&cfg.eval_limit)->default_value(0), "evaluate the first N test images only (0 = all)")
      ("mode", po::value(&mode)->default_value(mode), "evaluation: int (golden integer executor) | fake (fake-quant float)")
      ("threads", po::value(&cfg.base.threads)->default_value(0), "worker threads (0 = all cores)")
      ("out", po::value(&out_dir), "results directory (results.csv, results.json, rewritten after every run)")
      ("no-timing", po::bool_switch(&no_timing), "leave out the *_seconds columns (files then depend only on the inputs)")
      ("json", po::bool_switch(&json), "print the results JSON on stdout (the table goes to stderr)");
  // clang-format on
  if (!parse_options(desc, args)) return 0;
  if (cfg.model_path.empty()) fail_input("--model", "required (an ONNX file)");
  if (out_dir.empty()) fail_input("--out", "required (the results directory to write)");
  if (std::filesystem::exists(out_dir) && !std::filesystem::is_directory(out_dir))
    fail_input("--out", out_dir + " exists and is not a directory");
  cfg.w_bits = split_ints("--wbits", wbits);
  cfg.granularities = split_list("--granularity", granularity);
  cfg.reorders = split_list("--reorder", reorder);
  cfg.base.search = parse_flag("--search", search, quant::kSearchMethodNames);
  cfg.executor = parse_flag("--mode", mode, quant::kEvalModeNames);
  // The library's checks name the option fields; these name the flags.
  quant::QuantOptions o = cfg.base;
  check_quant_flags(o);
  for (int w : cfg.w_bits) {
    o.w_bits = w;
    check_quant_flags(o);
  }

  const bool timing = !no_timing;
  FILE* table = json ? stderr : stdout;
  bool header = false;
  // run_sweep checks all input before the first run, so a bad option or file writes nothing; after
  // that the results files are rewritten (atomically) after every run, so a stopped sweep keeps the
  // finished runs and results.json says it is incomplete.
  const auto rows =
      study::run_sweep(cfg, [&](const std::vector<study::SweepRow>& done, std::size_t total) {
        if (!header) print_header(table);
        header = true;
        print_row(table, done.back(), done.size() - 1, total);
        study::write_sweep_results(out_dir, done, timing, total);
      });
  if (json) std::cout << study::sweep_json(rows, timing, rows.size());
  return 0;
}

}  // namespace tilescale::cli
