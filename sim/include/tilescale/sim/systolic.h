// Cycle-accurate SystemC model of the weight- and output-stationary systolic arrays with per-tile
// scale registers (DESIGN.md sections 5-6, issue 5). One layer (a grouped GEMM with its scale
// blocks) runs per call; the model executes the mapper's systolic_folds() list and checks every
// output code against an expected tensor as it is written.
//
// Blocks and their streams (each a registered valid/ready pair, so Verilated RTL can replace one):
//   Frontend (controller, ifmap feeder with im2col rows, weight loader, scale loader; its SRAM
//            ports are streams of at most ifmap_bw / weight_bw / ofmap_bw words per beat)
//     --ActBeat--> Array      one activation vector per cycle (os: plus one weight row); the
//                             array's input skew delays row r (os weights: column c) by r (c)
//                             cycles (the diagonal wavefront)
//     --WeightBeat--> Array   ws: preload words into the column chains; a latch wave then moves
//                             them into the fold's weight bank, column c one cycle after c - 1
//     --ScaleWrite--> Edge    one scale register (multiplier m, shift r) per cycle
//   Array --PsumBeat--> Edge  one partial sum per column per cycle (columns skewed by one cycle;
//                             os: the drain chains, bottom row first)
//   Edge (per column: int32 group accumulator, scale unit, wide accumulator, requantization with
//         the fused activation clamp) writes the output buffer.
// Cycles are measured from these handshakes (systolic.cpp); the tests compare them with
// map::native_systolic_cycles() (cycle_model.h), which the model never calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"
#include "tilescale/quant/int_arith.h"

namespace tilescale::sim {

// One Conv/Gemm layer as the accelerator sees it: grouped GEMM operands in hardware order and the
// requantization constants (int_arith.h).
struct GemmJob {
  map::LayerWorkload layer;                        // shape and scale-block structure
  std::vector<int32_t> act;                        // [groups][m][k] im2col'd input codes
  std::vector<int32_t> weight;                     // [groups][k][n] weight codes
  std::vector<quant::FixedMultiplier> multiplier;  // [out_groups * red_groups] block multipliers
  int frac_bits = 0;                               // F: fractional bits of the wide accumulator
  std::vector<int64_t> bias_q;                     // [groups * n] bias with F fractional bits
  bool keep_acc = false;                           // logits: write the wide accumulator itself
  quant::IntRange clamp;                           // output grid intersected with fused Relu/Clip
  std::vector<int64_t> expected;                   // [groups * n][m] golden output, or empty
};

// The first output that differs from the expected tensor.
struct Mismatch {
  std::string layer;     // layer name
  int64_t fold = -1;     // index into the fold list
  int64_t channel = 0;   // output channel (all groups), o
  int64_t pixel = 0;     // output pixel, m
  int64_t cycle = 0;     // cycle the output buffer was written, cycles from the layer start
  int64_t got = 0;       // simulated code
  int64_t expected = 0;  // golden code
  std::string str() const;
};

struct LayerRun {
  std::string name;             // layer name
  int64_t cycles = 0;           // layer start to the last output written, cycles
  int64_t stalls = 0;           // cycles the fold starts waited on SRAM port beats, cycles
  int64_t folds = 0;            // folds executed
  int64_t scale_loads = 0;      // scale registers written
  int64_t macs = 0;             // useful multiply-accumulates
  int64_t mismatches = 0;       // outputs that differ from GemmJob::expected
  Mismatch first_mismatch;      // valid when mismatches > 0
  std::vector<int64_t> output;  // [groups * n][m] codes as written to the output buffer
  int scale_banks = 0;          // scale-register banks the run needed (see systolic.cpp)
};

struct SimOptions {
  map::Align align = map::Align::Strict;  // how folds meet scale blocks (as tilescale map)
  std::string trace_path;                 // VCD of the stream handshakes, empty: none
  int64_t max_cycles = int64_t{1} << 40;  // watchdog per layer, cycles
  // Test only: run an arch whose acc_bits is narrower than map::check_accumulator_bits requires,
  // so the partial sums wrap at acc_bits as the RTL's registers do (`tilescale simulate` sets it
  // from $TILESCALE_TEST_ALLOW_NARROW_ACC). Never set it to simulate a real design.
  bool allow_narrow_acc = false;
  // Test only: back-pressure on the ws ofmap write port (os drains its chains without one). Each
  // cycle the ofmap SRAM takes a beat with this chance (percent, seeded by ofmap_ready_seed);
  // 100 = always ready.
  int ofmap_ready_percent = 100;
  uint64_t ofmap_ready_seed = 1;
};

// The SystemC model. SystemC elaborates once per process, so there is one instance per process
// (instance()); the array size and the rest of the ArchConfig are run-time state of that instance,
// set per layer. Not thread safe.
class SystolicSim {
 public:
  // The process-wide model; trace_path is honoured by the first call only.
  static SystolicSim& instance(const std::string& trace_path = "");
  // Runs one layer on `arch` (ws or os; is and ofmap_bw < cols for os: InputError) and checks it
  // against job.expected.
  LayerRun run(const GemmJob& job, const map::ArchConfig& arch, const SimOptions& options);
  ~SystolicSim();

 private:
  explicit SystolicSim(const std::string& trace_path);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tilescale::sim
