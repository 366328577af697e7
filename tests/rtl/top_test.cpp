// ts_top, Verilated with --assert, driven through its streams like a host (rtl/README.md): random
// GEMM layers on 4x4 ws, 4x4 os and 8x8 ws builds, every output compared with int_arith.h (through
// ts_host.h's reference), the cycles of every layer compared with the documented formula, and runs
// with random input gaps and out_ready toggling where cycles = formula + the stalls counted on
// stall_o. A build with a broken activation skew (FaultDropSkew) must make the same test report
// mismatches. Randomized cases use $TILESCALE_SEED if set, else a fresh seed; the seed is printed.
#include <gtest/gtest.h>
#include <verilated.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "Vts_fault4.h"
#include "Vts_sa4x4_os.h"
#include "Vts_sa4x4_ws.h"
#include "Vts_sa8x8_ws.h"
#include "support/test_seed.h"
#include "tilescale/sim/ts_host.h"
#include "tilescale/sim/ts_rtl_config.h"

namespace q = tilescale::quant;
using namespace tilescale::rtl;
using namespace tilescale::sim::host;
using tilescale::sim::arch_of;

using tilescale::test::seed_note;
using tilescale::test::test_seed;

namespace {

// ---- Moving Bits in and out of Verilated ports (integers up to 64 bits, VlWide above).
template <class P>
void store(P& port, const Bits& b) {
  if constexpr (std::is_integral_v<P>) {
    port = static_cast<P>(b.u64());
  } else {
    for (std::size_t i = 0; i < sizeof(port) / sizeof(port.at(0)); ++i)
      port.at(i) = i < b.w.size() ? b.w[i] : 0u;
  }
}
template <class P>
Bits load(const P& port, int width) {
  Bits b(width);
  if constexpr (std::is_integral_v<P>) {
    b.set(0, std::min(width, 64), static_cast<uint64_t>(port));
  } else {
    for (std::size_t i = 0; i < b.w.size(); ++i) b.w[i] = port.at(i);
  }
  return b;
}

// ---- The Verilated top and a host driving it.
struct Traffic {
  double in_gap = 0;     // probability that an input stream offers nothing this cycle
  double out_stall = 0;  // probability that out_ready is low this cycle
};

struct LayerResult {
  int64_t cycles = 0;      // first input beat taken .. last output beat taken
  int64_t stalls = 0;      // cycles in that window with stall_o high
  int64_t outputs = 0;     // output beats received
  int64_t mismatches = 0;  // output lanes that differ from the golden value
  std::string first_mismatch;
  std::string error;  // protocol or liveness failure
};

template <class V>
class TopDut {
 public:
  explicit TopDut(const RtlConfig& cfg) : cfg_(cfg), ctx_(std::make_unique<VerilatedContext>()) {
    ctx_->randReset(2);
    ctx_->randSeed(static_cast<int>(test_seed() & 0x7fffffff));
    ctx_->assertOn(true);
    ctx_->fatalOnError(false);  // an assertion failure is counted and reported, not an abort
    m_ = std::make_unique<V>(ctx_.get(), "ts_top");
    idle_inputs();
    m_->clk_i = 0;
    m_->rst_ni = 1;
    m_->eval();
    m_->rst_ni = 0;
    m_->eval();
    m_->rst_ni = 1;
    m_->eval();
  }
  ~TopDut() { m_->final(); }
  V* operator->() { return m_.get(); }
  // One clock cycle with the inputs the caller has set (for hand-made protocol cases).
  void cycle() {
    m_->eval();
    m_->clk_i = 1;
    m_->eval();
    m_->clk_i = 0;
    m_->eval();
  }
  bool assertion_failed() const { return ctx_->gotError(); }

