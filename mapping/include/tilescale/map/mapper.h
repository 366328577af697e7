// The mapper: every layer of a network tiled onto one architecture, with folds, cycles,
// utilization, scale registers and scale-unit work, SRAM traffic and the area of the hardware
// (DESIGN.md sections 6-7). `tilescale map` prints this report.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/area_model.h"
#include "tilescale/map/cim_energy.h"
#include "tilescale/map/synth_top.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"

namespace tilescale::quant {
struct QuantizedModel;
}

namespace tilescale::map {

enum class CycleModel { Native, ScaleSim };
// The --cycle-model option and the report's "cycle_model".
inline constexpr auto kCycleModelNames = make_enum_names<CycleModel>(
    "cycle model", {{CycleModel::Native, "native"}, {CycleModel::ScaleSim, "scalesim"}});

struct MapOptions {
  Align align = Align::Strict;
  CycleModel cycle_model = CycleModel::Native;
};

struct LayerMap {
  std::string name;                         // layer name
  int64_t groups = 1, m = 0, n = 0, k = 0;  // GEMM shape per group
  int64_t macs = 0;                         // multiply-accumulates per image
  int64_t folds = 0;                        // array folds (systolic) or crossbar tiles (CIM)
  int64_t cycles = 0;                       // per image, with stalls, cycles
  int64_t stalls = 0;                       // bandwidth stall cycles (native model)
  double utilization = 0;  // macs / (PEs * cycles), fraction (CIM: used cells / mapped cells)
  double mapping_utilization = 0;  // mean over folds of used PEs / PEs, fraction
  int64_t scale_registers = 0;     // largest number of scale registers one fold / crossbar needs
  int64_t scale_loads = 0;         // scale-register writes over the layer
  int64_t scale_ops = 0;           // scale-unit multiplies (or shifts) over the layer
  int64_t padded_rows = 0;         // array rows left empty by --align pad, summed over folds
  int64_t ifmap_reads = 0, weight_reads = 0, psum_writes = 0, ofmap_writes = 0;  // SRAM, words
  int psum_bits = 0;       // worst-case bits of one fold's column sum (signed)
  int64_t acc_words = 0;   // systolic: accumulator words per column its largest fold keeps
  bool adc_clips = false;  // CIM: a column sum can exceed the ADC range
  double scalesim_mapping_eff = 0, scalesim_compute_util = 0;  // scalesim model only, percent
  CimEvents cim_events;  // CIM: events per image (cim_energy.h; active_cells an upper bound)
  CimEnergy energy;      // CIM: their energy per image from the estimate table, pJ
};

struct AreaBreakdown {         // um^2
  double pe_array = 0;         // PEs (systolic) or crossbar cells (CIM, estimate)
  double adcs = 0;             // CIM ADCs (estimate)
  double shift_add = 0;        // CIM shift-and-add units
  double scale_units = 0;      // block-scale multipliers / shifters
  double accumulators = 0;     // int32 group accumulators and wide accumulators
  double requant = 0;          // requantization units
  double scale_registers = 0;  // scale registers the mapped granularity needs
  double acc_storage = 0;      // systolic: the part of the ofmap SRAM the schedule uses as
                               // accumulator storage (acc_words_needed words per column, estimate)
  double sram = 0;             // ifmap + weight + the rest of the ofmap SRAM (estimate)
  double total() const {
    return pe_array + adcs + shift_add + scale_units + accumulators + requant + scale_registers +
           acc_storage + sram;
  }
};

struct NetworkMap {
  std::string arch;                             // architecture name
  CycleModel cycle_model = CycleModel::Native;  // which cycle model counted the cycles
  std::string granularity;                      // of the bundle, or "layer" for SCALE-Sim workloads
  std::vector<LayerMap> layers;
  int64_t cycles = 0;           // one image, cycles
  int64_t stalls = 0;           // one image, cycles
  int64_t macs = 0;             // one image
  int64_t scale_registers = 0;  // max over layers
  int64_t scale_ops = 0;
  int64_t acc_words = 0;         // systolic: accumulator words per column the config provides
  int64_t acc_words_needed = 0;  // systolic: the most any fold keeps (max over layers)
  int wide_acc_bits = 48;        // wide accumulator width the bundle needs (48 or 64), bits
  AreaBreakdown area;
  std::string area_sources;  // synthesis table and estimate table used
  // ts_top synthesized for this arch (rtl/ts_top_area.json), shown beside the composed `area`;
  // set by the caller (find_synthesized_top), not by map_network.
  std::optional<SynthesizedTop> synthesized_top;
  double utilization = 0;     // cycle-weighted mean of the layers' utilization, fraction
  bool cim = false;           // a CIM architecture (the energy estimate exists)
  CimEnergy energy;           // CIM: per image, summed over layers, pJ (estimate)
  std::string energy_source;  // CIM: the estimate table the energy came from
};

// Checks that a bundle can run on the architecture: weight and activation bits within the
// datapath, integer activations, every multiplier representable by the scale unit (fixed: m <
// 2^mant_bits; shift: m a power of two; none: one scale per layer). Throws InputError naming the
// arch file, the layer and the field.
void check_bundle_fits(const quant::QuantizedModel& model, const ArchConfig& arch);

// Bits the wide accumulator needs for a bundle: the largest |sum of scaled block partial sums +
// bias| over every layer and output channel (int_arith.h), plus a sign bit.
int wide_accumulator_bits(const quant::QuantizedModel& model);

// Maps one layer (tiles, cycles, scale registers; no area). Throws as map_network.
LayerMap map_layer(const LayerWorkload& layer, const ArchConfig& arch, const MapOptions& options);
// Signed bits the accumulator registers (acc_bits) need for a layer's systolic folds at the
// largest activation and weight codes: `fold`, a fold's column sum (the PE partial sums); `run`,
// the sum the edge keeps over a run of folds of one reduction group (the group sum of a block).
struct AccumulatorBits {
  int fold = 0;  // bits, one fold
  int run = 0;   // bits, the longest run of folds of one reduction group
};
AccumulatorBits accumulator_bits(const LayerWorkload& layer,
                                 const std::vector<SystolicFold>& folds);
// Throws InputError naming the arch file and the layer when acc_bits is narrower than either
// (registers would wrap where the golden executor does not). map_network, `tilescale simulate`
// and `tilescale verify` call this one function, so they refuse the same configs alike.
void check_accumulator_bits(const LayerWorkload& layer, const std::vector<SystolicFold>& folds,
                            const ArchConfig& arch);

// Maps every layer. Throws InputError for an alignment refusal (Align::Strict) or a fold that
// needs more scale registers than the arch provides.
NetworkMap map_network(const std::vector<LayerWorkload>& layers, const ArchConfig& arch,
                       const MapOptions& options, const AreaTable& area, int wide_acc_bits);

nlohmann::json to_json(const NetworkMap& map);
std::string to_table(const NetworkMap& map);

}  // namespace tilescale::map
