// Clock gate (latch-based, as lowRISC's prim_clock_gating): clk_o pulses only in cycles whose
// enable was high while clk_i was low, which freezes every register behind it at once.
module ts_clock_gate (
  input  logic clk_i,  // free-running clock
  input  logic en_i,   // advance in this cycle (settles while clk_i is low)
  output logic clk_o   // gated clock
);
  logic en_latch;

  always_latch begin
    if (!clk_i) begin
      en_latch = en_i;
    end
  end

  assign clk_o = en_latch & clk_i;
endmodule
