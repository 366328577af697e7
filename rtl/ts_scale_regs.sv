// Block-scale register file: Banks x Regs ts_scale_reg (the banks map::scale_register_banks
// counts, used round robin by successive scale loads), one write port, and one read per column:
// every column reads register rsel_i[c] of bank rbank_i, so any column-to-block map is possible.
`include "ts_pkg.sv"
module ts_scale_regs #(
  parameter  int unsigned Banks     = 6,   // banks; a fold's scale set lives in one bank
  parameter  int unsigned Regs      = 8,   // registers per bank (scale_regs_per_tile)
  parameter  int unsigned Cols      = 8,   // read ports, one per array column
  parameter  int unsigned MantBits  = 16,  // mantissa bits; 1 = shift-only unit (m = 1)
  localparam int unsigned ShiftBits = ts_pkg::ShiftBits,
  localparam int unsigned BankBits  = Banks > 1 ? $clog2(Banks) : 1,
  localparam int unsigned SelBits   = Regs > 1 ? $clog2(Regs) : 1
) (
  input  logic                      clk_i,     // clock (gated)
  input  logic                      rst_ni,    // async reset, active low: every register := 0
  input  logic                      we_i,      // write one register
  input  logic [      BankBits-1:0] wbank_i,   // bank written
  input  logic [       SelBits-1:0] wreg_i,    // register written
  input  logic [      MantBits-1:0] wmant_i,   // mantissa m
  input  logic [     ShiftBits-1:0] wshift_i,  // left shift F - r
  input  logic [      BankBits-1:0] rbank_i,   // bank read by all columns this cycle
  input  logic [  Cols*SelBits-1:0] rsel_i,    // register read by column c at [c*SelBits +: SelBits]
  output logic [ Cols*MantBits-1:0] mant_o,    // column c's mantissa at [c*MantBits +: MantBits]
  output logic [Cols*ShiftBits-1:0] shift_o    // column c's shift at [c*ShiftBits +: ShiftBits]
);
  logic [ MantBits-1:0] mant [Banks*Regs];
  logic [ShiftBits-1:0] shift[Banks*Regs];

  for (genvar b = 0; b < Banks; b++) begin : gen_bank
    for (genvar r = 0; r < Regs; r++) begin : gen_reg
      logic we;
      assign we = we_i && (wbank_i == BankBits'(b)) && (wreg_i == SelBits'(r));
      ts_scale_reg #(
        .MantBits (MantBits),
        .ShiftBits(ShiftBits)
      ) u_reg (
        .clk_i,
        .rst_ni,
        .we_i   (we),
        .mant_i (wmant_i),
        .shift_i(wshift_i),
        .mant_o (mant[b*Regs+r]),
        .shift_o(shift[b*Regs+r])
      );
    end
  end

  // Bank first, then each column's register: Regs-to-1 multiplexers per column.
  logic [ MantBits-1:0] bank_mant [Regs];
  logic [ShiftBits-1:0] bank_shift[Regs];
  always_comb begin
    for (int unsigned r = 0; r < Regs; r++) begin
      bank_mant[r]  = mant[32'(rbank_i) * Regs + r];
      bank_shift[r] = shift[32'(rbank_i) * Regs + r];
    end
    for (int unsigned c = 0; c < Cols; c++) begin
      mant_o[c*MantBits+:MantBits]    = bank_mant[rsel_i[c*SelBits+:SelBits]];
      shift_o[c*ShiftBits+:ShiftBits] = bank_shift[rsel_i[c*SelBits+:SelBits]];
    end
  end
endmodule
