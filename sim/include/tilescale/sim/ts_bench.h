// A SystemC testbench for ts_top (rtl/README.md, "The accelerator ts_top"), written against its
// ports only, so it binds the Verilated RTL (verilate(... SYSTEMC ... --pins-sc-uint)) or any
// SystemC model that exposes the same ports (SystemC's fir / fir_rtl pattern, STYLE.md):
//
//   HostFeeder      drives the five input streams with the beats of host::make_stimulus (fold
//                   descriptors, preload rows, activations, scale registers, biases), layers back
//                   to back, every beat offered as soon as the previous one on its stream is taken,
//                   or after random gaps (BenchLayer::in_gap; an offered beat is held until taken).
//   OutputCollector drives out_ready_i (high, or randomly low per layer) and hands every output
//                   beat it takes to the GoldenChecker, which compares it with int_arith.h's golden
//                   codes (host::reference) lane by lane.
//   CycleMonitor    watches the handshakes: a layer's window runs from the cycle its first input
//                   beat is taken to the cycle its last output beat (out_last_o) is taken, both
//                   included; a stall is a cycle in that window where the output stream was valid
//                   and not ready. Without input gaps that is the only way the accelerator can wait
//                   (rtl/README.md, "The global freeze"): cycles = stall-free cycles + stalls.
//                   stall_o is counted beside it (with gaps it also counts cycles a needed input
//                   beat was missing: cycles = stall-free cycles + stall_o cycles).
//
// The bench never calls the mapper: its cycle counts are measurements, and tests compare them with
// map::native_systolic_cycles (the prediction being checked).
//
// Port types are Verilator's --pins-sc-uint choice: bool for 1 bit, sc_uint<W> for 2..64 bits,
// sc_bv<W> above (pin_t, ts_pins.h). Every template is parameterized by a TopShape with ts_top's
// parameters.
// Header-only because the port widths are template parameters; include it only where SystemC is.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <systemc>
#include <type_traits>
#include <vector>

#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_pins.h"

