// Analytic cycle models of one layer at batch 1.
//
// native: what the project's systolic RTL and SystemC model do, cycle for cycle (they must match
// it exactly on stall-free configs). Per fold f of systolic_folds():
//   ws  stream T_f = m rows of activations (one vector per cycle); weights preload in R cycles into
//       shadow registers while the previous fold streams; scale registers load one per cycle, also
//       into shadows.    start_1 = max(R, S_1),  start_{f+1} = start_f + max(T_f, R, S_{f+1})
//   is  the same with activations stationary and the n output channels streamed.
//   os  stream T_f = the fold's reduction length; results move to shadow registers and shift out
//       down the columns in R cycles (the drain D_f) while the next fold computes, so two folds'
//       last streaming cycles are at least D_f apart (segments of different lengths follow each
//       other with block granularities):
//                    start_1 = S_1,  start_{f+1} = start_f + max(T_f, T_f + D_f - T_{f+1}, S_{f+1})
//       (with narrow ports T_f in the first two terms is the fold's streaming cycles; T_{f+1}
//       stays the step count: the start is decided from the descriptor, as ts_ctrl.sv does)
//   end = start_F + T_F + (R - 1) + (C - 1) + 1 [+ R drain for os] + kPostArrayLatency
// where S_f = SystolicFold::scale_loads. With SRAM bandwidth limits (words/cycle, 0 = unlimited)
// a preload takes max(R, ceil(rows_used * cols_used / weight_bw)) cycles; os and is vectors take
// ceil(words needed / bandwidth) cycles each. ws runs vector by vector, as the RTL's narrowed
// ports do (rtl/README.md, "Narrowed ports"): a vector enters the array when its
// ceil(rows_used / ifmap_bw) activation beats are in, and no earlier than ceil(cols_used /
// ofmap_bw) cycles after the previous output vector (whose row the ofmap port is writing), and
// the last row's beats add ceil(cols_used / ofmap_bw) - 1 cycles at the end. The difference to
// the unlimited run is reported as stalls.
//
// scalesim: SCALE-Sim v2's reported cycles and utilization (its compute modules as of 2024, stall
// free: InterfaceBandwidth CALC with SRAMs that do not stall its write buffer): per GEMM (each
// group is a layer, as SCALE-Sim expands depthwise layers) with (Sr, Sc, T) = ws (K, N, M),
// os (M, N, K), is (K, M, N): row folds ceil(Sr / R), col folds ceil(Sc / C), and demand lines per
// fold 2R + C + T - 2 (ws, is) or R + C + T - 2 (os); total cycles = folds * lines - 1.
#pragma once

#include <cstdint>
#include <vector>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"

namespace tilescale::map {

// Cycles from the last partial sum leaving the array to its requantized code in the output
// buffer: int32 group accumulator, scale unit, wide accumulator, requantization (one register
// each).
inline constexpr int64_t kPostArrayLatency = 4;

// Scale-register banks (= fold contexts) the native pipeline keeps, used round robin: what
// rtl/ts_ctrl.sv needs (rtl/README.md, "Banks and contexts needed"). A fold's context and scale
// bank are written with its descriptor, one fold before it starts, and read until its last partial
// sum has passed the scale unit: ws T + R + C - 1 cycles after the fold starts, os R cycles more
// (the drain). Later descriptors come at least R cycles apart (os: last steps R apart), so at most
// 3 + ceil((C - 1) / R) (ws) or 4 + ceil((C - 1) / R) (os) are in use at once. The generator
// (scripts/gen_rtl_config.py, ScaleBanks) uses the same formula; rtl_contract_tests checks both
// agree for every config, and the RTL's hazard assertions check every use. Each bank holds the
// registers one fold needs.
inline int scale_register_banks(int rows, int cols, Dataflow dataflow) {
  return (dataflow == Dataflow::OS ? 4 : 3) + (cols - 1 + rows - 1) / rows;
}

struct NativeCycles {
  int64_t cycles = 0;             // total, with bandwidth stalls, cycles
  int64_t stall_free_cycles = 0;  // the same with unlimited SRAM bandwidth, cycles
  int64_t stalls() const { return cycles - stall_free_cycles; }
  std::vector<int64_t> fold_start;  // first streaming cycle of each fold (with stalls), cycles
};
NativeCycles native_systolic_cycles(const std::vector<SystolicFold>& folds, const ArchConfig& arch);

struct ScaleSimCycles {
  int64_t cycles = 0;       // SCALE-Sim "Total cycles", summed over the layer's groups
  int64_t folds = 0;        // row folds x col folds, summed over groups
  double overall_util = 0;  // MACs / (R * C * cycles), percent
  double mapping_eff = 0;   // mean over folds of used PEs / (R * C), percent
  double compute_util = 0;  // mean over folds of used-PE MAC cycles / (R * C * fold cycles), %
};
ScaleSimCycles scalesim_cycles(const LayerWorkload& layer, const ArchConfig& arch);

}  // namespace tilescale::map
