// The SystemC twin of rtl/ts_top.sv (SystemC's fir / fir_rtl pattern, STYLE.md): the same ports
// with the same names and Verilator --pins-sc-uint types (pin_t) as the Verilated ts_top, so the
// testbench (ts_bench.h) binds either, or both in lockstep (ts_lockstep.h). Constructor
// `(sc_core::sc_module_name)`, as a Verilated model's.
//
// Inside, the RTL's modules as sc_modules joined by sc_signals of ts_top's internal interfaces
// (packed lane vectors become sc_vectors of lanes of the same widths):
//   TsCtrlModel        ts_ctrl            (ts_ctrl_model.h)
//   TsArrayModel       ts_systolic_array  (ts_array_model.h)
//   TsScaleRegsModel   ts_scale_regs      (ts_scale_regs_model.h)
//   TsEdgeModel x Cols ts_edge            (ts_edge_model.h)
// and the RTL top's glue as methods of this module (bubbles carry zeros, unused preload rows are
// written as zeros, per-column stage valids, lane slicing and packing). ts_clock_gate is a clock
// enable: the controller's adv_o goes to every gated module, which updates only at rising edges
// with it high (a latch clock gate passes exactly those edges). No module reads another's members.
//
// Cycle-exact with the RTL by construction (every register and its width, every combinational
// path of a port) and by test: tests/rtl/lockstep_test.cpp runs both on the same stimulus and
// compares every output port in every cycle. The model computes no cycle count: its cycles are the
// handshakes the bench sees. Numerics: registers wrap at the RTL's widths (AccBits, WideBits), the
// requantizer is int_arith.h's round_shift_half_up and saturate (ts_edge_model.h).
//
// S is a TopParams (ts_pins.h) with every ts_top parameter. Header-only: the widths are template
// parameters.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <systemc>

#include "tilescale/sim/ts_array_model.h"
#include "tilescale/sim/ts_ctrl_model.h"
#include "tilescale/sim/ts_edge_model.h"
#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_pins.h"
#include "tilescale/sim/ts_scale_regs_model.h"

