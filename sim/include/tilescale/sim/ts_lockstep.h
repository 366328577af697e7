// Two ts_tops in lockstep on one stimulus (STYLE.md: "one testbench drives either, or both in
// lockstep, and reports the first cycle and tile where they differ"): typically the Verilated RTL
// (A) and the SystemC twin TsTopModel (B). One HostFeeder drives both models' inputs (the same
// signals, fanned out) and follows A's readies; one OutputCollector drives both out_ready_i. Every
// cycle the LockstepCompare process checks that B's outputs equal A's: the five readies,
// out_valid_o, busy_o and stall_o always, and with an output beat its mask, last flag and every
// lane under the mask. Each model also has its own CycleMonitor (cycles measured from its own
// handshakes) and its own GoldenChecker (its beats against host::reference).
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <systemc>
#include <vector>

#include "tilescale/sim/ts_bench.h"

namespace tilescale::sim {

// What the comparison saw.
struct LockstepResult {
  int64_t cycles = 0;       // cycles compared (reset released)
  int64_t beats = 0;        // output beats compared
  int64_t differences = 0;  // cycles in which some output of B differs from A's
  std::string first;        // the first difference: cycle, layer, port, values
};

// Compares the outputs of two ts_tops every cycle; feeds B's output beats to B's checker.
template <class S>
SC_MODULE(LockstepCompare) {
  sc_core::sc_in<bool> clk_i, rst_ni, out_ready_i;
  sc_core::sc_in<bool> a_desc_ready, a_wgt_ready, a_act_ready, a_scl_ready, a_bias_ready,
      a_out_valid, a_out_last, a_busy, a_stall;
  sc_core::sc_in<bool> b_desc_ready, b_wgt_ready, b_act_ready, b_scl_ready, b_bias_ready,
      b_out_valid, b_out_last, b_busy, b_stall;
  sc_core::sc_in<pin_t<S::kOutW>> a_out_data, b_out_data;
  sc_core::sc_in<pin_t<S::kCols>> a_out_mask, b_out_mask;

  SC_HAS_PROCESS(LockstepCompare);
  LockstepCompare(sc_core::sc_module_name name, GoldenChecker * checker_b,
                  const int64_t* window_cycle_b)
      : sc_core::sc_module(name), checker_b_(checker_b), window_cycle_b_(window_cycle_b) {
    SC_THREAD(run);
  }
  const LockstepResult& result() const { return r_; }

 private:
  void run() {
    for (;;) {
      wait(clk_i.posedge_event());
      // The cycle that just ended, as both models settled it.
      const bool in_reset = !rst_ni.read();
      const bool ready = out_ready_i.read();
      const bool av[9] = {a_desc_ready.read(), a_wgt_ready.read(),  a_act_ready.read(),
                          a_scl_ready.read(),  a_bias_ready.read(), a_out_valid.read(),
                          a_out_last.read(),   a_busy.read(),       a_stall.read()};
      const bool bv[9] = {b_desc_ready.read(), b_wgt_ready.read(),  b_act_ready.read(),
                          b_scl_ready.read(),  b_bias_ready.read(), b_out_valid.read(),
                          b_out_last.read(),   b_busy.read(),       b_stall.read()};
      const pin_t<S::kOutW> ad = a_out_data.read(), bd = b_out_data.read();
      const uint64_t am = bits::u64<S::kCols>(a_out_mask.read());
      const uint64_t bm = bits::u64<S::kCols>(b_out_mask.read());
      wait(sc_core::SC_ZERO_TIME);  // let B's monitor count this cycle first
      ++now_;
      if (in_reset) continue;
      ++r_.cycles;
      static const char* const kNames[9] = {"desc_ready_o", "wgt_ready_o",  "act_ready_o",
                                            "scl_ready_o",  "bias_ready_o", "out_valid_o",
                                            "out_last_o",   "busy_o",       "stall_o"};
      std::ostringstream diff;
      for (int i = 0; i < 9; ++i) {
        if (i == 6 && !av[5]) continue;  // out_last_o only matters with a beat
        if (av[i] != bv[i]) diff << " " << kNames[i] << " " << av[i] << " vs " << bv[i] << ";";
      }
      if (av[5] && bv[5]) {
        ++r_.beats;
        if (am != bm) diff << " out_mask_o " << am << " vs " << bm << ";";
        for (int c = 0; c < S::kCols; ++c) {
          if (((am >> c) & 1u) == 0) continue;
          const uint64_t x = bits::get<S::kOutW>(ad, c * S::kWideBits, S::kWideBits);
          const uint64_t y = bits::get<S::kOutW>(bd, c * S::kWideBits, S::kWideBits);
          if (x != y)
            diff << " lane " << c << " " << bits::sext(x, S::kWideBits) << " vs "
                 << bits::sext(y, S::kWideBits) << ";";
        }
      }
      if (bv[5] && ready) {
        host::Bits lanes(S::kOutW);
        for (int c = 0; c < S::kCols; ++c)
          lanes.set(c * S::kWideBits, S::kWideBits,
                    bits::get<S::kOutW>(bd, c * S::kWideBits, S::kWideBits));
        checker_b_->on_beat(static_cast<uint32_t>(bm), lanes, bv[6], *window_cycle_b_, S::kWideBits,
                            S::kCols);
      }
      const std::string d = diff.str();
      if (!d.empty() && r_.differences++ == 0)
        r_.first = "cycle " + std::to_string(now_) + " (layer " +
                   std::to_string(checker_b_->layer()) + ", window cycle " +
                   std::to_string(*window_cycle_b_) + "):" + d;
    }
  }
  GoldenChecker* checker_b_;
  const int64_t* window_cycle_b_;
  LockstepResult r_;
  int64_t now_ = 0;
};

// The lockstep bench: clock, one feeder and collector, models A and B, a monitor and a checker
// each, the comparison. Build it before sc_start; run until done().
template <class S, class TopA, class TopB>
class LockstepBench {
 public:
  LockstepBench(const std::string& name, std::vector<BenchLayer> layers, uint64_t seed,
                double period_ns = 10.0)
      : layers_(std::move(layers)),
        clk_((name + "_clk").c_str(), period_ns, sc_core::SC_NS),
        checker_a_(&layers_),
        checker_b_(&layers_),
        a_(std::make_unique<TopA>((name + "_a").c_str())),
        b_(std::make_unique<TopB>((name + "_b").c_str())),
        feeder_((name + "_feeder").c_str(), &layers_, seed ^ 0x5851f42d4c957f2dull),
        monitor_a_((name + "_monitor_a").c_str(), &checker_a_.results()),
        monitor_b_((name + "_monitor_b").c_str(), &checker_b_.results()),
        collector_((name + "_collector").c_str(), &layers_, &checker_a_, monitor_a_.window_cycle(),
                   seed),
        compare_((name + "_compare").c_str(), &checker_b_, monitor_b_.window_cycle()) {
    sig_.bind(*a_, clk_);
    sig_.bind(*b_, clk_, &sig_b_);
    bind_feeder();
    collector_.clk_i(clk_);
    collector_.out_valid_i(sig_.out_valid);
    collector_.out_ready_o(sig_.out_ready);
    collector_.out_data_i(sig_.out_data);
    collector_.out_mask_i(sig_.out_mask);
    collector_.out_last_i(sig_.out_last);
    bind_monitor(monitor_a_, sig_);
    bind_monitor(monitor_b_, sig_b_);
    bind_compare();
  }
  bool done() const { return done_a() && checker_b_.layer() >= layers_.size(); }
  bool done_a() const { return checker_a_.layer() >= layers_.size(); }  // A took every layer
  const std::vector<BenchLayer>& layers() const { return layers_; }
  std::vector<BenchLayerResult>& results_a() { return checker_a_.results(); }
  std::vector<BenchLayerResult>& results_b() { return checker_b_.results(); }
  int64_t extra_beats_a() const { return checker_a_.extra_beats(); }
  int64_t extra_beats_b() const { return checker_b_.extra_beats(); }
  const LockstepResult& lockstep() const { return compare_.result(); }