  LayerResult run(const Stimulus& s, const Traffic& traffic, std::mt19937_64& rng) {
    LayerResult res;
    std::size_t di = 0, wi = 0, ai = 0, si = 0, bi = 0, oi = 0;
    bool dv = false, wv = false, av = false, sv = false, bv = false;  // offered (held) beats
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto offer = [&](bool& valid, std::size_t next, std::size_t size) {
      if (!valid && next < size && !(traffic.in_gap > 0 && unit(rng) < traffic.in_gap))
        valid = true;
    };
    const int C = cfg_.cols;
    bool started = false, done = false;
    const int64_t limit = 20 * s.cycles + 2000;
    for (int64_t t = 0; !done; ++t) {
      if (t > limit) {
        res.error = "watchdog: no last output after " + std::to_string(t) + " cycles (" +
                    std::to_string(oi) + " of " + std::to_string(s.out.size()) + " outputs)";
        return res;
      }
      offer(dv, di, s.desc.size());
      offer(wv, wi, s.wgt.size());
      offer(av, ai, s.act.size());
      offer(sv, si, s.scl.size());
      offer(bv, bi, s.bias.size());
      m_->desc_valid_i = dv;
      if (dv) {
        store(m_->desc_i, s.desc[di].desc);
        store(m_->desc_layer_i, s.desc[di].layer);
        store(m_->desc_sel_i, s.desc[di].sel);
      }
      m_->wgt_valid_i = wv;
      if (wv) store(m_->wgt_data_i, s.wgt[wi]);
      m_->act_valid_i = av;
      if (av) {
        store(m_->act_data_i, s.act[ai]);
        store(m_->act_wgt_i, s.act_wgt[ai]);
      }
      m_->scl_valid_i = sv;
      if (sv) {
        m_->scl_reg_i = static_cast<uint8_t>(s.scl[si].reg);
        m_->scl_mant_i =
            static_cast<std::remove_reference_t<decltype(m_->scl_mant_i)>>(s.scl[si].mant);
        m_->scl_shift_i = static_cast<uint8_t>(s.scl[si].shift);
      }
      m_->bias_valid_i = bv;
      if (bv) store(m_->bias_data_i, s.bias[bi]);
      const bool out_ready = !(traffic.out_stall > 0 && unit(rng) < traffic.out_stall);
      m_->out_ready_i = out_ready;
      m_->eval();  // clock low: this cycle's handshakes settle

      const bool dfire = dv && m_->desc_ready_o, wfire = wv && m_->wgt_ready_o,
                 afire = av && m_->act_ready_o, sfire = sv && m_->scl_ready_o,
                 bfire = bv && m_->bias_ready_o, ofire = m_->out_valid_o && out_ready;
      if (std::getenv("TS_DEBUG") != nullptr)
        std::cout << "t=" << t << " desc " << dv << int(m_->desc_ready_o) << " wgt " << wv
                  << int(m_->wgt_ready_o) << " act " << av << int(m_->act_ready_o) << " scl " << sv
                  << int(m_->scl_ready_o) << " bias " << bv << int(m_->bias_ready_o) << " out "
                  << int(m_->out_valid_o) << out_ready << " stall " << int(m_->stall_o) << "\n";
      if (!started && (dfire || wfire || afire || sfire || bfire)) started = true;
      if (started) {
        ++res.cycles;
        res.stalls += m_->stall_o;
      }
      if (dfire) ++di, dv = false;
      if (wfire) ++wi, wv = false;
      if (afire) ++ai, av = false;
      if (sfire) ++si, sv = false;
      if (bfire) ++bi, bv = false;
      if (ofire) {
        if (oi >= s.out.size()) {
          res.error = "output beat beyond the expected " + std::to_string(s.out.size());
          return res;
        }
        const OutBeat& e = s.out[oi];
        const uint32_t mask = static_cast<uint32_t>(m_->out_mask_o);
        if (mask != e.mask || static_cast<bool>(m_->out_last_o) != e.last) {
          res.error = "output beat " + std::to_string(oi) + ": mask " + std::to_string(mask) +
                      " last " + std::to_string(m_->out_last_o) + ", expected mask " +
                      std::to_string(e.mask) + " last " + std::to_string(e.last);
          return res;
        }
        const Bits lanes = load(m_->out_data_o, C * cfg_.wide_bits);
        for (int c = 0; c < C; ++c) {
          if (!((e.mask >> c) & 1u)) continue;
          const int64_t got = static_cast<int64_t>(lanes.get(c * cfg_.wide_bits, cfg_.wide_bits));
          if (got != e.lane[static_cast<std::size_t>(c)] && res.mismatches++ == 0) {
            std::ostringstream m;
            m << "fold " << e.fold << " pixel " << e.pixel0 << " channel " << e.n0 + c << " (beat "
              << oi << ", cycle " << res.cycles << "): got " << got << ", golden "
              << e.lane[static_cast<std::size_t>(c)];
            res.first_mismatch = m.str();
          }
        }
        ++oi;
        ++res.outputs;
        done = e.last;
      }
      m_->clk_i = 1;
      m_->eval();
      m_->clk_i = 0;
      m_->eval();
    }
    if (di != s.desc.size() || wi != s.wgt.size() || ai != s.act.size() || si != s.scl.size() ||
        bi != s.bias.size() || oi != s.out.size())
      res.error = "beats left over: desc " + std::to_string(s.desc.size() - di) + " wgt " +
                  std::to_string(s.wgt.size() - wi) + " act " + std::to_string(s.act.size() - ai) +
                  " scl " + std::to_string(s.scl.size() - si) + " bias " +
                  std::to_string(s.bias.size() - bi) + " out " + std::to_string(s.out.size() - oi);
    // After the last output the accelerator is idle and holds nothing back.
    if (m_->busy_o || m_->out_valid_o) res.error += " busy or output valid after the layer";
    idle_inputs();
    return res;
  }

