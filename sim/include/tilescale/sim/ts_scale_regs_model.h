// SystemC twin of rtl/ts_scale_regs.sv (Banks x Regs ts_scale_reg): one write port into a bank,
// one read per column of register rsel_i[c] in bank rbank_i (combinational). MantBits = 1 stores
// only the shift and reads m = 1. Registers reset to 0 and are written at a rising edge with adv_i
// high (the gated clock); a write to a register beyond Regs matches no register, as in the RTL.
#pragma once

#include <array>
#include <cstdint>
#include <systemc>

#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_pins.h"

namespace tilescale::sim {

template <class S>
SC_MODULE(TsScaleRegsModel) {
  static constexpr int C = S::kCols, kBanks = S::kBanks, kRegs = S::kRegs;
  static constexpr int kMant = S::kMantBits, kSel = S::kSelBits, kBank = S::kBankBits;
  static constexpr int kShift = host::kShiftBits;

  sc_core::sc_in<bool> clk_i;   // free-running clock
  sc_core::sc_in<bool> adv_i;   // clock-gate enable
  sc_core::sc_in<bool> rst_ni;  // async reset, active low: every register := 0
  sc_core::sc_in<bool> we_i;    // write one register
  sc_core::sc_in<pin_t<kBank>> wbank_i;
  sc_core::sc_in<pin_t<kSel>> wreg_i;
  sc_core::sc_in<pin_t<kMant>> wmant_i;
  sc_core::sc_in<pin_t<kShift>> wshift_i;
  sc_core::sc_in<pin_t<kBank>> rbank_i;                        // bank read by all columns
  sc_core::sc_vector<sc_core::sc_in<pin_t<kSel>>> rsel_i;      // [Cols] register of column c
  sc_core::sc_vector<sc_core::sc_out<pin_t<kMant>>> mant_o;    // [Cols]
  sc_core::sc_vector<sc_core::sc_out<pin_t<kShift>>> shift_o;  // [Cols]

  SC_HAS_PROCESS(TsScaleRegsModel);
  explicit TsScaleRegsModel(sc_core::sc_module_name name)
      : sc_core::sc_module(name), rsel_i("rsel_i", C), mant_o("mant_o", C), shift_o("shift_o", C) {
    SC_METHOD(comb);
    sensitive << rbank_i;
    for (int c = 0; c < C; ++c) sensitive << rsel_i[c];
    sensitive << state_changed_;
    SC_METHOD(seq);
    sensitive << clk_i.pos() << rst_ni.neg();
    dont_initialize();
  }

 private:
  void comb() {
    const uint64_t bank = bits::u64<kBank>(rbank_i.read());
    for (int c = 0; c < C; ++c) {
      const uint64_t reg = bits::u64<kSel>(rsel_i[c].read());
      // An index beyond the banks reads 0 (Verilator's out-of-range read; never selected).
      const bool in = bank < static_cast<uint64_t>(kBanks) && reg < static_cast<uint64_t>(kRegs);
      const Reg& x = in ? regs_[bank][reg] : zero_;
      mant_o[c].write(bits::pin<kMant>(kMant == 1 ? 1u : x.mant));
      shift_o[c].write(bits::pin<kShift>(x.shift));
    }
  }

  void seq() {
    if (!rst_ni.read()) {
      for (auto& b : regs_) b.fill(Reg{});
    } else if (clk_i.posedge() && adv_i.read() && we_i.read()) {
      const uint64_t bank = bits::u64<kBank>(wbank_i.read());
      const uint64_t reg = bits::u64<kSel>(wreg_i.read());
      if (bank < static_cast<uint64_t>(kBanks) && reg < static_cast<uint64_t>(kRegs))
        regs_[bank][reg] = {bits::u64<kMant>(wmant_i.read()), bits::u64<kShift>(wshift_i.read())};
    }
    // The outputs follow the new state one delta later (comb is their only writer).
    state_changed_.notify(sc_core::SC_ZERO_TIME);
  }

  struct Reg {
    uint64_t mant = 0;   // m, MantBits
    uint64_t shift = 0;  // F - r, ShiftBits
  };
  std::array<std::array<Reg, kRegs>, kBanks> regs_{};
  Reg zero_{};
  sc_core::sc_event state_changed_;  // seq changed the registers
};

}  // namespace tilescale::sim
