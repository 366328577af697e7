// Output-stationary systolic PE: activation passes right, weight passes down (both registered), the
// product accumulates locally; clear restarts the sum, drain shifts accumulators out along a chain.
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_pe_os #(
  parameter int unsigned ActBits    = 8,  // activation code width (unsigned or signed per layer)
  parameter int unsigned WeightBits = 4,  // signed weight width
  parameter int unsigned AccBits    = 32  // accumulator width (two's complement, wraps)
) (
  input  logic                         clk_i,         // clock
  input  logic                         rst_ni,        // async reset, active low: acc := 0
  input  logic                         act_signed_i,  // layer-wide: activation codes are signed
  input  logic        [   ActBits-1:0] act_i,         // activation code from the left
  output logic        [   ActBits-1:0] act_o,         // activation code to the right, registered
  input  logic signed [WeightBits-1:0] w_i,           // weight from above
  output logic signed [WeightBits-1:0] w_o,           // weight downward, registered
  input  logic                         clear_i,       // acc := act * weight (start a new output)
  input  logic                         drain_i,       // acc := acc_i (read-out shift chain)
  input  logic signed [   AccBits-1:0] acc_i,         // neighbour's accumulator (read-out chain)
  output logic signed [   AccBits-1:0] acc_o          // this PE's accumulator
);
  localparam int unsigned ProdBits = ActBits + 1 + WeightBits;

  logic        [   ActBits-1:0] act_q;
  logic signed [WeightBits-1:0] w_q;
  logic signed [     ActBits:0] act_ext;
  logic signed [  ProdBits-1:0] prod;
  logic signed [   AccBits-1:0] prod_ext;
  logic signed [   AccBits-1:0] acc_d, acc_q;

  always_comb begin
    act_ext  = signed'({act_signed_i & act_i[ActBits-1], act_i});
    prod     = ProdBits'(act_ext) * ProdBits'(w_i);
    prod_ext = AccBits'(prod);
    if (drain_i) begin
      acc_d = acc_i;
    end else if (clear_i) begin
      acc_d = prod_ext;
    end else begin
      acc_d = acc_q + prod_ext;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      acc_q <= '0;
    end else begin
      acc_q <= acc_d;
    end
  end

  always_ff @(posedge clk_i) begin
    act_q <= act_i;
    w_q   <= w_i;
  end

  assign act_o = act_q;
  assign w_o   = w_q;
  assign acc_o = acc_q;
endmodule
