// A pluggable shift-add for the SystemC CIM macro (sim/cim.h): lets a test put another
// implementation of rtl/ts_shift_add.sv's arithmetic, such as the Verilated module, inside the
// macro's digital stage, one instance per lane (crossbar slot x channel), in lockstep with it.
//
// The macro calls the unit once per (lane, pixel, input step), in the cycle in which the last
// slice code of the lane's channel arrives from the ADCs, with exactly what ts_shift_add's ports
// carry; it compares the unit's accumulated sum with its own shift-add of the same codes and hands
// the unit's value on to the scale unit. A difference stops the layer with an error naming the
// lane, the pixel and the step. Lanes without a term in a cycle hold their sum (ts_shift_add with
// valid_i low), so a unit need not be clocked for them.
#pragma once

#include <array>
#include <cstdint>

namespace tilescale::sim {

inline constexpr int kCimMaxSlices = 16;  // weight bit slices per weight the hook carries

// One term of ts_shift_add: sum over the tile's rows of digit x weight for one input step,
//   (sum_s code[s] << s * cell_bits) - (row_count << (slices * cell_bits - 1)),
// shifted left by bit_pos and negated when `negative`, then added to the lane's sum (or starting
// it when `clear`).
struct CimShiftAddTerm {
  int64_t lane = 0;    // slot * channels per crossbar + channel within the crossbar
  int64_t pixel = 0;   // output pixel (for messages)
  int32_t step = 0;    // input step index (quant::input_steps order; for messages)
  bool clear = false;  // the pixel's first step: the sum starts with this term
  int slices = 1;      // bit-slice columns per weight
  int cell_bits = 1;   // bits per cell
  std::array<int64_t, kCimMaxSlices> code{};  // slice s's ADC code times the ADC's LSB (>= 0)
  int64_t row_count = 0;  // sum of the step's input digits over the crossbar's rows
  int bit_pos = 0;        // the step's lowest input bit: the term weighs 2^bit_pos
  bool negative = false;  // the step weighs -2^bit_pos (a signed input's sign bit)
};

class CimShiftAddUnit {
 public:
  virtual ~CimShiftAddUnit() = default;
  // Applies one term to lane `term.lane` and returns the lane's sum after it (the register value
  // the scale unit reads in the next cycle), as a signed integer.
  virtual int64_t add(const CimShiftAddTerm& term) = 0;
};

}  // namespace tilescale::sim
