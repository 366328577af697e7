// The per-image, per-layer loop that simulate_network (systolic) and simulate_network_cim share:
// the golden executor's codes give every Conv/Gemm layer its input and expected output, a model
// runs the layer, and the driver sums cycles, folds, mismatches and the simulator's time, and
// scores the simulated logits' top-1.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "tilescale/core/dataset.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/workload.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantized_model.h"
#include "tilescale/sim/network_sim.h"

namespace tilescale::sim {

// Simulates one layer of one image (job: its operands and golden output) and returns the run;
// model-specific counters (stalls, ADC conversions) go into `totals` here.
using LayerSimulator = std::function<LayerRun(const GemmJob& job, LayerTotals& totals)>;

// The checks both runs make before simulating (InputError): the bundle fits the arch
// (map::check_bundle_fits), 1 <= images <= data.count, the model takes the data set's images.
void check_network_inputs(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                          const Dataset& data, int64_t images);

// Runs the first `images` images of `data` through `simulate`, layer by layer, into `run`
// (run.layers already holds one LayerTotals per workload), then sets each layer's utilization and
// the run's time (the simulator's calls only) and speed; `pes` is the processing elements the
// utilization and PE-cycles/s count (PEs of the array, cells of the CIM macros).
void drive_network(const quant::QuantizedModel& model, const quant::IntExecutor& golden,
                   const std::vector<map::LayerWorkload>& workloads, const Dataset& data,
                   int64_t images, double pes, const LayerSimulator& simulate, NetworkRun& run);

}  // namespace tilescale::sim
