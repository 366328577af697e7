// SystemC twin of rtl/ts_systolic_array.sv (with its ts_pe_ws / ts_pe_os and ts_delay lines):
// Rows x Cols PEs, the diagonal activation skew (os: and the weight skew), the ws shadow weights
// with their write and load waves, the os drain registers, and the de-skew of the column outputs.
// Ports as the RTL's, packed vectors as lanes of the same widths. The PEs' registers live inside
// this one module (as in the RTL, the PEs are instances of the array, not separate streams).
//
// Registers and widths are the RTL's: a PE's partial sum (ws) and accumulator (os) are AccBits
// two's complement and wrap there; products are exact (ActBits + 1 + WeightBits bits) and then
// sign-extended or truncated to AccBits, as `AccBits'(prod)` does. Every register updates only at
// a rising edge with adv_i high (the RTL's gated clock); the ones with an asynchronous reset in the
// RTL (stationary weights, os accumulators, control delay lines) reset with rst_ni.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <systemc>

#include "tilescale/sim/ts_pins.h"

namespace tilescale::sim {

template <class S>
SC_MODULE(TsArrayModel) {
  static constexpr int R = S::kRows, C = S::kCols;
  static constexpr int kA = S::kActBits, kW = S::kWeightBits, kAcc = S::kAccBits;
  static constexpr int kRowBits = S::kRowBits;

  sc_core::sc_in<bool> clk_i;         // free-running clock
  sc_core::sc_in<bool> adv_i;         // clock-gate enable: registers update only when high
  sc_core::sc_in<bool> rst_ni;        // async reset, active low
  sc_core::sc_in<bool> act_signed_i;  // layer-wide: activation codes are signed
  sc_core::sc_vector<sc_core::sc_in<pin_t<kA>>> act_i;      // [Rows] codes entering the rows
  sc_core::sc_in<bool> ld_i;                                // ws: load wave starts
  sc_core::sc_in<bool> wr_valid_i;                          // ws: write a preload row
  sc_core::sc_in<pin_t<kRowBits>> wr_row_i;                 // ws: its row
  sc_core::sc_vector<sc_core::sc_in<pin_t<kW>>> wr_data_i;  // [Cols] ws: its weights
  sc_core::sc_vector<sc_core::sc_in<pin_t<kW>>> w_i;        // [Cols] os: weights entering
  sc_core::sc_in<bool> first_i;                             // os: a fold's first step
  sc_core::sc_in<bool> last_i;                              // os: a fold's last step
  sc_core::sc_vector<sc_core::sc_out<pin_t<kAcc>>> psum_o;  // [Cols] aligned column sums

  SC_HAS_PROCESS(TsArrayModel);
  explicit TsArrayModel(sc_core::sc_module_name name)
      : sc_core::sc_module(name),
        act_i("act_i", R),
        wr_data_i("wr_data_i", C),
        w_i("w_i", C),
        psum_o("psum_o", C) {
    SC_METHOD(seq);
    sensitive << clk_i.pos() << rst_ni.neg();
    dont_initialize();
  }

  // The PE registers in a VCD waveform (TsTopModel::trace), at their RTL widths: activation,
  // weight, and the partial sum (ws) or accumulator (os) of PE [r][c].
  void trace(sc_core::sc_trace_file * tf) const override {
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) {
        const std::string p =
            std::string(name()) + ".pe_" + std::to_string(r) + "_" + std::to_string(c) + ".";
        sc_core::sc_trace(tf, act_q_[r][c], p + "act_q", kA);
        sc_core::sc_trace(tf, w_q_[r][c], p + "w_q", kW);
        sc_core::sc_trace(tf, S::kOs ? acc_q_[r][c] : psum_q_[r][c],
                          p + (S::kOs ? "acc_q" : "psum_q"), kAcc);
      }
  }

