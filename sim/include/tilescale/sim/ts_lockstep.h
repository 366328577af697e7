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

// The outputs of one ts_top, as the comparison reads them.
template <class S>
struct TopOutputs {
  // The single-bit outputs, in the order of kNames below.
  sc_core::sc_in<bool> flags[9];
  sc_core::sc_in<pin_t<S::kOutW>> out_data;
  sc_core::sc_in<pin_t<S::kOutLanes>> out_mask;
  static constexpr const char* kNames[9] = {"desc_ready_o", "wgt_ready_o",  "act_ready_o",
                                            "scl_ready_o",  "bias_ready_o", "out_valid_o",
                                            "out_last_o",   "busy_o",       "stall_o"};
  static constexpr int kOutValid = 5, kOutLast = 6;
  void bind(TopSignals<S>& sig) {
    sc_core::sc_signal<bool>* const from[9] = {&sig.desc_ready, &sig.wgt_ready,  &sig.act_ready,
                                               &sig.scl_ready,  &sig.bias_ready, &sig.out_valid,
                                               &sig.out_last,   &sig.busy,       &sig.stall};
    for (int i = 0; i < 9; ++i) flags[i](*from[i]);
    out_data(sig.out_data);
    out_mask(sig.out_mask);
  }
  void read(bool v[9]) const {
    for (int i = 0; i < 9; ++i) v[i] = flags[i].read();
  }
};

// Compares the outputs of two ts_tops every cycle; feeds B's output beats to B's checker.
template <class S>
SC_MODULE(LockstepCompare) {
  sc_core::sc_in<bool> clk_i, rst_ni, out_ready_i;
  TopOutputs<S> a, b;  // model A's and model B's outputs

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
      bool av[9], bv[9];
      a.read(av);
      b.read(bv);
      const pin_t<S::kOutW> ad = a.out_data.read(), bd = b.out_data.read();
      const uint64_t am = bits::u64<S::kOutLanes>(a.out_mask.read());
      const uint64_t bm = bits::u64<S::kOutLanes>(b.out_mask.read());
      wait(sc_core::SC_ZERO_TIME);  // let B's monitor count this cycle first
      ++now_;
      if (in_reset) continue;
      ++r_.cycles;
      std::ostringstream diff;
      for (int i = 0; i < 9; ++i) {
        if (i == TopOutputs<S>::kOutLast && !av[TopOutputs<S>::kOutValid])
          continue;  // out_last_o only matters with a beat
        if (av[i] != bv[i])
          diff << " " << TopOutputs<S>::kNames[i] << " " << av[i] << " vs " << bv[i] << ";";
      }
      if (av[TopOutputs<S>::kOutValid] && bv[TopOutputs<S>::kOutValid]) {
        ++r_.beats;
        if (am != bm) diff << " out_mask_o " << am << " vs " << bm << ";";
        for (int c = 0; c < S::kOutLanes; ++c) {
          if (((am >> c) & 1u) == 0) continue;
          const uint64_t x = bits::get<S::kOutW>(ad, c * S::kWideBits, S::kWideBits);
          const uint64_t y = bits::get<S::kOutW>(bd, c * S::kWideBits, S::kWideBits);
          if (x != y)
            diff << " lane " << c << " " << bits::sext(x, S::kWideBits) << " vs "
                 << bits::sext(y, S::kWideBits) << ";";
        }
      }
      if (bv[TopOutputs<S>::kOutValid] && ready) {
        host::Bits lanes(S::kOutW);
        for (int c = 0; c < S::kOutLanes; ++c)
          lanes.set(c * S::kWideBits, S::kWideBits,
                    bits::get<S::kOutW>(bd, c * S::kWideBits, S::kWideBits));
        checker_b_->on_beat(static_cast<uint32_t>(bm), lanes, bv[TopOutputs<S>::kOutLast],
                            *window_cycle_b_, S::kWideBits, S::kOutLanes);
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
    bind_feeder(feeder_, sig_, clk_);
    bind_collector(collector_, sig_, clk_);
    bind_monitor(monitor_a_, sig_, sig_, clk_);
    bind_monitor(monitor_b_, sig_, sig_b_, clk_);
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
  void bind_compare() {
    LockstepCompare<S>& c = compare_;
    c.clk_i(clk_);
    c.rst_ni(sig_.rst_n);
    c.out_ready_i(sig_.out_ready);
    c.a.bind(sig_);
    c.b.bind(sig_b_);
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
