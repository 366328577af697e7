// One block-scale register {m, shift} with write enable; MantBits = 1 stores only the shift (m = 1).
/* verilator lint_off MULTITOP */  // a library of blocks, each a top of its own (tests/rtl)
module ts_scale_reg #(
  parameter int unsigned MantBits  = 16,  // mantissa width; 1 = shift-only scale unit
  parameter int unsigned ShiftBits = 6    // shift width
) (
  input  logic                 clk_i,    // clock
  input  logic                 rst_ni,   // async reset, active low: m := 0 (shift := 0)
  input  logic                 we_i,     // write mant_i/shift_i
  input  logic [ MantBits-1:0] mant_i,   // mantissa to write (ignored when MantBits = 1)
  input  logic [ShiftBits-1:0] shift_i,  // shift to write
  output logic [ MantBits-1:0] mant_o,   // stored mantissa (constant 1 when MantBits = 1)
  output logic [ShiftBits-1:0] shift_o   // stored shift
);
  logic [ShiftBits-1:0] shift_d, shift_q;

  always_comb begin
    shift_d = we_i ? shift_i : shift_q;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      shift_q <= '0;
    end else begin
      shift_q <= shift_d;
    end
  end

  if (MantBits > 1) begin : gen_mant
    logic [MantBits-1:0] mant_d, mant_q;
    always_comb begin
      mant_d = we_i ? mant_i : mant_q;
    end
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        mant_q <= '0;
      end else begin
        mant_q <= mant_d;
      end
    end
    assign mant_o = mant_q;
  end else begin : gen_shift_only
    logic unused_mant;
    assign unused_mant = ^mant_i;
    assign mant_o = MantBits'(1);
  end

  assign shift_o = shift_q;
endmodule