 private:
  // The PE's signed operand: an ActBits code extended to ActBits + 1 bits (signed grid or not).
  static int64_t act_value(uint64_t code, bool act_signed) {
    return act_signed ? bits::sext(code, kA) : static_cast<int64_t>(code & bits::mask(kA));
  }
  // AccBits'(act * w): the exact product, then sign-extended or truncated to AccBits.
  static int64_t product(uint64_t code, bool act_signed, uint64_t w) {
    return bits::wrap(act_value(code, act_signed) * bits::sext(w, kW), kAcc);
  }

  void reset() {
    if (!S::kOs)
      for (auto& row : w_q_) row.fill(0);
    for (auto& row : acc_q_) row.fill(0);
    ld_line_.fill(false);
    for (auto& x : wr_valid_line_) x.fill(false);
    for (auto& x : wr_row_line_) x.fill(0);
    first_line_.fill(false);
    last_line_.fill(false);
  }

  // Input of delay line `line` at depth k (k = 0: the input itself).
  template <class T, std::size_t N>
  static T tap(const std::array<T, N>& line, int k, T in) {
    return k == 0 ? in : line[static_cast<std::size_t>(k - 1)];
  }
  template <class T, std::size_t N>
  static void shift(std::array<T, N> & line, int depth, T in) {
    for (int i = depth - 1; i > 0; --i) line[i] = line[i - 1];
    if (depth > 0) line[0] = in;
  }

  void seq() {
    if (!rst_ni.read()) {
      reset();
    } else if (clk_i.posedge() && adv_i.read()) {
      step();
    }
    for (int c = 0; c < C; ++c) {
      const int depth = C - 1 - c;
      const int64_t v = depth == 0 ? bottom(c) : deskew_[c][depth - 1];
      psum_o[c].write(bits::pin<kAcc>(static_cast<uint64_t>(v)));
    }
  }

  int64_t bottom(int c) const { return S::kOs ? drain_q_[R - 1][c] : psum_q_[R - 1][c]; }