 private:
  void bind_feeder() {
    HostFeeder<S>& f = feeder_;
    f.clk_i(clk_);
    f.rst_no(sig_.rst_n);
    f.desc_valid_o(sig_.desc_valid);
    f.desc_ready_i(sig_.desc_ready);
    f.desc_o(sig_.desc);
    f.desc_layer_o(sig_.desc_layer);
    f.desc_sel_o(sig_.desc_sel);
    f.wgt_valid_o(sig_.wgt_valid);
    f.wgt_ready_i(sig_.wgt_ready);
    f.wgt_data_o(sig_.wgt_data);
    f.act_valid_o(sig_.act_valid);
    f.act_ready_i(sig_.act_ready);
    f.act_data_o(sig_.act_data);
    f.act_wgt_o(sig_.act_wgt);
    f.scl_valid_o(sig_.scl_valid);
    f.scl_ready_i(sig_.scl_ready);
    f.scl_reg_o(sig_.scl_reg);
    f.scl_mant_o(sig_.scl_mant);
    f.scl_shift_o(sig_.scl_shift);
    f.bias_valid_o(sig_.bias_valid);
    f.bias_ready_i(sig_.bias_ready);
    f.bias_data_o(sig_.bias_data);
  }
  // A model's monitor: the shared input valids and out_ready_i, that model's readies and outputs.
  void bind_monitor(CycleMonitor<S>& m, TopSignals<S>& outs) {
    m.clk_i(clk_);
    m.desc_valid_i(sig_.desc_valid);
    m.desc_ready_i(outs.desc_ready);
    m.wgt_valid_i(sig_.wgt_valid);
    m.wgt_ready_i(outs.wgt_ready);
    m.act_valid_i(sig_.act_valid);
    m.act_ready_i(outs.act_ready);
    m.scl_valid_i(sig_.scl_valid);
    m.scl_ready_i(outs.scl_ready);
    m.bias_valid_i(sig_.bias_valid);
    m.bias_ready_i(outs.bias_ready);
    m.out_valid_i(outs.out_valid);
    m.out_ready_i(sig_.out_ready);
    m.out_last_i(outs.out_last);
    m.stall_i(outs.stall);
  }
  void bind_compare() {
    LockstepCompare<S>& c = compare_;
    c.clk_i(clk_);
    c.rst_ni(sig_.rst_n);
    c.out_ready_i(sig_.out_ready);
    c.a_desc_ready(sig_.desc_ready);
    c.a_wgt_ready(sig_.wgt_ready);
    c.a_act_ready(sig_.act_ready);
    c.a_scl_ready(sig_.scl_ready);
    c.a_bias_ready(sig_.bias_ready);
    c.a_out_valid(sig_.out_valid);
    c.a_out_last(sig_.out_last);
    c.a_busy(sig_.busy);
    c.a_stall(sig_.stall);
    c.a_out_data(sig_.out_data);
    c.a_out_mask(sig_.out_mask);
    c.b_desc_ready(sig_b_.desc_ready);
    c.b_wgt_ready(sig_b_.wgt_ready);
    c.b_act_ready(sig_b_.act_ready);
    c.b_scl_ready(sig_b_.scl_ready);
    c.b_bias_ready(sig_b_.bias_ready);
    c.b_out_valid(sig_b_.out_valid);
    c.b_out_last(sig_b_.out_last);
    c.b_busy(sig_b_.busy);
    c.b_stall(sig_b_.stall);
    c.b_out_data(sig_b_.out_data);
    c.b_out_mask(sig_b_.out_mask);
  }

  std::vector<BenchLayer> layers_;
  sc_core::sc_clock clk_;
  TopSignals<S> sig_;    // inputs of both models, A's outputs
  TopSignals<S> sig_b_;  // B's outputs (its input signals unused)
  GoldenChecker checker_a_, checker_b_;
  std::unique_ptr<TopA> a_;
  std::unique_ptr<TopB> b_;
  HostFeeder<S> feeder_;
  CycleMonitor<S> monitor_a_, monitor_b_;
  OutputCollector<S> collector_;
  LockstepCompare<S> compare_;
};

}  // namespace tilescale::sim
