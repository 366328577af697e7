// Rows x Cols systolic array of ts_pe_ws or ts_pe_os (Dataflow) with diagonal skew registers on the
// activation edge (row r delayed r cycles; os weights: column c delayed c) and de-skew on the output
// edge (column c delayed Cols-1-c), so psum_o carries the column sums of one vector in one cycle.
//
// Timing (cycles of the gated clock, t = the cycle act_i holds vector j): PE(r, c) multiplies
// vector j in cycle t + r + c; psum_o shows it in cycle t + Rows + Cols - 1 (ws). os: PE(r, c)
// accumulates step j in cycle t + r + c; a fold whose last step is in cycle t drains row Rows-1-i
// of its outputs onto psum_o in cycle t + Rows + Cols + i, i = 0 .. Rows-1.
//
// ws weights: two registers per PE, the PE's stationary weight and a shadow in front of it. A
// preload row i written in cycle P + i reaches column c's shadows in cycle P + i + c (write wave);
// the stationary weights switch along the load wave: PE(r, c) loads its shadow at the end of cycle
// s - 1 + r + c when a fold's first vector is at the port in cycle s (ld_i in cycle s - 1). Hence a
// preload may start in the cycle its predecessor fold starts and must end 2 cycles before its own.
// os outputs: each PE's sum is captured into a drain register the cycle after its last step; a
// column's drain registers shift down (bottom row first) only while the previous fold's values pass
// through them, so the next fold may end Rows cycles after this one (no third register per PE).
`include "ts_pkg.sv"
module ts_systolic_array #(
  parameter  int unsigned Rows          = 4,     // PE rows (ws: reduction; os: output pixels)
  parameter  int unsigned Cols          = 4,     // PE columns (output channels)
  parameter  int unsigned Dataflow      = 0,     // ts_pkg::DataflowWs or ts_pkg::DataflowOs
  parameter  int unsigned ActBits       = 8,     // activation code width
  parameter  int unsigned WeightBits    = 8,     // signed weight width
  parameter  int unsigned AccBits       = 32,    // partial-sum width (two's complement, wraps)
  parameter  bit          FaultDropSkew = 1'b0,  // test only: row 1 loses its skew register
  localparam int unsigned RowBits       = Rows > 1 ? $clog2(Rows) : 1
) (
  input  logic                       clk_i,         // gated clock: ticks in advancing cycles only
  input  logic                       rst_ni,        // async reset, active low
  input  logic                       act_signed_i,  // layer-wide: activation codes are signed
  input  logic [   Rows*ActBits-1:0] act_i,         // one vector, row r at [r*ActBits +: ActBits]
  // weight-stationary
  input  logic                       ld_i,          // next cycle's vector starts a fold (load wave)
  input  logic                       wr_valid_i,    // write one preload row into the shadows
  input  logic [        RowBits-1:0] wr_row_i,      // row written
  input  logic [Cols*WeightBits-1:0] wr_data_i,     // its weights, column c at [c*WeightBits +: ..]
  // output-stationary
  input  logic [Cols*WeightBits-1:0] w_i,           // weights entering the columns with act_i
  input  logic                       first_i,       // act_i is a fold's first reduction step
  input  logic                       last_i,        // act_i is a fold's last reduction step
  output logic [   Cols*AccBits-1:0] psum_o         // aligned column sums, column c at [c*AccBits +:]
);
  localparam bit Os = Dataflow == ts_pkg::DataflowOs;

  // ---- Activation skew: row r enters column 0 r cycles late.
  logic [ActBits-1:0] act_h[Rows*(Cols+1)];  // act_h[r*(Cols+1) + c]: entering PE(r, c)
  for (genvar r = 0; r < Rows; r++) begin : gen_skew
    localparam int unsigned Delay = (FaultDropSkew && r == 1) ? 0 : r;
    ts_delay #(
      .Width(ActBits),
      .Depth(Delay)
    ) u_skew (
      .clk_i,
      .rst_ni,
      .d_i(act_i[r*ActBits+:ActBits]),
      .q_o(act_h[r*(Cols+1)])
    );
  end

  // ---- Bottom row to psum_o: column c waits Cols-1-c cycles so all columns line up.
  logic [AccBits-1:0] bottom[Cols];
  for (genvar c = 0; c < Cols; c++) begin : gen_deskew
    ts_delay #(
      .Width(AccBits),
      .Depth(Cols - 1 - c)
    ) u_deskew (
      .clk_i,
      .rst_ni,
      .d_i(bottom[c]),
      .q_o(psum_o[c*AccBits+:AccBits])
    );
  end

  // The last column's activations leave the array unused.
  logic [Rows-1:0] unused_act;
  for (genvar r = 0; r < Rows; r++) begin : gen_unused_act
    assign unused_act[r] = ^act_h[r*(Cols+1)+Cols];
  end

  if (!Os) begin : gen_ws
    logic unused_os;
    assign unused_os = ^{w_i, first_i, last_i};

    // Load wave: PE(r, c) loads its shadow weight when ld_i, delayed r + c cycles, is high.
    logic [Rows+Cols-2:0] ld_line;  // ld_line[k]: ld_i delayed k cycles
    assign ld_line[0] = ld_i;
    ts_delay #(
      .Width(1),
      .Depth(1),
      .Reset(1'b1)
    ) u_ld0 (
      .clk_i,
      .rst_ni,
      .d_i(ld_line[0]),
      .q_o(ld_line[1])
    );
    for (genvar k = 2; k <= Rows + Cols - 2; k++) begin : gen_ld
      ts_delay #(
        .Width(1),
        .Depth(1),
        .Reset(1'b1)
      ) u_ld (
        .clk_i,
        .rst_ni,
        .d_i(ld_line[k-1]),
        .q_o(ld_line[k])
      );
    end

    // Write wave: column c takes preload rows c cycles late (data and its row address).
    logic [RowBits:0] wr_ctl[Cols];  // {valid, row} at column c
    logic [WeightBits-1:0] wr_col[Cols];
    for (genvar c = 0; c < Cols; c++) begin : gen_wr
      ts_delay #(
        .Width(RowBits + 1),
        .Depth(c),
        .Reset(1'b1)
      ) u_ctl (
        .clk_i,
        .rst_ni,
        .d_i({wr_valid_i, wr_row_i}),
        .q_o(wr_ctl[c])
      );
      ts_delay #(
        .Width(WeightBits),
        .Depth(c)
      ) u_data (
        .clk_i,
        .rst_ni,
        .d_i(wr_data_i[c*WeightBits+:WeightBits]),
        .q_o(wr_col[c])
      );
    end

    // Shadow weights (rewritten by every preload before they are loaded: no reset).
    logic [WeightBits-1:0] shadow_d[Rows*Cols];
    logic [WeightBits-1:0] shadow_q[Rows*Cols];
    always_comb begin
      for (int unsigned r = 0; r < Rows; r++) begin
        for (int unsigned c = 0; c < Cols; c++) begin
          shadow_d[r*Cols+c] = shadow_q[r*Cols+c];
          if (wr_ctl[c][RowBits] && wr_ctl[c][RowBits-1:0] == RowBits'(r)) begin
            shadow_d[r*Cols+c] = wr_col[c];
          end
        end
      end
    end
    for (genvar i = 0; i < Rows * Cols; i++) begin : gen_shadow
      always_ff @(posedge clk_i) begin
        shadow_q[i] <= shadow_d[i];
      end
    end

    logic [AccBits-1:0] psum_v[(Rows+1)*Cols];  // psum_v[r*Cols + c]: entering PE(r, c) from above
    logic [WeightBits-1:0] w_unused[Rows*Cols];
    for (genvar c = 0; c < Cols; c++) begin : gen_top
      assign psum_v[c] = '0;
      assign bottom[c] = psum_v[Rows*Cols+c];
    end
    for (genvar r = 0; r < Rows; r++) begin : gen_row
      for (genvar c = 0; c < Cols; c++) begin : gen_col
        ts_pe_ws #(
          .ActBits   (ActBits),
          .WeightBits(WeightBits),
          .AccBits   (AccBits)
        ) u_pe (
          .clk_i,
          .rst_ni,
          .act_signed_i,
          .w_load_i(ld_line[r+c]),
          .w_i     (shadow_q[r*Cols+c]),
          .w_o     (w_unused[r*Cols+c]),
          .act_i   (act_h[r*(Cols+1)+c]),
          .act_o   (act_h[r*(Cols+1)+c+1]),
          .psum_i  (psum_v[r*Cols+c]),
          .psum_o  (psum_v[(r+1)*Cols+c])
        );
      end
    end
    logic [Rows*Cols-1:0] unused_w;
    for (genvar i = 0; i < Rows * Cols; i++) begin : gen_unused_w
      assign unused_w[i] = ^w_unused[i];
    end
  end else begin : gen_os
    logic unused_ws;
    assign unused_ws = ^{ld_i, wr_valid_i, wr_row_i, wr_data_i};

    // first_i / last_i delayed k cycles; PE(r, c) sees step j of a fold r + c cycles after the
    // port, so first_line[r + c] restarts its sum and last_line[r + c + 1] captures it.
    localparam int unsigned FirstLen = Rows + Cols - 1;      // taps 0 .. Rows+Cols-2
    localparam int unsigned LastLen  = 2 * Rows + Cols - 1;  // taps 0 .. 2*Rows+Cols-2
    logic [FirstLen-1:0] first_line;
    logic [ LastLen-1:0] last_line;
    assign first_line[0] = first_i;
    assign last_line[0]  = last_i;
    for (genvar k = 1; k < LastLen; k++) begin : gen_last
      ts_delay #(
        .Width(1),
        .Depth(1),
        .Reset(1'b1)
      ) u_last (
        .clk_i,
        .rst_ni,
        .d_i(last_line[k-1]),
        .q_o(last_line[k])
      );
    end
    for (genvar k = 1; k < FirstLen; k++) begin : gen_first
      ts_delay #(
        .Width(1),
        .Depth(1),
        .Reset(1'b1)
      ) u_first (
        .clk_i,
        .rst_ni,
        .d_i(first_line[k-1]),
        .q_o(first_line[k])
      );
    end

    // Weight skew: column c's weights enter row 0 c cycles late and then move down.
    logic [WeightBits-1:0] w_v[(Rows+1)*Cols];  // w_v[r*Cols + c]: entering PE(r, c) from above
    for (genvar c = 0; c < Cols; c++) begin : gen_wskew
      ts_delay #(
        .Width(WeightBits),
        .Depth(c)
      ) u_wskew (
        .clk_i,
        .rst_ni,
        .d_i(w_i[c*WeightBits+:WeightBits]),
        .q_o(w_v[c])
      );
    end

    logic [AccBits-1:0] acc[Rows*Cols];
    for (genvar r = 0; r < Rows; r++) begin : gen_row
      for (genvar c = 0; c < Cols; c++) begin : gen_col
        ts_pe_os #(
          .ActBits   (ActBits),
          .WeightBits(WeightBits),
          .AccBits   (AccBits)
        ) u_pe (
          .clk_i,
          .rst_ni,
          .act_signed_i,
          .act_i  (act_h[r*(Cols+1)+c]),
          .act_o  (act_h[r*(Cols+1)+c+1]),
          .w_i    (w_v[r*Cols+c]),
          .w_o    (w_v[(r+1)*Cols+c]),
          .clear_i(first_line[r+c]),
          .drain_i(1'b0),
          .acc_i  ('0),
          .acc_o  (acc[r*Cols+c])
        );
      end
    end
    logic [Cols-1:0] unused_w;
    for (genvar c = 0; c < Cols; c++) begin : gen_unused_w
      assign unused_w[c] = ^w_v[Rows*Cols+c];
    end

    // Drain registers. Column c's bottom PE finishes a fold in cycle k_c (last step + Rows - 1 +
    // c); every PE captured its sum the cycle after its own last step, so the bottom register shows
    // row Rows-1 in cycle k_c + 2 and row Rows-1-i in k_c + 2 + i. Row r shifts in from row r-1 only
    // during cycles k_c + 2 .. k_c + 1 + r, while earlier rows pass through it; the next fold's
    // capture of row r comes no earlier than k_c + 2 + r (its last step >= Rows cycles later).
    logic [AccBits-1:0] drain_d[Rows*Cols];
    logic [AccBits-1:0] drain_q[Rows*Cols];
    always_comb begin
      for (int unsigned c = 0; c < Cols; c++) begin
        logic shift;
        shift = 1'b0;
        for (int unsigned r = 0; r < Rows; r++) begin
          if (r > 0) begin
            shift = shift | last_line[Rows+c+r];
          end
          drain_d[r*Cols+c] = drain_q[r*Cols+c];
          if (last_line[r+c+1]) begin
            drain_d[r*Cols+c] = acc[r*Cols+c];
          end else if (shift) begin
            drain_d[r*Cols+c] = (r == 0) ? '0 : drain_q[(r-1)*Cols+c];
          end
        end
      end
    end
    for (genvar i = 0; i < Rows * Cols; i++) begin : gen_drain
      always_ff @(posedge clk_i) begin
        drain_q[i] <= drain_d[i];
      end
    end
    for (genvar c = 0; c < Cols; c++) begin : gen_bottom
      assign bottom[c] = drain_q[(Rows-1)*Cols+c];
    end
  end

`ifndef SYNTHESIS
  initial begin : p_params
    assert (Rows >= 2) else $error("ts_systolic_array: Rows must be >= 2 (shadow weight timing)");
    assert (Dataflow <= 1) else $error("ts_systolic_array: Dataflow must be ws (0) or os (1)");
  end
`endif
endmodule
