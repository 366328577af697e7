// Weight-stationary systolic PE: holds one signed weight, passes the activation code right and adds
// act * weight to the partial sum coming from above (both outputs registered).
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_pe_ws #(
  parameter int unsigned ActBits    = 8,  // activation code width (unsigned or signed per layer)
  parameter int unsigned WeightBits = 4,  // signed weight width
  parameter int unsigned AccBits    = 32  // partial-sum width (two's complement, wraps)
) (
  input  logic                         clk_i,         // clock
  input  logic                         rst_ni,        // async reset, active low: weight := 0
  input  logic                         act_signed_i,  // layer-wide: activation codes are signed
  input  logic                         w_load_i,      // load w_i into the stationary weight
  input  logic signed [WeightBits-1:0] w_i,           // weight to load
  output logic signed [WeightBits-1:0] w_o,           // stationary weight (daisy-chained preload)
  input  logic        [   ActBits-1:0] act_i,         // activation code from the left
  output logic        [   ActBits-1:0] act_o,         // activation code to the right, registered
  input  logic signed [   AccBits-1:0] psum_i,        // partial sum from above
  output logic signed [   AccBits-1:0] psum_o         // psum_i + act * weight, registered, downward
);
  // One extra bit holds both grids: unsigned [0, 2^ActBits - 1] and signed codes.
  localparam int unsigned ProdBits = ActBits + 1 + WeightBits;

  logic signed [WeightBits-1:0] w_d, w_q;
  logic        [   ActBits-1:0] act_q;
  logic signed [     ActBits:0] act_ext;
  logic signed [  ProdBits-1:0] prod;
  logic signed [   AccBits-1:0] psum_d, psum_q;

  always_comb begin
    w_d     = w_load_i ? w_i : w_q;
    act_ext = signed'({act_signed_i & act_i[ActBits-1], act_i});
    prod    = ProdBits'(act_ext) * ProdBits'(w_q);
    psum_d  = psum_i + AccBits'(prod);
  end

  // The weight is state (reset); the activation and partial-sum pipeline is rewritten every cycle.
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      w_q <= '0;
    end else begin
      w_q <= w_d;
    end
  end

  always_ff @(posedge clk_i) begin
    act_q  <= act_i;
    psum_q <= psum_d;
  end

  assign w_o    = w_q;
  assign act_o  = act_q;
  assign psum_o = psum_q;
endmodule
