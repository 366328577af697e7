// CIM shift-add: merges the ADC codes of one weight's bit-slice columns and the bit-serial input
// cycles into a signed accumulator (offset-binary weights, see rtl/README.md).
//
// Weight encoding (exact for any CellBits): a signed weight w of at most W = Slices * CellBits bits
// is stored as the unsigned code u = w + 2^(W-1) in [0, 2^W - 1], slice s holding the CellBits bits
// u[s*CellBits +: CellBits]. For one input bit cycle with bit vector x over the rows,
//   sum_r x_r * w_r = sum_s (adc[s] << s*CellBits) - (popcount(x) << (W-1)),
// so the crossbar supplies popcount(x) (row_count_i, computed digitally once per crossbar) and no
// slice is special. An input bit of weight 2^p adds that term << p; the sign bit of a signed
// activation (weight -2^p) subtracts it (bit_neg_i).
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_shift_add #(
  parameter int unsigned AdcBits   = 6,   // ADC code width (unsigned column sum, already clipped)
  parameter int unsigned Slices    = 4,   // weight bit-slice columns per weight
  parameter int unsigned CellBits  = 2,   // bits per cell (per slice)
  parameter int unsigned AccBits   = 32,  // signed accumulator width (two's complement, wraps)
  parameter int unsigned ActBits   = 8,   // input bits streamed serially (bit positions 0..ActBits-1)
  parameter int unsigned CountBits = 8,   // width of the active-row count (rows up to 2^CountBits-1)
  localparam int unsigned PosBits  = (ActBits > 1) ? $clog2(ActBits) : 1
) (
  input  logic                        clk_i,        // clock
  input  logic                        rst_ni,       // async reset, active low: acc := 0
  input  logic                        valid_i,      // this cycle's ADC codes are valid
  input  logic                        clear_i,      // start a new sum with this cycle's term
  input  logic [Slices*AdcBits-1:0]   adc_i,        // slice s code at [s*AdcBits +: AdcBits]
  input  logic [     CountBits-1:0]   row_count_i,  // rows driven with a 1 this cycle
  input  logic [       PosBits-1:0]   bit_pos_i,    // input bit position p of this cycle
  input  logic                        bit_neg_i,    // this bit weighs -2^p (signed input MSB)
  output logic signed [  AccBits-1:0] acc_o         // accumulated sum of x * w
);
  localparam int unsigned WBits    = Slices * CellBits;
  localparam int unsigned SumBits  = AdcBits + WBits;  // sum_s adc[s] << s*CellBits < 2^SumBits
  localparam int unsigned OffBits  = CountBits + WBits - 1;  // row_count << (W-1)
  localparam int unsigned TermBits = ((SumBits > OffBits) ? SumBits : OffBits) + 1;

  logic        [ SumBits-1:0] slice_sum;
  logic signed [TermBits-1:0] term;
  logic signed [ AccBits-1:0] shifted, contrib;
  logic signed [ AccBits-1:0] acc_d, acc_q;

  always_comb begin
    slice_sum = '0;
    for (int unsigned s = 0; s < Slices; s++) begin
      slice_sum = slice_sum + (SumBits'(adc_i[s*AdcBits +: AdcBits]) << (s * CellBits));
    end
    term    = signed'(TermBits'(slice_sum)) - signed'(TermBits'(row_count_i) << (WBits - 1));
    shifted = AccBits'(term) <<< bit_pos_i;
    contrib = bit_neg_i ? -shifted : shifted;
    acc_d   = acc_q;
    if (valid_i) begin
      acc_d = clear_i ? contrib : acc_q + contrib;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      acc_q <= '0;
    end else begin
      acc_q <= acc_d;
    end
  end

  assign acc_o = acc_q;
endmodule
