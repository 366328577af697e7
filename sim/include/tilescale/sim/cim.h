// Cycle-accurate SystemC model of a compute-in-memory macro set (configs/cim*.json) with its ADCs
// in the loop: the numerics are quant/adc.h's rule, computed by the model itself from the crossbar
// cells it holds, and checked against the ADC-aware golden executor (quant/int_cim.h).
//
// Three sc_modules joined by registered valid/ready streams whose payloads are fixed-width buses
// (scalars and fixed-capacity lane arrays, like a packed Verilog bus; no std::vector on a port):
//   CimCtrl     the controller. Per round of up to `macros` crossbars: if the layer needs more
//               crossbars than `macros`, a programming phase writes one cell row of every crossbar
//               of the round per cycle (xbar_rows cycles) and the round's scale registers into the
//               bank of the round's parity; then one ReadCmd (pixel m, input step t) per handshake.
//   CimArray    the crossbars: a ReadCmd drives the active rows with the step's input digits (read
//               from the ifmap SRAM) and latches every column sum into a sample-and-hold buffer
//               (two buffers: one is read while the other is converted). The ADCs, one per
//               cols_per_adc columns, convert column group j = the ADC's j-th column in cycle j of
//               the buffer (the column mux: cols_per_adc cycles per step) and send an AdcBeat with
//               the codes of every crossbar of the round, the row counts and the step.
//   CimDigital  per column: shift-add of the codes (rtl/ts_shift_add.sv's arithmetic, column by
//               column: code << slice*cell_bits, minus row_count << (W-1) once per channel, times
//               +-2^bit0); after the last step and column group of a pixel, per crossbar the scale
//               unit (D * m << (F - r) from its scale registers), then the accumulation across
//               crossbars into the wide accumulator, and when a channel's last crossbar is in,
//               requantization with the fused clamp into the output buffer, checked on write.
//               A test can put another shift-add (the Verilated ts_shift_add) beside its own, in
//               lockstep (set_shift_add_unit, cim_shift_add.h).
// Cycles are counted by the model from cycle 0 (the first rising edge) to the last output write;
// the tests compare them with the mapper's CIM formula (mapper.cpp map_cim), never call it here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/cim_energy.h"
#include "tilescale/quant/adc.h"
#include "tilescale/sim/cim_shift_add.h"
#include "tilescale/sim/systolic.h"

namespace tilescale::sim {

// Bus capacities of the model (a config beyond them is refused with InputError).
inline constexpr int kCimMaxXbars = 64;    // crossbars per round (macros)
inline constexpr int kCimMaxLanes = 2048;  // ADC lanes per beat: macros x xbar_cols / cols_per_adc

struct CimLayerRun {
  LayerRun run;           // cycles, mismatches, output (folds = crossbars, scale_loads)
  map::CimEvents events;  // the energy events, counted by the modules as they happen: read
                          // handshakes, cells on rows driven with a non-zero digit, conversions,
                          // shift-add adds, scale-unit multiplies, accumulations, requantized
                          // outputs, SRAM words, reprogrammed cells (map/cim_energy.h)
  int64_t rounds = 0;     // crossbar rounds
};

class CimSim {
 public:
  // The process-wide model (SystemC elaborates once per process; a process runs either this
  // model or SystolicSim, not both).
  static CimSim& instance(const std::string& trace_path = "");
  // Runs one layer (job as for SystolicSim; job.layer's a_bits, act_signed and w_bits describe
  // the codes) on the CIM `arch`, comparing every output with job.expected.
  CimLayerRun run(const GemmJob& job, const map::ArchConfig& arch, const SimOptions& options);
  // Puts `unit` inside the digital stage from the next run on (cim_shift_add.h; nullptr: the
  // model's own shift-add only). Not owned; it must outlive the runs.
  void set_shift_add_unit(CimShiftAddUnit* unit);
  ~CimSim();

 private:
  explicit CimSim(const std::string& trace_path);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tilescale::sim
