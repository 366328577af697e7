// Delay line of Depth registers (Depth = 0: a wire); Reset clears it asynchronously (control bits).
module ts_delay #(
  parameter int unsigned Width = 1,    // bits per stage
  parameter int unsigned Depth = 1,    // registers (cycles of delay)
  parameter bit          Reset = 1'b0  // 1: async reset to zero (valid bits), 0: plain pipeline
) (
  input  logic             clk_i,   // clock
  input  logic             rst_ni,  // async reset, active low (used when Reset)
  input  logic [Width-1:0] d_i,     // input
  output logic [Width-1:0] q_o      // d_i delayed Depth cycles
);
  if (Depth == 0) begin : gen_wire
    logic unused_clk;
    assign unused_clk = clk_i ^ rst_ni;
    assign q_o = d_i;
  end else begin : gen_regs
    logic [Width-1:0] stage_d[Depth];
    logic [Width-1:0] stage_q[Depth];
    assign stage_d[0] = d_i;
    for (genvar i = 1; i < Depth; i++) begin : gen_chain
      assign stage_d[i] = stage_q[i-1];
    end

    for (genvar i = 0; i < Depth; i++) begin : gen_stage
      if (Reset) begin : gen_reset
        always_ff @(posedge clk_i or negedge rst_ni) begin
          if (!rst_ni) begin
            stage_q[i] <= '0;
          end else begin
            stage_q[i] <= stage_d[i];
          end
        end
      end else begin : gen_plain
        always_ff @(posedge clk_i) begin
          stage_q[i] <= stage_d[i];
        end
      end
    end
    if (!Reset) begin : gen_unused_rst
      logic unused_rst;
      assign unused_rst = rst_ni;
    end

    assign q_o = stage_q[Depth-1];
  end
endmodule
