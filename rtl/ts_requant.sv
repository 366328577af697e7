// Requantizer: saturate(round_shift_half_up(acc, F), output grid), exactly int_arith.h, registered.
// FaultRoundEven (test only) rounds ties half to even instead, so that the tests can show that
// their golden and lockstep checks catch a wrong rounding rule.
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_requant #(
  parameter int unsigned InBits    = 48,  // signed wide-accumulator width
  parameter int unsigned OutBits   = 8,   // activation code width
  parameter int unsigned ShiftBits = 6,   // width of the shift F
  parameter bit          FaultRoundEven = 1'b0  // test only: ties round half to even
) (
  input  logic                        clk_i,         // clock
  input  logic                        rst_ni,        // async reset, active low: valid_o := 0
  input  logic                        valid_i,       // acc_i/shift_i are valid
  input  logic signed [   InBits-1:0] acc_i,         // wide accumulator acc
  input  logic        [ShiftBits-1:0] shift_i,       // F (0 returns acc, saturated)
  input  logic                        out_signed_i,  // 1: signed grid, 0: unsigned grid
  output logic                        valid_o,       // q_o is valid
  output logic        [  OutBits-1:0] q_o            // output code (two's complement if signed)
);
  // One extra bit so acc + 2^(F-1) never overflows.
  localparam int unsigned WideBits = InBits + 1;

  logic signed [WideBits-1:0] half;     // 2^(F-1), 0 when F = 0
  logic signed [WideBits-1:0] rounded;  // (acc + half) >>> F
  logic signed [WideBits-1:0] floored;  // acc >>> F
  logic signed [WideBits-1:0] hi, lo;   // grid bounds
  logic        [ OutBits-1:0] q_d, q_q;
  logic valid_q;

  always_comb begin
    half    = (WideBits'(1) <<< shift_i) >>> 1;
    rounded = (WideBits'(acc_i) + half) >>> shift_i;
    floored = WideBits'(acc_i) >>> shift_i;
    // The fault: at an exact tie (acc - floor * 2^F == 2^(F-1)) keep an even floor.
    if (FaultRoundEven && shift_i != '0 && !floored[0] &&
        WideBits'(acc_i) - (floored <<< shift_i) == half) begin
      rounded = floored;
    end
    if (out_signed_i) begin
      hi = (WideBits'(1) <<< (OutBits - 1)) - WideBits'(1);
      lo = -(WideBits'(1) <<< (OutBits - 1));
    end else begin
      hi = (WideBits'(1) <<< OutBits) - WideBits'(1);
      lo = '0;
    end
    if (rounded > hi) begin
      q_d = hi[OutBits-1:0];
    end else if (rounded < lo) begin
      q_d = lo[OutBits-1:0];
    end else begin
      q_d = rounded[OutBits-1:0];
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q <= 1'b0;
    end else begin
      valid_q <= valid_i;
    end
  end

  always_ff @(posedge clk_i) begin
    q_q <= q_d;
  end

  assign valid_o = valid_q;
  assign q_o     = q_q;

`ifndef SYNTHESIS
  initial begin : p_params
    assert (OutBits < InBits) else $error("ts_requant: OutBits must be below InBits");
  end
`endif
endmodule