 private:
  void idle_inputs() {
    m_->desc_valid_i = 0;
    m_->wgt_valid_i = 0;
    m_->act_valid_i = 0;
    m_->scl_valid_i = 0;
    m_->bias_valid_i = 0;
    m_->out_ready_i = 1;
  }
  RtlConfig cfg_;
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<V> m_;
};

struct Totals {
  int layers = 0;
  int64_t outputs = 0, mismatches = 0, stalls = 0, cycles = 0;
  int layers_with_mismatch = 0;
};

// Runs `layers` random layers back to back on one accelerator (state carries over between
// layers, as in a network). Stall-free traffic must give exactly the formula; with gaps and
// back-pressure the formula plus the counted stalls. expect_exact = false (fault injection) only
// collects the mismatches.
template <class V>
Totals run_random_layers(const RtlConfig& cfg, int layers, const Traffic& traffic, uint64_t salt,
                         bool expect_exact = true) {
  SCOPED_TRACE(seed_note());
  std::mt19937_64 rng(test_seed() ^ (salt * 0x9e3779b97f4a7c15ull));
  const Arch A = arch_of(cfg);
  TopDut<V> dut(cfg);
  Totals tot;
  for (int i = 0; i < layers; ++i) {
    LayerCase lc = random_layer(rng, A, cfg.act_bits);
    if (lc.layer.frac_bits < 0 || lc.layer.frac_bits > 63) {
      --i;
      continue;
    }
    const std::vector<Fold> folds = make_folds(lc.layer, A, lc.align);
    const Stimulus s = make_stimulus(lc.layer, A, folds, cfg.act_bits, cfg.weight_bits, rng);
    const LayerResult r = dut.run(s, traffic, rng);
    SCOPED_TRACE("layer " + std::to_string(i) + ": " + lc.str() + ", " +
                 std::to_string(folds.size()) + " folds");
    ++tot.layers;
    tot.outputs += r.outputs;
    tot.mismatches += r.mismatches;
    tot.stalls += r.stalls;
    tot.cycles += r.cycles;
    if (r.mismatches > 0) ++tot.layers_with_mismatch;
    if (!expect_exact) continue;
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
    EXPECT_EQ(r.cycles, s.cycles + r.stalls)
        << "formula " << s.cycles << " + stalls " << r.stalls << " (measured " << r.cycles << ")";
    if (traffic.in_gap == 0 && traffic.out_stall == 0) {
      EXPECT_EQ(r.stalls, 0);
    }
    EXPECT_FALSE(dut.assertion_failed()) << "an RTL assertion failed (see the log)";
    if (::testing::Test::HasFailure()) break;
  }
  std::cout << cfg.name << ": " << tot.layers << " random layers, " << tot.outputs
            << " output beats, " << tot.cycles << " cycles, " << tot.stalls << " stalls, "
            << tot.mismatches << " mismatching lanes\n";
  return tot;
}

constexpr Traffic kStallFree{};
constexpr Traffic kBusy{0.25, 0.3};

TEST(RtlTop, Ws4x4RandomLayersMatchGoldenInFormulaCycles) {
  const Totals t = run_random_layers<Vts_sa4x4_ws>(kSa4x4Ws, 300, kStallFree, 1);
  EXPECT_GT(t.outputs, 0);
}
TEST(RtlTop, Os4x4RandomLayersMatchGoldenInFormulaCycles) {
  const Totals t = run_random_layers<Vts_sa4x4_os>(kSa4x4Os, 300, kStallFree, 2);
  EXPECT_GT(t.outputs, 0);
}
TEST(RtlTop, Ws8x8RandomLayersMatchGoldenInFormulaCycles) {
  const Totals t = run_random_layers<Vts_sa8x8_ws>(kSa8x8Ws, 150, kStallFree, 3);
  EXPECT_GT(t.outputs, 0);
}

// Back-pressure: gaps on every input stream and a toggling out_ready change nothing but the cycle
// count, by exactly the stalls the design reports.
TEST(RtlTop, Ws4x4BackPressureAddsExactlyTheCountedStalls) {
  const Totals t = run_random_layers<Vts_sa4x4_ws>(kSa4x4Ws, 100, kBusy, 4);
  EXPECT_GT(t.stalls, 0) << "the traffic never stalled the accelerator";
}
TEST(RtlTop, Os4x4BackPressureAddsExactlyTheCountedStalls) {
  const Totals t = run_random_layers<Vts_sa4x4_os>(kSa4x4Os, 100, kBusy, 5);
  EXPECT_GT(t.stalls, 0) << "the traffic never stalled the accelerator";
}
TEST(RtlTop, Ws8x8BackPressureAddsExactlyTheCountedStalls) {
  const Totals t = run_random_layers<Vts_sa8x8_ws>(kSa8x8Ws, 50, kBusy, 6);
  EXPECT_GT(t.stalls, 0) << "the traffic never stalled the accelerator";
}

// The tests can fail: the same random layers on a 4x4 ws array whose row 1 lost its skew register
// must show mismatches (row 1 then multiplies the next vector's input).
TEST(RtlTop, DroppedSkewRegisterIsReportedAsMismatches) {
  const Totals t = run_random_layers<Vts_fault4>(kSa4x4Ws, 40, kStallFree, 7, false);
  EXPECT_GT(t.mismatches, 0);
  EXPECT_GT(t.layers_with_mismatch, t.layers / 3)
      << t.layers_with_mismatch << " of " << t.layers << " layers showed the fault";
}

}  // namespace

