// Design-space sweep (`tilescale sweep`): quantize one model for every combination of weight bits,
// granularity and channel reordering, evaluate top-1 on the test split, and tabulate accuracy
// against the scale cost (number of scales, bits per weight incl. scales).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tilescale/quant/eval_mode.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::study {

struct SweepConfig {
  std::string model_path;  // ONNX model file
  std::string dataset;     // bundled data set: mnist | fmnist
  std::string data_dir;    // folder of the bundled sets; empty = default_data_dir()
  // Options shared by every run (a_bits, first_last_bits, search, calib_images, seed, threads,
  // ...); w_bits, granularity and reorder are replaced by each combination below.
  quant::QuantOptions base;
  std::vector<int> w_bits;                          // weight bits to try, each 2..8
  std::vector<std::string> granularities;           // granularity texts (Granularity::parse)
  std::vector<std::string> reorders;                // none | sort | kmeans
  int64_t eval_limit = 0;                           // first N test images; 0 = the whole test split
  quant::EvalMode executor = quant::EvalMode::Int;  // how each quantized model is evaluated

  // Checks everything that does not need the model or the data (lists non-empty, every entry valid,
  // base options in range). Throws InputError naming the option.
  void validate() const;
};

// One quantization of the sweep, in the canonical spelling; lists are deduplicated.
struct SweepPoint {
  int w_bits = 4;                                             // weight bits
  std::string granularity;                                    // Granularity::str()
  quant::ReorderMethod reorder = quant::ReorderMethod::None;  // channel reordering
};

// The runs of a configuration in their fixed order: w_bits, then granularity, then reorder, each in
// the order given, a repeated entry (also a differently spelled equal granularity) run once.
// Validates the configuration first.
std::vector<SweepPoint> sweep_points(const SweepConfig& config);

// One result line. The float baseline row has granularity "float", executor "float", w_bits =
// a_bits = first_last = 32, reorder and search "none", 0 scales and 32 bits per weight.
struct SweepRow {
  std::string model;              // ONNX file name without its extension
  std::string dataset;            // data set name
  int w_bits = 0;                 // weight bits of the inner layers
  int a_bits = 0;                 // activation bits
  int first_last = 0;             // bits of the first and last layer (0 = as the rest)
  std::string granularity;        // Granularity::str(), or "float"
  std::string reorder;            // none | sort | kmeans
  std::string search;             // minmax | wmse | output, or "none"
  std::string executor;           // float | int | fake
  double top1 = 0.0;              // fraction of the evaluated test images classified correctly
  int64_t images = 0;             // test images evaluated
  int64_t scales = 0;             // weight scales of all Conv/Gemm layers (QuantSummary::scales)
  double bits_per_weight = 0.0;   // weight code plus scale storage bits per weight
  double quantize_seconds = 0.0;  // wall time of quantize(), s
  double eval_seconds = 0.0;      // wall time of the test-set evaluation, s
};

// The columns of the results files, in order; the two *_seconds columns are last.
const std::vector<std::string>& sweep_columns(bool timing);

// Called after every run with all rows so far (the float baseline first) and the total number of
// rows the sweep will produce.
using SweepProgress = std::function<void(const std::vector<SweepRow>& rows, std::size_t total)>;

// Loads the model and the data set (train split for calibration, test split for evaluation), checks
// every run against them (block sizes, image shape, eval limit) before any run starts, then
// evaluates the float baseline and every sweep point in order. Throws InputError for bad input,
// before any run.
std::vector<SweepRow> run_sweep(const SweepConfig& config, const SweepProgress& progress = {});

// The results as CSV (header line, one line per row, "\n" line ends) and as a JSON document
// {"generated_by", "complete", "runs", "columns", "rows": [{column: value}]}, where complete says
// whether rows holds all `runs` rows. Numbers are printed identically in both (shortest round-trip
// form); timing = false leaves out the *_seconds columns, so the text depends only on the inputs.
std::string sweep_csv(const std::vector<SweepRow>& rows, bool timing);
std::string sweep_json(const std::vector<SweepRow>& rows, bool timing, std::size_t runs);

// Creates dir if needed and writes dir/results.csv and dir/results.json, each atomically.
void write_sweep_results(const std::string& dir, const std::vector<SweepRow>& rows, bool timing,
                         std::size_t runs);

}  // namespace tilescale::study
