// Bit-exactness of the Verilated RTL blocks: the scale unit, accumulator and requantizer against
// the functions of int_arith.h (the golden numerics), the PEs and the CIM shift-add against plain
// C++ references. Randomized cases use $TILESCALE_SEED if set, else a fresh seed; the seed is
// printed.
#include <gtest/gtest.h>
#include <verilated.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vacc.h"
#include "Vpe_os.h"
#include "Vpe_ws.h"
#include "Vrequant.h"
#include "Vsa_1b.h"
#include "Vsa_2b.h"
#include "Vsu_fixed.h"
#include "Vsu_shift.h"
#include "support/test_seed.h"
#include "tilescale/quant/int_arith.h"

namespace q = tilescale::quant;

using tilescale::test::seed_note;
using tilescale::test::test_seed;

namespace {

// The Verilated configurations (tests/rtl/CMakeLists.txt passes the same numbers with -G).
constexpr int kPsumBits = 32;   // ts_scale_unit InBits
constexpr int kMantBits = 16;   // ts_scale_unit MantBits (fixed multiplier)
constexpr int kWideBits = 64;   // ts_scale_unit OutBits, ts_accumulator Bits, ts_requant InBits
constexpr int kOutBits = 8;     // ts_requant OutBits
constexpr int kMaxShift = 63;   // 2^ShiftBits - 1
constexpr int kActBits = 8;     // PE ActBits
constexpr int kWeightBits = 4;  // PE WeightBits
constexpr int kPeAccBits = 32;  // PE AccBits

// Two's-complement value of the low `bits` bits of v.
int64_t sext(uint64_t v, int bits) {
  if (bits >= 64) return static_cast<int64_t>(v);
  const uint64_t m = uint64_t{1} << (bits - 1);
  v &= (uint64_t{1} << bits) - 1;
  return static_cast<int64_t>(v ^ m) - static_cast<int64_t>(m);
}

// A Verilated model in its own context; unreset registers start random (seeded).
template <class M>
class Dut {
 public:
  Dut() : ctx_(std::make_unique<VerilatedContext>()) {
    ctx_->randReset(2);
    ctx_->randSeed(static_cast<int>(test_seed() & 0x7fffffff));
    m_ = std::make_unique<M>(ctx_.get(), "dut");
    m_->clk_i = 0;
    m_->rst_ni = 1;
    m_->eval();
    m_->rst_ni = 0;  // asynchronous reset: a negedge, no clock
    m_->eval();
    m_->rst_ni = 1;
    m_->eval();
  }
  ~Dut() { m_->final(); }
  M* operator->() { return m_.get(); }
  // One rising clock edge with the inputs set now; outputs show the new register values after.
  void tick() {
    m_->clk_i = 1;
    m_->eval();
    m_->clk_i = 0;
    m_->eval();
  }