namespace tilescale::sim {

template <class S>
SC_MODULE(TsTopModel) {
  static constexpr int R = S::kRows, C = S::kCols;
  static constexpr int kA = S::kActBits, kW = S::kWeightBits, kWide = S::kWideBits;
  static constexpr int kSel = S::kSelBits, kBank = S::kBankBits, kWord = S::kWordBits;
  static constexpr int kShift = host::kShiftBits;
  static constexpr int kActLanes = S::kActLanes, kOutLanes = S::kOutLanes;

  // ---- ts_top's ports (rtl/README.md, "Ports"), named and typed as the Verilated model's.
  sc_core::sc_in<bool> clk_i;
  sc_core::sc_in<bool> rst_ni;
  sc_core::sc_in<bool> desc_valid_i;
  sc_core::sc_out<bool> desc_ready_o;
  sc_core::sc_in<pin_t<host::kDescBits>> desc_i;
  sc_core::sc_in<pin_t<host::kLayerBits>> desc_layer_i;
  sc_core::sc_in<pin_t<S::kDescSelW>> desc_sel_i;
  sc_core::sc_in<bool> wgt_valid_i;
  sc_core::sc_out<bool> wgt_ready_o;
  sc_core::sc_in<pin_t<S::kWgtW>> wgt_data_i;
  sc_core::sc_in<bool> act_valid_i;
  sc_core::sc_out<bool> act_ready_o;
  sc_core::sc_in<pin_t<S::kActW>> act_data_i;
  sc_core::sc_in<pin_t<S::kWgtW>> act_wgt_i;
  sc_core::sc_in<bool> scl_valid_i;
  sc_core::sc_out<bool> scl_ready_o;
  sc_core::sc_in<pin_t<kSel>> scl_reg_i;
  sc_core::sc_in<pin_t<S::kMantBits>> scl_mant_i;
  sc_core::sc_in<pin_t<kShift>> scl_shift_i;
  sc_core::sc_in<bool> bias_valid_i;
  sc_core::sc_out<bool> bias_ready_o;
  sc_core::sc_in<pin_t<S::kBiasW>> bias_data_i;
  sc_core::sc_out<bool> out_valid_o;
  sc_core::sc_in<bool> out_ready_i;
  sc_core::sc_out<pin_t<S::kOutW>> out_data_o;
  sc_core::sc_out<pin_t<kOutLanes>> out_mask_o;
  sc_core::sc_out<bool> out_last_o;
  sc_core::sc_out<bool> busy_o;
  sc_core::sc_out<bool> stall_o;

  SC_HAS_PROCESS(TsTopModel);
  explicit TsTopModel(sc_core::sc_module_name name)
      : sc_core::sc_module(name),
        act_lane_("act_lane", R),
        act_w_lane_("act_w_lane", C),
        wr_lane_("wr_lane", C),
        psum_("psum", C),
        rsel_("rsel", C),
        mant_("mant", C),
        shift_("shift", C),
        v1c_("v1c", C),
        v2c_("v2c", C),
        v3c_("v3c", C),
        bias_lane_("bias_lane", C),
        lane_("lane", C),
        ctrl_("u_ctrl"),
        array_("u_array"),
        regs_("u_scale_regs"),
        edge_("u_edge", C) {
    bind_ctrl();
    bind_array();
    bind_regs();
    bind_edges();
    SC_METHOD(array_inputs);
    sensitive << act_take_ << act_beat_ << act_off_ << act_data_i << act_wgt_i << wr_zero_
              << wgt_data_i << regs_changed_;
    SC_METHOD(edge_valids);
    sensitive << v1_ << v2_ << v3_ << mask1_ << mask2_ << mask3_;
    SC_METHOD(bias_lanes);
    sensitive << bias_data_i;
    SC_METHOD(layer_fields);
    sensitive << layer_;
    SC_METHOD(pack_outputs);
    for (int c = 0; c < C; ++c) sensitive << lane_[c];
    sensitive << out_off_ << regs_changed_;
    SC_METHOD(seq);
    sensitive << clk_i.pos() << rst_ni.neg();
    dont_initialize();
  }

  // A VCD waveform of the twin (`tilescale verify --model systemc --trace out.vcd`): every port,
  // ts_top's internal signals between its blocks, and the registers of the controller, the PEs
  // and the edges (sc_object::trace). Call after binding, before the simulation starts.
  void trace(sc_core::sc_trace_file * tf) const override {
    // The ports and signals of this module have no names of their own (SystemC numbers them):
    // they are traced under their member names; the lane vectors name their elements (psum_0).
    const std::string top = std::string(name()) + ".";
#define TS_TRACE(x) sc_core::sc_trace(tf, x, top + #x)
    TS_TRACE(clk_i), TS_TRACE(rst_ni), TS_TRACE(desc_valid_i), TS_TRACE(desc_ready_o);
    TS_TRACE(desc_i), TS_TRACE(desc_layer_i), TS_TRACE(desc_sel_i), TS_TRACE(wgt_valid_i);
    TS_TRACE(wgt_ready_o), TS_TRACE(wgt_data_i), TS_TRACE(act_valid_i), TS_TRACE(act_ready_o);
    TS_TRACE(act_data_i), TS_TRACE(act_wgt_i), TS_TRACE(scl_valid_i), TS_TRACE(scl_ready_o);
    TS_TRACE(scl_reg_i), TS_TRACE(scl_mant_i), TS_TRACE(scl_shift_i), TS_TRACE(bias_valid_i);
    TS_TRACE(bias_ready_o), TS_TRACE(bias_data_i), TS_TRACE(out_valid_o), TS_TRACE(out_ready_i);
    TS_TRACE(out_data_o), TS_TRACE(out_mask_o), TS_TRACE(out_last_o), TS_TRACE(busy_o);
    TS_TRACE(stall_o);
    TS_TRACE(adv_), TS_TRACE(layer_), TS_TRACE(act_take_), TS_TRACE(ld_), TS_TRACE(wr_valid_);
    TS_TRACE(wr_row_), TS_TRACE(wr_zero_), TS_TRACE(first_), TS_TRACE(last_), TS_TRACE(sc_we_);
    TS_TRACE(sc_wbank_), TS_TRACE(sc_rbank_), TS_TRACE(mask1_), TS_TRACE(mask2_);
    TS_TRACE(mask3_), TS_TRACE(v1_), TS_TRACE(word1_), TS_TRACE(restart1_), TS_TRACE(v2_);
    TS_TRACE(v3_), TS_TRACE(word3_), TS_TRACE(use_bias3_), TS_TRACE(bias_load_);
#undef TS_TRACE
    auto lanes = [&](const auto& v) {
      for (const auto& x : v) sc_core::sc_trace(tf, x, x.name());
    };
    lanes(psum_), lanes(rsel_), lanes(mant_), lanes(shift_), lanes(lane_);
    ctrl_.trace(tf);
    array_.trace(tf);
    for (const TsEdgeModel<S>& e : edge_) e.trace(tf);
  }

 private:
  void bind_ctrl() {
    TsCtrlModel<S>& u = ctrl_;
    u.clk_i(clk_i);
    u.rst_ni(rst_ni);
    u.adv_o(adv_);
    u.stall_o(stall_o);
    u.busy_o(busy_o);
    u.desc_valid_i(desc_valid_i);
    u.desc_ready_o(desc_ready_o);
    u.desc_i(desc_i);
    u.desc_layer_i(desc_layer_i);
    u.desc_sel_i(desc_sel_i);
    u.wgt_valid_i(wgt_valid_i);
    u.wgt_ready_o(wgt_ready_o);
    u.act_valid_i(act_valid_i);
    u.act_ready_o(act_ready_o);
    u.scl_valid_i(scl_valid_i);
    u.scl_ready_o(scl_ready_o);
    u.bias_valid_i(bias_valid_i);
    u.bias_ready_o(bias_ready_o);
    u.out_valid_o(out_valid_o);
    u.out_ready_i(out_ready_i);
    u.out_last_o(out_last_o);
    u.out_mask_o(out_mask_o);
    u.out_off_o(out_off_);
    u.out_load_o(out_load_);
    u.layer_o(layer_);
    u.act_take_o(act_take_);
    u.act_beat_o(act_beat_);
    u.act_off_o(act_off_);
    u.ld_o(ld_);
    u.wr_valid_o(wr_valid_);
    u.wr_row_o(wr_row_);
    u.wr_zero_o(wr_zero_);
    u.first_o(first_);
    u.last_o(last_);
    u.sc_we_o(sc_we_);
    u.sc_wbank_o(sc_wbank_);
    u.sc_rbank_o(sc_rbank_);
    u.sc_rsel_o(rsel_);
    u.mask1_o(mask1_);
    u.mask2_o(mask2_);
    u.mask3_o(mask3_);
    u.v1_o(v1_);
    u.word1_o(word1_);
    u.restart1_o(restart1_);
    u.v2_o(v2_);
    u.v3_o(v3_);
    u.word3_o(word3_);
    u.use_bias3_o(use_bias3_);
    u.bias_load_o(bias_load_);
  }
  void bind_array() {
    TsArrayModel<S>& u = array_;
    u.clk_i(clk_i);
    u.adv_i(adv_);
    u.rst_ni(rst_ni);
    u.act_signed_i(act_signed_);
    u.act_i(act_lane_);
    u.ld_i(ld_);
    u.wr_valid_i(wr_valid_);
    u.wr_row_i(wr_row_);
    u.wr_data_i(wr_lane_);
    u.w_i(act_w_lane_);
    u.first_i(first_);
    u.last_i(last_);
    u.psum_o(psum_);
  }
  void bind_regs() {
    TsScaleRegsModel<S>& u = regs_;
    u.clk_i(clk_i);
    u.adv_i(adv_);
    u.rst_ni(rst_ni);
    u.we_i(sc_we_);
    u.wbank_i(sc_wbank_);
    u.wreg_i(scl_reg_i);
    u.wmant_i(scl_mant_i);
    u.wshift_i(scl_shift_i);
    u.rbank_i(sc_rbank_);
    u.rsel_i(rsel_);
    u.mant_o(mant_);
    u.shift_o(shift_);
  }
  void bind_edges() {
    for (int c = 0; c < C; ++c) {
      TsEdgeModel<S>& u = edge_[c];
      u.clk_i(clk_i);
      u.adv_i(adv_);
      u.rst_ni(rst_ni);
      u.v1_i(v1c_[c]);
      u.word1_i(word1_);
      u.restart1_i(restart1_);
      u.psum_i(psum_[c]);
      u.v2_i(v2c_[c]);
      u.mant_i(mant_[c]);
      u.shift_i(shift_[c]);
      u.v3_i(v3c_[c]);
      u.word3_i(word3_);
      u.use_bias3_i(use_bias3_);
      u.bias_load_i(bias_load_);
      u.bias_i(bias_lane_[c]);
      u.frac_i(frac_);
      u.out_signed_i(out_signed_);
      u.keep_acc_i(keep_acc_);
      u.clamp_lo_i(clamp_lo_);
      u.clamp_hi_i(clamp_hi_);
      u.lane_o(lane_[c]);
    }
  }

  // ts_top's activation assembler (ActLanes < Rows): the vector is the row buffer with this
  // cycle's beat (if one is taken) written over lanes act_off .. act_off + ActLanes - 1.
  std::array<uint64_t, R> act_vec() const {
    const pin_t<S::kActW> act = act_data_i.read();
    std::array<uint64_t, R> v{};
    if constexpr (kActLanes < R) {
      v = abuf_;
      const uint32_t off = static_cast<uint32_t>(bits::u64<host::kCountBits>(act_off_.read()));
      if (act_beat_.read())
        for (uint32_t i = 0; i < static_cast<uint32_t>(kActLanes) && off + i < R; ++i)
          v[off + i] = bits::get<S::kActW>(act, static_cast<int>(i) * kA, kA);
    } else {
      for (int r = 0; r < R; ++r) v[r] = bits::get<S::kActW>(act, r * kA, kA);
    }
    return v;
  }
  // ts_top's registers outside the blocks: the assembler's row buffer (gated clock), and the
  // output serializer's fresh flag (reset) and hold register (free clock).
  void seq() {
    if (!rst_ni.read()) {
      fresh_ = false;
    } else if (clk_i.posedge()) {
      if constexpr (kActLanes < R) {
        if (adv_.read()) abuf_ = act_vec();
      }
      if constexpr (kOutLanes < C) {
        hold_ = held();
        fresh_ = out_load_.read();
      }
    }
    regs_changed_.notify(sc_core::SC_ZERO_TIME);
  }
  std::array<uint64_t, C> held() const {
    if (!fresh_) return hold_;
    std::array<uint64_t, C> v{};
    for (int c = 0; c < C; ++c) v[c] = bits::u64<kWide>(lane_[c].read());
    return v;
  }

  // ts_top: the array sees zeros in cycles without a vector (bubbles), and unused preload rows
  // are written as zeros.
  void array_inputs() {
    const bool take = act_take_.read();
    const pin_t<S::kWgtW> act_w = act_wgt_i.read();
    const std::array<uint64_t, R> vec = act_vec();
    for (int r = 0; r < R; ++r) act_lane_[r].write(bits::pin<kA>(take ? vec[r] : 0));
    for (int c = 0; c < C; ++c)
      act_w_lane_[c].write(bits::pin<kW>(take ? bits::get<S::kWgtW>(act_w, c * kW, kW) : 0));
    const bool zero = wr_zero_.read();
    const pin_t<S::kWgtW> wgt = wgt_data_i.read();
    for (int c = 0; c < C; ++c)
      wr_lane_[c].write(bits::pin<kW>(zero ? 0 : bits::get<S::kWgtW>(wgt, c * kW, kW)));
  }
  // ts_top: columns beyond a fold's cols_used stay idle.
  void edge_valids() {
    const uint64_t m1 = bits::u64<C>(mask1_.read()), m2 = bits::u64<C>(mask2_.read()),
                   m3 = bits::u64<C>(mask3_.read());
    const bool v1 = v1_.read(), v2 = v2_.read(), v3 = v3_.read();
    for (int c = 0; c < C; ++c) {
      v1c_[c].write(v1 && ((m1 >> c) & 1u) != 0);
      v2c_[c].write(v2 && ((m2 >> c) & 1u) != 0);
      v3c_[c].write(v3 && ((m3 >> c) & 1u) != 0);
    }
  }
  void bias_lanes() {
    const pin_t<S::kBiasW> b = bias_data_i.read();
    for (int c = 0; c < C; ++c)
      bias_lane_[c].write(bits::pin<kWide>(bits::get<S::kBiasW>(b, c * kWide, kWide)));
  }
  // ts_pkg::layer_t fields.
  void layer_fields() {
    const uint64_t l = bits::u64<host::kLayerBits>(layer_.read());
    act_signed_.write(((l >> 42) & 1u) != 0);
    out_signed_.write(((l >> 41) & 1u) != 0);
    keep_acc_.write(((l >> 40) & 1u) != 0);
    frac_.write(bits::pin<kShift>(l >> 34));
    clamp_lo_.write(bits::pin<host::kClampBits>(l >> 17));
    clamp_hi_.write(bits::pin<host::kClampBits>(l));
  }
  // Output beat: lane i is column out_off + i of the result (the serializer; with OutLanes =
  // Cols the edge's lanes directly).
  void pack_outputs() {
    pin_t<S::kOutW> out{};
    if constexpr (kOutLanes < C) {
      const std::array<uint64_t, C> v = held();
      const uint32_t off = static_cast<uint32_t>(bits::u64<host::kCountBits>(out_off_.read()));
      for (uint32_t i = 0; i < static_cast<uint32_t>(kOutLanes) && off + i < C; ++i)
        bits::put<S::kOutW>(out, static_cast<int>(i) * kWide, kWide, v[off + i]);
    } else {
      for (int c = 0; c < C; ++c)
        bits::put<S::kOutW>(out, c * kWide, kWide, bits::u64<kWide>(lane_[c].read()));
    }
    out_data_o.write(out);
  }

  // ---- ts_top's internal signals.
  sc_core::sc_signal<bool> adv_;  // ts_ctrl adv_o = ts_clock_gate en_i
  sc_core::sc_signal<pin_t<host::kLayerBits>> layer_;
  sc_core::sc_signal<bool> act_signed_, out_signed_, keep_acc_;
  sc_core::sc_signal<pin_t<kShift>> frac_;
  sc_core::sc_signal<pin_t<host::kClampBits>> clamp_lo_, clamp_hi_;
  sc_core::sc_signal<bool> act_take_, act_beat_, out_load_, ld_, wr_valid_, wr_zero_, first_, last_;
  sc_core::sc_signal<pin_t<host::kCountBits>> act_off_, out_off_;
  std::array<uint64_t, R> abuf_{};  // the assembler's row buffer (gclk)
  std::array<uint64_t, C> hold_{};  // the serializer's hold register (clk)
  bool fresh_ = false;              // the edge's lanes hold the result just loaded (clk, reset)
  sc_core::sc_event regs_changed_;  // seq changed the registers above
  sc_core::sc_signal<pin_t<S::kRowBits>> wr_row_;
  sc_core::sc_vector<sc_core::sc_signal<pin_t<kA>>> act_lane_;              // [Rows] ts_top's `act`
  sc_core::sc_vector<sc_core::sc_signal<pin_t<kW>>> act_w_lane_, wr_lane_;  // `act_w`, `wr_data`
  sc_core::sc_vector<sc_core::sc_signal<pin_t<S::kAccBits>>> psum_;         // [Cols]
  sc_core::sc_signal<bool> sc_we_;
  sc_core::sc_signal<pin_t<kBank>> sc_wbank_, sc_rbank_;
  sc_core::sc_vector<sc_core::sc_signal<pin_t<kSel>>> rsel_;
  sc_core::sc_vector<sc_core::sc_signal<pin_t<S::kMantBits>>> mant_;
  sc_core::sc_vector<sc_core::sc_signal<pin_t<kShift>>> shift_;
  sc_core::sc_signal<pin_t<C>> mask1_, mask2_, mask3_;
  sc_core::sc_signal<bool> v1_, restart1_, v2_, v3_, use_bias3_, bias_load_;
  sc_core::sc_signal<pin_t<kWord>> word1_, word3_;
  sc_core::sc_vector<sc_core::sc_signal<bool>> v1c_, v2c_, v3c_;  // v_k && mask_k[c]
  sc_core::sc_vector<sc_core::sc_signal<pin_t<kWide>>> bias_lane_, lane_;

  TsCtrlModel<S> ctrl_;
  TsArrayModel<S> array_;
  TsScaleRegsModel<S> regs_;
  sc_core::sc_vector<TsEdgeModel<S>> edge_;
};

}  // namespace tilescale::sim
