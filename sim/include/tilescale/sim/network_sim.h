// A whole network on the simulated accelerator: every Conv/Gemm layer runs on the SystemC model
// with its input taken from the golden integer executor (quant::IntExecutor::run_codes), and every
// output element is compared with the golden tensor. Non-GEMM ops (Add, pools, reshapes) stay on
// the host: since each layer starts from the golden input and each output is checked bit for bit,
// this is equivalent to chaining the simulated layers. Top-1 comes from the simulated logits.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/cim_energy.h"
#include "tilescale/map/workload.h"
#include "tilescale/quant/quantized_model.h"
#include "tilescale/sim/systolic.h"

namespace tilescale::sim {

// The accelerator's view of layer `index` of a bundle for one image: im2col'd input in hardware
// order from `input_codes` (the layer input's codes of that image, CHW), weights in hardware order,
// requantization constants; expected = `output_codes` (the golden output of that image) if given.
GemmJob make_gemm_job(const quant::QuantizedModel& model, std::size_t index,
                      const int64_t* input_codes, const int64_t* output_codes);
// The same with the layer's workload already built (map::workloads_from_model(model)[index]).
GemmJob make_gemm_job(const quant::QuantizedModel& model, std::size_t index,
                      const map::LayerWorkload& workload, const int64_t* input_codes,
                      const int64_t* output_codes);

struct LayerTotals {
  std::string name;               // layer name
  int64_t cycles = 0;             // summed over images, cycles
  int64_t stalls = 0;             // summed over images, cycles
  int64_t native_cycles = 0;      // map::native_systolic_cycles() per image, cycles
  int64_t native_stall_free = 0;  // the same with unlimited SRAM bandwidth, cycles
  int64_t folds = 0;              // per image
  int64_t scale_loads = 0;        // per image, scale-register writes
  int64_t macs = 0;               // per image
  int64_t mismatches = 0;         // over all images
  double utilization = 0;         // macs / (PEs * cycles), fraction (CIM: cells for PEs)
  map::CimEvents cim_events;      // CIM: energy events counted by the macro, all images
  map::CimEvents map_events;      // CIM: the mapper's count per image (active_cells: its bound)
  map::CimEnergy energy;          // CIM: energy of cim_events per image, pJ (estimate)
  map::CimEnergy map_energy;      // CIM: energy of map_events per image, pJ (estimate)
};

struct NetworkRun {
  std::string arch;                  // architecture name
  bool cim = false;                  // ran on the CIM macro (simulate_network_cim)
  int64_t images = 0;                // images simulated
  std::vector<LayerTotals> layers;   // Conv/Gemm layers in execution order
  int64_t total_cycles = 0;          // all images, cycles
  int64_t stalls = 0;                // all images, cycles
  int64_t mismatches = 0;            // differing output elements, all layers and images
  std::string first_mismatch;        // "image i: layer ..." or empty
  int64_t correct = 0;               // images whose simulated top-1 equals the label
  std::vector<int64_t> predictions;  // [images] simulated top-1 class
  double seconds = 0;                // wall time of the simulation (golden executor excluded), s
  double cpu_seconds = 0;            // CPU time of the simulating thread over the same span, s
  double pe_cycles_per_s = 0;        // rows * cols * total_cycles / seconds
  double pe_cycles_per_cpu_s = 0;    // rows * cols * total_cycles / cpu_seconds (one core)
  map::CimEnergy energy;             // CIM: per image, summed over layers, pJ (estimate)
  std::string energy_source;         // CIM: the estimate table (mapping/area_params.json)
  std::string energy_note;           // CIM: why there is no energy (empty when there is)
  int64_t cycles_per_image() const { return images ? total_cycles / images : 0; }
};

// Throws InputError unless 1 <= images <= data.count; the message describes the count and the
// allowed range, not where the count came from (the CLI adds its flag with with_source).
void check_image_count(const Dataset& data, int64_t images);

// Simulates the first `images` images of `data`. Throws InputError if the bundle does not fit the
// arch (map::check_bundle_fits), acc_bits is too narrow for a layer's folds
// (map::check_accumulator_bits, as `tilescale map`; unless options.allow_narrow_acc), the image
// count is out of range (check_image_count), or the model does not take its images
// (model::check_model_fits_data); map::AlignError for a fold that strict alignment refuses.
NetworkRun simulate_network(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                            const Dataset& data, int64_t images, const SimOptions& options);

// The same on the SystemC CIM macro (cim.h), every layer checked against the golden executor with
// the arch's ADCs in the loop (quant/adc.h), cycles compared with the mapper's CIM formula.
NetworkRun simulate_network_cim(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                                const Dataset& data, int64_t images, const SimOptions& options);

// `tilescale simulate`'s report (sim_report.cpp): the JSON object of `--json` (bundle: the bundle
// directory as given) and the human table (data: the data set as described to the user).
nlohmann::ordered_json to_json(const NetworkRun& run, const std::string& bundle);
std::string to_table(const NetworkRun& run, const map::ArchConfig& arch, const std::string& bundle,
                     const std::string& data);

}  // namespace tilescale::sim
