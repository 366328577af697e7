// Energy of a CIM layer (an estimate): the events that cost energy, counted either by the SystemC
// macro from its own activity (sim/src/cim.cpp) or from the mapper's tiling (cim_layer_events),
// times a per-event energy from mapping/area_params.json (the cim_energy_* and energy_* entries,
// each with its source; docs/mapping.md "Energy").
//
// The two counts agree event for event, layer by layer, except active_cells: the simulator counts
// the cells of rows whose input digit is not 0 (a row driven with 0 carries no current), the
// mapper, which has no data, counts every row of every read (every digit non-zero): an upper
// bound. tests/sim/cim_test.cpp checks both on every layer of resnet8.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/area_model.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"

namespace tilescale::map {

// Per image, one layer (or summed over layers / images).
struct CimEvents {
  int64_t xbar_reads = 0;       // read handshakes: all crossbars of a round, one pixel, one step
  int64_t active_cells = 0;     // cells of used columns on driven rows, summed over reads
  int64_t adc_conversions = 0;  // conversions of used columns
  int64_t shift_add_ops = 0;    // shift-add adds: one per ADC code + one offset per channel, step
  int64_t scale_ops = 0;        // scale-unit multiplies: one per crossbar, channel and pixel
  int64_t accumulations = 0;    // wide-accumulator adds across crossbars (one per scale op)
  int64_t requants = 0;         // requantized outputs
  int64_t ifmap_words = 0;      // activation words read into the crossbars' input registers
  int64_t ofmap_words = 0;      // output words written
  int64_t weight_words = 0;     // weights read from the weight SRAM to reprogram cells
  int64_t cell_writes = 0;      // cells reprogrammed (layers needing more crossbars than macros)

  CimEvents& operator+=(const CimEvents& o);
  bool operator==(const CimEvents& o) const;
};

// pJ per event, from the estimate table for one architecture.
struct CimEnergyTable {
  double adc_pj = 0;                  // per conversion at the arch's adc_bits
  double cell_read_pj = 0;            // per active cell
  double add_pj = 0;                  // 32-bit add
  double mult_pj = 0;                 // 32-bit multiply
  double sram_bit_pj = 0;             // per SRAM bit read or written
  int act_bits = 8, weight_bits = 8;  // SRAM word widths (the arch's datapath)
  std::string source;                 // the estimate table's path
  // Throws InputError naming the table for a missing entry (e.g. adc_bits beyond 10).
  static CimEnergyTable from(const AreaTable& table, const ArchConfig& arch);
};

struct CimEnergy {        // pJ
  double xbar = 0;        // active cells
  double adc = 0;         // conversions
  double shift_add = 0;   // shift-add adds
  double scale = 0;       // scale-unit multiplies
  double accumulate = 0;  // wide accumulations (two 32-bit adds each)
  double requant = 0;     // requantizations (two 32-bit adds each)
  double sram = 0;        // ifmap, ofmap and weight SRAM bits
  // Cell programming is not charged (no cited write energy in the table): cell_writes counts it.
  double total() const { return xbar + adc + shift_add + scale + accumulate + requant + sram; }
  CimEnergy& operator+=(const CimEnergy& o);
  CimEnergy operator*(double f) const;  // every part times f (per image from a sum over images)
};

CimEnergy cim_energy(const CimEvents& events, const CimEnergyTable& table);

// The mapper's count of one layer's events per image: crossbars enumerated as the macro runs them
// (group, column tile, row tile `folds`; rounds of `macros`), every input digit non-zero.
CimEvents cim_layer_events(const LayerWorkload& layer, const ArchConfig& arch,
                           const std::vector<KFold>& folds);

nlohmann::ordered_json to_json(const CimEvents& e);
nlohmann::ordered_json to_json(const CimEnergy& e);

}  // namespace tilescale::map
