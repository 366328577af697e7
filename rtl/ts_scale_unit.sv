// Block scale unit: (psum * m) << lshift, the exact acc term of int_arith.h, registered.
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_scale_unit #(
  parameter int unsigned InBits    = 32,  // signed partial-sum width
  parameter int unsigned MantBits  = 16,  // unsigned mantissa width m (Kind 0)
  parameter int unsigned ShiftBits = 6,   // left-shift amount width (lshift = F - r >= 0)
  parameter int unsigned OutBits   = 48,  // signed output width (wide accumulator)
  parameter int unsigned Kind      = 0    // 0: fixed multiplier m; 1: shift only (m = 1, no multiplier)
) (
  input  logic                        clk_i,     // clock
  input  logic                        rst_ni,    // async reset, active low: valid_o := 0
  input  logic                        valid_i,   // psum_i/mant_i/lshift_i are valid
  input  logic signed [   InBits-1:0] psum_i,    // block partial sum P
  input  logic        [ MantBits-1:0] mant_i,    // mantissa m (unused when Kind = 1)
  input  logic        [ShiftBits-1:0] lshift_i,  // F - r
  output logic                        valid_o,   // out_o is valid
  output logic signed [  OutBits-1:0] out_o      // (P * m) << (F - r), truncated to OutBits
);
  logic signed [OutBits-1:0] scaled;  // P * m (or P) sign-extended / truncated to OutBits
  logic signed [OutBits-1:0] out_d, out_q;
  logic valid_q;

  if (Kind == 0) begin : gen_mult
    // m is unsigned: a zero bit on top makes it a non-negative signed operand. |P * m| < 2^(InBits +
    // MantBits - 1), so the product is exact whenever OutBits >= InBits + MantBits.
    always_comb begin
      scaled = OutBits'(psum_i) * OutBits'(signed'({1'b0, mant_i}));
    end
  end else begin : gen_shift
    logic unused_mant;
    assign unused_mant = ^mant_i;
    assign scaled = OutBits'(psum_i);
  end

  always_comb begin
    out_d = scaled <<< lshift_i;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q <= 1'b0;
    end else begin
      valid_q <= valid_i;
    end
  end

  always_ff @(posedge clk_i) begin
    out_q <= out_d;
  end

  assign valid_o = valid_q;
  assign out_o   = out_q;

`ifndef SYNTHESIS
  initial begin : p_params
    assert (Kind <= 1) else $error("ts_scale_unit: Kind must be 0 or 1");
  end
`endif
endmodule
