// SystemC twin of rtl/ts_ctrl.sv: executes the fold descriptors, decides each cycle which beats
// the datapath needs, raises adv_o only when all are there, and sequences preloads, scale loads,
// streaming, drains and the edge stages. Same ports as ts_ctrl (packed selects become lanes), same
// registers and widths; one evaluation function gives both the combinational outputs and the next
// state, so the two processes cannot disagree:
//   comb()  on any input or state change: the outputs of this cycle (readies, adv_o, stage
//           controls, ld_o, which is the next start flag).
//   seq()   at the rising clock edge (and the falling reset): the free-running registers (busy,
//           output valid) always, every other register only when adv_o was high in the cycle that
//           ends (the RTL's clock gate, modelled as a clock enable: a latch gate passes exactly
//           those edges), then wakes comb() for the new state (its outputs have one writer).
// Widths: every counter wraps at its RTL width (StreamBits, CountBits, PreBits, RowBits, WordBits).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <systemc>
#include <vector>

#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_pins.h"

namespace tilescale::sim {

template <class S>
SC_MODULE(TsCtrlModel) {
  static constexpr int R = S::kRows, C = S::kCols;
  static constexpr int kPreBits = clog2_min1(R + 1);
  static constexpr int kMetaDelay = R + C - 1 + (S::kOs ? 1 : 0);
  static constexpr int kSelBits = S::kSelBits, kBankBits = S::kBankBits;
  static constexpr int kWordBits = S::kWordBits, kRowBits = S::kRowBits;
  static constexpr int kActLanes = S::kActLanes, kOutLanes = S::kOutLanes;
  static constexpr bool kNarrowAct = kActLanes < R, kNarrowOut = kOutLanes < C;

  sc_core::sc_in<bool> clk_i;   // free-running clock
  sc_core::sc_in<bool> rst_ni;  // async reset, active low
  sc_core::sc_out<bool> adv_o;  // the accelerator advances this cycle (clock-gate enable)
  sc_core::sc_out<bool> stall_o;
  sc_core::sc_out<bool> busy_o;
  sc_core::sc_in<bool> desc_valid_i;
  sc_core::sc_out<bool> desc_ready_o;
  sc_core::sc_in<pin_t<host::kDescBits>> desc_i;         // ts_pkg::desc_t
  sc_core::sc_in<pin_t<host::kLayerBits>> desc_layer_i;  // ts_pkg::layer_t
  sc_core::sc_in<pin_t<S::kDescSelW>> desc_sel_i;        // column c's register, [c*SelBits +:]
  sc_core::sc_in<bool> wgt_valid_i;
  sc_core::sc_out<bool> wgt_ready_o;
  sc_core::sc_in<bool> act_valid_i;
  sc_core::sc_out<bool> act_ready_o;
  sc_core::sc_in<bool> scl_valid_i;
  sc_core::sc_out<bool> scl_ready_o;
  sc_core::sc_in<bool> bias_valid_i;
  sc_core::sc_out<bool> bias_ready_o;
  sc_core::sc_out<bool> out_valid_o;
  sc_core::sc_in<bool> out_ready_i;
  sc_core::sc_out<bool> out_last_o;
  sc_core::sc_out<pin_t<kOutLanes>> out_mask_o;        // lanes of this beat carrying outputs
  sc_core::sc_out<pin_t<host::kCountBits>> out_off_o;  // column of the beat's lane 0
  sc_core::sc_out<bool> out_load_o;                    // the output register loads a result
  sc_core::sc_out<pin_t<host::kLayerBits>> layer_o;    // layer constants, from the first descriptor
  // array
  sc_core::sc_out<bool> act_take_o;                    // a whole vector enters the array now
  sc_core::sc_out<bool> act_beat_o;                    // an activation beat is taken now
  sc_core::sc_out<pin_t<host::kCountBits>> act_off_o;  // its lane 0 is this row of the vector
  sc_core::sc_out<bool> ld_o;        // ws: the next vector starts a fold (load wave)
  sc_core::sc_out<bool> wr_valid_o;  // ws: a preload row is written now
  sc_core::sc_out<pin_t<kRowBits>> wr_row_o;
  sc_core::sc_out<bool> wr_zero_o;  // ws: the row is unused by its fold: write zeros
  sc_core::sc_out<bool> first_o;    // os: this vector is a fold's first step
  sc_core::sc_out<bool> last_o;     // os: this vector is a fold's last step
  // scale registers
  sc_core::sc_out<bool> sc_we_o;
  sc_core::sc_out<pin_t<kBankBits>> sc_wbank_o;
  sc_core::sc_out<pin_t<kBankBits>> sc_rbank_o;
  sc_core::sc_vector<sc_core::sc_out<pin_t<kSelBits>>> sc_rsel_o;  // [Cols] lanes
  // edge stage controls
  sc_core::sc_out<pin_t<C>> mask1_o, mask2_o, mask3_o;
  sc_core::sc_out<bool> v1_o;
  sc_core::sc_out<pin_t<kWordBits>> word1_o;
  sc_core::sc_out<bool> restart1_o;
  sc_core::sc_out<bool> v2_o;
  sc_core::sc_out<bool> v3_o;
  sc_core::sc_out<pin_t<kWordBits>> word3_o;
  sc_core::sc_out<bool> use_bias3_o;
  sc_core::sc_out<bool> bias_load_o;

  SC_HAS_PROCESS(TsCtrlModel);
  explicit TsCtrlModel(sc_core::sc_module_name name)
      : sc_core::sc_module(name), sc_rsel_o("sc_rsel_o", C) {
    SC_METHOD(comb);
    sensitive << desc_valid_i << desc_i << desc_layer_i << wgt_valid_i << act_valid_i << scl_valid_i
              << bias_valid_i << out_ready_i << state_changed_;
    SC_METHOD(seq);
    sensitive << clk_i.pos() << rst_ni.neg();
    dont_initialize();
  }

  // The main state registers in a VCD waveform (TsTopModel::trace).
  void trace(sc_core::sc_trace_file * tf) const override {
    const std::string p = std::string(name()) + ".";
    sc_core::sc_trace(tf, q_.busy, p + "busy_q");
    sc_core::sc_trace(tf, q_.have_cur, p + "have_cur_q");
    sc_core::sc_trace(tf, q_.cur_slot, p + "cur_slot_q");
    sc_core::sc_trace(tf, q_.cur_t, p + "cur_t_q");
    sc_core::sc_trace(tf, q_.j, p + "j_q");
    sc_core::sc_trace(tf, q_.have_prep, p + "have_prep_q");
    sc_core::sc_trace(tf, q_.prep_t, p + "prep_t_q");
    sc_core::sc_trace(tf, q_.pre_cnt, p + "pre_cnt_q");
    sc_core::sc_trace(tf, q_.sc_cnt, p + "sc_cnt_q");
    sc_core::sc_trace(tf, q_.gap, p + "gap_q");
    sc_core::sc_trace(tf, q_.slot, p + "slot_q");
    sc_core::sc_trace(tf, q_.bank, p + "bank_q");
    sc_core::sc_trace(tf, q_.dr_active, p + "dr_active_q");
    sc_core::sc_trace(tf, q_.dr_cnt, p + "dr_cnt_q");
  }

 private:
  // One entry of the stage-1 metadata delay line: {valid, first, last, slot}.
  struct Meta {
    bool valid = false, first = false, last = false;
    uint32_t slot = 0;
  };
  // The registers (the RTL's _q), reset values as in ts_ctrl.sv.
  struct State {
    bool busy = false, out_valid = false;  // free-running clock
    bool out_last = false;                 // free-running clock, loaded with a result
    uint32_t out_mask = 0, ooff = 0;       // free-running clock
    uint64_t layer = 0;
    bool have_cur = false;
    uint32_t cur_slot = 0, cur_t = 0, j = 0;
    uint32_t cur_rows = 0, aw = 0, ow = 0;  // narrowed ports: see ts_ctrl.sv's header
    bool have_prep = false;
    uint32_t prep_slot = 0, prep_t = 0, prep_s = 0, prep_rows = 0;
    bool prep_last = false;
    uint32_t prep_bank = 0, pre_cnt = 0, sc_cnt = 0;
    bool start = false;
    uint32_t gap = R, slot = 0, bank = S::kBanks - 1;
    uint32_t wcnt = 0;
    bool dr_active = false;
    uint32_t dr_cnt = 0, dr_slot = 0;
    bool v2 = false, first2 = false, flast2 = false, olast2 = false;
    uint32_t slot2 = 0, word2 = 0;
    bool v3 = false, pass3 = false, use_bias3 = false, olast3 = false;
    uint32_t word3 = 0;
    uint32_t mask2 = 0, mask3 = 0, mask4 = 0;
    bool v4 = false, pass4 = false, olast4 = false;
    std::array<Meta, kMetaDelay> meta{};  // meta[0] newest; meta[kMetaDelay - 1] reaches stage 1
  };
  // Fold contexts (no reset: read only after written).
  struct Context {
    bool fir = false, ge = false, fit = false, oe = false, last = false;
    uint32_t rows = 0, cols = 0, bank = 0;
    std::array<uint32_t, C> sel{};
  };
  // The descriptor fields (ts_pkg::desc_t).
  struct Desc {
    bool last, first_in_run, group_end, first_in_tile, output_end;
    uint32_t stream, rows_used, cols_used, scale_loads;
  };
  static Desc decode(uint64_t d) {
    return {((d >> 56) & 1u) != 0,
            ((d >> 55) & 1u) != 0,
            ((d >> 54) & 1u) != 0,
            ((d >> 53) & 1u) != 0,
            ((d >> 52) & 1u) != 0,
            static_cast<uint32_t>((d >> 36) & bits::mask(host::kStreamBits)),
            static_cast<uint32_t>((d >> 24) & bits::mask(host::kCountBits)),
            static_cast<uint32_t>((d >> 12) & bits::mask(host::kCountBits)),
            static_cast<uint32_t>(d & bits::mask(host::kCountBits))};
  }

  // This cycle's combinational values and the next state.
  struct Eval {
    bool adv = false, desc_need = false, wgt_need = false, act_need = false, scl_need = false,
         bias_need = false, out_fire = false, vec_last = false, vec_first = false, take = false,
         out_lastbeat = true, out_load = false;
    uint32_t new_bank = 0, wr_row = 0, sc_wbank = 0;
    bool wr_zero = false;
    bool v1 = false, first1 = false, flast1 = false, olast1 = false, restart1 = false,
         pass1 = false;
    uint32_t slot1 = 0, word1 = 0, mask1 = 0;
    Desc desc{};
    State d;  // the next state (applied by seq)
  };

  Eval evaluate() const {
    const State& q = q_;
    Eval e;
    e.desc = decode(bits::u64<host::kDescBits>(desc_i.read()));
    const Desc& di = e.desc;
    const bool idle = !q.busy;
    const bool in_vec = q.start || (q.have_cur && q.j != q.cur_t);
    const uint32_t vec_slot = q.start ? q.prep_slot : q.cur_slot;
    const uint32_t vec_t = q.start ? q.prep_t : q.cur_t;
    const uint32_t vec_idx = q.start ? 0 : q.j;
    const uint32_t vec_rows = q.start ? q.prep_rows : q.cur_rows;
    e.act_need = in_vec && (!kNarrowAct || q.aw < vec_rows);
    e.take =
        in_vec &&
        (!kNarrowAct || q.aw + (e.act_need ? static_cast<uint32_t>(kActLanes) : 0) >= vec_rows) &&
        (!kNarrowOut || q.ow <= static_cast<uint32_t>(kOutLanes));
    e.desc_need = idle || (q.start && !q.prep_last);
    e.wgt_need = !S::kOs && (e.desc_need ||
                             (q.have_prep && !q.start && q.pre_cnt != static_cast<uint32_t>(R)));
    e.scl_need =
        (e.desc_need && di.scale_loads != 0) || (q.have_prep && !q.start && q.sc_cnt != q.prep_s);
    e.bias_need = q.v2 && q.first2 && ctx_[q.slot2].fit;
    const bool adv_in =
        (!e.act_need || act_valid_i.read()) && (!e.desc_need || desc_valid_i.read()) &&
        (!e.wgt_need || wgt_valid_i.read()) && (!e.scl_need || scl_valid_i.read()) &&
        (!e.bias_need || bias_valid_i.read());
    // The output register frees itself when its beat is taken, even in a stalled cycle.
    e.adv = adv_in && (!q.out_valid || out_ready_i.read());
    e.out_fire = q.out_valid && out_ready_i.read();
    e.out_lastbeat =
        !kNarrowOut || (static_cast<uint64_t>(q.out_mask) >> (q.ooff + kOutLanes)) == 0;
    e.out_load = e.adv && q.v4 && q.pass4;

    const uint32_t stream_mask = static_cast<uint32_t>(bits::mask(host::kStreamBits));
    e.vec_last = e.take && vec_idx == ((vec_t - 1) & stream_mask);
    e.vec_first = e.take && vec_idx == 0;
    e.new_bank = di.scale_loads == 0                              ? q.bank
                 : q.bank == static_cast<uint32_t>(S::kBanks - 1) ? 0
                                                                  : q.bank + 1;

    // ---- fold sequencing
    State& d = e.d;
    d = q;
    if (q.start) {
      d.have_cur = true;
      d.cur_slot = q.prep_slot;
      d.cur_t = q.prep_t;
      d.cur_rows = q.prep_rows;
      d.j = e.take ? 1 : 0;
      d.have_prep = false;
    } else if (e.take) {
      d.j = (q.j + 1) & stream_mask;
    }
    const uint32_t count_mask0 = static_cast<uint32_t>(bits::mask(host::kCountBits));
    d.aw = 0;
    if (kNarrowAct && !e.take) d.aw = e.act_need ? (q.aw + kActLanes) & count_mask0 : q.aw;
    d.ow = 0;
    if (kNarrowOut && e.take && ctx_[vec_slot].oe) {
      d.ow = ctx_[vec_slot].cols;
    } else if (kNarrowOut && q.ow > static_cast<uint32_t>(kOutLanes)) {
      d.ow = q.ow - kOutLanes;
    }
    if (idle) {
      d.have_cur = false;
      d.layer = bits::u64<host::kLayerBits>(desc_layer_i.read());
    }
    const uint32_t count_mask = static_cast<uint32_t>(bits::mask(host::kCountBits));
    if (e.desc_need) {
      d.have_prep = true;
      d.prep_slot = q.slot;
      d.prep_t = di.stream;
      d.prep_s = di.scale_loads;
      d.prep_rows = di.rows_used;
      d.prep_last = di.last;
      d.prep_bank = e.new_bank;
      d.pre_cnt = S::kOs ? 0 : 1;
      d.sc_cnt = di.scale_loads != 0 ? 1 : 0;
      d.slot = q.slot == static_cast<uint32_t>(S::kBanks - 1) ? 0 : q.slot + 1;
      d.bank = e.new_bank;
    } else if (q.have_prep && !q.start) {
      d.pre_cnt = (q.pre_cnt + (e.wgt_need ? 1 : 0)) & static_cast<uint32_t>(bits::mask(kPreBits));
      d.sc_cnt = (q.sc_cnt + (e.scl_need ? 1 : 0)) & count_mask;
    }
    // os: cycles from the latest last step, saturating at Rows.
    if (e.vec_last) {
      d.gap = 1;
    } else if (q.gap != static_cast<uint32_t>(R)) {
      d.gap = q.gap + 1;
    }
    // Decided one cycle ahead: the ws load wave starts the cycle before a fold's first vector.
    d.start = d.have_prep && (!d.have_cur || d.j == d.cur_t) &&
              (S::kOs || d.pre_cnt == static_cast<uint32_t>(R)) && d.sc_cnt == d.prep_s &&
              (!S::kOs || d.gap + d.prep_t >= static_cast<uint32_t>(R + 1));

    // ---- datapath controls
    e.wr_row = e.desc_need ? 0 : q.pre_cnt & static_cast<uint32_t>(bits::mask(kRowBits));
    const uint32_t wr_rows = e.desc_need ? di.rows_used : q.prep_rows;
    e.wr_zero = e.wr_row >= wr_rows;
    e.sc_wbank = e.desc_need ? e.new_bank : q.prep_bank;

    // ---- edge stage 1: vectors (ws) or last-step markers (os) after kMetaDelay cycles
    const Meta& m = q.meta[kMetaDelay - 1];
    const uint32_t word_mask = static_cast<uint32_t>(bits::mask(kWordBits));
    if (!S::kOs) {
      e.v1 = m.valid;
      e.slot1 = m.slot;
      e.first1 = m.first;
      e.flast1 = m.valid && m.last;
      e.word1 = m.first ? 0 : q.wcnt;
      if (m.valid) d.wcnt = (e.word1 + 1) & word_mask;
    } else {
      // A fold's marker starts a Rows-cycle drain, bottom row first; rows beyond rows_used hold no
      // outputs.
      const bool marker = m.valid && m.last;
      e.slot1 = marker ? m.slot : q.dr_slot;
      const uint32_t dr_i = marker ? 0 : q.dr_cnt;
      const uint32_t row1 = (static_cast<uint32_t>(R - 1) - dr_i) & count_mask;
      const Context& x = ctx_[e.slot1];
      e.v1 = (marker || q.dr_active) && row1 < x.rows;
      e.first1 = row1 == ((x.rows - 1) & count_mask);
      e.flast1 = e.v1 && row1 == 0;
      e.word1 = row1 & word_mask;
      const uint32_t row_mask = static_cast<uint32_t>(bits::mask(kRowBits));
      d.dr_active = (marker || q.dr_active) && dr_i != (static_cast<uint32_t>(R - 1) & row_mask);
      d.dr_cnt = (dr_i + 1) & row_mask;
      d.dr_slot = e.slot1;
    }
    const Context& x1 = ctx_[e.slot1];
    for (int c = 0; c < C; ++c)
      if (static_cast<uint32_t>(c) < x1.cols) e.mask1 |= 1u << c;
    e.restart1 = x1.fir;
    e.pass1 = x1.ge;
    e.olast1 = e.flast1 && x1.last;

    // ---- stages 2 .. 4 and the output register
    if (idle && e.adv) {
      d.busy = true;
    } else if (e.out_fire && q.out_last && e.out_lastbeat) {
      d.busy = false;
    }
    // The output register: loaded with a result (all its beats), emptied by its last beat.
    if (e.out_fire) {
      d.out_valid = !e.out_lastbeat;
      d.ooff = (q.ooff + kOutLanes) & count_mask;
    }
    if (e.adv) {
      if (e.out_load) {
        d.out_valid = true;
        d.ooff = 0;
      } else if (!kNarrowOut) {
        d.out_valid = false;
      }
      if (e.out_load || !kNarrowOut) {  // full width: behind the clock gate, every step
        d.out_last = q.olast4;
        d.out_mask = q.mask4;
      }
    }
    if (!kNarrowOut) d.ooff = 0;
    d.v2 = e.v1 && e.pass1;
    d.first2 = e.first1;
    d.flast2 = e.flast1;
    d.olast2 = e.olast1;
    d.slot2 = e.slot1;
    d.word2 = e.word1;
    d.v3 = q.v2;
    d.pass3 = ctx_[q.slot2].oe;
    d.use_bias3 = ctx_[q.slot2].fit;
    d.olast3 = q.olast2;
    d.word3 = q.word2;
    d.mask2 = e.mask1;
    d.mask3 = q.mask2;
    d.mask4 = q.mask3;
    d.v4 = q.v3;
    d.pass4 = q.pass3;
    d.olast4 = q.olast3;
    for (int i = kMetaDelay - 1; i > 0; --i) d.meta[i] = q.meta[i - 1];
    d.meta[0] = Meta{e.take, e.vec_first, e.vec_last, vec_slot};
    return e;
  }

  void write_outputs(const Eval& e) {
    const State& q = q_;
    adv_o.write(e.adv);
    stall_o.write(q.busy && !e.adv);
    busy_o.write(q.busy);
    desc_ready_o.write(e.desc_need && e.adv);
    wgt_ready_o.write(e.wgt_need && e.adv);
    act_ready_o.write(e.act_need && e.adv);
    scl_ready_o.write(e.scl_need && e.adv);
    bias_ready_o.write(e.bias_need && e.adv);
    out_valid_o.write(q.out_valid);
    out_last_o.write(q.out_last && e.out_lastbeat);
    out_mask_o.write(bits::pin<kOutLanes>(static_cast<uint64_t>(q.out_mask) >> q.ooff));
    out_off_o.write(bits::pin<host::kCountBits>(q.ooff));
    out_load_o.write(e.out_load);
    layer_o.write(bits::pin<host::kLayerBits>(q.layer));
    act_take_o.write(e.take);
    act_beat_o.write(e.act_need);
    act_off_o.write(bits::pin<host::kCountBits>(q.aw));
    ld_o.write(e.d.start);
    wr_valid_o.write(e.wgt_need);
    wr_row_o.write(bits::pin<kRowBits>(e.wr_row));
    wr_zero_o.write(e.wr_zero);
    first_o.write(e.vec_first);
    last_o.write(e.vec_last);
    sc_we_o.write(e.scl_need);
    sc_wbank_o.write(bits::pin<kBankBits>(e.sc_wbank));
    const Context& x2 = ctx_[q.slot2];
    sc_rbank_o.write(bits::pin<kBankBits>(x2.bank));
    for (int c = 0; c < C; ++c) sc_rsel_o[c].write(bits::pin<kSelBits>(x2.sel[c]));
    mask1_o.write(bits::pin<C>(e.mask1));
    mask2_o.write(bits::pin<C>(q.mask2));
    mask3_o.write(bits::pin<C>(q.mask3));
    v1_o.write(e.v1);
    word1_o.write(bits::pin<kWordBits>(e.word1));
    restart1_o.write(e.restart1);
    v2_o.write(q.v2);
    v3_o.write(q.v3);
    word3_o.write(bits::pin<kWordBits>(q.word3));
    use_bias3_o.write(q.use_bias3);
    bias_load_o.write(e.bias_need);
  }

  void comb() { write_outputs(evaluate()); }

  void seq() {
    if (!rst_ni.read()) {
      q_ = State{};
    } else if (clk_i.posedge()) {
      const Eval e = evaluate();
      if (e.adv) {
        // Fold contexts are written with the descriptor (gated clock; read above before this).
        if (e.desc_need) {
          Context& x = ctx_[q_.slot];
          const Desc& di = e.desc;
          x.fir = di.first_in_run;
          x.ge = di.group_end;
          x.fit = di.first_in_tile;
          x.oe = di.output_end;
          x.last = di.last;
          x.rows = di.rows_used;
          x.cols = di.cols_used;
          x.bank = e.new_bank;
          const pin_t<S::kDescSelW> sel = desc_sel_i.read();
          for (int c = 0; c < C; ++c)
            x.sel[c] = static_cast<uint32_t>(bits::get<S::kDescSelW>(sel, c * kSelBits, kSelBits));
        }
        q_ = e.d;
      } else {
        q_.busy = e.d.busy;
        q_.out_valid = e.d.out_valid;
        q_.out_last = e.d.out_last;
        q_.out_mask = e.d.out_mask;
        q_.ooff = e.d.ooff;
      }
    }
    // The outputs follow the new state one delta later (comb is their only writer).
    state_changed_.notify(sc_core::SC_ZERO_TIME);
  }

  State q_;
  std::array<Context, S::kBanks> ctx_{};
  sc_core::sc_event state_changed_;  // seq changed the registers
};

}  // namespace tilescale::sim