namespace tilescale::sim {

// host::Bits (lane i at [i*w +: w]) to a port value and back.
template <int W>
pin_t<W> to_pin(const host::Bits& b) {
  auto word = [&](std::size_t i) { return i < b.w.size() ? b.w[i] : 0u; };
  if constexpr (W == 1) {
    return (word(0) & 1u) != 0;
  } else if constexpr (W <= 64) {
    const uint64_t v = uint64_t{word(0)} | (uint64_t{word(1)} << 32);
    return pin_t<W>(W == 64 ? v : v & ((uint64_t{1} << W) - 1));
  } else {
    sc_dt::sc_bv<W> v;
    for (int i = 0; i < (W + 31) / 32; ++i) {
      uint32_t x = word(static_cast<std::size_t>(i));
      if (W % 32 != 0 && i == (W - 1) / 32) x &= (1u << (W % 32)) - 1u;
      v.set_word(i, x);
    }
    return v;
  }
}
template <int W>
host::Bits from_pin(const pin_t<W>& v) {
  host::Bits b(W);
  if constexpr (W == 1) {
    b.set(0, 1, v ? 1u : 0u);
  } else if constexpr (W <= 64) {
    b.set(0, W, v.to_uint64());
  } else {
    for (int i = 0; i < (W + 31) / 32; ++i)
      b.w[static_cast<std::size_t>(i)] = static_cast<uint32_t>(v.get_word(i));
  }
  return b;
}

// ---- What the bench runs and what it measures.

// One layer for the bench: its beats (host::make_stimulus) and the traffic around it.
struct BenchLayer {
  host::Stimulus stim;        // every input beat and the expected output beats
  double out_stall = 0;       // probability that out_ready_i is low in a cycle of this layer
  double in_gap = 0;          // probability that a stream withholds its next beat in a cycle (gaps)
  std::string name;           // for messages
  bool keep_outputs = false;  // record every lane taken (BenchLayerResult::lanes), for chaining
};

// What the bench saw of one layer.
struct BenchLayerResult {
  int64_t cycles = 0;          // first input beat taken .. last output beat taken, both included
  int64_t stalls = 0;          // cycles in that window with out_valid_o high and out_ready_i low
  int64_t stall_o = 0;         // cycles in that window with stall_o high (cross-check only)
  int64_t outputs = 0;         // output beats taken
  int64_t mismatches = 0;      // output lanes (or beat masks/last flags) that differ from golden
  std::string first_mismatch;  // layer, fold, pixel, channel, cycle of the first difference
  int64_t first_mismatch_cycle = -1;  // its cycle in the layer's window, or -1
  bool done = false;                  // the layer's last output beat was taken
  std::vector<int64_t> lanes;         // keep_outputs: [beat * cols + c] value of lane c (masked: 0)
  std::vector<int64_t> beat_cycles;   // keep_outputs: [beat] cycle it was taken (window cycle)
};

// Compares output beats with the expected ones, layer by layer, in order.
class GoldenChecker {
 public:
  explicit GoldenChecker(const std::vector<BenchLayer>* layers)
      : layers_(layers), results_(layers->size()) {}
  // One output beat taken at `cycle` (cycles since the layer's first input beat, 0-based).
  void on_beat(uint32_t mask, const host::Bits& lanes, bool last, int64_t cycle, int wide_bits,
               int cols) {
    if (layer_ >= layers_->size()) {
      extra_beats_++;
      return;
    }
    const BenchLayer& L = (*layers_)[layer_];
    BenchLayerResult& r = results_[layer_];
    const std::size_t oi = static_cast<std::size_t>(r.outputs++);
    if (oi >= L.stim.out.size()) {
      note(r, "beat " + std::to_string(oi) + " beyond the expected " +
                  std::to_string(L.stim.out.size()) + " (cycle " + std::to_string(cycle) + ")");
      return;
    }
    if (L.keep_outputs) r.beat_cycles.push_back(cycle);
    if (L.keep_outputs)
      for (int c = 0; c < cols; ++c)
        r.lanes.push_back(((mask >> c) & 1u) != 0
                              ? static_cast<int64_t>(lanes.get(c * wide_bits, wide_bits))
                              : 0);
    const host::OutBeat& e = L.stim.out[oi];
    if (mask != e.mask || last != e.last) {
      note(r,
           "beat " + std::to_string(oi) + " fold " + std::to_string(e.fold) + " cycle " +
               std::to_string(cycle) + ": mask " + std::to_string(mask) + " last " +
               std::to_string(last) + ", expected mask " + std::to_string(e.mask) + " last " +
               std::to_string(e.last),
           cycle);
    }
    for (int c = 0; c < cols; ++c) {
      if (((e.mask >> c) & 1u) == 0) continue;
      const int64_t got = static_cast<int64_t>(lanes.get(c * wide_bits, wide_bits));
      if (got != e.lane[static_cast<std::size_t>(c)]) {
        std::ostringstream m;
        m << "fold " << e.fold << " pixel " << e.pixel0 << " channel " << e.n0 + c << " (beat "
          << oi << ", cycle " << cycle << "): got " << got << ", golden "
          << e.lane[static_cast<std::size_t>(c)];
        note(r, m.str(), cycle);
      }
    }
    if (last) {
      r.done = true;
      ++layer_;
    }
  }
  std::size_t layer() const { return layer_; }  // the layer whose outputs come next
  std::vector<BenchLayerResult>& results() { return results_; }
  int64_t extra_beats() const { return extra_beats_; }

