// SystemC twin of rtl/ts_edge.sv: one output column, four registered stages (with its
// ts_acc_mem, ts_scale_unit and ts_requant):
//   1 int32 group sums: AccBits words, restart or add, one word per output pixel (AccWords words)
//   2 scale unit: (P * m) << (F - r) in WideBits (shift-only: P << (F - r)), registered
//   3 wide accumulator: WideBits words, starting from the bias register
//   4 requantizer: saturate(round_shift_half_up(acc, F), output grid), registered, then the fused
//     clamp to [clamp_lo, clamp_hi] (or the wide value itself when keep_acc)
// Every register has the RTL's width and wraps there (AccBits group sums, WideBits scaled terms and
// sums): with a valid bundle nothing wraps and the result is int_arith.h's; with a too-narrow
// accumulator (a test-only override) it wraps as the RTL's registers do. Registers update at a
// rising edge with adv_i high (the gated clock); the bias register has the asynchronous reset.
#pragma once

#include <cstdint>
#include <string>
#include <systemc>
#include <vector>

#include "tilescale/quant/int_arith.h"
#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_pins.h"

namespace tilescale::sim {

// int_arith.h's round_shift_half_up(acc, F) for 0 <= F <= 63 as ts_requant computes it, in
// WideBits + 1 bits, so it never overflows: (acc + 2^(F-1)) >> F = (acc >> F) + bit F-1 of acc
// (floor division, the arithmetic shift). Equal to int_arith's wherever that does not throw.
inline int64_t requant_round(int64_t acc, int f) {
  if (f == 0) return acc;
  return (acc >> f) + ((acc >> (f - 1)) & 1);
}

template <class S>
SC_MODULE(TsEdgeModel) {
  static constexpr int kAcc = S::kAccBits, kWide = S::kWideBits, kA = S::kActBits;
  static constexpr int kWordBits = S::kWordBits, kMant = S::kMantBits;

  sc_core::sc_in<bool> clk_i;   // free-running clock
  sc_core::sc_in<bool> adv_i;   // clock-gate enable
  sc_core::sc_in<bool> rst_ni;  // async reset, active low
  // stage 1
  sc_core::sc_in<bool> v1_i;                 // psum_i carries a partial sum for this column
  sc_core::sc_in<pin_t<kWordBits>> word1_i;  // its accumulator word
  sc_core::sc_in<bool> restart1_i;           // first fold of a group run
  sc_core::sc_in<pin_t<kAcc>> psum_i;        // the column's partial sum from the array
  // stage 2
  sc_core::sc_in<bool> v2_i;                        // a group sum is scaled (valid bit only)
  sc_core::sc_in<pin_t<kMant>> mant_i;              // its block's mantissa m
  sc_core::sc_in<pin_t<host::kShiftBits>> shift_i;  // F - r
  // stage 3
  sc_core::sc_in<bool> v3_i;                 // a scaled group sum accumulates
  sc_core::sc_in<pin_t<kWordBits>> word3_i;  // its accumulator word
  sc_core::sc_in<bool> use_bias3_i;          // start from the bias
  sc_core::sc_in<bool> bias_load_i;          // take bias_i
  sc_core::sc_in<pin_t<kWide>> bias_i;       // this column's bias, F fractional bits
  // stage 4, layer constants
  sc_core::sc_in<pin_t<host::kShiftBits>> frac_i;  // F
  sc_core::sc_in<bool> out_signed_i;               // signed output grid
  sc_core::sc_in<bool> keep_acc_i;                 // emit the wide accumulator (logits)
  sc_core::sc_in<pin_t<host::kClampBits>> clamp_lo_i, clamp_hi_i;  // two's complement
  sc_core::sc_out<pin_t<kWide>> lane_o;  // code sign-extended, or the wide value

  SC_HAS_PROCESS(TsEdgeModel);
  explicit TsEdgeModel(sc_core::sc_module_name name)
      : sc_core::sc_module(name),
        grp_mem_(static_cast<std::size_t>(S::kAccWords), 0),
        wide_mem_(static_cast<std::size_t>(S::kAccWords), 0) {
    SC_METHOD(comb);
    sensitive << out_signed_i << keep_acc_i << clamp_lo_i << clamp_hi_i << state_changed_;
    SC_METHOD(seq);
    sensitive << clk_i.pos() << rst_ni.neg();
    dont_initialize();
  }

  // The stage registers in a VCD waveform (TsTopModel::trace), at their RTL widths.
  void trace(sc_core::sc_trace_file * tf) const override {
    const std::string p = std::string(name()) + ".";
    sc_core::sc_trace(tf, grp_q_, p + "grp_q", kAcc);
    sc_core::sc_trace(tf, scaled_q_, p + "scaled_q", kWide);
    sc_core::sc_trace(tf, wide_q_, p + "wide_q", kWide);
    sc_core::sc_trace(tf, bias_q_, p + "bias_q", kWide);
    sc_core::sc_trace(tf, code_q_, p + "code_q", kA);
    sc_core::sc_trace(tf, keep_q_, p + "keep_q", kWide);
  }

 private:
  // ts_acc_mem: asynchronous read; a word beyond AccWords (a descriptor the RTL's assertions
  // refuse) reads 0 and is not written.
  static int64_t read(const std::vector<int64_t>& mem, uint64_t word) {
    return word < mem.size() ? mem[static_cast<std::size_t>(word)] : 0;
  }
  static void write(std::vector<int64_t> & mem, uint64_t word, int64_t v) {
    if (word < mem.size()) mem[static_cast<std::size_t>(word)] = v;
  }

  void comb() {
    if (keep_acc_i.read()) {
      lane_o.write(bits::pin<kWide>(static_cast<uint64_t>(keep_q_)));
      return;
    }
    // The fused clamp: [lo, hi] lies inside the output grid.
    const int64_t code = out_signed_i.read() ? bits::sext(code_q_, kA)
                                             : static_cast<int64_t>(code_q_ & bits::mask(kA));
    const int64_t lo = bits::sext(bits::u64<host::kClampBits>(clamp_lo_i.read()), host::kClampBits);
    const int64_t hi = bits::sext(bits::u64<host::kClampBits>(clamp_hi_i.read()), host::kClampBits);
    const int64_t clamped = code < lo ? lo : code > hi ? hi : code;
    lane_o.write(bits::pin<kWide>(static_cast<uint64_t>(clamped)));
  }

  void seq() {
    if (!rst_ni.read()) {
      bias_q_ = 0;
    } else if (clk_i.posedge() && adv_i.read()) {
      // Stage 1: the group sum of this word, restarted or continued, wrapping at AccBits.
      const uint64_t word1 = bits::u64<kWordBits>(word1_i.read());
      const int64_t psum = bits::sext(bits::u64<kAcc>(psum_i.read()), kAcc);
      const int64_t grp_sum =
          restart1_i.read() ? psum : bits::add(read(grp_mem_, word1), psum, kAcc);
      if (v1_i.read()) write(grp_mem_, word1, grp_sum);
      // Stage 2: OutBits'(P) * OutBits'({1'b0, m}) <<< (F - r), all in WideBits.
      const uint64_t m = kMant == 1 || S::kShiftOnly ? 1u : bits::u64<kMant>(mant_i.read());
      const int sh = static_cast<int>(bits::u64<host::kShiftBits>(shift_i.read()));
      const uint64_t prod = static_cast<uint64_t>(grp_q_) * m;
      const int64_t scaled = bits::wrap(static_cast<int64_t>(prod << sh), kWide);
      // Stage 3: the wide sum from the bias or this word's previous sum, with the scale unit's
      // registered term.
      const uint64_t word3 = bits::u64<kWordBits>(word3_i.read());
      const int64_t base = use_bias3_i.read() ? bias_q_ : read(wide_mem_, word3);
      const int64_t wide_sum = bits::add(base, scaled_q_, kWide);
      if (v3_i.read()) write(wide_mem_, word3, wide_sum);
      // Stage 4: requantize the registered wide sum to the output grid (ts_requant).
      const int f = static_cast<int>(bits::u64<host::kShiftBits>(frac_i.read()));
      const quant::IntRange grid =
          out_signed_i.read() ? quant::signed_range(kA) : quant::unsigned_range(kA);
      const int64_t q = quant::saturate(requant_round(wide_q_, f), grid);
      code_q_ = static_cast<uint64_t>(q) & bits::mask(kA);
      keep_q_ = wide_q_;
      wide_q_ = wide_sum;
      scaled_q_ = scaled;
      grp_q_ = grp_sum;
      if (bias_load_i.read()) bias_q_ = bits::sext(bits::u64<kWide>(bias_i.read()), kWide);
    }
    // The outputs follow the new state one delta later (comb is their only writer).
    state_changed_.notify(sc_core::SC_ZERO_TIME);
  }

  std::vector<int64_t> grp_mem_;     // [AccWords] group sums, AccBits signed
  std::vector<int64_t> wide_mem_;    // [AccWords] wide sums, WideBits signed
  int64_t grp_q_ = 0;                // stage-1 register: the group sum just formed, AccBits
  int64_t scaled_q_ = 0;             // stage-2 register (ts_scale_unit's out_q), WideBits
  int64_t wide_q_ = 0;               // stage-3 register: the wide sum just formed, WideBits
  int64_t bias_q_ = 0;               // bias register, WideBits
  uint64_t code_q_ = 0;              // stage-4 register (ts_requant's q_q), ActBits code bits
  int64_t keep_q_ = 0;               // stage-4 register: the wide value for logits
  sc_core::sc_event state_changed_;  // seq changed the registers
};

}  // namespace tilescale::sim