 private:
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<M> m_;
};

// ---------------------------------------------------------------------------------------------
// Scale unit -> accumulator -> requantizer against int_arith.h

// The acc term of int_arith.h, (P * m) << (F - r), with int_arith's own shift function (a negative
// shift multiplies by 2^-shift).
int64_t golden_term(int64_t psum, int64_t m, int lshift) {
  return q::round_shift_half_up(psum * m, -lshift);
}

q::IntRange out_range(bool out_signed) {
  return out_signed ? q::signed_range(kOutBits) : q::unsigned_range(kOutBits);
}

int64_t golden_requant(int64_t acc, int F, bool out_signed) {
  return q::saturate(q::round_shift_half_up(acc, F), out_range(out_signed));
}

// The code the requantizer drives, as a value of the output grid.
int64_t requant_code(uint64_t raw, bool out_signed) {
  return out_signed ? sext(raw, kOutBits) : static_cast<int64_t>(raw & 0xff);
}

int64_t run_requant(Dut<Vrequant>& rq, int64_t acc, int F, bool out_signed) {
  rq->valid_i = 1;
  rq->acc_i = static_cast<uint64_t>(acc);
  rq->shift_i = static_cast<uint8_t>(F);
  rq->out_signed_i = out_signed;
  rq.tick();
  EXPECT_EQ(rq->valid_o, 1);
  return requant_code(rq->q_o, out_signed);
}

template <class SU>
int64_t run_scale(Dut<SU>& su, int64_t psum, int64_t m, int lshift) {
  su->valid_i = 1;
  su->psum_i = static_cast<uint32_t>(psum);
  su->mant_i = static_cast<uint16_t>(m);
  su->lshift_i = static_cast<uint8_t>(lshift);
  su.tick();
  EXPECT_EQ(su->valid_o, 1);
  return sext(su->out_o, kWideBits);
}

// A random 32-bit partial sum: a uniform bit length, so small and large magnitudes both occur.
int64_t random_psum(std::mt19937_64& rng) {
  const int len = static_cast<int>(rng() % kPsumBits);  // |P| < 2^len
  const int64_t mag = len == 0 ? 0 : static_cast<int64_t>(rng() & ((uint64_t{1} << len) - 1));
  if (rng() % 64 == 0)
    return rng() % 2 ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int32_t>::min();
  return rng() % 2 ? -mag : mag;
}

// Bits needed for |v| (0 for v = 0).
int magnitude_bits(int64_t v) {
  uint64_t a = v < 0 ? uint64_t(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  int n = 0;
  while (a != 0) {
    a >>= 1;
    ++n;
  }
  return n;
}

// One layer output of int_arith.h: acc = sum_blk (P * m) << (F - r) + bias_q, F = max r, then
// q_y = saturate(round_shift_half_up(acc, F)). The RTL runs scale unit -> accumulator -> requant.
template <class SU>
void check_layer_outputs(int mant_bits, int cases) {
  SCOPED_TRACE(seed_note());
  std::mt19937_64 rng(test_seed() + static_cast<uint64_t>(mant_bits));
  Dut<SU> su;
  Dut<Vacc> acc_unit;
  Dut<Vrequant> rq;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int checked = 0, inside = 0;
  while (checked < cases) {
    const int blocks = 1 + static_cast<int>(rng() % 8);
    // |P * M| near 2^out_log2 output steps, so that most layer outputs land inside the grid.
    const double out_log2 = 8.0 * unit(rng) - 1.0;
    std::vector<int64_t> psum(blocks);
    std::vector<q::FixedMultiplier> fm(blocks);
    int F = 0;
    for (int b = 0; b < blocks; ++b) {
      psum[b] = random_psum(rng);
      const double log2_m = std::clamp(
          out_log2 - magnitude_bits(psum[b]) - 3.0 * unit(rng) - std::log2(blocks), -30.0, 1.0);
      fm[b] = q::to_fixed_multiplier(std::exp2(log2_m), mant_bits);
      F = b == 0 ? fm[b].r : std::max(F, fm[b].r);
    }
    if (F < 0 || F > kMaxShift) continue;  // outside the RTL's unsigned 6-bit F
    // The golden model proves |acc| < 2^62; keep to that domain.
    bool fits = true;
    for (int b = 0; b < blocks; ++b)
      fits = fits && magnitude_bits(psum[b] * fm[b].m) + (F - fm[b].r) <= 58;
    if (!fits) continue;
    // A bias of up to 2^7 output steps.
    const int64_t bias_span = int64_t{1} << std::min(F + 8, 40);
    const int64_t bias =
        static_cast<int64_t>(rng() % static_cast<uint64_t>(bias_span)) - bias_span / 2;
    const bool out_signed = rng() % 2 == 0;

    int64_t golden_acc = bias;
    acc_unit->en_i = 1;
    acc_unit->clear_i = 1;
    acc_unit->in_i = static_cast<uint64_t>(bias);
    acc_unit.tick();
    for (int b = 0; b < blocks; ++b) {
      const int lshift = F - fm[b].r;
      const int64_t term = golden_term(psum[b], fm[b].m, lshift);
      const int64_t rtl_term = run_scale(su, psum[b], fm[b].m, lshift);
      ASSERT_EQ(rtl_term, term) << "P=" << psum[b] << " m=" << fm[b].m << " lshift=" << lshift;
      golden_acc += term;
      acc_unit->clear_i = 0;
      acc_unit->in_i = static_cast<uint64_t>(rtl_term);
      acc_unit.tick();
    }
    acc_unit->en_i = 0;  // hold
    acc_unit->in_i = rng();
    acc_unit.tick();
    const int64_t rtl_acc = static_cast<int64_t>(acc_unit->acc_o);
    ASSERT_EQ(rtl_acc, golden_acc);
    const int64_t y = run_requant(rq, rtl_acc, F, out_signed);
    ASSERT_EQ(y, golden_requant(golden_acc, F, out_signed))
        << "acc=" << golden_acc << " F=" << F << " signed=" << out_signed;
    const q::IntRange r = out_range(out_signed);
    if (y > r.lo && y < r.hi) ++inside;
    ++checked;
  }
  // Most outputs must exercise the rounding, not only the saturation.
  std::cout << "m bits " << mant_bits << ": " << inside << " of " << cases
            << " outputs inside the grid\n";
  EXPECT_GT(inside, cases / 2) << inside << " of " << cases << " outputs inside the grid";
}

TEST(RtlScaleChain, FixedMultiplier16LayerOutputsEqualIntArith) {
  check_layer_outputs<Vsu_fixed>(kMantBits, 3000);
}

TEST(RtlScaleChain, ShiftOnlyLayerOutputsEqualIntArith) { check_layer_outputs<Vsu_shift>(1, 3000); }

TEST(RtlScaleUnit, ExtremePsumsAndMantissasAreExact) {
  SCOPED_TRACE(seed_note());
  Dut<Vsu_fixed> su;
  const int64_t pmax = std::numeric_limits<int32_t>::max();
  const int64_t pmin = std::numeric_limits<int32_t>::min();
  const int64_t mmax = (int64_t{1} << kMantBits) - 1;
  for (int64_t p : {pmin, pmin + 1, int64_t{-1}, int64_t{0}, int64_t{1}, pmax}) {
    for (int64_t m : {int64_t{0}, int64_t{1}, int64_t{1} << (kMantBits - 1), mmax}) {
      // |P * m| < 2^47: every shift that keeps the term below 2^63.
      for (int lshift = 0; magnitude_bits(p * m) + lshift <= 63 && lshift <= kMaxShift; ++lshift) {
        ASSERT_EQ(run_scale(su, p, m, lshift), golden_term(p, m, lshift))
            << "P=" << p << " m=" << m << " lshift=" << lshift;
      }
    }
  }
  // The most negative term: -2^31 * (2^16 - 1) << 16, and with the shift-only unit -2^31 << 32.
  EXPECT_EQ(run_scale(su, pmin, mmax, 16), pmin * mmax * 65536);
  Dut<Vsu_shift> shift_unit;
  EXPECT_EQ(run_scale(shift_unit, pmin, 1, 32), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(run_scale(shift_unit, pmax, 1, 31), pmax << 31);
}

TEST(RtlScaleUnit, ValidIsDelayedOneCycle) {
  Dut<Vsu_fixed> su;
  EXPECT_EQ(su->valid_o, 0) << "valid_o after reset";
  su->valid_i = 1;
  su.tick();
  EXPECT_EQ(su->valid_o, 1);
  su->valid_i = 0;
  su.tick();
  EXPECT_EQ(su->valid_o, 0);
}

TEST(RtlRequant, EdgeCasesEqualIntArith) {
  Dut<Vrequant> rq;
  const int64_t i64max = std::numeric_limits<int64_t>::max();
  const int64_t i64min = std::numeric_limits<int64_t>::min();
  struct Case {
    int64_t acc;
    int F;
  };
  std::vector<Case> cases = {
      // F = 0 returns acc (then saturates)
      {0, 0},
      {1, 0},
      {-1, 0},
      {127, 0},
      {128, 0},
      {-128, 0},
      {-129, 0},
      {255, 0},
      {256, 0},
      {i64max, 0},
      {i64min, 0},
      // exact .5 ties, positive and negative: round half up (toward +infinity)
      {1, 1},
      {-1, 1},
      {3, 1},
      {-3, 1},
      {5, 1},
      {-5, 1},
      {8, 4},
      {-8, 4},
      {24, 4},
      {-24, 4},
      {(int64_t{255} << 20) + (int64_t{1} << 19), 20},
      {-(int64_t{128} << 20) - (int64_t{1} << 19), 20},
      {(int64_t{127} << 20) + (int64_t{1} << 19), 20},
      {-(int64_t{129} << 20) + (int64_t{1} << 19), 20},
      // just off the ties
      {(int64_t{1} << 19) - 1, 20},
      {-(int64_t{1} << 19) - 1, 20},
      // saturation at both ends, the largest shifts
      {int64_t{1} << 40, 20},
      {-(int64_t{1} << 40), 20},
      {i64min, 63},
      {i64min, 62},
      {i64max >> 1, 62},
      {-(int64_t{1} << 62), 62},
      {int64_t{1} << 61, 62},
      {i64min / 2, 63},
  };
  for (const Case& c : cases) {
    for (bool out_signed : {true, false}) {
      EXPECT_EQ(run_requant(rq, c.acc, c.F, out_signed), golden_requant(c.acc, c.F, out_signed))
          << "acc=" << c.acc << " F=" << c.F << " signed=" << out_signed;
    }
  }
  // The rule itself, spelled out: -1.5 -> -1, 1.5 -> 2, -0.5 -> 0, 0.5 -> 1, then the grid.
  EXPECT_EQ(run_requant(rq, -3, 1, true), -1);
  EXPECT_EQ(run_requant(rq, 3, 1, true), 2);
  EXPECT_EQ(run_requant(rq, -1, 1, true), 0);
  EXPECT_EQ(run_requant(rq, 1, 1, true), 1);
  EXPECT_EQ(run_requant(rq, -3, 1, false), 0);
  EXPECT_EQ(run_requant(rq, 1000, 2, true), 127);
  EXPECT_EQ(run_requant(rq, -1000, 2, true), -128);
  EXPECT_EQ(run_requant(rq, 1000, 2, false), 250);
  EXPECT_EQ(run_requant(rq, 1100, 2, false), 255);
}

// int_arith's (acc + 2^(F-1)) >> F overflows int64 when acc > 2^63 - 2^(F-1); the golden model
// never gets there (|acc| < 2^62), the RTL adds in InBits + 1 bits and stays exact anyway. The
// overflow-free form (acc >> F) + bit F-1 of acc is the same function.
TEST(RtlRequant, TopOfInt64DoesNotWrap) {
  Dut<Vrequant> rq;
  const int64_t i64max = std::numeric_limits<int64_t>::max();
  auto exact = [](int64_t acc, int F) { return (acc >> F) + ((acc >> (F - 1)) & 1); };
  for (int F = 1; F <= kMaxShift; ++F) {
    ASSERT_EQ(exact(12345 - (int64_t{7} << 40), F),
              q::round_shift_half_up(12345 - (int64_t{7} << 40), F));
    for (bool out_signed : {true, false}) {
      const int64_t want = q::saturate(exact(i64max, F), out_range(out_signed));
      EXPECT_EQ(run_requant(rq, i64max, F, out_signed), want) << "F=" << F;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Processing elements against plain C++ references

int64_t act_value(uint32_t code, bool act_signed) {
  return act_signed ? sext(code, kActBits) : static_cast<int64_t>(code);
}

// ts_pe_ws, register by register.
struct PeWsRef {
  int64_t w = 0;     // stationary weight (reset 0)
  uint32_t act = 0;  // activation register
  int64_t psum = 0;  // partial-sum register (32-bit two's complement)
  void step(bool load, int64_t w_in, uint32_t act_in, int64_t psum_in, bool act_signed) {
    const int64_t next_psum =
        sext(static_cast<uint64_t>(psum_in + act_value(act_in, act_signed) * w), kPeAccBits);
    if (load) w = w_in;
    act = act_in;
    psum = next_psum;
  }
};

TEST(RtlPeWs, StreamedSequenceMatchesReferenceSignedAndUnsigned) {
  SCOPED_TRACE(seed_note());
  std::mt19937_64 rng(test_seed() + 101);
  for (bool act_signed : {false, true}) {
    Dut<Vpe_ws> pe;
    PeWsRef ref;
    pe->act_signed_i = act_signed;
    for (int cycle = 0; cycle < 400; ++cycle) {
      const bool load = cycle == 0 || rng() % 16 == 0;
      const int64_t w = sext(rng(), kWeightBits);
      // Extreme codes and partial sums (wrap-around) now and then.
      uint32_t act = static_cast<uint32_t>(rng() & 0xff);
      if (rng() % 8 == 0) act = rng() % 2 ? 0x80 : 0x7f;
      if (rng() % 8 == 0) act = rng() % 2 ? 0xff : 0x00;
      const int64_t psum =
          rng() % 8 == 0 ? (rng() % 2 ? INT32_MAX : INT32_MIN) : sext(rng(), kPeAccBits);
      pe->w_load_i = load;
      pe->w_i = static_cast<uint8_t>(w) & 0xf;
      pe->act_i = static_cast<uint8_t>(act);
      pe->psum_i = static_cast<uint32_t>(psum);
      pe.tick();
      ref.step(load, w, act, psum, act_signed);
      ASSERT_EQ(sext(pe->psum_o, kPeAccBits), ref.psum)
          << "cycle " << cycle << " signed " << act_signed;
      ASSERT_EQ(pe->act_o, ref.act) << "cycle " << cycle;
      ASSERT_EQ(sext(pe->w_o, kWeightBits), ref.w) << "cycle " << cycle;
    }
  }
}

// A column of K weight-stationary PEs with skewed activations computes sum_k act_k * w_k.
TEST(RtlPeWs, ColumnComputesDotProducts) {
  SCOPED_TRACE(seed_note());
  std::mt19937_64 rng(test_seed() + 202);
  constexpr int K = 4;
  for (bool act_signed : {false, true}) {
    std::vector<std::unique_ptr<Dut<Vpe_ws>>> col;
    std::vector<int64_t> w(K);
    for (int k = 0; k < K; ++k) {
      col.push_back(std::make_unique<Dut<Vpe_ws>>());
      w[k] = sext(rng(), kWeightBits);
      Dut<Vpe_ws>& pe = *col[k];
      pe->act_signed_i = act_signed;
      pe->w_load_i = 1;
      pe->w_i = static_cast<uint8_t>(w[k]) & 0xf;
      pe->act_i = 0;
      pe->psum_i = 0;
      pe.tick();
      pe->w_load_i = 0;
    }
    // Vector t enters row k at cycle t + k; its sum leaves the last PE after cycle t + K - 1.
    constexpr int T = 16;
    std::vector<std::vector<uint32_t>> x(T, std::vector<uint32_t>(K));
    for (auto& v : x)
      for (auto& a : v) a = static_cast<uint32_t>(rng() & 0xff);
    for (int cycle = 0; cycle < T + K; ++cycle) {
      std::vector<uint32_t> psum_in(K);
      psum_in[0] = 0;
      for (int k = 1; k < K; ++k) psum_in[k] = (*col[k - 1])->psum_o;
      for (int k = 0; k < K; ++k) {
        const int t = cycle - k;
        (*col[k])->act_i = t >= 0 && t < T ? static_cast<uint8_t>(x[t][k]) : 0;
        (*col[k])->psum_i = psum_in[k];
      }
      for (auto& pe : col) pe->tick();
      const int t = cycle - (K - 1);
      if (t >= 0 && t < T) {
        int64_t want = 0;
        for (int k = 0; k < K; ++k) want += act_value(x[t][k], act_signed) * w[k];
        ASSERT_EQ(sext((*col[K - 1])->psum_o, kPeAccBits), want) << "vector " << t;
      }
    }
  }
}

TEST(RtlPeOs, AccumulatesClearsAndDrains) {
  SCOPED_TRACE(seed_note());
  std::mt19937_64 rng(test_seed() + 303);
  for (bool act_signed : {false, true}) {
    Dut<Vpe_os> pe;
    EXPECT_EQ(pe->acc_o, 0u) << "accumulator after reset";
    pe->act_signed_i = act_signed;
    pe->drain_i = 0;
    pe->acc_i = 0;
    for (int run = 0; run < 20; ++run) {
      const int len = 1 + static_cast<int>(rng() % 40);
      int64_t want = 0;
      for (int i = 0; i < len; ++i) {
        const uint32_t a = static_cast<uint32_t>(rng() & 0xff);
        const int64_t w = sext(rng(), kWeightBits);
        pe->clear_i = i == 0;
        pe->act_i = static_cast<uint8_t>(a);
        pe->w_i = static_cast<uint8_t>(w) & 0xf;
        pe.tick();
        want += act_value(a, act_signed) * w;
        ASSERT_EQ(pe->act_o, a);
        ASSERT_EQ(sext(pe->w_o, kWeightBits), w);
      }
      ASSERT_EQ(sext(pe->acc_o, kPeAccBits), want) << "run " << run;
      // Read-out: drain loads the neighbour's accumulator (and wins over clear).
      const uint32_t neighbour = static_cast<uint32_t>(rng());
      pe->drain_i = 1;
      pe->clear_i = 1;
      pe->acc_i = neighbour;
      pe.tick();
      ASSERT_EQ(pe->acc_o, neighbour);
      pe->drain_i = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// CIM shift-add: a crossbar column of offset-binary weights, bit-serial inputs, ideal ADC.

template <class SA>
void check_shift_add(int slices, int cell_bits) {
  SCOPED_TRACE(seed_note());
  std::mt19937_64 rng(test_seed() + 404 + static_cast<uint64_t>(cell_bits));
  constexpr int kRows = 16;
  constexpr int kAdcBits = 6;
  const int wbits = slices * cell_bits;  // 8
  for (int trial = 0; trial < 200; ++trial) {
    const bool act_signed = trial % 2 == 1;
    Dut<SA> sa;
    std::vector<int64_t> w(kRows);
    std::vector<uint32_t> a(kRows);
    int64_t want = 0;
    for (int r = 0; r < kRows; ++r) {
      w[r] = sext(rng(), wbits);
      a[r] = static_cast<uint32_t>(rng() & 0xff);
      if (trial < 4) {  // the extremes: every weight and input at a corner
        w[r] = trial % 4 < 2 ? -(int64_t{1} << (wbits - 1)) : (int64_t{1} << (wbits - 1)) - 1;
        a[r] = trial % 2 ? 0x80 : 0xff;
      }
      want += act_value(a[r], act_signed) * w[r];
    }
    for (int p = 0; p < kActBits; ++p) {
      uint64_t adc = 0;
      int count = 0;
      for (int s = 0; s < slices; ++s) {
        int64_t code = 0;
        for (int r = 0; r < kRows; ++r) {
          const uint64_t u = static_cast<uint64_t>(w[r] + (int64_t{1} << (wbits - 1)));  // offset
          const uint64_t x = (a[r] >> p) & 1;
          code += static_cast<int64_t>(x * ((u >> (s * cell_bits)) & ((1u << cell_bits) - 1)));
        }
        ASSERT_LT(code, int64_t{1} << kAdcBits) << "the test must not clip the ADC";
        adc |= static_cast<uint64_t>(code) << (s * kAdcBits);
      }
      for (int r = 0; r < kRows; ++r) count += (a[r] >> p) & 1;
      sa->valid_i = 1;
      sa->clear_i = p == 0;
      sa->adc_i = adc;
      sa->row_count_i = static_cast<uint8_t>(count);
      sa->bit_pos_i = static_cast<uint8_t>(p);
      sa->bit_neg_i = act_signed && p == kActBits - 1;
      sa.tick();
    }
    sa->valid_i = 0;  // hold
    sa.tick();
    ASSERT_EQ(sext(sa->acc_o, 32), want) << "trial " << trial << " signed " << act_signed;
  }
}

TEST(RtlShiftAdd, TwoBitCellsFourSlicesEqualDotProduct) { check_shift_add<Vsa_2b>(4, 2); }

TEST(RtlShiftAdd, OneBitCellsEightSlicesEqualDotProduct) { check_shift_add<Vsa_1b>(8, 1); }

}  // namespace
