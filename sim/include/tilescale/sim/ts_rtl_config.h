// A generated ts_top parameter set (rtl::RtlConfig, tilescale_rtl_configs.h from configs/*.json,
// scripts/gen_rtl_config.py) in the two forms the C++ side needs: the host's view (host::Arch, for
// folds and stimulus) and, at compile time, the TopParams the SystemC twin and the port-level
// testbench are instantiated with. The one place these are derived (verify.cpp and the tests).
// No SystemC here: TopParams is declared, not defined (ts_pins.h defines it), so the RTL contract
// test, which links no SystemC, can use arch_of.
#pragma once

#include "tilescale/sim/ts_host.h"
#include "tilescale_rtl_configs.h"

namespace tilescale::sim {

template <int RowsP, int ColsP, int DataflowP, int ActBitsP, int WeightBitsP, int AccBitsP,
          int ScaleKindP, int MantBitsP, int BanksP, int RegsP, int AccWordsP, int WideBitsP,
          int ActLanesP, int OutLanesP>
struct TopParams;

// Every ts_top parameter of a generated config, for TsTopModel<ParamsOf<C>> and TopBench.
template <const rtl::RtlConfig& C>
using ParamsOf = TopParams<C.rows, C.cols, C.dataflow, C.act_bits, C.weight_bits, C.acc_bits,
                           C.scale_kind, C.mant_bits, C.scale_banks, C.regs_per_bank, C.acc_words,
                           C.wide_bits, C.act_lanes, C.out_lanes>;

// The host's view of the config (ts_host.h: folds, stimulus, reference).
inline host::Arch arch_of(const rtl::RtlConfig& c) {
  host::Arch a;
  a.rows = c.rows;
  a.cols = c.cols;
  a.os = c.dataflow == 1;
  a.regs = c.regs_per_bank;
  a.acc_words = c.acc_words;
  a.mant_bits = c.mant_bits;
  a.wide_bits = c.wide_bits;
  a.act_lanes = c.act_lanes;
  a.out_lanes = c.out_lanes;
  return a;
}

}  // namespace tilescale::sim
