// Accumulator storage of one edge column: Words x Bits, one asynchronous read and one write port.
// A register file here; an SRAM macro with the read address issued one cycle earlier replaces it
// (the edge knows every word index a cycle ahead). Contents are written before they are read.
module ts_acc_mem #(
  parameter  int unsigned Words    = 64,  // words (one per output pixel of a fold)
  parameter  int unsigned Bits     = 32,  // bits per word
  localparam int unsigned AddrBits = Words > 1 ? $clog2(Words) : 1
) (
  input  logic                clk_i,    // clock (gated: writes land only in advancing cycles)
  input  logic                we_i,     // write wdata_i to waddr_i at the clock edge
  input  logic [AddrBits-1:0] waddr_i,  // write word
  input  logic [    Bits-1:0] wdata_i,  // write data
  input  logic [AddrBits-1:0] raddr_i,  // read word
  output logic [    Bits-1:0] rdata_o   // word raddr_i (before this cycle's write)
);
  logic [Bits-1:0] mem_q[Words];

  always_ff @(posedge clk_i) begin
    if (we_i) begin
      mem_q[waddr_i] <= wdata_i;
    end
  end

  assign rdata_o = mem_q[raddr_i];
endmodule