namespace {

// ---- The assertions can fire: hand-made violations of the contract.

// A one-layer stimulus on 4x4 ws with two output groups, for the cases below to spoil.
Stimulus small_layer(GemmLayer& L, std::mt19937_64& rng, int32_t weight = -2) {
  const Arch A = arch_of(kSa4x4Ws);
  L.m = 3;
  L.n = 4;
  L.k = 4;
  L.act.assign(12, 3);
  L.weight.assign(16, weight);
  L.out_group = {0, 1, 0, 1};
  L.red_group.assign(4, 0);
  L.out_groups = 2;
  L.red_groups = 1;
  L.multiplier = {q::to_fixed_multiplier(0.25, 16), q::to_fixed_multiplier(0.5, 16)};
  L.frac_bits = std::max(L.multiplier[0].r, L.multiplier[1].r);
  L.bias_q.assign(4, 0);
  L.clamp = q::signed_range(8);
  L.out_signed = true;
  const std::vector<Fold> folds = make_folds(L, A, Align::Pad);
  return make_stimulus(L, A, folds, 8, 8, rng);
}

TEST(RtlTopAssertions, UnchangedSmallLayerPassesWithoutAssertion) {
  std::mt19937_64 rng(1);
  GemmLayer L;
  const Stimulus s = small_layer(L, rng);
  TopDut<Vts_sa4x4_ws> dut(kSa4x4Ws);
  const LayerResult r = dut.run(s, kStallFree, rng);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.mismatches, 0);
  EXPECT_EQ(r.cycles, s.cycles);
  EXPECT_FALSE(dut.assertion_failed());
}