  // One advancing cycle: every new value from the old ones (updates run against the data flow:
  // rows and columns from the far end, delay lines after their readers).
  void step() {
    const bool act_signed = act_signed_i.read();
    std::array<uint64_t, R> act_in{};
    for (int r = 0; r < R; ++r) act_in[r] = bits::u64<kA>(act_i[r].read());
    // Activation entering PE(r, 0): row r delayed r cycles.
    auto skew_out = [&](int r) { return r == 0 ? act_in[0] : skew_[r][r - 1]; };
    auto act_at = [&](int r, int c) { return c == 0 ? skew_out(r) : act_q_[r][c - 1]; };

    // De-skew: column c is delayed C - 1 - c cycles behind the bottom row.
    for (int c = 0; c < C; ++c) shift(deskew_[c], C - 1 - c, bottom(c));

    if (!S::kOs) {
      const bool ld = ld_i.read();
      for (int r = R - 1; r >= 0; --r) {
        for (int c = C - 1; c >= 0; --c) {
          const int64_t psum_in = r == 0 ? 0 : psum_q_[r - 1][c];
          const bool load = tap(ld_line_, r + c, ld);
          const uint64_t a = act_at(r, c);
          psum_q_[r][c] = bits::add(psum_in, product(a, act_signed, w_q_[r][c]), kAcc);
          if (load) w_q_[r][c] = shadow_q_[r][c];
          act_q_[r][c] = a;
        }
      }
      // Write wave: column c takes preload rows c cycles late.
      const bool wr_valid = wr_valid_i.read();
      const uint32_t wr_row = static_cast<uint32_t>(bits::u64<kRowBits>(wr_row_i.read()));
      for (int c = 0; c < C; ++c) {
        const bool v = c == 0 ? wr_valid : wr_valid_line_[c][c - 1];
        const uint32_t row = c == 0 ? wr_row : wr_row_line_[c][c - 1];
        const uint64_t data = c == 0 ? bits::u64<kW>(wr_data_i[0].read()) : wr_col_line_[c][c - 1];
        if (v && row < static_cast<uint32_t>(R)) shadow_q_[row][c] = data;
      }
      for (int c = 1; c < C; ++c) {
        shift(wr_valid_line_[c], c, wr_valid);
        shift(wr_row_line_[c], c, wr_row);
        shift(wr_col_line_[c], c, bits::u64<kW>(wr_data_i[c].read()));
      }
      shift(ld_line_, R + C - 2, ld);
    } else {
      const bool first = first_i.read(), last = last_i.read();
      std::array<uint64_t, C> w_in{};
      for (int c = 0; c < C; ++c) w_in[c] = bits::u64<kW>(w_i[c].read());
      auto wskew_out = [&](int c) { return c == 0 ? w_in[0] : wskew_[c][c - 1]; };
      // Drain registers first: they read the old accumulators and the old drain values.
      for (int c = 0; c < C; ++c) {
        bool shifting = false;
        std::array<int64_t, R> next{};
        for (int r = 0; r < R; ++r) {
          if (r > 0) shifting = shifting || tap(last_line_, R + c + r, last);
          next[r] = drain_q_[r][c];
          if (tap(last_line_, r + c + 1, last)) {
            next[r] = acc_q_[r][c];
          } else if (shifting) {
            next[r] = r == 0 ? 0 : drain_q_[r - 1][c];
          }
        }
        for (int r = 0; r < R; ++r) drain_q_[r][c] = next[r];
      }
      for (int r = R - 1; r >= 0; --r) {
        for (int c = C - 1; c >= 0; --c) {
          const uint64_t a = act_at(r, c);
          const uint64_t w = r == 0 ? wskew_out(c) : w_q_[r - 1][c];
          const int64_t p = product(a, act_signed, w);
          acc_q_[r][c] = tap(first_line_, r + c, first) ? p : bits::add(acc_q_[r][c], p, kAcc);
          w_q_[r][c] = w;
          act_q_[r][c] = a;
        }
      }
      for (int c = 1; c < C; ++c) shift(wskew_[c], c, w_in[c]);
      shift(first_line_, R + C - 2, first);
      shift(last_line_, 2 * R + C - 2, last);
    }
    for (int r = 1; r < R; ++r) shift(skew_[r], r, act_in[r]);
  }

  // ws: ld_i delayed 1 .. R + C - 2; os: first_i delayed 1 .. R + C - 2, last_i 1 .. 2R + C - 2.
  std::array<bool, R + C> ld_line_{}, first_line_{};
  std::array<bool, 2 * R + C> last_line_{};
  std::array<std::array<uint64_t, R>, R> skew_{};       // [r][i]: row r's skew register i
  std::array<std::array<uint64_t, C>, C> wskew_{};      // [c][i]: os weight skew of column c
  std::array<std::array<bool, C>, C> wr_valid_line_{};  // [c][i]: ws write wave of column c
  std::array<std::array<uint32_t, C>, C> wr_row_line_{};
  std::array<std::array<uint64_t, C>, C> wr_col_line_{};
  std::array<std::array<int64_t, C>, C> deskew_{};     // [c][i]: column c's de-skew register i
  std::array<std::array<uint64_t, C>, R> act_q_{};     // PE activation registers (code bits)
  std::array<std::array<uint64_t, C>, R> w_q_{};       // ws: stationary weight; os: weight (bits)
  std::array<std::array<uint64_t, C>, R> shadow_q_{};  // ws: shadow weights (bits)
  std::array<std::array<int64_t, C>, R> psum_q_{};     // ws: partial sums, AccBits signed
  std::array<std::array<int64_t, C>, R> acc_q_{};      // os: accumulators, AccBits signed
  std::array<std::array<int64_t, C>, R> drain_q_{};    // os: drain registers, AccBits signed
};

}  // namespace tilescale::sim
