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
    logic [Width-1:0] stage_q[Depth];

    if (Reset) begin : gen_reset
      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          for (int unsigned i = 0; i < Depth; i++) begin
            stage_q[i] <= '0;
          end
        end else begin
          stage_q[0] <= d_i;
          for (int unsigned i = 1; i < Depth; i++) begin
            stage_q[i] <= stage_q[i-1];
          end
        end
      end
    end else begin : gen_plain
      logic unused_rst;
      assign unused_rst = rst_ni;
      always_ff @(posedge clk_i) begin
        stage_q[0] <= d_i;
        for (int unsigned i = 1; i < Depth; i++) begin
          stage_q[i] <= stage_q[i-1];
        end
      end
    end

    assign q_o = stage_q[Depth-1];
  end
endmodule
