// Wide accumulator: acc <= clear ? in : acc + in on en_i (two's complement, wraps at Bits).
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_accumulator #(
  parameter int unsigned Bits = 48  // accumulator width
) (
  input  logic                   clk_i,    // clock
  input  logic                   rst_ni,   // async reset, active low: acc := 0
  input  logic                   en_i,     // update this cycle (else hold)
  input  logic                   clear_i,  // start a new sum with in_i
  input  logic signed [Bits-1:0] in_i,     // addend
  output logic signed [Bits-1:0] acc_o     // accumulator
);
  logic signed [Bits-1:0] acc_d, acc_q;

  always_comb begin
    acc_d = acc_q;
    if (en_i) begin
      acc_d = clear_i ? in_i : acc_q + in_i;
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