TEST(RtlTopAssertions, DescriptorWithNoColumnsFails) {
  std::mt19937_64 rng(1);
  GemmLayer L;
  Stimulus s = small_layer(L, rng);
  s.desc[0].desc.set(12, kCountBits, 0);  // cols_used = 0
  TopDut<Vts_sa4x4_ws> dut(kSa4x4Ws);
  dut.run(s, kStallFree, rng);
  EXPECT_TRUE(dut.assertion_failed());
}

TEST(RtlTopAssertions, WideAccumulatorOverflowFails) {
  std::mt19937_64 rng(1);
  GemmLayer L;
  L.keep_acc = true;
  Stimulus s = small_layer(L, rng, 2);
  // A bias at the top of int64 plus positive terms: the 64-bit wide sum wraps.
  for (int c = 0; c < 4; ++c) s.bias[0].set(c * 64, 64, uint64_t{0x7fffffffffffffff});
  TopDut<Vts_sa4x4_ws> dut(kSa4x4Ws);
  dut.run(s, kStallFree, rng);
  EXPECT_TRUE(dut.assertion_failed());
}

TEST(RtlTopAssertions, ScaledTermBeyondWideBitsFails) {
  std::mt19937_64 rng(1);
  GemmLayer L;
  Stimulus s = small_layer(L, rng);
  for (ScaleBeat& b : s.scl) b.shift = 63;  // |P * m| << 63 does not fit 64 bits
  TopDut<Vts_sa4x4_ws> dut(kSa4x4Ws);
  dut.run(s, kStallFree, rng);
  EXPECT_TRUE(dut.assertion_failed());
}

TEST(RtlTopAssertions, PayloadChangedBeforeTakenFails) {
  std::mt19937_64 rng(1);
  GemmLayer L;
  const Stimulus s = small_layer(L, rng);
  TopDut<Vts_sa4x4_ws> dut(kSa4x4Ws);
  // A descriptor offered without its first preload row is not taken; changing it then is a
  // protocol error of the host.
  dut->desc_valid_i = 1;
  store(dut->desc_i, s.desc[0].desc);
  store(dut->desc_layer_i, s.desc[0].layer);
  store(dut->desc_sel_i, s.desc[0].sel);
  dut.cycle();
  EXPECT_EQ(dut->desc_ready_o, 0);
  EXPECT_FALSE(dut.assertion_failed());
  Bits changed = s.desc[0].desc;
  changed.set(36, kStreamBits, 2);  // another stream length
  store(dut->desc_i, changed);
  dut.cycle();
  EXPECT_TRUE(dut.assertion_failed());
}

}  // namespace