 private:
  void note(BenchLayerResult& r, const std::string& what, int64_t cycle = -1) {
    if (r.mismatches++ == 0) {
      r.first_mismatch =
          "layer " + std::to_string(layer_) + " (" + (*layers_)[layer_].name + "): " + what;
      r.first_mismatch_cycle = cycle;
    }
  }
  const std::vector<BenchLayer>* layers_;
  std::vector<BenchLayerResult> results_;
  std::size_t layer_ = 0;
  int64_t extra_beats_ = 0;
};

// ---- The signals between the bench and a ts_top, with ts_top's port types.
template <class S>
struct TopSignals {
  sc_core::sc_signal<bool> rst_n;
  sc_core::sc_signal<bool> desc_valid, desc_ready;
  sc_core::sc_signal<pin_t<host::kDescBits>> desc;
  sc_core::sc_signal<pin_t<host::kLayerBits>> desc_layer;
  sc_core::sc_signal<pin_t<S::kDescSelW>> desc_sel;
  sc_core::sc_signal<bool> wgt_valid, wgt_ready;
  sc_core::sc_signal<pin_t<S::kWgtW>> wgt_data;
  sc_core::sc_signal<bool> act_valid, act_ready;
  sc_core::sc_signal<pin_t<S::kActW>> act_data;
  sc_core::sc_signal<pin_t<S::kWgtW>> act_wgt;
  sc_core::sc_signal<bool> scl_valid, scl_ready;
  sc_core::sc_signal<pin_t<S::kSelBits>> scl_reg;
  sc_core::sc_signal<pin_t<S::kMantBits>> scl_mant;
  sc_core::sc_signal<pin_t<host::kShiftBits>> scl_shift;
  sc_core::sc_signal<bool> bias_valid, bias_ready;
  sc_core::sc_signal<pin_t<S::kBiasW>> bias_data;
  sc_core::sc_signal<bool> out_valid, out_ready;
  sc_core::sc_signal<pin_t<S::kOutW>> out_data;
  sc_core::sc_signal<pin_t<S::kOutLanes>> out_mask;
  sc_core::sc_signal<bool> out_last, busy, stall;

