// One column of the array's output edge, four registered stages: (1) int32 group partial sums
// across the folds of one reduction group, (2) ts_scale_unit, (3) wide accumulator across groups,
// starting from the bias, (4) ts_requant and the fused clamp (or the wide value for logits).
// Every column of the edge works on the same vector in the same cycle (the array de-skews), so the
// stage controls come from ts_ctrl and are shared; this module is the column's datapath.
`include "ts_pkg.sv"
module ts_edge #(
  parameter  int unsigned ActBits   = 8,   // output code width (ts_requant OutBits)
  parameter  int unsigned AccBits   = 32,  // partial-sum width (int32 group sums)
  parameter  int unsigned WideBits  = 64,  // wide accumulator width
  parameter  int unsigned MantBits  = 16,  // scale mantissa width (1: shift only)
  parameter  int unsigned ScaleKind = 0,   // ts_pkg::ScaleFixed or ts_pkg::ScaleShift
  parameter  int unsigned AccWords  = 64,  // accumulator words (output pixels per fold)
  parameter  bit          FaultRoundEven = 1'b0,  // test only: the requantizer rounds half to even
  localparam int unsigned ShiftBits = ts_pkg::ShiftBits,
  localparam int unsigned ClampBits = ts_pkg::ClampBits,
  localparam int unsigned WordBits  = AccWords > 1 ? $clog2(AccWords) : 1
) (
  input  logic                 clk_i,         // gated clock
  input  logic                 rst_ni,        // async reset, active low
  // stage 1: group partial sums
  input  logic                 v1_i,          // psum_i carries a vector's partial sum
  input  logic [ WordBits-1:0] word1_i,       // its accumulator word (output pixel in the fold)
  input  logic                 restart1_i,    // first fold of a group run: sum := psum_i
  input  logic [  AccBits-1:0] psum_i,        // this column's partial sum from the array
  // stage 2: scale unit
  input  logic                 v2_i,          // stage 2 holds a complete group sum
  input  logic [ MantBits-1:0] mant_i,        // its block's mantissa m
  input  logic [ShiftBits-1:0] shift_i,       // its block's left shift F - r
  // stage 3: wide accumulator
  input  logic                 v3_i,          // stage 3 holds a scaled group sum
  input  logic [ WordBits-1:0] word3_i,       // its accumulator word
  input  logic                 use_bias3_i,   // first group of the outputs: start from the bias
  input  logic                 bias_load_i,   // take bias_i (one bias beat per output tile)
  input  logic [ WideBits-1:0] bias_i,        // this column's bias, F fractional bits
  // stage 4: requantization, layer constants
  input  logic [ShiftBits-1:0] frac_i,        // F
  input  logic                 out_signed_i,  // signed output grid
  input  logic                 keep_acc_i,    // emit the wide accumulator (logits)
  input  logic [ClampBits-1:0] clamp_lo_i,    // smallest output code (two's complement)
  input  logic [ClampBits-1:0] clamp_hi_i,    // largest output code (two's complement)
  output logic [ WideBits-1:0] lane_o         // stage-4 result: code (sign-extended) or wide value
);
  // ---- Stage 1: int32 group partial sums, one word per output pixel.
  logic [AccBits-1:0] grp_rd, grp_sum, grp_q;
  ts_acc_mem #(
    .Words(AccWords),
    .Bits (AccBits)
  ) u_grp (
    .clk_i,
    .we_i   (v1_i),
    .waddr_i(word1_i),
    .wdata_i(grp_sum),
    .raddr_i(word1_i),
    .rdata_o(grp_rd)
  );
  always_comb begin
    grp_sum = restart1_i ? psum_i : grp_rd + psum_i;
  end
  always_ff @(posedge clk_i) begin
    grp_q <= grp_sum;
  end

  // ---- Stage 2: (P * m) << (F - r), registered inside the scale unit.
  logic [WideBits-1:0] scaled;
  logic                unused_scale_valid;
  ts_scale_unit #(
    .InBits   (AccBits),
    .MantBits (MantBits),
    .ShiftBits(ShiftBits),
    .OutBits  (WideBits),
    .Kind     (ScaleKind)
  ) u_scale (
    .clk_i,
    .rst_ni,
    .valid_i (v2_i),
    .psum_i  (grp_q),
    .mant_i,
    .lshift_i(shift_i),
    .valid_o (unused_scale_valid),
    .out_o   (scaled)
  );

  // ---- Stage 3: wide accumulator, one word per output pixel; the bias starts each output tile.
  logic [WideBits-1:0] wide_rd, wide_base, wide_sum, wide_q;
  logic [WideBits-1:0] bias_d, bias_q;
  ts_acc_mem #(
    .Words(AccWords),
    .Bits (WideBits)
  ) u_wide (
    .clk_i,
    .we_i   (v3_i),
    .waddr_i(word3_i),
    .wdata_i(wide_sum),
    .raddr_i(word3_i),
    .rdata_o(wide_rd)
  );
  always_comb begin
    wide_base = use_bias3_i ? bias_q : wide_rd;
    wide_sum  = wide_base + scaled;
    bias_d    = bias_load_i ? bias_i : bias_q;
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      bias_q <= '0;
    end else begin
      bias_q <= bias_d;
    end
  end
  always_ff @(posedge clk_i) begin
    wide_q <= wide_sum;
  end

  // ---- Stage 4: requantize (registered in ts_requant) and keep the wide value beside it.
  logic [ActBits-1:0] code;
  logic [WideBits-1:0] keep_q;
  logic unused_requant_valid;
  ts_requant #(
    .InBits        (WideBits),
    .OutBits       (ActBits),
    .ShiftBits     (ShiftBits),
    .FaultRoundEven(FaultRoundEven)
  ) u_requant (
    .clk_i,
    .rst_ni,
    .valid_i     (1'b1),
    .acc_i       (wide_q),
    .shift_i     (frac_i),
    .out_signed_i,
    .valid_o     (unused_requant_valid),
    .q_o         (code)
  );
  always_ff @(posedge clk_i) begin
    keep_q <= wide_q;
  end

  // The fused activation clamp: [lo, hi] lies inside the output grid, so clamping the saturated
  // code equals saturating the rounded accumulator to [lo, hi] (int_arith.h's saturate).
  logic signed [ClampBits-1:0] code_ext, clamped;
  always_comb begin
    code_ext = out_signed_i ? ClampBits'(signed'(code)) : ClampBits'(code);
    clamped  = code_ext;
    if (code_ext < signed'(clamp_lo_i)) begin
      clamped = signed'(clamp_lo_i);
    end else if (code_ext > signed'(clamp_hi_i)) begin
      clamped = signed'(clamp_hi_i);
    end
    lane_o = keep_acc_i ? keep_q : WideBits'(clamped);
  end

  logic unused_valid;
  assign unused_valid = unused_scale_valid ^ unused_requant_valid;

`ifndef SYNTHESIS
  // No accumulator may wrap for a valid bundle: each sum is formed one bit wider and its top two
  // bits must agree (the sign-extension check). The scale unit's term must fit WideBits exactly.
  logic [AccBits:0] grp_exact;
  logic [WideBits:0] wide_exact;
  logic signed [127:0] psum_wide, mant_wide, term_exact;
  always_comb begin
    grp_exact  = {grp_rd[AccBits-1], grp_rd} + {psum_i[AccBits-1], psum_i};
    wide_exact = {wide_base[WideBits-1], wide_base} + {scaled[WideBits-1], scaled};
    psum_wide  = 128'(signed'(grp_q));
    mant_wide  = (ScaleKind == ts_pkg::ScaleShift) ? 128'sd1 : signed'(128'(mant_i));
    term_exact = (psum_wide * mant_wide) <<< shift_i;
  end
  always_ff @(posedge clk_i) begin
    if (v1_i && !restart1_i) begin
      assert (grp_exact[AccBits] == grp_exact[AccBits-1])
      else $error("ts_edge: int32 group sum overflows (%0d + %0d)", $signed(grp_rd),
                  $signed(psum_i));
    end
    if (v2_i) begin
      assert ((term_exact >>> (WideBits - 1)) == 0 || (term_exact >>> (WideBits - 1)) == -1)
      else $error("ts_edge: scaled term (%0d * %0d) << %0d exceeds %0d bits", $signed(grp_q),
                  mant_i, shift_i, WideBits);
    end
    if (v3_i) begin
      assert (wide_exact[WideBits] == wide_exact[WideBits-1])
      else $error("ts_edge: wide accumulator overflows (%0d + %0d)", $signed(wide_base),
                  $signed(scaled));
    end
  end
`endif
endmodule
