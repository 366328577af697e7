// Port types of ts_top as SystemC sees them, and the bit helpers the SystemC twin of ts_top
// (ts_top_model.h) uses on them. Verilator's --pins-sc-uint maps a W-bit port to bool (W = 1),
// sc_uint<W> (2..64) or sc_bv<W> (above 64); the testbench (ts_bench.h) and the twin use the same
// types, so either binds to the same signals. Lane i of a packed port is at [i*w +: w].
#pragma once

#include <algorithm>
#include <cstdint>
#include <systemc>
#include <type_traits>

namespace tilescale::sim {

constexpr int clog2_min1(int n) {
  int b = 0;
  while ((1 << b) < n) ++b;
  return b < 1 ? 1 : b;
}

// The C++ type of a W-bit port of Verilator's SystemC wrapper with --pins-sc-uint.
template <int W>
using pin_t = std::conditional_t<W == 1, bool,
                                 std::conditional_t<(W <= 64), sc_dt::sc_uint<W>, sc_dt::sc_bv<W>>>;

// ts_top's parameters that set port widths or the beats (rtl/README.md, "Parameters").
template <int RowsP, int ColsP, int ActBitsP, int WeightBitsP, int MantBitsP, int RegsP,
          int WideBitsP = 64, int ActLanesP = RowsP, int OutLanesP = ColsP>
struct TopShape {
  static constexpr int kRows = RowsP;              // PE rows
  static constexpr int kCols = ColsP;              // PE columns
  static constexpr int kActBits = ActBitsP;        // activation code bits
  static constexpr int kWeightBits = WeightBitsP;  // weight code bits
  static constexpr int kMantBits = MantBitsP;      // scale mantissa bits (1: shift only)
  static constexpr int kRegs = RegsP;              // scale registers per bank
  static constexpr int kWideBits = WideBitsP;      // bias and output lane bits
  static constexpr int kActLanes = ActLanesP;      // activation lanes per beat (ActLanes)
  static constexpr int kOutLanes = OutLanesP;      // output lanes per beat (OutLanes)
  static constexpr int kSelBits = clog2_min1(RegsP);
  static constexpr int kDescSelW = ColsP * kSelBits;
  static constexpr int kWgtW = ColsP * WeightBitsP;
  static constexpr int kActW = ActLanesP * ActBitsP;
  static constexpr int kBiasW = ColsP * WideBitsP;
  static constexpr int kOutW = OutLanesP * WideBitsP;
};

// Every ts_top parameter (rtl/README.md, "Parameters"): what the SystemC twin (ts_top_model.h)
// needs besides the port widths. FaultDropSkew has no twin: the twin is the correct design.
template <int RowsP, int ColsP, int DataflowP, int ActBitsP, int WeightBitsP, int AccBitsP,
          int ScaleKindP, int MantBitsP, int BanksP, int RegsP, int AccWordsP, int WideBitsP = 64,
          int ActLanesP = RowsP, int OutLanesP = ColsP>
struct TopParams : TopShape<RowsP, ColsP, ActBitsP, WeightBitsP, MantBitsP, RegsP, WideBitsP,
                            ActLanesP, OutLanesP> {
  static constexpr bool kOs = DataflowP == 1;           // output-stationary (else weight-st.)
  static constexpr int kAccBits = AccBitsP;             // PE partial sums, int32 group sums
  static constexpr bool kShiftOnly = ScaleKindP == 1;   // ts_pkg::ScaleShift: no multiplier
  static constexpr int kBanks = BanksP;                 // ScaleBanks: banks = fold contexts
  static constexpr int kAccWords = AccWordsP;           // accumulator words per edge column
  static constexpr int kBankBits = clog2_min1(BanksP);  // bank and context-slot indices
  static constexpr int kWordBits = clog2_min1(AccWordsP);
  static constexpr int kRowBits = clog2_min1(RowsP);
  static_assert(RowsP >= 2 && ColsP >= 1 && ColsP <= 32, "ts_top needs Rows >= 2, Cols <= 32");
  static_assert(AccBitsP >= 2 && AccBitsP <= 64 && WideBitsP <= 64, "registers of up to 64 bits");
  static_assert(ActBitsP < 17, "ActBits below ClampBits (17)");
  static_assert(ActLanesP >= 1 && ActLanesP <= RowsP && OutLanesP >= 1 && OutLanesP <= ColsP,
                "lanes per beat 1..Rows (act), 1..Cols (out)");
  static_assert(DataflowP == 0 || (ActLanesP == RowsP && OutLanesP == ColsP),
                "narrowed ports are ws only");
};

namespace bits {

// Low `w` bits set (w in 0..64).
constexpr uint64_t mask(int w) { return w >= 64 ? ~uint64_t{0} : (uint64_t{1} << w) - 1; }

// The low `w` bits of v as a two's complement number (w in 1..64).
constexpr int64_t sext(uint64_t v, int w) {
  v &= mask(w);
  if (w < 64 && ((v >> (w - 1)) & 1u) != 0) v |= ~mask(w);
  return static_cast<int64_t>(v);
}

// v wrapped to a `w`-bit two's complement register (what an adder of that width keeps).
constexpr int64_t wrap(int64_t v, int w) { return sext(static_cast<uint64_t>(v), w); }

// a + b in a `w`-bit two's complement adder (w <= 64): the sum modulo 2^w, never a signed overflow.
constexpr int64_t add(int64_t a, int64_t b, int w) {
  return sext(static_cast<uint64_t>(a) + static_cast<uint64_t>(b), w);
}

// Bits [lsb, lsb + width) of a port value (width <= 64).
template <int W>
uint64_t get(const pin_t<W>& p, int lsb, int width) {
  if constexpr (W == 1) {
    return p ? 1u : 0u;
  } else if constexpr (W <= 64) {
    return (p.to_uint64() >> lsb) & mask(width);
  } else {
    uint64_t v = 0;
    for (int got = 0; got < width;) {
      const int b = lsb + got;
      const int take = std::min(32 - b % 32, width - got);
      const uint64_t word = static_cast<uint32_t>(p.get_word(b / 32));
      v |= ((word >> (b % 32)) & mask(take)) << got;
      got += take;
    }
    return v;
  }
}

// Writes bits [lsb, lsb + width) of a port value (width <= 64).
template <int W>
void put(pin_t<W>& p, int lsb, int width, uint64_t v) {
  v &= mask(width);
  if constexpr (W == 1) {
    p = (v & 1u) != 0;
  } else if constexpr (W <= 64) {
    const uint64_t m = mask(width) << lsb;
    p = (p.to_uint64() & ~m) | (v << lsb);
  } else {
    for (int done = 0; done < width;) {
      const int b = lsb + done;
      const int take = std::min(32 - b % 32, width - done);
      const uint32_t m = static_cast<uint32_t>(mask(take) << (b % 32));
      uint32_t word = static_cast<uint32_t>(p.get_word(b / 32));
      word = (word & ~m) | (static_cast<uint32_t>((v >> done) & mask(take)) << (b % 32));
      p.set_word(b / 32, word);
      done += take;
    }
  }
}

// A port value of W <= 64 bits as an integer, and back.
template <int W>
uint64_t u64(const pin_t<W>& p) {
  static_assert(W <= 64);
  if constexpr (W == 1) {
    return p ? 1u : 0u;
  } else {
    return p.to_uint64();
  }
}
template <int W>
pin_t<W> pin(uint64_t v) {
  static_assert(W <= 64);
  if constexpr (W == 1) {
    return (v & 1u) != 0;
  } else {
    return pin_t<W>(v & mask(W));
  }
}

}  // namespace bits
}  // namespace tilescale::sim
