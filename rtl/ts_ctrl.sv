// Controller: executes the host's stream of fold descriptors. It decides, for every cycle, which
// stream beats the datapath needs (act vector, weight preload row, scale register, descriptor,
// bias, output slot), advances the whole accelerator only when all of them are there (adv_o gates
// the clock), and sequences preloads, scale loads, streaming, drains and the edge stages.
//
// Schedule in advancing cycles (the stall-free timing of rtl/README.md): the descriptor of fold
// f + 1 is taken in the cycle fold f starts (the first fold's in the layer's first cycle); its R
// preload rows (ws) and S scale registers follow one per cycle from that cycle on; fold f + 1
// starts when fold f has streamed its T vectors, the preload and the scale loads are done and
// (os) its last step comes at least Rows cycles after fold f's.
//
// Narrowed ports (ws, rtl/README.md "Narrowed ports"): a vector arrives in beats of ActLanes
// activation lanes and its outputs leave in beats of OutLanes lanes. A vector enters the array in
// the cycle its last activation beat is taken (the beats before it wait in ts_top's assembler,
// the array meanwhile advances with bubbles), and not before the output port has moved the
// previous output vector: a word count of that vector (ow) mirrors the output serializer in
// advancing cycles, so the output register is always free when the next result reaches it.
`include "ts_pkg.sv"
module ts_ctrl #(
  parameter  int unsigned Rows      = 4,   // PE rows
  parameter  int unsigned Cols      = 4,   // PE columns
  parameter  int unsigned Dataflow  = 0,   // ts_pkg::DataflowWs or ts_pkg::DataflowOs
  parameter  int unsigned AccWords  = 64,  // accumulator words per edge column
  parameter  int unsigned Banks     = 6,   // scale-register banks = fold contexts kept
  parameter  int unsigned Regs      = 4,   // scale registers per bank
  parameter  int unsigned ActLanes  = 4,   // activation lanes per beat (ws; os: = Rows)
  parameter  int unsigned OutLanes  = 4,   // output lanes per beat (ws; os: = Cols)
  localparam int unsigned SelBits   = Regs > 1 ? $clog2(Regs) : 1,
  localparam int unsigned BankBits  = Banks > 1 ? $clog2(Banks) : 1,
  localparam int unsigned WordBits  = AccWords > 1 ? $clog2(AccWords) : 1,
  localparam int unsigned RowBits   = Rows > 1 ? $clog2(Rows) : 1,
  localparam int unsigned StreamBits = ts_pkg::StreamBits,
  localparam int unsigned CountBits = ts_pkg::CountBits
) (
  input  logic                    clk_i,         // free-running clock
  input  logic                    gclk_i,        // gated clock: ticks only when adv_o
  input  logic                    rst_ni,        // async reset, active low
  output logic                    adv_o,         // the accelerator advances this cycle
  output logic                    stall_o,       // a layer runs but a stream held it this cycle
  output logic                    busy_o,        // a layer runs (first beat .. last output beat)
  // descriptor stream
  input  logic                    desc_valid_i,  // descriptor beat offered
  output logic                    desc_ready_o,  // descriptor beat taken
  input  ts_pkg::desc_t           desc_i,        // fold control
  input  ts_pkg::layer_t          desc_layer_i,  // layer constants
  input  logic [Cols*SelBits-1:0] desc_sel_i,    // column c's scale register in the fold's bank
  // handshakes of the other input streams (their payloads go straight to the datapath)
  input  logic                    wgt_valid_i,   // weight preload row offered (ws)
  output logic                    wgt_ready_o,   // taken
  input  logic                    act_valid_i,   // activation vector offered
  output logic                    act_ready_o,   // taken
  input  logic                    scl_valid_i,   // scale register write offered
  output logic                    scl_ready_o,   // taken
  input  logic                    bias_valid_i,  // bias vector offered
  output logic                    bias_ready_o,  // taken
  // output stream handshake and sideband
  output logic                    out_valid_o,   // output vector offered
  input  logic                    out_ready_i,   // taken by the host
  output logic                    out_last_o,    // last output vector of the layer
  output logic [    OutLanes-1:0] out_mask_o,    // lanes of this beat carrying outputs
  output logic [   CountBits-1:0] out_off_o,     // column of the beat's lane 0
  output logic                    out_load_o,    // the output register loads a result now
  // layer constants for the datapath
  output ts_pkg::layer_t          layer_o,       // as taken with the layer's first descriptor
  // array
  output logic                    act_take_o,    // a whole vector enters the array now
  output logic                    act_beat_o,    // an activation beat is taken now
  output logic [   CountBits-1:0] act_off_o,     // its lane 0 is row act_off_o of the vector
  output logic                    ld_o,          // ws: the next vector starts a fold (load wave)
  output logic                    wr_valid_o,    // ws: a preload row is written now
  output logic [     RowBits-1:0] wr_row_o,      // ws: its row
  output logic                    wr_zero_o,     // ws: the row is unused by its fold: write zeros
  output logic                    first_o,       // os: this vector is a fold's first step
  output logic                    last_o,        // os: this vector is a fold's last step
  // scale registers
  output logic                    sc_we_o,       // a scale beat is written now
  output logic [    BankBits-1:0] sc_wbank_o,    // into this bank
  output logic [    BankBits-1:0] sc_rbank_o,    // stage 2 reads this bank
  output logic [Cols*SelBits-1:0] sc_rsel_o,     // and these registers
  // edge stage controls (shared by all columns)
  output logic [        Cols-1:0] mask1_o,       // columns holding data at stage 1 (2, 3 follow)
  output logic [        Cols-1:0] mask2_o,       // ... at stage 2
  output logic [        Cols-1:0] mask3_o,       // ... at stage 3
  output logic                    v1_o,          // stage 1: a partial sum arrives
  output logic [    WordBits-1:0] word1_o,       // its word
  output logic                    restart1_o,    // group sum restarts
  output logic                    v2_o,          // stage 2: a group sum is scaled
  output logic                    v3_o,          // stage 3: a scaled sum accumulates
  output logic [    WordBits-1:0] word3_o,       // its word
  output logic                    use_bias3_o,   // it starts from the bias
  output logic                    bias_load_o    // the bias beat is taken now
);
  localparam bit Os = Dataflow == ts_pkg::DataflowOs;
  localparam int unsigned PreBits = $clog2(Rows + 1);       // 0 .. Rows
  localparam int unsigned MetaDelay = Rows + Cols - 1 + (Os ? 1 : 0);
  localparam int unsigned MetaBits = 3 + BankBits;         // {valid, first, last, slot}
  localparam bit NarrowAct = ActLanes < Rows;
  localparam bit NarrowOut = OutLanes < Cols;
  localparam bit Narrow = NarrowAct || NarrowOut;  // a vector may enter after its fold's start

  // ------------------------------------------------------------------ state
  logic busy_q, busy_d;                 // free-running clock
  logic out_valid_q, out_valid_d;       // free-running clock
  ts_pkg::layer_t layer_q, layer_d;
  // current (streaming) fold
  logic                  have_cur_q, have_cur_d;
  logic [ BankBits-1:0]  cur_slot_q, cur_slot_d;
  logic [StreamBits-1:0] cur_t_q, cur_t_d;
  logic [StreamBits-1:0] j_q, j_d;      // vectors issued
  logic [ CountBits-1:0] cur_rows_q, cur_rows_d;
  logic [ CountBits-1:0] aw_q, aw_d;    // activation words of the next vector taken so far
  logic [ CountBits-1:0] ow_q, ow_d;    // words of the latest output vector the port still moves
  // prepared (next) fold
  logic                  have_prep_q, have_prep_d;
  logic [ BankBits-1:0]  prep_slot_q, prep_slot_d;
  logic [StreamBits-1:0] prep_t_q, prep_t_d;
  logic [ CountBits-1:0] prep_s_q, prep_s_d;
  logic [ CountBits-1:0] prep_rows_q, prep_rows_d;
  logic                  prep_last_q, prep_last_d;
  logic [ BankBits-1:0]  prep_bank_q, prep_bank_d;
  logic [   PreBits-1:0] pre_cnt_q, pre_cnt_d;   // preload rows written
  logic [ CountBits-1:0] sc_cnt_q, sc_cnt_d;     // scale registers written
  logic                  start_q, start_d;       // this cycle starts the prepared fold
  logic [   PreBits-1:0] gap_q, gap_d;           // os: cycles since the last step, up to Rows
  logic [ BankBits-1:0]  slot_q, slot_d;         // next fold-context slot
  logic [ BankBits-1:0]  bank_q, bank_d;         // bank of the latest scale load
  // fold contexts, one per fold in flight (written with the descriptor, read by the edge)
  logic [    Banks-1:0]  ctx_fir_q, ctx_ge_q, ctx_fit_q, ctx_oe_q, ctx_last_q;
  logic [CountBits-1:0]  ctx_rows_q[Banks];
  logic [CountBits-1:0]  ctx_cols_q[Banks];
  logic [ BankBits-1:0]  ctx_bank_q[Banks];
  logic [Cols*SelBits-1:0] ctx_sel_q[Banks];
  // edge sequencing
  logic [ WordBits-1:0]  wcnt_q, wcnt_d;         // ws: next word of the fold at stage 1
  logic                  dr_active_q, dr_active_d;  // os: a drain is at stage 1
  logic [  RowBits-1:0]  dr_cnt_q, dr_cnt_d;
  logic [ BankBits-1:0]  dr_slot_q, dr_slot_d;
  logic                  v2_q, first2_q, flast2_q, olast2_q;
  logic [ BankBits-1:0]  slot2_q;
  logic [ WordBits-1:0]  word2_q;
  logic                  v3_q, pass3_q, use_bias3_q, olast3_q;
  logic [ WordBits-1:0]  word3_q;
  logic [     Cols-1:0]  mask2_q, mask3_q, mask4_q;
  logic                  v4_q, pass4_q, olast4_q;
  logic                  out_last_q, out_last_d;     // free-running clock, loaded with a result
  logic [     Cols-1:0]  out_mask_q, out_mask_d;
  logic [CountBits-1:0]  ooff_q, ooff_d;             // column of the next output beat's lane 0

  // ------------------------------------------------------------------ what this cycle needs
  logic idle, in_vec, act_need, take, desc_need, wgt_need, scl_need, bias_need, adv_in, adv;
  logic [BankBits-1:0] vec_slot, new_bank;
  logic [StreamBits-1:0] vec_idx, vec_t;
  logic [CountBits-1:0] vec_rows;
  logic vec_last, vec_first;
  logic out_fire, out_lastbeat, out_load;

  always_comb begin
    idle      = !busy_q;
    // A vector is due (its fold streams); its activation beats are needed until all its rows
    // are in; it enters the array once they are and the output port has room (see the header).
    in_vec    = start_q || (have_cur_q && j_q != cur_t_q);
    vec_slot  = start_q ? prep_slot_q : cur_slot_q;
    vec_t     = start_q ? prep_t_q : cur_t_q;
    vec_idx   = start_q ? '0 : j_q;
    vec_rows  = start_q ? prep_rows_q : cur_rows_q;
    act_need  = in_vec && (!NarrowAct || aw_q < vec_rows);
    take      = in_vec && (!NarrowAct || 32'(aw_q) + (act_need ? ActLanes : 0) >= 32'(vec_rows)) &&
                (!NarrowOut || 32'(ow_q) <= OutLanes);
    // The cycle a fold starts takes the next fold's descriptor (none after the layer's last).
    desc_need = idle || (start_q && !prep_last_q);
    // A new descriptor's preload and scale loads begin in the cycle it is taken.
    wgt_need  = !Os && (desc_need ||
                        (have_prep_q && !start_q && pre_cnt_q != PreBits'(Rows)));
    scl_need  = (desc_need && desc_i.scale_loads != '0) ||
                (have_prep_q && !start_q && sc_cnt_q != prep_s_q);
    bias_need = v2_q && first2_q && ctx_fit_q[slot2_q];
    adv_in    = (!act_need || act_valid_i) && (!desc_need || desc_valid_i) &&
                (!wgt_need || wgt_valid_i) && (!scl_need || scl_valid_i) &&
                (!bias_need || bias_valid_i);
    // The output register frees itself when its beat is taken, even in a stalled cycle.
    adv       = adv_in && (!out_valid_q || out_ready_i);
    out_fire  = out_valid_q && out_ready_i;
    out_lastbeat = !NarrowOut || (32'(out_mask_q) >> (32'(ooff_q) + OutLanes)) == 0;
    out_load  = adv && v4_q && pass4_q;

    vec_last  = take && (vec_idx == vec_t - StreamBits'(1));
    vec_first = Narrow ? take && vec_idx == '0 : start_q;
    new_bank  = (desc_i.scale_loads == '0) ? bank_q :
                (bank_q == BankBits'(Banks - 1)) ? '0 : bank_q + BankBits'(1);
  end

  assign adv_o        = adv;
  assign stall_o      = busy_q && !adv;
  assign busy_o       = busy_q;
  assign desc_ready_o = desc_need && adv;
  assign wgt_ready_o  = wgt_need && adv;
  assign act_ready_o  = act_need && adv;
  assign scl_ready_o  = scl_need && adv;
  assign bias_ready_o = bias_need && adv;

  // ------------------------------------------------------------------ fold sequencing
  always_comb begin
    have_cur_d  = have_cur_q;
    cur_slot_d  = cur_slot_q;
    cur_t_d     = cur_t_q;
    j_d         = j_q;
    cur_rows_d  = cur_rows_q;
    have_prep_d = have_prep_q;
    prep_slot_d = prep_slot_q;
    prep_t_d    = prep_t_q;
    prep_s_d    = prep_s_q;
    prep_rows_d = prep_rows_q;
    prep_last_d = prep_last_q;
    prep_bank_d = prep_bank_q;
    pre_cnt_d   = pre_cnt_q;
    sc_cnt_d    = sc_cnt_q;
    slot_d      = slot_q;
    bank_d      = bank_q;
    layer_d     = layer_q;

    if (start_q) begin
      have_cur_d  = 1'b1;
      cur_slot_d  = prep_slot_q;
      cur_t_d     = prep_t_q;
      cur_rows_d  = prep_rows_q;
      j_d         = Narrow ? StreamBits'(take) : StreamBits'(1);
      have_prep_d = 1'b0;
    end else if (take) begin
      j_d = j_q + StreamBits'(1);
    end
    // Narrowed ports: the assembler's word count and the output port's mirror.
    aw_d = '0;
    if (NarrowAct && !take && act_need) begin
      aw_d = aw_q + CountBits'(ActLanes);
    end else if (NarrowAct && !take) begin
      aw_d = aw_q;
    end
    ow_d = '0;
    if (NarrowOut && take && ctx_oe_q[vec_slot]) begin
      ow_d = ctx_cols_q[vec_slot];
    end else if (NarrowOut && 32'(ow_q) > OutLanes) begin
      ow_d = ow_q - CountBits'(OutLanes);
    end
    if (idle) begin
      have_cur_d = 1'b0;
      layer_d    = desc_layer_i;
    end
    if (desc_need) begin
      have_prep_d = 1'b1;
      prep_slot_d = slot_q;
      prep_t_d    = desc_i.stream;
      prep_s_d    = desc_i.scale_loads;
      prep_rows_d = desc_i.rows_used;
      prep_last_d = desc_i.last;
      prep_bank_d = new_bank;
      pre_cnt_d   = Os ? '0 : PreBits'(1);
      sc_cnt_d    = (desc_i.scale_loads != '0) ? CountBits'(1) : '0;
      slot_d      = (slot_q == BankBits'(Banks - 1)) ? '0 : slot_q + BankBits'(1);
      bank_d      = new_bank;
    end else if (have_prep_q && !start_q) begin
      pre_cnt_d = pre_cnt_q + PreBits'(wgt_need);
      sc_cnt_d  = sc_cnt_q + CountBits'(scl_need);
    end

    // os: cycles from the latest last step, saturating at Rows.
    if (vec_last) begin
      gap_d = PreBits'(1);
    end else if (gap_q != PreBits'(Rows)) begin
      gap_d = gap_q + PreBits'(1);
    end else begin
      gap_d = gap_q;
    end

    // Decide now whether the next cycle starts the prepared fold (the ws load wave must begin one
    // cycle before a fold's first vector).
    start_d = have_prep_d && (!have_cur_d || j_d == cur_t_d) &&
              (Os || pre_cnt_d == PreBits'(Rows)) && sc_cnt_d == prep_s_d &&
              (!Os || 32'(gap_d) + 32'(prep_t_d) >= Rows + 1);
  end

  // ------------------------------------------------------------------ datapath controls
  logic [CountBits-1:0] wr_rows;  // rows used by the fold whose preload row is written
  always_comb begin
    act_take_o = take;
    act_beat_o = act_need;
    act_off_o  = aw_q;
    ld_o       = start_d;
    wr_valid_o = wgt_need;
    wr_row_o   = desc_need ? '0 : RowBits'(pre_cnt_q);
    wr_rows    = desc_need ? desc_i.rows_used : prep_rows_q;
    wr_zero_o  = 32'(wr_row_o) >= 32'(wr_rows);
    first_o    = vec_first;
    last_o     = vec_last;
    sc_we_o    = scl_need;
    sc_wbank_o = desc_need ? new_bank : prep_bank_q;
  end

  // ------------------------------------------------------------------ edge stage 1
  // Vectors (ws) or last-step markers (os) reach stage 1 MetaDelay cycles after the port.
  logic [MetaBits-1:0] meta_in, meta_out;
  logic m_valid, m_first, m_last;
  logic [BankBits-1:0] m_slot;
  assign meta_in = {take, vec_first, vec_last, vec_slot};
  ts_delay #(
    .Width(MetaBits),
    .Depth(MetaDelay),
    .Reset(1'b1)
  ) u_meta (
    .clk_i (gclk_i),
    .rst_ni,
    .d_i   (meta_in),
    .q_o   (meta_out)
  );
  assign {m_valid, m_first, m_last, m_slot} = meta_out;

  logic v1, first1, flast1, olast1, restart1, pass1;
  logic [Cols-1:0] mask1;
  logic [WordBits-1:0] word1;
  logic [BankBits-1:0] slot1;
  logic [RowBits-1:0] dr_i;
  logic [CountBits-1:0] row1;
  always_comb begin
    wcnt_d      = wcnt_q;
    dr_active_d = dr_active_q;
    dr_cnt_d    = dr_cnt_q;
    dr_slot_d   = dr_slot_q;
    dr_i        = '0;
    row1        = '0;
    if (!Os) begin
      // ws: one vector per cycle; its word is its index within the fold.
      v1     = m_valid;
      slot1  = m_slot;
      first1 = m_first;
      flast1 = m_valid && m_last;
      word1  = m_first ? '0 : wcnt_q;
      if (m_valid) begin
        wcnt_d = word1 + WordBits'(1);
      end
    end else begin
      // os: a fold's marker starts a Rows-cycle drain, bottom row (Rows-1) first; rows beyond
      // rows_used hold no outputs.
      slot1  = (m_valid && m_last) ? m_slot : dr_slot_q;
      dr_i   = (m_valid && m_last) ? '0 : dr_cnt_q;
      row1   = CountBits'(Rows - 1) - CountBits'(dr_i);
      v1     = ((m_valid && m_last) || dr_active_q) && row1 < ctx_rows_q[slot1];
      first1 = row1 == ctx_rows_q[slot1] - CountBits'(1);
      flast1 = v1 && row1 == '0;
      word1  = WordBits'(row1);
      dr_active_d = ((m_valid && m_last) || dr_active_q) && dr_i != RowBits'(Rows - 1);
      dr_cnt_d    = dr_i + RowBits'(1);
      dr_slot_d   = slot1;
    end
    for (int unsigned c = 0; c < Cols; c++) begin
      mask1[c] = 32'(c) < 32'(ctx_cols_q[slot1]);
    end
    restart1 = ctx_fir_q[slot1];
    pass1    = ctx_ge_q[slot1];
    olast1   = flast1 && ctx_last_q[slot1];
  end

  assign v1_o       = v1;
  assign mask1_o    = mask1;
  assign mask2_o    = mask2_q;
  assign mask3_o    = mask3_q;
  assign word1_o    = word1;
  assign restart1_o = restart1;

  // ------------------------------------------------------------------ edge stages 2 .. 4
  assign v2_o        = v2_q;
  assign sc_rbank_o  = ctx_bank_q[slot2_q];
  assign sc_rsel_o   = ctx_sel_q[slot2_q];
  assign bias_load_o = bias_need;
  assign v3_o        = v3_q;
  assign word3_o     = word3_q;
  assign use_bias3_o = use_bias3_q;

  always_comb begin
    busy_d = busy_q;
    if (idle && adv) begin
      busy_d = 1'b1;
    end else if (out_fire && out_last_o) begin
      busy_d = 1'b0;
    end
    // The output register: loaded with a result (all its beats), emptied by its last beat.
    out_last_d  = out_last_q;
    out_mask_d  = out_mask_q;
    ooff_d      = ooff_q;
    out_valid_d = out_valid_q;
    if (out_fire) begin
      out_valid_d = !out_lastbeat;
      ooff_d      = ooff_q + CountBits'(OutLanes);
    end
    if (adv) begin
      if (out_load) begin
        out_valid_d = 1'b1;
        ooff_d      = '0;
      end else if (!NarrowOut) begin
        out_valid_d = 1'b0;
      end
      if (out_load || !NarrowOut) begin
        out_last_d = olast4_q;
        out_mask_d = mask4_q;
      end
    end
    if (!NarrowOut) begin
      ooff_d = '0;
    end
  end

  assign out_valid_o = out_valid_q;
  assign out_last_o  = out_last_q && out_lastbeat;
  assign out_mask_o  = OutLanes'(out_mask_q >> ooff_q);
  assign out_off_o   = ooff_q;
  assign out_load_o  = out_load;
  assign layer_o     = layer_q;

  // ------------------------------------------------------------------ registers
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      busy_q      <= 1'b0;
      out_valid_q <= 1'b0;
      ooff_q      <= '0;
    end else begin
      busy_q      <= busy_d;
      out_valid_q <= out_valid_d;
      ooff_q      <= ooff_d;
    end
  end
  // The result's side bands: narrowed, held on the free clock while its beats leave; full width,
  // one beat, behind the clock gate (loaded in every advancing cycle).
  if (NarrowOut) begin : gen_out_side_free
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        out_last_q <= 1'b0;
        out_mask_q <= '0;
      end else begin
        out_last_q <= out_last_d;
        out_mask_q <= out_mask_d;
      end
    end
  end else begin : gen_out_side_gated
    always_ff @(posedge gclk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        out_last_q <= 1'b0;
        out_mask_q <= '0;
      end else begin
        out_last_q <= olast4_q;
        out_mask_q <= mask4_q;
      end
    end
    logic unused_out_side;
    assign unused_out_side = out_last_d ^ (^out_mask_d);
  end

  always_ff @(posedge gclk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      layer_q     <= '0;
      have_cur_q  <= 1'b0;
      cur_slot_q  <= '0;
      cur_t_q     <= '0;
      j_q         <= '0;
      cur_rows_q  <= '0;
      aw_q        <= '0;
      ow_q        <= '0;
      have_prep_q <= 1'b0;
      prep_slot_q <= '0;
      prep_t_q    <= '0;
      prep_s_q    <= '0;
      prep_rows_q <= '0;
      prep_last_q <= 1'b0;
      prep_bank_q <= '0;
      pre_cnt_q   <= '0;
      sc_cnt_q    <= '0;
      start_q     <= 1'b0;
      gap_q       <= PreBits'(Rows);
      slot_q      <= '0;
      bank_q      <= BankBits'(Banks - 1);
      wcnt_q      <= '0;
      dr_active_q <= 1'b0;
      dr_cnt_q    <= '0;
      dr_slot_q   <= '0;
      v2_q        <= 1'b0;
      first2_q    <= 1'b0;
      flast2_q    <= 1'b0;
      olast2_q    <= 1'b0;
      slot2_q     <= '0;
      word2_q     <= '0;
      v3_q        <= 1'b0;
      pass3_q     <= 1'b0;
      use_bias3_q <= 1'b0;
      olast3_q    <= 1'b0;
      word3_q     <= '0;
      mask2_q     <= '0;
      mask3_q     <= '0;
      mask4_q     <= '0;
      v4_q        <= 1'b0;
      pass4_q     <= 1'b0;
      olast4_q    <= 1'b0;
    end else begin
      layer_q     <= layer_d;
      have_cur_q  <= have_cur_d;
      cur_slot_q  <= cur_slot_d;
      cur_t_q     <= cur_t_d;
      j_q         <= j_d;
      cur_rows_q  <= cur_rows_d;
      aw_q        <= aw_d;
      ow_q        <= ow_d;
      have_prep_q <= have_prep_d;
      prep_slot_q <= prep_slot_d;
      prep_t_q    <= prep_t_d;
      prep_s_q    <= prep_s_d;
      prep_rows_q <= prep_rows_d;
      prep_last_q <= prep_last_d;
      prep_bank_q <= prep_bank_d;
      pre_cnt_q   <= pre_cnt_d;
      sc_cnt_q    <= sc_cnt_d;
      start_q     <= start_d;
      gap_q       <= gap_d;
      slot_q      <= slot_d;
      bank_q      <= bank_d;
      wcnt_q      <= wcnt_d;
      dr_active_q <= dr_active_d;
      dr_cnt_q    <= dr_cnt_d;
      dr_slot_q   <= dr_slot_d;
      v2_q        <= v1 && pass1;
      first2_q    <= first1;
      flast2_q    <= flast1;
      olast2_q    <= olast1;
      slot2_q     <= slot1;
      word2_q     <= word1;
      v3_q        <= v2_q;
      pass3_q     <= ctx_oe_q[slot2_q];
      use_bias3_q <= ctx_fit_q[slot2_q];
      olast3_q    <= olast2_q;
      word3_q     <= word2_q;
      mask2_q     <= mask1;
      mask3_q     <= mask2_q;
      mask4_q     <= mask3_q;
      v4_q        <= v3_q;
      pass4_q     <= pass3_q;
      olast4_q    <= olast3_q;
    end
  end

  // Fold contexts: written when a descriptor is taken (no reset: read only after written).
  always_ff @(posedge gclk_i) begin
    if (desc_need) begin
      ctx_fir_q[slot_q]  <= desc_i.first_in_run;
      ctx_ge_q[slot_q]   <= desc_i.group_end;
      ctx_fit_q[slot_q]  <= desc_i.first_in_tile;
      ctx_oe_q[slot_q]   <= desc_i.output_end;
      ctx_last_q[slot_q] <= desc_i.last;
      ctx_rows_q[slot_q] <= desc_i.rows_used;
      ctx_cols_q[slot_q] <= desc_i.cols_used;
      ctx_bank_q[slot_q] <= new_bank;
      ctx_sel_q[slot_q]  <= desc_sel_i;
    end
  end

`ifndef SYNTHESIS
  // ---- Descriptor sanity, checked on the beat the controller takes.
  logic desc_take;
  assign desc_take = desc_valid_i && desc_ready_o;
  always_ff @(posedge clk_i) begin
    if (desc_take) begin
      assert (desc_i.rows_used >= 1 && 32'(desc_i.rows_used) <= Rows)
      else $error("ts_ctrl: descriptor rows_used %0d outside 1..%0d", desc_i.rows_used, Rows);
      assert (desc_i.cols_used >= 1 && 32'(desc_i.cols_used) <= Cols)
      else $error("ts_ctrl: descriptor cols_used %0d outside 1..%0d", desc_i.cols_used, Cols);
      assert (desc_i.stream >= 1 && (Os || 32'(desc_i.stream) <= AccWords))
      else $error("ts_ctrl: descriptor stream %0d outside 1..%0d", desc_i.stream, AccWords);
      assert (32'(desc_i.scale_loads) <= Regs)
      else $error("ts_ctrl: descriptor scale_loads %0d above %0d registers", desc_i.scale_loads,
                  Regs);
      assert ((!desc_i.output_end || desc_i.group_end) && (!desc_i.first_in_tile ||
              desc_i.group_end)) else $error("ts_ctrl: output_end/first_in_tile need group_end");
      assert (!Os || (desc_i.first_in_run && desc_i.group_end))
      else $error("ts_ctrl: an os fold is one whole reduction group");
      for (int unsigned c = 0; c < Cols; c++) begin
        assert (32'(c) >= 32'(desc_i.cols_used) || 32'(desc_sel_i[c*SelBits+:SelBits]) < Regs)
        else $error("ts_ctrl: column %0d selects register %0d of %0d", c,
                    desc_sel_i[c*SelBits+:SelBits], Regs);
      end
      if (idle) begin
        assert (desc_i.scale_loads != '0 && desc_i.first_in_run)
        else $error("ts_ctrl: a layer's first fold must load its scales and start a group run");
      end else begin
        assert (desc_layer_i == layer_q)
        else $error("ts_ctrl: layer constants changed within a layer");
      end
    end
  end

  // ---- A fold context or scale bank is never rewritten while a fold in flight still reads it.
  // A fold is done with them after its last vector (os: row 0) left stage 2 (stage 1 when its
  // group sums do not go on to the scale unit).
  logic [Banks-1:0] slot_busy_q;
  logic [7:0] bank_refs_q[Banks];
  logic done1, done2;
  assign done1 = flast1 && !pass1;
  assign done2 = v2_q && flast2_q;
  always_ff @(posedge gclk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      slot_busy_q <= '0;
      for (int unsigned b = 0; b < Banks; b++) begin
        bank_refs_q[b] <= '0;
      end
    end else begin
      if (done1) begin
        slot_busy_q[slot1] <= 1'b0;
        bank_refs_q[ctx_bank_q[slot1]] <= bank_refs_q[ctx_bank_q[slot1]] - 8'd1;
      end
      if (done2) begin
        slot_busy_q[slot2_q] <= 1'b0;
        bank_refs_q[ctx_bank_q[slot2_q]] <= bank_refs_q[ctx_bank_q[slot2_q]] - 8'd1 -
            8'(done1 && ctx_bank_q[slot1] == ctx_bank_q[slot2_q]);
      end
      if (desc_need) begin
        // A context or bank its last reader leaves in this very cycle may be rewritten now: the
        // write lands at the end of the cycle.
        assert (!slot_busy_q[slot_q] || (done1 && slot1 == slot_q) || (done2 && slot2_q == slot_q))
        else $error("ts_ctrl: fold context %0d reused while in flight (Banks too small)", slot_q);
        assert (desc_i.scale_loads == '0 || bank_refs_q[new_bank] ==
                8'(done1 && ctx_bank_q[slot1] == new_bank) +
                8'(done2 && ctx_bank_q[slot2_q] == new_bank))
        else $error("ts_ctrl: scale bank %0d reloaded while in use (Banks too small)", new_bank);
        slot_busy_q[slot_q] <= 1'b1;
        bank_refs_q[new_bank] <= bank_refs_q[new_bank] + 8'd1 -
            8'(done1 && ctx_bank_q[slot1] == new_bank) -
            8'(done2 && ctx_bank_q[slot2_q] == new_bank);
      end
    end
  end

  // ---- The output register takes a result only when its previous one has left (the ow mirror
  // guarantees it, in stall-free and stalled schedules alike).
  always_ff @(posedge clk_i) begin
    if (out_load) begin
      assert (!out_valid_q || (out_fire && out_lastbeat))
      else $error("ts_ctrl: a result reached the output register before its last beat left");
    end
  end

  // ---- The os drains of two folds never overlap at the edge.
  always_ff @(posedge gclk_i) begin
    if (Os && m_valid && m_last) begin
      assert (!dr_active_q) else $error("ts_ctrl: os drains overlap");
    end
  end

  initial begin : p_params
    assert (Rows >= 2) else $error("ts_ctrl: Rows must be >= 2");
    assert (!Os || AccWords >= Rows) else $error("ts_ctrl: os needs AccWords >= Rows");
    assert (Regs < (1 << CountBits)) else $error("ts_ctrl: Regs too large for scale_loads");
    assert (ActLanes >= 1 && OutLanes >= 1 && ActLanes <= Rows && OutLanes <= Cols)
    else $error("ts_ctrl: lanes per beat must be 1..Rows (act) and 1..Cols (out)");
    assert (!Os || (!NarrowAct && !NarrowOut)) else $error("ts_ctrl: narrowed ports are ws only");
  end
`endif
endmodule
