// `tilescale verify`: whole networks through the Verilated ts_top (rtl/), chained layer by layer.
// Every Conv/Gemm layer (all its conv groups as one ts_top layer, pixel tiles as the mapper cuts
// them) takes the previous simulated outputs as its input, through the golden executor's own
// host-side ops (quant::IntExecutor::run_codes_chained: Quantize, Add, pools, Concat, ...; the
// lowering is make_gemm_job's model/layout.h im2col), so the top-1 is the simulated network's own.
// Each layer's outputs are compared with the golden integer executor's (run independently on the
// same image); its cycles are measured by the SystemC testbench (ts_bench.h) from the handshakes
// and set beside map::native_systolic_cycles, the mapper's prediction.
//
// Test only: $TILESCALE_VERIFY_CORRUPT_LAYER=L flips bit 0 of every output of layer L after it was
// compared, before it feeds the chain, so the next layers see wrong inputs; a test shows that the
// first mismatch is then reported at layer L + 1 (the chain really runs on simulated outputs).
//
// The Verilated models are compiled into the library (sim/CMakeLists.txt,
// TILESCALE_VERIFY_CONFIGS); SystemC elaborates once per process, so verify_network runs once per
// process.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/core/enum_names.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/tiling.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::sim {

// Which accelerator model runs: the Verilated RTL, the SystemC twin of ts_top, or both in lockstep.
enum class VerifyModel { Rtl, SystemC, Both };
inline constexpr auto kVerifyModelNames = make_enum_names<VerifyModel>(
    "model",
    {{VerifyModel::Rtl, "rtl"}, {VerifyModel::SystemC, "systemc"}, {VerifyModel::Both, "both"}});

struct VerifyOptions {
  VerifyModel model = VerifyModel::Rtl;
  map::Align align = map::Align::Strict;  // fold alignment (as tilescale map)
  std::string trace_path;                 // FST waveform of the Verilated ts_top, empty: none
};

struct VerifyLayer {
  std::string name;                         // layer name
  int64_t groups = 1, m = 0, n = 0, k = 0;  // GEMM shape per group
  int64_t folds = 0;                        // per image
  int64_t rtl_cycles = 0;                   // summed over images, cycles (measured); -1: not run
  int64_t systemc_cycles = -1;              // summed over images, cycles; -1: not run
  int64_t mapper_cycles = 0;                // map::native_systolic_cycles x images, cycles
  int64_t stalls = 0;                       // summed over images, cycles (measured)
  int64_t outputs = 0;                      // output elements compared, all images
  int64_t mismatches = 0;                   // output lanes differing from the golden executor
  std::string first_mismatch;               // "image i: ..." (fold, pixel, channel, cycle)
  int64_t model_differences = 0;            // --model both: beats whose lanes or cycle differ
};

struct VerifyRun {
  std::string arch;                    // architecture name
  std::string model;                   // rtl | systemc | both
  int64_t images = 0;                  // images run
  std::vector<VerifyLayer> layers;     // Conv/Gemm layers in execution order
  int64_t rtl_cycles = 0;              // all layers and images, cycles; -1: not run
  int64_t systemc_cycles = -1;         // the same for the SystemC twin; -1: not run
  int64_t mapper_cycles = 0;           // the mapper's prediction for the same, cycles
  int64_t stalls = 0;                  // all layers and images, cycles
  int64_t mismatches = 0;              // all layers and images
  std::string first_mismatch;          // first layer (in execution order) with a mismatch
  int64_t model_differences = 0;       // --model both: output beats where RTL and twin differ
  std::string first_model_difference;  // the first of them
  int64_t correct = 0;                 // images whose simulated top-1 equals the label
  std::vector<int64_t> predictions;    // [images] simulated top-1 class
  double seconds = 0;                  // wall time of the whole run (golden executor included), s
  // Cycles of one image: the RTL's, or the twin's when only the twin ran.
  int64_t cycles_per_image() const {
    return images ? (rtl_cycles >= 0 ? rtl_cycles : systemc_cycles) / images : 0;
  }
};

// The configs whose ts_top is Verilated into this build (empty in a sanitizer build).
std::vector<std::string> verilated_configs();

// Throws InputError when the model is not in this build (the SystemC twin) or cannot trace.
void check_verify_model(const VerifyOptions& options);

// Runs the first `images` images of `data`. Throws InputError (the CLI's exit 2) when: the arch has
// no Verilated build (the message names the built configs and how to add one) or its parameters
// differ from the build's; the bundle does not fit the arch or the RTL's bit widths (act/weight
// bits, scale mantissas, frac_bits beyond the 6-bit shift, a fold's column sum beyond acc_bits, a
// wide sum beyond 64 bits); the image count is out of range; the model is not available
// (--model systemc|both without the SystemC twin in this build).
VerifyRun verify_network(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                         const Dataset& data, int64_t images, const VerifyOptions& options);

// The JSON report (`--json`) and the human table.
nlohmann::ordered_json to_json(const VerifyRun& run, const std::string& bundle);
std::string to_table(const VerifyRun& run, const std::string& bundle, const std::string& data);

}  // namespace tilescale::sim
