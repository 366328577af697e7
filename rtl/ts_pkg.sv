// Shared constants and the fixed-width descriptor layouts of the ts_top accelerator (rtl/README.md).
// Files that use it include it (include guard), so every file order lints and synthesizes alike.
`ifndef TS_PKG_SV
`define TS_PKG_SV
/* verilator lint_off UNUSEDPARAM */  // a package of constants: each user needs only some
package ts_pkg;
  // Dataflow parameter values (ts_top Dataflow).
  localparam int unsigned DataflowWs = 0;  // weight-stationary
  localparam int unsigned DataflowOs = 1;  // output-stationary
  // Scale unit kinds (ts_scale_unit Kind, ts_top ScaleKind).
  localparam int unsigned ScaleFixed = 0;  // fixed-point multiplier m and a left shift
  localparam int unsigned ScaleShift = 1;  // left shift only (m = 1, no multiplier)

  localparam int unsigned ShiftBits  = 6;   // F and every scale-unit left shift F - r (0..63)
  localparam int unsigned StreamBits = 16;  // vectors one fold streams (T <= 65535)
  localparam int unsigned CountBits  = 12;  // rows / columns used and scale loads of one fold
  localparam int unsigned ClampBits  = 17;  // signed output clamp bounds (ActBits <= 16)

  // One fold, as the host's fold list describes it (the first field is the most significant).
  typedef struct packed {
    logic                  last;           // last fold of the layer
    logic                  first_in_run;   // first fold of a run of one reduction group: the int32
                                           // group sums restart from this fold's partial sums
    logic                  group_end;      // last fold of that run: group sums go to the scale unit
    logic                  first_in_tile;  // first group-end fold of its outputs: the wide
                                           // accumulator starts from the bias (one bias beat)
    logic                  output_end;     // last fold of its outputs: requantize and emit them
    logic [StreamBits-1:0] stream;         // T: vectors streamed (ws: output pixels, os: steps)
    logic [ CountBits-1:0] rows_used;      // array rows holding data, 1..Rows
    logic [ CountBits-1:0] cols_used;      // array columns holding data, 1..Cols
    logic [ CountBits-1:0] scale_loads;    // S: scale-register beats before the fold may start
  } desc_t;                                // 57 bits

  // Layer-wide constants; they ride on every descriptor and must not change within a layer.
  typedef struct packed {
    logic                 act_signed;  // input activation codes are signed
    logic                 out_signed;  // output grid is signed (else unsigned)
    logic                 keep_acc;    // emit the wide accumulator itself (logits), no requant
    logic [ShiftBits-1:0] frac_bits;   // F: fractional bits of the wide accumulator
    logic [ClampBits-1:0] clamp_lo;    // smallest output code (two's complement)
    logic [ClampBits-1:0] clamp_hi;    // largest output code (two's complement)
  } layer_t;                           // 43 bits
endpackage
/* verilator lint_on UNUSEDPARAM */
`endif  // TS_PKG_SV
