// The numerics of a compute-in-memory (CIM) layer with its ADCs in the loop: how a Conv/Gemm
// layer's exact block partial sums (int_arith.h) become the sums a crossbar macro delivers. This
// header is the rule; int_cim.h is its fast kernel, the SystemC CIM macro (sim/) matches both bit
// for bit. The quantizer knows no architecture config: the CLI builds an AdcNumerics from one.
//
// Per group of a layer (one GEMM out[m][o] = sum_k x[m][k] * w[k][o], reduction index k in
// hardware order [kh][kw][cin], layout.h):
//
// Row tiles (crossbar_row_tiles). The reduction axis is cut into crossbar row tiles: every maximal
// run of consecutive indices of one reduction group (one block column of the BlockGrid) is cut
// into pieces of at most xbar_rows rows from its start. A tile never mixes two blocks (their sums
// are scaled before they meet); this is the mapper's `--align pad` fold list, and its natural
// folds whenever `--align strict` accepts the layer.
//
// Weight slices (weight_slices, weight_slice). A signed w_bits weight is sign-extended to
// W = S * cell_bits bits, S = ceil(w_bits / cell_bits) (the padding when cell_bits does not divide
// w_bits), and stored offset-binary: u = w + 2^(W-1) in [0, 2^W - 1]; column slice s holds the
// cell_bits bits u[s*cell_bits +: cell_bits] (rtl/ts_shift_add.sv). Output channel o of a tile
// occupies S columns.
//
// Input steps (input_steps). An a_bits input code is applied bit-serially: an unsigned code in
// steps of input_bits_per_cycle bits from the LSB; a signed code (two's complement) the same for
// its a_bits - 1 low bits, then its sign bit alone in a step of weight -2^(a_bits-1). Step t
// drives row r with the digit d_t[r] = (x[r] >> bit0_t) & (2^bits_t - 1).
//
// ADC (adc_shift, adc_convert). Every (tile, step, column) sum S = sum over the tile's rows of
// d_t[r] * slice_s(u[r]), 0 <= S <= rows * (2^cell_bits - 1) * (2^input_bits - 1), is converted by
// an adc_bits ADC with an LSB of 2^e column-sum units:
//   code = min(round_half_up(S / 2^e), 2^adc_bits - 1)       (clip: saturate at full scale)
//   S'   = code * 2^e                                          (the value the shift-add sees)
// with the range rule
//   clip   e = 0: one LSB per unit of column sum, sums above 2^adc_bits - 1 saturate. Lossless iff
//          the tile's worst sum fits (the mapper's adc_clips flag). The default.
//   rows   e = the smallest e >= 0 with xbar_rows * (2^cell_bits - 1) * (2^input_bits - 1)
//          <= (2^adc_bits - 1) * 2^e: full scale set from the crossbar's rows, never saturates,
//          drops the e low bits (rounded half up) instead.
//
// Shift-add and scaling. With R_t = sum_r d_t[r] (the digital row count, exact):
//   T_t = sum_s (S'_{t,s} << s*cell_bits) - (R_t << (W-1))        one step's x . w of the tile
//   D   = sum_t (neg_t ? -1 : 1) * (T_t << bit0_t)                  the tile's digital sum
// D replaces the tile's exact partial sum; the layer then proceeds as int_arith.h says:
//   acc = bias_q + sum over tiles of D * m[blk] * 2^(F - r[blk]),  q_y = saturate(round(acc, F)).
// A lossless ADC (every S' == S) gives D = the exact partial sum, so the codes are those of the
// ideal integer executor, bit for bit. All arithmetic is exact int64.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/quant/int_arith.h"

namespace tilescale::quant {

enum class AdcRange {
  Clip,  // LSB = 1, saturate above full scale
  Rows,  // full scale from xbar_rows, LSB = 2^e, never saturates
};
// The config's "adc_range" field.
inline constexpr auto kAdcRangeNames = make_enum_names<AdcRange>(
    "ADC range rule", {{AdcRange::Clip, "clip"}, {AdcRange::Rows, "rows"}});

// Limits of the numerics description (also the arch config's, which refuses beyond them).
inline constexpr int kMaxAdcBits = 16;
inline constexpr int kMaxXbarRows = 4096;

// A CIM macro's numerics, without its geometry beyond the rows: what the golden executor needs.
struct AdcNumerics {
  int xbar_rows = 128;           // word lines per crossbar: longest row tile, rows
  int cell_bits = 2;             // bits per cell (per weight slice column), bits
  int input_bits_per_cycle = 1;  // input bits applied per step, bits
  int adc_bits = 6;              // ADC resolution, bits (1..16)
  AdcRange range = AdcRange::Clip;

  // Throws InputError "<field>: <value> is outside <lo>..<hi>" (the caller adds the source).
  void validate() const;
  std::string str() const;  // "xbar_rows 128, cell_bits 2, input_bits 1, adc_bits 6 clip"
};

// One crossbar row tile of a group's reduction axis (hardware order).
struct RowTile {
  int64_t k0 = 0;         // first hardware reduction index
  int64_t length = 0;     // rows used, 1..xbar_rows
  int64_t red_group = 0;  // the one reduction group of its rows
};

// The row tiles of a reduction axis whose hardware index k belongs to red_group[k] (rule above).
std::vector<RowTile> crossbar_row_tiles(const std::vector<int64_t>& red_group, int64_t xbar_rows);

// S = ceil(w_bits / cell_bits) columns per weight; W = S * cell_bits.
inline int weight_slices(int w_bits, int cell_bits) { return (w_bits + cell_bits - 1) / cell_bits; }
// Slice s (cell_bits bits) of weight w's offset-binary code in W = wide_bits bits.
inline int64_t weight_slice(int64_t w, int wide_bits, int cell_bits, int s) {
  const int64_t u = w + (int64_t{1} << (wide_bits - 1));
  return (u >> (s * cell_bits)) & ((int64_t{1} << cell_bits) - 1);
}

struct InputStep {
  int bit0 = 0;           // lowest input bit of the step
  int bits = 1;           // bits of the step, 1..input_bits_per_cycle
  bool negative = false;  // the sign bit of a signed code: weight -2^bit0
};
// The steps of an a_bits code (rule above), in the order applied (LSB first).
std::vector<InputStep> input_steps(int a_bits, bool is_signed, int input_bits_per_cycle);

// e of the range rule (0 for Clip).
int adc_shift(const AdcNumerics& adc);
// S' = min(round_half_up(S / 2^e), 2^adc_bits - 1) * 2^e for a column sum S >= 0.
inline int64_t adc_convert(int64_t column_sum, int shift, int adc_bits) {
  const int64_t full = (int64_t{1} << adc_bits) - 1;
  const int64_t code = shift > 0 ? (column_sum + (int64_t{1} << (shift - 1))) >> shift : column_sum;
  return (code < full ? code : full) << shift;
}
// True iff the worst column sum of a tile of `rows` rows fits the ADC without loss (e == 0 and
// rows * (2^cell_bits - 1) * (2^input_bits - 1) <= 2^adc_bits - 1, for every step width used).
bool adc_lossless(const AdcNumerics& adc, int64_t rows);

// The reference: one tile's digital sum D for one output channel, by the rule above, with plain
// loops. x: the tile's input codes (a_bits, signedness as given, each in its range), w: the
// channel's weights (w_bits) on the same rows, `rows` of each.
int64_t cim_tile_sum_reference(const int64_t* x, const int64_t* w, int64_t rows, int a_bits,
                               bool a_signed, int w_bits, const AdcNumerics& adc);

}  // namespace tilescale::quant
