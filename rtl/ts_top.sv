// The systolic accelerator: valid/ready streams in (fold descriptors, weight preload rows,
// activation vectors, scale registers, biases) and out (output vectors), a controller that advances
// the whole datapath only when every beat it needs is there (a clock gate freezes it otherwise),
// the array, the scale-register banks and one edge column per array column. rtl/README.md is the
// contract: ports, beat formats, the cycle formula and how a host feeds a layer.
`include "ts_pkg.sv"
/* verilator lint_off MULTITOP */  // linted with the block library (tests/rtl), each a top
module ts_top #(
  parameter  int unsigned Rows          = 4,     // PE rows
  parameter  int unsigned Cols          = 4,     // PE columns
  parameter  int unsigned Dataflow      = 0,     // ts_pkg::DataflowWs (0) or DataflowOs (1)
  parameter  int unsigned ActBits       = 8,     // activation / output code width
  parameter  int unsigned WeightBits    = 8,     // signed weight width
  parameter  int unsigned AccBits       = 32,    // PE partial sums and int32 group sums
  parameter  int unsigned WideBits      = 64,    // wide accumulator, bias and logits width
  parameter  int unsigned ScaleKind     = 0,     // ts_pkg::ScaleFixed (0) or ScaleShift (1)
  parameter  int unsigned MantBits      = 16,    // scale mantissa width (1 for ScaleShift)
  parameter  int unsigned ScaleBanks    = 6,     // scale-register banks (= fold contexts)
  parameter  int unsigned RegsPerBank   = 4,     // scale registers per bank
  parameter  int unsigned AccWords      = 64,    // accumulator words per column
  parameter  int unsigned ActLanes      = Rows,  // activation lanes per beat (ws; os: Rows)
  parameter  int unsigned OutLanes      = Cols,  // output lanes per beat (ws; os: Cols)
  parameter  bit          FaultDropSkew = 1'b0,  // test only: a broken activation skew
  parameter  bit          FaultRoundEven = 1'b0, // test only: requantizer ties round half to even
  localparam int unsigned ShiftBits     = ts_pkg::ShiftBits,
  localparam int unsigned SelBits       = RegsPerBank > 1 ? $clog2(RegsPerBank) : 1
) (
  input  logic                       clk_i,         // clock
  input  logic                       rst_ni,        // async reset, active low
  // fold descriptors: one beat per fold
  input  logic                       desc_valid_i,  // descriptor offered
  output logic                       desc_ready_o,  // descriptor taken
  input  ts_pkg::desc_t              desc_i,        // fold control (ts_pkg::desc_t)
  input  ts_pkg::layer_t             desc_layer_i,  // layer constants (ts_pkg::layer_t)
  input  logic [   Cols*SelBits-1:0] desc_sel_i,    // column c's scale register, [c*SelBits +:]
  // weight preload (ws): Rows beats per fold, row 0 first
  input  logic                       wgt_valid_i,   // preload row offered
  output logic                       wgt_ready_o,   // taken
  input  logic [Cols*WeightBits-1:0] wgt_data_i,    // weight of column c at [c*WeightBits +:]
  // activations: one lowered input vector per ceil(rows_used / ActLanes) beats (os: one beat,
  // with the weights entering the columns)
  input  logic                       act_valid_i,   // beat offered
  output logic                       act_ready_o,   // taken
  input  logic [ActLanes*ActBits-1:0] act_data_i,   // beat b, lane i: row b*ActLanes + i
  input  logic [Cols*WeightBits-1:0] act_wgt_i,     // os: weight of column c; ws: ignored
  // scale registers: one register write per beat into the fold's bank
  input  logic                       scl_valid_i,   // write offered
  output logic                       scl_ready_o,   // taken
  input  logic [        SelBits-1:0] scl_reg_i,     // register within the bank
  input  logic [       MantBits-1:0] scl_mant_i,    // mantissa m (ignored by ScaleShift)
  input  logic [      ShiftBits-1:0] scl_shift_i,   // left shift F - r
  // biases: one beat per output tile (first_in_tile fold), bias_q with F fractional bits
  input  logic                       bias_valid_i,  // bias vector offered
  output logic                       bias_ready_o,  // taken
  input  logic [  Cols*WideBits-1:0] bias_data_i,   // bias of column c at [c*WideBits +:]
  // outputs: one vector in ceil(cols_used / OutLanes) beats, beat b lane i = column b*OutLanes+i
  output logic                       out_valid_o,   // output beat offered
  input  logic                       out_ready_i,   // taken
  output logic [OutLanes*WideBits-1:0] out_data_o,  // lane i at [i*WideBits +:]: sign-extended
                                                    // code, or the wide accumulator when keep_acc
  output logic [        OutLanes-1:0] out_mask_o,   // lanes carrying outputs (column < cols_used)
  output logic                       out_last_o,    // the layer's last output beat
  // status
  output logic                       busy_o,        // a layer runs: first beat .. last output
  output logic                       stall_o        // a layer runs and this cycle did not advance
);
  localparam int unsigned BankBits = ScaleBanks > 1 ? $clog2(ScaleBanks) : 1;
  localparam int unsigned WordBits = AccWords > 1 ? $clog2(AccWords) : 1;
  localparam int unsigned RowBits  = Rows > 1 ? $clog2(Rows) : 1;

  // ---- Controller and the clock gate that freezes everything behind it.
  logic adv, gclk;
  ts_pkg::layer_t layer;
  logic act_take, act_beat, ld, wr_valid, wr_zero, first, last, out_load;
  logic [ts_pkg::CountBits-1:0] act_off, out_off;
  logic [RowBits-1:0] wr_row;
  logic sc_we;
  logic [BankBits-1:0] sc_wbank, sc_rbank;
  logic [Cols*SelBits-1:0] sc_rsel;
  logic v1, restart1, v2, v3, use_bias3, bias_load;
  logic [Cols-1:0] mask1, mask2, mask3;
  logic [WordBits-1:0] word1, word3;

  ts_clock_gate u_gate (
    .clk_i,
    .en_i (adv),
    .clk_o(gclk)
  );

  ts_ctrl #(
    .Rows    (Rows),
    .Cols    (Cols),
    .Dataflow(Dataflow),
    .AccWords(AccWords),
    .Banks   (ScaleBanks),
    .Regs    (RegsPerBank),
    .ActLanes(ActLanes),
    .OutLanes(OutLanes)
  ) u_ctrl (
    .clk_i,
    .gclk_i      (gclk),
    .rst_ni,
    .adv_o       (adv),
    .stall_o,
    .busy_o,
    .desc_valid_i,
    .desc_ready_o,
    .desc_i,
    .desc_layer_i,
    .desc_sel_i,
    .wgt_valid_i,
    .wgt_ready_o,
    .act_valid_i,
    .act_ready_o,
    .scl_valid_i,
    .scl_ready_o,
    .bias_valid_i,
    .bias_ready_o,
    .out_valid_o,
    .out_ready_i,
    .out_last_o,
    .out_mask_o,
    .out_off_o   (out_off),
    .out_load_o  (out_load),
    .layer_o     (layer),
    .act_take_o  (act_take),
    .act_beat_o  (act_beat),
    .act_off_o   (act_off),
    .ld_o        (ld),
    .wr_valid_o  (wr_valid),
    .wr_row_o    (wr_row),
    .wr_zero_o   (wr_zero),
    .first_o     (first),
    .last_o      (last),
    .sc_we_o     (sc_we),
    .sc_wbank_o  (sc_wbank),
    .sc_rbank_o  (sc_rbank),
    .sc_rsel_o   (sc_rsel),
    .mask1_o     (mask1),
    .mask2_o     (mask2),
    .mask3_o     (mask3),
    .v1_o        (v1),
    .word1_o     (word1),
    .restart1_o  (restart1),
    .v2_o        (v2),
    .v3_o        (v3),
    .word3_o     (word3),
    .use_bias3_o (use_bias3),
    .bias_load_o (bias_load)
  );

  // ---- Activation assembler (ActLanes < Rows): the beats of a vector land in a row buffer; the
  // vector enters the array in the cycle its last beat is taken (or later, buffer only).
  logic [Rows*ActBits-1:0] act_vec;
  if (ActLanes < Rows) begin : gen_act_asm
    logic [Rows*ActBits-1:0] abuf_q;
    always_comb begin
      act_vec = abuf_q;
      for (int unsigned i = 0; i < ActLanes; i++) begin
        if (act_beat && 32'(act_off) + i < Rows) begin
          act_vec[(32'(act_off) + i)*ActBits+:ActBits] = act_data_i[i*ActBits+:ActBits];
        end
      end
    end
    always_ff @(posedge gclk) begin
      abuf_q <= act_vec;
    end
  end else begin : gen_act_full
    assign act_vec = act_data_i;
    logic [ts_pkg::CountBits-1:0] unused_act_off;
    logic unused_act_beat;
    assign unused_act_off  = act_off;
    assign unused_act_beat = act_beat;
  end

  // ---- Array: bubbles carry zeros, unused preload rows are written as zeros.
  logic [Rows*ActBits-1:0] act;
  logic [Cols*WeightBits-1:0] act_w, wr_data;
  logic [Cols*AccBits-1:0] psum;
  assign act     = act_take ? act_vec : '0;
  assign act_w   = act_take ? act_wgt_i : '0;
  assign wr_data = wr_zero ? '0 : wgt_data_i;

  ts_systolic_array #(
    .Rows         (Rows),
    .Cols         (Cols),
    .Dataflow     (Dataflow),
    .ActBits      (ActBits),
    .WeightBits   (WeightBits),
    .AccBits      (AccBits),
    .FaultDropSkew(FaultDropSkew)
  ) u_array (
    .clk_i       (gclk),
    .rst_ni,
    .act_signed_i(layer.act_signed),
    .act_i       (act),
    .ld_i        (ld),
    .wr_valid_i  (wr_valid),
    .wr_row_i    (wr_row),
    .wr_data_i   (wr_data),
    .w_i         (act_w),
    .first_i     (first),
    .last_i      (last),
    .psum_o      (psum)
  );

  // ---- Scale registers.
  logic [Cols*MantBits-1:0] mant;
  logic [Cols*ShiftBits-1:0] shift;
  ts_scale_regs #(
    .Banks   (ScaleBanks),
    .Regs    (RegsPerBank),
    .Cols    (Cols),
    .MantBits(MantBits)
  ) u_scale_regs (
    .clk_i   (gclk),
    .rst_ni,
    .we_i    (sc_we),
    .wbank_i (sc_wbank),
    .wreg_i  (scl_reg_i),
    .wmant_i (scl_mant_i),
    .wshift_i(scl_shift_i),
    .rbank_i (sc_rbank),
    .rsel_i  (sc_rsel),
    .mant_o  (mant),
    .shift_o (shift)
  );

  // ---- Edge: one column each; columns beyond a fold's cols_used stay idle.
  logic [Cols*WideBits-1:0] lanes;
  for (genvar c = 0; c < Cols; c++) begin : gen_edge
    ts_edge #(
      .ActBits       (ActBits),
      .AccBits       (AccBits),
      .WideBits      (WideBits),
      .MantBits      (MantBits),
      .ScaleKind     (ScaleKind),
      .AccWords      (AccWords),
      .FaultRoundEven(FaultRoundEven)
    ) u_edge (
      .clk_i       (gclk),
      .rst_ni,
      .v1_i        (v1 && mask1[c]),
      .word1_i     (word1),
      .restart1_i  (restart1),
      .psum_i      (psum[c*AccBits+:AccBits]),
      .v2_i        (v2 && mask2[c]),
      .mant_i      (mant[c*MantBits+:MantBits]),
      .shift_i     (shift[c*ShiftBits+:ShiftBits]),
      .v3_i        (v3 && mask3[c]),
      .word3_i     (word3),
      .use_bias3_i (use_bias3),
      .bias_load_i (bias_load),
      .bias_i      (bias_data_i[c*WideBits+:WideBits]),
      .frac_i      (layer.frac_bits),
      .out_signed_i(layer.out_signed),
      .keep_acc_i  (layer.keep_acc),
      .clamp_lo_i  (layer.clamp_lo),
      .clamp_hi_i  (layer.clamp_hi),
      .lane_o      (lanes[c*WideBits+:WideBits])
    );
  end

  // ---- Output serializer (OutLanes < Cols): the edge's stage-4 lanes hold a result for one
  // cycle only (the edge advances under it), so it is copied into a hold register the cycle after
  // it is loaded; beat lane i is column out_off + i.
  if (OutLanes < Cols) begin : gen_out_ser
    logic fresh_q;
    logic [Cols*WideBits-1:0] hold_q, held;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        fresh_q <= 1'b0;
      end else begin
        fresh_q <= out_load;
      end
    end
    always_ff @(posedge clk_i) begin
      hold_q <= held;
    end
    assign held = fresh_q ? lanes : hold_q;
    always_comb begin
      out_data_o = '0;
      for (int unsigned i = 0; i < OutLanes; i++) begin
        if (32'(out_off) + i < Cols) begin
          out_data_o[i*WideBits+:WideBits] = held[(32'(out_off) + i)*WideBits+:WideBits];
        end
      end
    end
  end else begin : gen_out_full
    assign out_data_o = lanes;
    logic [ts_pkg::CountBits-1:0] unused_out_off;
    logic unused_out_load;
    assign unused_out_off  = out_off;
    assign unused_out_load = out_load;
  end

`ifndef SYNTHESIS
  // ---- Stream protocol: a source holds valid and its payload until the beat is taken. Inputs
  // are the host's promise, the output is this design's. Checked with registers sampled at the
  // clock edge (the handshake of the cycle that ends there), then against the next cycle's values.
  logic desc_hold_q, wgt_hold_q, act_hold_q, scl_hold_q, bias_hold_q, out_hold_q;
  ts_pkg::desc_t desc_q;
  ts_pkg::layer_t desc_layer_q;
  logic [Cols*SelBits-1:0] desc_sel_q;
  logic [Cols*WeightBits-1:0] wgt_data_q, act_wgt_q;
  logic [ActLanes*ActBits-1:0] act_data_q;
  logic [SelBits+MantBits+ShiftBits-1:0] scl_q;
  logic [Cols*WideBits-1:0] bias_data_q;
  logic [OutLanes*WideBits-1:0] out_data_q;
  logic [OutLanes:0] out_side_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      desc_hold_q <= 1'b0;
      wgt_hold_q  <= 1'b0;
      act_hold_q  <= 1'b0;
      scl_hold_q  <= 1'b0;
      bias_hold_q <= 1'b0;
      out_hold_q  <= 1'b0;
    end else begin
      desc_hold_q <= desc_valid_i && !desc_ready_o;
      wgt_hold_q  <= wgt_valid_i && !wgt_ready_o;
      act_hold_q  <= act_valid_i && !act_ready_o;
      scl_hold_q  <= scl_valid_i && !scl_ready_o;
      bias_hold_q <= bias_valid_i && !bias_ready_o;
      out_hold_q  <= out_valid_o && !out_ready_i;
    end
  end
  always_ff @(posedge clk_i) begin
    desc_q       <= desc_i;
    desc_layer_q <= desc_layer_i;
    desc_sel_q   <= desc_sel_i;
    wgt_data_q   <= wgt_data_i;
    act_data_q   <= act_data_i;
    act_wgt_q    <= act_wgt_i;
    scl_q        <= {scl_reg_i, scl_mant_i, scl_shift_i};
    bias_data_q  <= bias_data_i;
    out_data_q   <= out_data_o;
    out_side_q   <= {out_last_o, out_mask_o};
  end
  always_ff @(posedge clk_i) begin
    if (desc_hold_q) begin
      assert (desc_valid_i && desc_i == desc_q && desc_layer_i == desc_layer_q &&
              desc_sel_i == desc_sel_q)
      else $error("ts_top: descriptor stream changed before it was taken");
    end
    if (wgt_hold_q) begin
      assert (wgt_valid_i && wgt_data_i == wgt_data_q)
      else $error("ts_top: weight stream changed before it was taken");
    end
    if (act_hold_q) begin
      assert (act_valid_i && act_data_i == act_data_q && act_wgt_i == act_wgt_q)
      else $error("ts_top: activation stream changed before it was taken");
    end
    if (scl_hold_q) begin
      assert (scl_valid_i && {scl_reg_i, scl_mant_i, scl_shift_i} == scl_q)
      else $error("ts_top: scale stream changed before it was taken");
    end
    if (bias_hold_q) begin
      assert (bias_valid_i && bias_data_i == bias_data_q)
      else $error("ts_top: bias stream changed before it was taken");
    end
    if (out_hold_q) begin
      assert (out_valid_o && out_data_o == out_data_q && {out_last_o, out_mask_o} == out_side_q)
      else $error("ts_top: output stream changed before it was taken");
    end
    if (scl_valid_i && scl_ready_o) begin
      assert (32'(scl_reg_i) < RegsPerBank)
      else $error("ts_top: scale beat writes register %0d of %0d", scl_reg_i, RegsPerBank);
    end
  end

  initial begin : p_params
    assert (ActBits < ts_pkg::ClampBits) else $error("ts_top: ActBits must be below ClampBits");
    assert (ScaleKind == ts_pkg::ScaleFixed || MantBits == 1)
    else $error("ts_top: a shift-only scale unit has MantBits = 1");
  end
`endif
endmodule