  // Binds a ts_top (Verilated or a model with the same port names and types). With `outs`, its
  // outputs go to those signals instead (a second model beside the first in lockstep,
  // ts_lockstep.h).
  template <class Top>
  void bind(Top& t, sc_core::sc_clock& clk, TopSignals* outs = nullptr) {
    TopSignals& o = outs != nullptr ? *outs : *this;
    t.clk_i(clk);
    t.rst_ni(rst_n);
    t.desc_valid_i(desc_valid);
    t.desc_ready_o(o.desc_ready);
    t.desc_i(desc);
    t.desc_layer_i(desc_layer);
    t.desc_sel_i(desc_sel);
    t.wgt_valid_i(wgt_valid);
    t.wgt_ready_o(o.wgt_ready);
    t.wgt_data_i(wgt_data);
    t.act_valid_i(act_valid);
    t.act_ready_o(o.act_ready);
    t.act_data_i(act_data);
    t.act_wgt_i(act_wgt);
    t.scl_valid_i(scl_valid);
    t.scl_ready_o(o.scl_ready);
    t.scl_reg_i(scl_reg);
    t.scl_mant_i(scl_mant);
    t.scl_shift_i(scl_shift);
    t.bias_valid_i(bias_valid);
    t.bias_ready_o(o.bias_ready);
    t.bias_data_i(bias_data);
    t.out_valid_o(o.out_valid);
    t.out_ready_i(out_ready);
    t.out_data_o(o.out_data);
    t.out_mask_o(o.out_mask);
    t.out_last_o(o.out_last);
    t.busy_o(o.busy);
    t.stall_o(o.stall);
  }
};

// ---- The host feeder: resets the accelerator, then offers every input beat of every layer in
// order, each stream independently (rtl/README.md: "a host can keep six FIFOs and offer the head of
// each whenever it has one"). Handshakes are sampled at the rising edge, where the signals hold the
// settled values of the cycle that ends; new payloads are written in the same evaluation, so they
// take effect for the next cycle.
template <class S>
SC_MODULE(HostFeeder) {
  sc_core::sc_in<bool> clk_i;
  sc_core::sc_out<bool> rst_no;
  sc_core::sc_out<bool> desc_valid_o;
  sc_core::sc_in<bool> desc_ready_i;
  sc_core::sc_out<pin_t<host::kDescBits>> desc_o;
  sc_core::sc_out<pin_t<host::kLayerBits>> desc_layer_o;
  sc_core::sc_out<pin_t<S::kDescSelW>> desc_sel_o;
  sc_core::sc_out<bool> wgt_valid_o;
  sc_core::sc_in<bool> wgt_ready_i;
  sc_core::sc_out<pin_t<S::kWgtW>> wgt_data_o;
  sc_core::sc_out<bool> act_valid_o;
  sc_core::sc_in<bool> act_ready_i;
  sc_core::sc_out<pin_t<S::kActW>> act_data_o;
  sc_core::sc_out<pin_t<S::kWgtW>> act_wgt_o;
  sc_core::sc_out<bool> scl_valid_o;
  sc_core::sc_in<bool> scl_ready_i;
  sc_core::sc_out<pin_t<S::kSelBits>> scl_reg_o;
  sc_core::sc_out<pin_t<S::kMantBits>> scl_mant_o;
  sc_core::sc_out<pin_t<host::kShiftBits>> scl_shift_o;
  sc_core::sc_out<bool> bias_valid_o;
  sc_core::sc_in<bool> bias_ready_i;
  sc_core::sc_out<pin_t<S::kBiasW>> bias_data_o;

  SC_HAS_PROCESS(HostFeeder);
  HostFeeder(sc_core::sc_module_name name, const std::vector<BenchLayer>* layers, uint64_t seed = 0)
      : sc_core::sc_module(name), layers_(layers), rng_(seed) {
    SC_THREAD(run);
  }

 private:
  // Position in one stream: layer and beat.
  struct Cursor {
    std::size_t layer = 0, beat = 0;
  };
  // Moves c to the next beat that exists (skipping layers without beats on this stream).
  template <class F>
  void settle(Cursor & c, F count) const {
    while (c.layer < layers_->size() && c.beat >= count((*layers_)[c.layer].stim)) {
      ++c.layer;
      c.beat = 0;
    }
  }
  bool has(const Cursor& c) const { return c.layer < layers_->size(); }
  // Offers the cursor's beat this cycle: always while an offered beat waits to be taken (valid is
  // held), otherwise unless the layer's in_gap draws a gap. Never depends on a ready.
  bool offer(const Cursor& c, bool held) {
    if (!has(c)) return false;
    const double p = (*layers_)[c.layer].in_gap;
    return held || !(p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p);
  }
  const host::Stimulus& st(const Cursor& c) const { return (*layers_)[c.layer].stim; }

  void run() {
    // rst_ni must fall (high, then low): the controller's flops sit behind the clock gate, so only
    // the asynchronous reset's negedge resets them; a reset that is low from time 0 never fires
    // and leaves them at Verilator's initial values (seen: the os gap counter at 0, not Rows).
    rst_no.write(true);
    desc_valid_o.write(false);
    wgt_valid_o.write(false);
    act_valid_o.write(false);
    scl_valid_o.write(false);
    bias_valid_o.write(false);
    wait(clk_i.posedge_event());
    rst_no.write(false);
    for (int i = 0; i < 2; ++i) wait(clk_i.posedge_event());
    rst_no.write(true);
    wait(clk_i.posedge_event());
    Cursor d, w, a, s, b;
    auto nd = [](const host::Stimulus& x) { return x.desc.size(); };
    auto nw = [](const host::Stimulus& x) { return x.wgt.size(); };
    auto na = [](const host::Stimulus& x) { return x.act.size(); };
    auto ns = [](const host::Stimulus& x) { return x.scl.size(); };
    auto nb = [](const host::Stimulus& x) { return x.bias.size(); };
    bool hd = false, hw = false, ha = false, hs = false, hb = false;  // beats held (not taken)
    for (;;) {
      settle(d, nd);
      settle(w, nw);
      settle(a, na);
      settle(s, ns);
      settle(b, nb);
      const bool od = offer(d, hd), ow = offer(w, hw), oa = offer(a, ha), os = offer(s, hs),
                 ob = offer(b, hb);
      desc_valid_o.write(od);
      if (od) {
        const host::DescBeat& x = st(d).desc[d.beat];
        desc_o.write(to_pin<host::kDescBits>(x.desc));
        desc_layer_o.write(to_pin<host::kLayerBits>(x.layer));
        desc_sel_o.write(to_pin<S::kDescSelW>(x.sel));
      }
      wgt_valid_o.write(ow);
      if (ow) wgt_data_o.write(to_pin<S::kWgtW>(st(w).wgt[w.beat]));
      act_valid_o.write(oa);
      if (oa) {
        act_data_o.write(to_pin<S::kActW>(st(a).act[a.beat]));
        act_wgt_o.write(to_pin<S::kWgtW>(st(a).act_wgt[a.beat]));
      }
      scl_valid_o.write(os);
      if (os) {
        const host::ScaleBeat& x = st(s).scl[s.beat];
        host::Bits reg(S::kSelBits), mant(S::kMantBits), shift(host::kShiftBits);
        reg.set(0, S::kSelBits, static_cast<uint64_t>(x.reg));
        mant.set(0, S::kMantBits, x.mant);
        shift.set(0, host::kShiftBits, static_cast<uint64_t>(x.shift));
        scl_reg_o.write(to_pin<S::kSelBits>(reg));
        scl_mant_o.write(to_pin<S::kMantBits>(mant));
        scl_shift_o.write(to_pin<host::kShiftBits>(shift));
      }
      bias_valid_o.write(ob);
      if (ob) bias_data_o.write(to_pin<S::kBiasW>(st(b).bias[b.beat]));
      wait(clk_i.posedge_event());
      // The cycle that just ended: which offered beats were taken.
      hd = od && !desc_ready_i.read();
      hw = ow && !wgt_ready_i.read();
      ha = oa && !act_ready_i.read();
      hs = os && !scl_ready_i.read();
      hb = ob && !bias_ready_i.read();
      d.beat += od && !hd;
      w.beat += ow && !hw;
      a.beat += oa && !ha;
      s.beat += os && !hs;
      b.beat += ob && !hb;
    }
  }

  const std::vector<BenchLayer>* layers_;
  std::mt19937_64 rng_;  // input gaps
};

// ---- The output collector: out_ready_i per the current layer's traffic, every beat taken goes
// to the golden checker with the cycle the monitor gives it.
template <class S>
SC_MODULE(OutputCollector) {
  sc_core::sc_in<bool> clk_i;
  sc_core::sc_in<bool> out_valid_i;
  sc_core::sc_out<bool> out_ready_o;
  sc_core::sc_in<pin_t<S::kOutW>> out_data_i;
  sc_core::sc_in<pin_t<S::kOutLanes>> out_mask_i;
  sc_core::sc_in<bool> out_last_i;

  SC_HAS_PROCESS(OutputCollector);
  OutputCollector(sc_core::sc_module_name name, const std::vector<BenchLayer>* layers,
                  GoldenChecker* checker, const int64_t* window_cycle, uint64_t seed)
      : sc_core::sc_module(name),
        layers_(layers),
        checker_(checker),
        window_cycle_(window_cycle),
        rng_(seed) {
    SC_THREAD(run);
  }

 private:
  void run() {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    bool ready = true;
    for (;;) {
      out_ready_o.write(ready);
      wait(clk_i.posedge_event());
      // Sample the beat at the edge, then let the monitor (a method on the same edge) count this
      // cycle before reading its number: one delta later, so the cycle in messages is exact.
      const bool fire = out_valid_i.read() && ready;
      const pin_t<S::kOutLanes> mask_pin = out_mask_i.read();
      const pin_t<S::kOutW> data_pin = out_data_i.read();
      const bool last = out_last_i.read();
      wait(sc_core::SC_ZERO_TIME);
      if (fire) {
        const uint32_t mask =
            static_cast<uint32_t>(from_pin<S::kOutLanes>(mask_pin).get(0, S::kOutLanes));
        checker_->on_beat(mask, from_pin<S::kOutW>(data_pin), last, *window_cycle_, S::kWideBits,
                          S::kOutLanes);
      }
      const std::size_t l = checker_->layer();
      const double p = l < layers_->size() ? (*layers_)[l].out_stall : 0.0;
      ready = !(p > 0 && unit(rng_) < p);
    }
  }
  const std::vector<BenchLayer>* layers_;
  GoldenChecker* checker_;
  const int64_t* window_cycle_;
  std::mt19937_64 rng_;
};

// ---- The cycle monitor: only inputs; measures each layer's window and stalls from handshakes.
template <class S>
SC_MODULE(CycleMonitor) {
  sc_core::sc_in<bool> clk_i;
  sc_core::sc_in<bool> desc_valid_i, desc_ready_i, wgt_valid_i, wgt_ready_i, act_valid_i,
      act_ready_i, scl_valid_i, scl_ready_i, bias_valid_i, bias_ready_i, out_valid_i, out_ready_i,
      out_last_i, stall_i;

  SC_HAS_PROCESS(CycleMonitor);
  CycleMonitor(sc_core::sc_module_name name, std::vector<BenchLayerResult> * results)
      : sc_core::sc_module(name), results_(results) {
    SC_METHOD(tick);
    sensitive << clk_i.pos();
    dont_initialize();
  }
  // Cycle of the current window (0: the layer's first input beat), for the collector's messages;
  // after this edge's tick it is the number of the cycle that just ended.
  const int64_t* window_cycle() const { return &cycle_; }
  int64_t total_cycles() const { return now_; }

 private:
  void tick() {
    ++now_;
    const bool in_fire =
        (desc_valid_i.read() && desc_ready_i.read()) ||
        (wgt_valid_i.read() && wgt_ready_i.read()) || (act_valid_i.read() && act_ready_i.read()) ||
        (scl_valid_i.read() && scl_ready_i.read()) || (bias_valid_i.read() && bias_ready_i.read());
    const bool out_fire = out_valid_i.read() && out_ready_i.read();
    if (!open_ && in_fire && layer_ < results_->size()) {
      open_ = true;
      cycle_ = 0;
    } else if (open_) {
      ++cycle_;
    }
    if (debug_ && layer_ < 2)
      std::cout << name() << " t=" << now_ << " d" << desc_valid_i.read() << desc_ready_i.read()
                << " w" << wgt_valid_i.read() << wgt_ready_i.read() << " a" << act_valid_i.read()
                << act_ready_i.read() << " s" << scl_valid_i.read() << scl_ready_i.read() << " b"
                << bias_valid_i.read() << bias_ready_i.read() << " o" << out_valid_i.read()
                << out_ready_i.read() << out_last_i.read() << " stall " << stall_i.read()
                << " open " << open_ << "\n";
    if (!open_) return;
    BenchLayerResult& r = (*results_)[layer_];
    ++r.cycles;
    if (out_valid_i.read() && !out_ready_i.read()) ++r.stalls;
    if (stall_i.read()) ++r.stall_o;
    if (out_fire && out_last_i.read()) {
      open_ = false;
      ++layer_;
    }
  }
  std::vector<BenchLayerResult>* results_;
  std::size_t layer_ = 0;
  bool open_ = false;
  int64_t cycle_ = 0, now_ = 0;
  bool debug_ = std::getenv("TS_BENCH_DEBUG") != nullptr;
};

// ---- Binding the bench's processes to the signals (TopBench and LockstepBench share these).
// The feeder drives every input stream of `sig` and follows its readies.
template <class S>
void bind_feeder(HostFeeder<S>& f, TopSignals<S>& sig, sc_core::sc_clock& clk) {
  f.clk_i(clk);
  f.rst_no(sig.rst_n);
  f.desc_valid_o(sig.desc_valid);
  f.desc_ready_i(sig.desc_ready);
  f.desc_o(sig.desc);
  f.desc_layer_o(sig.desc_layer);
  f.desc_sel_o(sig.desc_sel);
  f.wgt_valid_o(sig.wgt_valid);
  f.wgt_ready_i(sig.wgt_ready);
  f.wgt_data_o(sig.wgt_data);
  f.act_valid_o(sig.act_valid);
  f.act_ready_i(sig.act_ready);
  f.act_data_o(sig.act_data);
  f.act_wgt_o(sig.act_wgt);
  f.scl_valid_o(sig.scl_valid);
  f.scl_ready_i(sig.scl_ready);
  f.scl_reg_o(sig.scl_reg);
  f.scl_mant_o(sig.scl_mant);
  f.scl_shift_o(sig.scl_shift);
  f.bias_valid_o(sig.bias_valid);
  f.bias_ready_i(sig.bias_ready);
  f.bias_data_o(sig.bias_data);
}

// The collector takes the output stream of `sig` and drives its out_ready.
template <class S>
void bind_collector(OutputCollector<S>& c, TopSignals<S>& sig, sc_core::sc_clock& clk) {
  c.clk_i(clk);
  c.out_valid_i(sig.out_valid);
  c.out_ready_o(sig.out_ready);
  c.out_data_i(sig.out_data);
  c.out_mask_i(sig.out_mask);
  c.out_last_i(sig.out_last);
}

// A model's monitor: the input valids and out_ready_i of `in` (what the feeder and collector
// drive), the readies and outputs of `outs` (that model's; `in` itself for a single model).
template <class S>
void bind_monitor(CycleMonitor<S>& m, TopSignals<S>& in, TopSignals<S>& outs,
                  sc_core::sc_clock& clk) {
  m.clk_i(clk);
  m.desc_valid_i(in.desc_valid);
  m.desc_ready_i(outs.desc_ready);
  m.wgt_valid_i(in.wgt_valid);
  m.wgt_ready_i(outs.wgt_ready);
  m.act_valid_i(in.act_valid);
  m.act_ready_i(outs.act_ready);
  m.scl_valid_i(in.scl_valid);
  m.scl_ready_i(outs.scl_ready);
  m.bias_valid_i(in.bias_valid);
  m.bias_ready_i(outs.bias_ready);
  m.out_valid_i(outs.out_valid);
  m.out_ready_i(in.out_ready);
  m.out_last_i(outs.out_last);
  m.stall_i(outs.stall);
}

// ---- The bench around one ts_top: clock, signals, feeder, collector, monitor, checker.
// Top is the DUT class (a Verilated ts_top or a SystemC model with the same ports), constructed
// from a module name.
template <class S, class Top>
class TopBench {
 public:
  TopBench(const std::string& name, std::vector<BenchLayer> layers, uint64_t seed,
           double period_ns = 10.0)
      : layers_(std::move(layers)),
        clk_((name + "_clk").c_str(), period_ns, sc_core::SC_NS),
        checker_(&layers_),
        top_(std::make_unique<Top>((name + "_top").c_str())),
        feeder_((name + "_feeder").c_str(), &layers_, seed ^ 0x5851f42d4c957f2dull),
        monitor_((name + "_monitor").c_str(), &checker_.results()),
        collector_((name + "_collector").c_str(), &layers_, &checker_, monitor_.window_cycle(),
                   seed) {
    sig_.bind(*top_, clk_);
    bind_feeder(feeder_, sig_, clk_);
    bind_collector(collector_, sig_, clk_);
    bind_monitor(monitor_, sig_, sig_, clk_);
  }
  bool done() const { return checker_.layer() >= layers_.size(); }
  // Appends a layer while the simulation is paused (between sc_start calls): every process reads
  // the layer list by index each cycle, so a layer whose inputs depend on the previous layer's
  // outputs (a chained network) can be added once those are in.
  void add_layer(BenchLayer layer) {
    layers_.push_back(std::move(layer));
    checker_.results().emplace_back();
  }
  // Frees the beats of a finished layer (its outputs are all in, so no process reads them again),
  // so a long chained run does not keep every layer's stimulus.
  void release_layer(std::size_t i) {
    if (i < checker_.layer()) layers_[i].stim = host::Stimulus{};
  }
  const std::vector<BenchLayer>& layers() const { return layers_; }
  std::vector<BenchLayerResult>& results() { return checker_.results(); }
  int64_t extra_beats() const { return checker_.extra_beats(); }
  int64_t total_cycles() const { return monitor_.total_cycles(); }
  Top& top() { return *top_; }

 private:
  std::vector<BenchLayer> layers_;
  sc_core::sc_clock clk_;
  TopSignals<S> sig_;
  GoldenChecker checker_;
  std::unique_ptr<Top> top_;
  HostFeeder<S> feeder_;
  CycleMonitor<S> monitor_;
  OutputCollector<S> collector_;
};

}  // namespace tilescale::sim
