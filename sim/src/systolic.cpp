// The systolic array in SystemC (ws; os further down, array_os). Three clocked processes (frontend,
// array, edge), each one SC_METHOD on the rising edge that updates all of its registers per cycle;
// they talk only through sc_signal streams, so each is one registered stage boundary.
//
// The frontend's SRAM ports are streams of word lanes (sram_port.h): weights leave the weight
// SRAM in beats of at most `weight_bw` words, activation rows in beats of at most `ifmap_bw`
// lanes. ws output rows leave the edge through the ofmap write port in beats of at most
// `ofmap_bw` words (one row per output vector, its `cols_used` words); the frontend keeps a
// mirror of that port (`ofm_port`: the row of each issued output vector occupies it from the
// next cycle on) and issues the next vector only once the mirror has moved the previous row, so
// the edge's port is always free when the next row reaches it (as ts_ctrl.sv's ow count does).
// The mirror may refuse a beat (SimOptions::ofmap_ready_percent, test only). Nothing in this file
// computes how long a preload, a vector or a fold takes: the controller starts a fold and issues
// a vector when the handshakes it waits for have happened.
//
// Timing, in cycles from the layer start (cycle 0 = first rising edge); e_j = cycle the frontend
// issues vector j of a fold onto the ActBeat stream, which is the cycle the last beat of its
// activation row (and, ws, of its output row's write slot; os, of its weight row) fires:
//   e_j + 1                array input register: PE(0,0) multiplies vector j
//   e_j + 1 + r + c        PE(r,c) (row r delayed r cycles by the input skew, one more per column)
//   e_j + R + c            PE(R-1,c) writes column c's partial sum onto the PsumBeat stream
//   e_j + R + c + 1 .. +4  edge: int32 group accumulator, scale unit, wide accumulator,
//                          requantization into the output buffer (map::kPostArrayLatency = 4)
// so with full-width ports (one beat per row) the last output lands in cycle
// start_F + T_F - 1 + R + (C - 1) + 4, which is what map::native_systolic_cycles() predicts; the
// tests compare the two. Fold starts: the controller starts fold f + 1 in the first cycle in which
// fold f has issued its last vector, fold f + 1's preload is complete (every weight word has
// arrived and the column chains, R registers deep, have shifted R times; the preload starts with
// fold f) and its scale registers are written (one per cycle, also from the start of fold f).
//
// Why the registers are banked the way they are:
//  - Weights: two banks per PE. Every activation carries its fold's bank bit, so the bank switch
//    moves through the array with the wavefront. A preload's latch wave writes column c in cycle
//    P + L + c (P = preload start >= start of the previous fold, L >= R its length); the last use
//    of that bank by the fold two back is at most start_{f-1} + T + R - 1 + c < P + L + c.
//  - Scale registers: a fold's scale set must stay readable until its last partial sum passes the
//    scale unit, T + R + C + 2 cycles after its start, while folds may start every R cycles (a
//    Gemm layer has T = 1). A plain shadow + active pair would be overwritten early, so the
//    register file holds D = 5 + ceil(C / R) banks used round robin (D - 1 live, one loading;
//    kScaleBanks below, the model's own size); the edge checks on every use that the bank still
//    holds the fold's load, so an undersized D shows up as an internal error rather than a silent
//    wrong answer. LayerRun::scale_banks reports D. (os folds live R cycles longer, hence 5.)
//
// os timing: vector i of a fold (reduction step i) reaches PE(r, c) at e_i + 1 + r + c; the last
// step copies every sum into its PE's shadow register; column c loads its drain chain when its
// bottom PE has finished (e_last + R + c) and shifts one row per cycle (R cycles) onto PsumBeat,
// so the layer ends R cycles later than ws, and two folds' last steps must be >= R cycles apart
// (the drain chains hold one fold). The controller starts an os fold only when its last step
// cannot come sooner: T steps take at least T cycles whatever the ports do, so it needs only the
// descriptor's T and the chain depth R (see `drained` in frontend(); ts_ctrl.sv decides the same
// way), no prediction of how long the ports take.
#include "tilescale/sim/systolic.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <systemc>

#include "sram_port.h"
#include "tilescale/core/error.h"
#include "tilescale/map/tiling.h"

namespace tilescale::sim {
namespace {

using sc_core::sc_signal;

// ---- Stream payloads (one registered valid/ready stream each) ----

// Frontend -> array: one activation vector (rows of the fold's reduction slice).
struct ActBeat {
  int64_t run = -1;        // layer run this beat belongs to
  bool valid = false;      // a vector is on the bus
  int32_t fold = 0;        // fold index
  int32_t j = 0;           // vector index within the fold (output pixel m0 + j)
  uint8_t bank = 0;        // ws: weight bank of the fold (fold parity)
  bool first = false;      // os: first reduction step of the fold (accumulators restart)
  bool last = false;       // os: last reduction step (results move to the drain chain)
  std::vector<int32_t> a;  // [R] activation codes, zero on unused rows
  std::vector<int32_t> w;  // [C] os: weight codes entering the columns, zero on unused ones
  bool operator==(const ActBeat& o) const {
    return run == o.run && valid == o.valid && fold == o.fold && j == o.j && bank == o.bank &&
           first == o.first && last == o.last && a == o.a && w == o.w;
  }
};
// Frontend -> array: preload words into the column chains of one weight bank.
struct WeightBeat {
  int64_t run = -1;             // layer run
  bool valid = false;           // a beat is on the bus (possibly with no words: chain shift only)
  int32_t fold = 0;             // fold whose weights these are
  bool first = false;           // first beat of the fold's preload: the staging is cleared
  bool last = false;            // last beat: the latch wave starts
  std::vector<int32_t> index;   // [words] PE index r * C + c
  std::vector<int32_t> weight;  // [words] weight codes
  bool operator==(const WeightBeat& o) const {
    return run == o.run && valid == o.valid && fold == o.fold && first == o.first &&
           last == o.last && index == o.index && weight == o.weight;
  }
};
// Frontend -> edge: one scale register write.
struct ScaleWrite {
  int64_t run = -1;    // layer run
  bool valid = false;  // a write is on the bus
  int32_t bank = 0;    // register bank
  int32_t reg = 0;     // register within the bank
  int64_t m = 0;       // multiplier mantissa
  int32_t r = 0;       // right shift
  int64_t event = 0;   // load event (the bank's owner once all its registers are written)
  bool done = false;   // last register of this load
  bool operator==(const ScaleWrite& o) const {
    return run == o.run && valid == o.valid && bank == o.bank && reg == o.reg && m == o.m &&
           r == o.r && event == o.event && done == o.done;
  }
};
// Array -> edge: the bottom row's partial sums; column c belongs to the vector that entered the
// array c cycles before column 0's.
struct PsumBeat {
  int64_t run = -1;            // layer run
  std::vector<uint8_t> valid;  // [C] column carries a vector
  std::vector<int32_t> fold;   // [C] fold index
  std::vector<int32_t> j;      // [C] vector index
  std::vector<int32_t> psum;   // [C] int32 column sums
  bool operator==(const PsumBeat& o) const {
    return run == o.run && valid == o.valid && fold == o.fold && j == o.j && psum == o.psum;
  }
};

std::ostream& operator<<(std::ostream& os, const ActBeat& b) {
  return os << "act{" << b.valid << "," << b.fold << "," << b.j << "}";
}
std::ostream& operator<<(std::ostream& os, const WeightBeat& b) {
  return os << "w{" << b.valid << "," << b.fold << "," << b.index.size() << "}";
}
std::ostream& operator<<(std::ostream& os, const ScaleWrite& b) {
  return os << "s{" << b.valid << "," << b.bank << "," << b.reg << "}";
}
std::ostream& operator<<(std::ostream& os, const PsumBeat& b) {
  return os << "p{" << b.valid.size() << "}";
}
// sc_signal<T> instantiates sc_trace for its payload; the wide streams are traced through scalar
// signals instead (trace_* below).
template <typename T>
void sc_trace(sc_core::sc_trace_file*, const T&, const std::string&) {}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A partial sum as an acc_bits register holds it: the PEs and group accumulators compute modulo
// 2^32 (exact for any valid bundle, int_arith.h: |P| < 2^31), and every value that leaves them is
// cut to acc_bits two's complement, which is the same as computing in acc_bits throughout. Only a
// too-narrow acc_bits (SimOptions::allow_narrow_acc, test only) makes a difference: it wraps.
int32_t wrap_acc(uint32_t v, int bits) {
  if (bits >= 32) return static_cast<int32_t>(v);
  const uint32_t sign = 1u << (bits - 1);
  return static_cast<int32_t>(((v & ((sign << 1) - 1u)) ^ sign) - sign);
}

// One output-stationary PE row in one cycle: acc = (restart ? 0 : acc) + a * w; on the fold's
// last step the sum also goes to the shadow register.
void mac_row_os(uint32_t* __restrict acc, uint32_t* __restrict shadow, const uint32_t* __restrict a,
                const uint32_t* __restrict w, const uint32_t* __restrict restart,
                const uint32_t* __restrict last, int C) {
  for (int c = 0; c < C; ++c) {
    const uint32_t v = (acc[c] & ~restart[c]) + a[c] * w[c];
    acc[c] = v;
    shadow[c] = (shadow[c] & ~last[c]) | (v & last[c]);
  }
}

// One PE row in one cycle: p = up + a * (bank 1 ? w1 : w0), two's complement (acc_bits = 32).
// Branch-free and unaliased so the compiler vectorizes it across columns.
void mac_row(uint32_t* __restrict p, const uint32_t* __restrict up, const int32_t* __restrict a,
             const uint32_t* __restrict bank1, const int32_t* __restrict w0,
             const int32_t* __restrict w1, int C) {
  for (int c = 0; c < C; ++c) {
    const uint32_t w =
        (static_cast<uint32_t>(w0[c]) & ~bank1[c]) | (static_cast<uint32_t>(w1[c]) & bank1[c]);
    p[c] = up[c] + static_cast<uint32_t>(a[c]) * w;
  }
}
// The scale register file's banks (see the header): the model's own size, D = 5 + ceil(C / R).
int scale_bank_count(int rows, int cols) { return 5 + (cols + rows - 1) / rows; }

// Control word of one fold, as the controller's microcode holds it and the stages receive it with
// the fold index on their streams.
struct FoldCtl {
  map::SystolicFold f;
  bool first_in_run = true;   // first fold of a run of one reduction group: group acc overwritten
  bool first_in_tile = true;  // first group-end fold of its outputs: wide acc starts at the bias
  int scale_bank = 0;         // scale-register bank it reads
  int64_t scale_event = 0;    // load event that filled that bank
  std::vector<int32_t> col_reg;    // [cols_used] scale register of each column
  std::vector<int64_t> reg_block;  // [blocks] block each register holds
};

}  // namespace

struct SystolicSim::Impl : sc_core::sc_module {
  SC_HAS_PROCESS(Impl);

  sc_core::sc_clock clk{"clk", 1, sc_core::SC_NS};
  // Streams. Consumers never back-pressure (the array and edge take one beat per cycle), so the
  // ready halves are tied high; the producers check them.
  sc_signal<ActBeat> act{"act"};
  sc_signal<bool> act_ready{"act_ready"};
  sc_signal<WeightBeat> wbeat{"wbeat"};
  sc_signal<ScaleWrite> swrite{"swrite"};
  sc_signal<PsumBeat> psum_out{"psum_out"};
  sc_signal<bool> psum_ready{"psum_ready"};
  // Traced scalars.
  sc_signal<int> trace_fold{"fold"};
  sc_signal<bool> trace_stall{"stall"};
  sc_signal<bool> trace_act_valid{"act_valid"};
  sc_signal<bool> trace_out_valid{"out_valid"};
  sc_core::sc_trace_file* tf = nullptr;

  // ---- Run configuration (loaded before each layer) ----
  const GemmJob* job = nullptr;
  map::ArchConfig arch;
  int R = 0, C = 0;
  bool os = false;  // output-stationary dataflow
  int64_t run_id = 0;
  std::vector<FoldCtl> folds;
  int scale_banks = 0;
  int64_t max_cycles = 0;
  std::string error;  // internal model error, reported after the run

  // ---- Frontend state ----
  int64_t fe_t = 0;                       // cycle
  int64_t cur = -1;                       // streaming fold
  int64_t cur_start = 0;                  // its start cycle
  int64_t vec = 0;                        // next vector of the streaming fold
  int64_t prep = -1;                      // fold being prepared (preload + scales)
  int64_t pre_word = 0, pre_shifts = 0;   // preload: next word to read, column-chain shifts
  bool pre_done = true;                   // the prepared fold's weights are in the chains
  int64_t sc_left = 0, sc_next = 0;       // scale writes left, next register
  SramPort wgt_port, ifm_port, ofm_port;  // weight / ifmap read ports, ofmap port's mirror
  SramPort wrow_port;                     // os: the weight row of one reduction step
  bool ofm_slot = false;                  // ws: the streaming fold writes an output row per vector
  uint64_t ofm_rng = 0;                   // test only: state of the ofmap SRAM's ready pattern
  int ofm_ready_percent = 100;            // test only: chance the ofmap SRAM takes a beat, %
  int64_t stalls = 0, scale_loads = 0;    // counted stall cycles, scale registers written
  int64_t last_issue = 0;                 // cycle the latest fold's last vector was issued
  std::vector<std::vector<int64_t>> seg_k;  // os: reduction indices of each reduction group
  ActBeat act_next;
  WeightBeat w_next;

  // ---- Array state ----
  int64_t ar_t = 0;
  int B = 0;                       // skew buffer length per row
  int64_t off = 0;                 // buffer index of time tau is off - tau
  std::vector<int32_t> abuf;       // [R][B] activation entering PE(r, 0) at time tau
  std::vector<uint32_t> bbuf;      // [R][B] its weight bank as a mask: 0 bank 0, ~0 bank 1
  std::vector<uint32_t> zero_row;  // [C] the psum input of row 0
  // Output-stationary registers.
  std::vector<uint32_t> abuf_u;       // [R][B] os activations entering PE(r, 0) at time tau
  std::vector<uint32_t> lbuf;         // [R][B] os: ~0 where that step is the fold's last
  std::vector<uint32_t> ubuf;         // [2^k][C] os weight entering PE(0, c) at time tau
  int64_t u_mask = 0;                 // 2^k - 1, 2^k >= R + C + 1
  std::vector<uint32_t> acc, shadow;  // [R][C] os accumulators and their shadow registers
  std::vector<uint32_t> chain;        // [C][R] os drain chains
  std::vector<int32_t> chain_left;    // [C] rows still to shift out
  std::vector<int32_t> chain_fold;    // [C] fold the chain holds
  std::vector<int32_t> wbank[2];      // [R][C] weight banks
  std::vector<uint32_t> psum;         // [R][C] partial-sum registers (two's complement)
  // The column chains: column c holds a preload from its words' arrival until its latch, c cycles
  // after column 0's. Modeled as whole-array staging copies, one per preload in flight: preloads
  // start every >= R cycles and a latch wave takes C, so 3 + ceil(C / R) copies never collide.
  std::vector<std::vector<int32_t>> staging;  // [copies][R][C] keyed by fold % copies
  struct Wave {
    int64_t start;  // cycle column 0 latches
    int32_t fold;   // fold whose weights latch
  };
  std::vector<Wave> waves;
  struct Meta {
    bool valid, last;
    int32_t fold, j;
  };
  std::vector<Meta> meta;  // [2^k >= R + C + 1] input beat metadata by cycle
  int64_t meta_mask = 0;   // 2^k - 1
  PsumBeat p_next;

  // ---- Edge state ----
  int64_t ed_t = 0;
  std::vector<int64_t> scale_m;      // [D][C] multiplier mantissas
  std::vector<int32_t> scale_r;      // [D][C] shifts
  std::vector<int64_t> scale_owner;  // [D] load event a bank holds, -1 while loading
  int64_t m_cap = 0;                 // group / wide accumulator entries per column
  std::vector<int32_t> gacc;         // [C][m_cap] int32 group accumulators
  std::vector<int64_t> wacc;         // [C][m_cap] wide accumulators
  struct Stage {
    bool valid = false;
    int32_t fold = 0, j = 0;
    int64_t v = 0;
  };
  std::vector<Stage> s1, s2, s3;  // [C] registers after group acc, scale unit, wide acc
  int64_t written = 0, total = 0, done_cycle = -1;
  int64_t done_at = -1;  // cycle the last wavefront leaves the edge
  // ws: the ofmap write port. An output row is complete when its vector's wavefront has crossed
  // the last column at stage 4; it then leaves in beats of at most ofmap_bw words, the first in
  // that cycle. The layer ends with the last row's last beat.
  SramPort out_port;
  struct RowDue {
    int64_t cycle, words;
  };
  std::vector<RowDue> rows_due;  // rows completing at a later cycle, in order
  std::size_t rows_next = 0;
  LayerRun* out = nullptr;

  explicit Impl(sc_core::sc_module_name n, const std::string& trace_path) : sc_module(n) {
    SC_METHOD(frontend);
    sensitive << clk.posedge_event();
    dont_initialize();
    SC_METHOD(array);
    sensitive << clk.posedge_event();
    dont_initialize();
    SC_METHOD(edge);
    sensitive << clk.posedge_event();
    dont_initialize();
    if (!trace_path.empty()) {
      tf = sc_core::sc_create_vcd_trace_file(trace_path.c_str());
      if (tf) {
        // sc_create_vcd_trace_file appends ".vcd"; callers pass the name without it.
        sc_core::sc_trace(tf, clk, "clk");
        sc_core::sc_trace(tf, trace_fold, "fold");
        sc_core::sc_trace(tf, trace_stall, "stall");
        sc_core::sc_trace(tf, trace_act_valid, "act_valid");
        sc_core::sc_trace(tf, trace_out_valid, "out_valid");
      }
    }
  }
  ~Impl() override {
    if (tf) sc_core::sc_close_vcd_trace_file(tf);
  }

  void fail(const std::string& what) {
    if (error.empty()) error = what;
    sc_core::sc_pause();
  }

  // ---------------------------------------------------------------- frontend
  // Starts preparing fold f: its weights are requested from the weight SRAM (ws) and its scale
  // registers queued, both from this cycle on.
  void begin_prep(int64_t f) {
    prep = f;
    if (f >= static_cast<int64_t>(folds.size())) return;
    const map::SystolicFold& sf = folds[f].f;
    pre_word = 0;
    pre_shifts = 0;
    pre_done = os;
    if (!os) wgt_port.request(sf.rows_used * sf.cols_used);
    sc_left = sf.scale_loads;
    sc_next = 0;
  }

  // Requests the rows of the streaming fold's next vector from the SRAM ports.
  void request_vector() {
    const map::SystolicFold& f = folds[cur].f;
    ifm_port.request(f.rows_used);
    if (os) wrow_port.request(f.cols_used);
  }

  // The ofmap SRAM's write-ready this cycle: always, unless a test asked for back-pressure.
  bool ofmap_ready() {
    if (ofm_ready_percent >= 100) return true;
    ofm_rng = ofm_rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int>((ofm_rng >> 33) % 100) < ofm_ready_percent;
  }

  void frontend() {
    const int64_t t = fe_t++;
    if (t > max_cycles) return fail("watchdog: layer ran past " + std::to_string(max_cycles));
    if (t > 1 && (!act_ready.read() || !psum_ready.read()))
      return fail("a stream consumer dropped ready");
    const int64_t nf = static_cast<int64_t>(folds.size());
    if (t == 0) begin_prep(0);
    // Start the next fold once the current one has issued every vector and the next one's
    // weights and scales are in.
    const bool streamed = cur < 0 || vec == folds[cur].f.stream;
    // os: the drain chains hold one fold's results for R cycles, so the next fold may start only
    // if its last step comes >= R cycles after the previous fold's; its T steps take at least T
    // cycles (one per cycle at most, more when a port is narrow), so starting it when
    // t + T - 1 >= last_issue + R is enough, from the descriptor alone (as ts_ctrl.sv's gap count).
    const bool drained =
        !os || cur < 0 || prep >= nf || t + folds[prep].f.stream - 1 >= last_issue + R;
    if (streamed && drained && prep == cur + 1 && prep < nf && pre_done && sc_left == 0) {
      // Stalls: the cycles this start came later than the array's own limits allowed (one vector
      // per cycle, the R-deep weight chains, one scale register per cycle, the os drain chains),
      // from the counts of the folds' own beats: what the SRAM ports' widths cost.
      const map::SystolicFold& nx = folds[prep].f;
      int64_t limit = nx.scale_loads;
      if (cur < 0) {
        if (!os) limit = std::max<int64_t>(limit, R);
      } else {
        const int64_t T = folds[cur].f.stream;
        limit = std::max({limit, T, os ? T + R - nx.stream : int64_t{R}});
      }
      stalls += t - (cur < 0 ? 0 : cur_start) - limit;
      cur = prep;
      cur_start = t;
      vec = 0;
      ofm_slot = !os && folds[cur].f.output_end;
      request_vector();
      begin_prep(cur + 1);
    }
    // Weight preload of the prepared fold: the column chains shift once per cycle and take the
    // beat the weight SRAM delivers (at most weight_bw words); the preload is complete when every
    // word has arrived and the chains have shifted R times (a word enters at the top row).
    w_next.valid = false;
    w_next.index.clear();
    w_next.weight.clear();
    w_next.run = run_id;
    if (prep < nf && !pre_done) {
      const map::SystolicFold& f = folds[prep].f;
      const int64_t n = wgt_port.cycle(true);
      const int64_t k = job->layer.k;
      const int32_t* wg = job->weight.data() + f.group * k * job->layer.n;
      for (int64_t i = 0; i < n; ++i, ++pre_word) {
        const int64_t r = pre_word / f.cols_used, c = pre_word % f.cols_used;
        w_next.index.push_back(static_cast<int32_t>(r * C + c));
        w_next.weight.push_back(wg[(f.k.k0 + r) * job->layer.n + f.n0 + c]);
      }
      w_next.valid = true;
      w_next.fold = static_cast<int32_t>(prep);
      w_next.first = pre_shifts == 0;
      ++pre_shifts;
      pre_done = wgt_port.done() && pre_shifts >= R;
      w_next.last = pre_done;
    }
    wbeat.write(w_next);
    // Scale registers of the prepared fold, one per cycle.
    ScaleWrite sw;
    sw.run = run_id;
    if (prep < nf && sc_left > 0) {
      const FoldCtl& fc = folds[prep];
      const quant::FixedMultiplier& fm = job->multiplier[fc.reg_block[sc_next]];
      sw.valid = true;
      sw.bank = fc.scale_bank;
      sw.reg = static_cast<int32_t>(sc_next);
      sw.m = fm.m;
      sw.r = fm.r;
      sw.event = fc.scale_event;
      sw.done = sc_left == 1;
      ++sc_next;
      --sc_left;
      ++scale_loads;
    }
    swrite.write(sw);
    // The ifmap feeder: vector `vec` of the current fold goes into the array in the cycle the
    // last beat of its activation row arrives (os: and of its weight row; ws: and the ofmap
    // port's mirror has moved the previous output vector's row, in any fold).
    act_next.valid = false;
    act_next.run = run_id;
    bool waiting = false;
    if (ofm_port.valid()) ofm_port.cycle(ofmap_ready());
    if (cur >= 0 && vec < folds[cur].f.stream) {
      ifm_port.cycle(true);
      if (os) wrow_port.cycle(true);
      waiting = !(ifm_port.done() && (!os || wrow_port.done()) && ofm_port.done());
    }
    if (cur >= 0 && vec < folds[cur].f.stream && !waiting) {
      const FoldCtl& fc = folds[cur];
      const map::SystolicFold& f = fc.f;
      const int64_t k = job->layer.k;
      const int32_t* row = job->act.data() + (f.group * job->layer.m + f.m0 + vec) * k +
                           std::max<int64_t>(f.k.k0, 0);
      std::fill(act_next.a.begin(), act_next.a.end(), 0);
      if (os) {
        // Row r: output pixel m0 + r; column c: output channel n0 + c; reduction index kk.
        const int64_t kk = seg_k[static_cast<std::size_t>(f.k.red_group)][vec];
        const int32_t* ag = job->act.data() + (f.group * job->layer.m + f.m0) * k + kk;
        for (int64_t r = 0; r < f.rows_used; ++r) act_next.a[r] = ag[r * k];
        std::fill(act_next.w.begin(), act_next.w.end(), 0);
        const int32_t* wr = job->weight.data() + (f.group * k + kk) * job->layer.n + f.n0;
        std::copy_n(wr, f.cols_used, act_next.w.begin());
      } else {
        std::copy_n(row, f.rows_used, act_next.a.begin());
      }
      act_next.first = vec == 0;
      act_next.last = vec + 1 == f.stream;
      if (act_next.last) last_issue = t;
      // The last fold: the cycles its vectors took beyond one per cycle.
      if (act_next.last && cur + 1 == nf) stalls += t - cur_start + 1 - f.stream;
      act_next.valid = true;
      act_next.fold = static_cast<int32_t>(cur);
      act_next.j = static_cast<int32_t>(vec);
      act_next.bank = static_cast<uint8_t>(cur & 1);
      if (ofm_slot) ofm_port.request(f.cols_used);  // this vector's output row, from next cycle
      if (++vec < f.stream) request_vector();
    }
    act.write(act_next);
    if (tf) {
      trace_fold.write(static_cast<int>(cur));
      trace_stall.write(waiting);
      trace_act_valid.write(act_next.valid);
    }
  }

  // ---------------------------------------------------------------- array
  void array() {
    const int64_t t = ar_t++;
    const ActBeat& in = act.read();
    const bool in_valid = in.valid && in.run == run_id;
    act_ready.write(true);
    if (os) return array_os(t, in, in_valid);
    // Keep room for the skewed writes up to t + R - 1 and the reads back to t - (C - 1).
    if (off - t - (R - 1) < 0) {
      const int64_t lo = off - t - (R - 1);  // < 0 region start is never below -1 here
      const int64_t shift = (B - C) - (off - t);
      for (int r = 0; r < R; ++r) {
        int32_t* a = abuf.data() + static_cast<int64_t>(r) * B;
        uint32_t* b = bbuf.data() + static_cast<int64_t>(r) * B;
        const int64_t from = std::max<int64_t>(lo + 1, 0);
        const int64_t len = (off - t + C) - from;
        std::memmove(a + from + shift, a + from, static_cast<std::size_t>(len) * sizeof(int32_t));
        std::memmove(b + from + shift, b + from, static_cast<std::size_t>(len) * sizeof(uint32_t));
      }
      off += shift;
    }
    // Input skew: row r of the vector arriving now enters PE(r, 0) in r cycles.
    for (int r = 0; r < R; ++r) {
      const int64_t i = off - (t + r);
      abuf[static_cast<std::size_t>(r) * B + i] = in_valid ? in.a[r] : 0;
      bbuf[static_cast<std::size_t>(r) * B + i] = in_valid && in.bank ? ~0u : 0u;
    }
    meta[static_cast<std::size_t>(t & meta_mask)] = {in_valid, in_valid && in.last,
                                                     in_valid ? in.fold : 0, in_valid ? in.j : 0};
    // All PEs: psum(r, c) <- psum(r - 1, c) + a(r, c) * w[bank](r, c); a(r, c) at time t is what
    // entered row r at t - c. Rows bottom-up so each reads its upper neighbour's old register.
    const int64_t base = off - t;
    for (int r = R - 1; r >= 0; --r) {
      const int32_t* a = abuf.data() + static_cast<int64_t>(r) * B + base;
      const uint32_t* b = bbuf.data() + static_cast<int64_t>(r) * B + base;
      const int32_t* w0 = wbank[0].data() + static_cast<int64_t>(r) * C;
      const int32_t* w1 = wbank[1].data() + static_cast<int64_t>(r) * C;
      uint32_t* p = psum.data() + static_cast<int64_t>(r) * C;
      mac_row(p, r > 0 ? p - C : zero_row.data(), a, b, w0, w1, C);
    }
    // Bottom row onto the PsumBeat stream: column c carries the vector that entered at t-(R-1)-c.
    p_next.run = run_id;
    const uint32_t* bottom = psum.data() + static_cast<int64_t>(R - 1) * C;
    for (int c = 0; c < C; ++c) {
      const int64_t tin = t - (R - 1) - c;
      const Meta& mt =
          tin >= 0 ? meta[static_cast<std::size_t>(tin & meta_mask)] : Meta{false, false, 0, 0};
      p_next.valid[c] = mt.valid;
      p_next.fold[c] = mt.fold;
      p_next.j[c] = mt.j;
      p_next.psum[c] = wrap_acc(bottom[c], arch.acc_bits);
    }
    psum_out.write(p_next);
    // Weight preload: words into the column chains; the last beat starts the latch wave.
    const WeightBeat& wb = wbeat.read();
    if (wb.valid && wb.run == run_id) {
      auto& st = staging[wb.fold % staging.size()];
      if (wb.first) std::fill(st.begin(), st.end(), 0);
      for (std::size_t i = 0; i < wb.index.size(); ++i) st[wb.index[i]] = wb.weight[i];
      if (wb.last) waves.push_back({t, wb.fold});
    }
    for (std::size_t i = 0; i < waves.size();) {
      const int64_t c = t - waves[i].start;
      const auto& st = staging[waves[i].fold % staging.size()];
      auto& bank = wbank[waves[i].fold & 1];
      for (int r = 0; r < R; ++r) bank[r * C + c] = st[r * C + c];
      if (c == C - 1) {
        waves.erase(waves.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }

  // Keeps the row buffers' window [t - (C - 1), t + R - 1] inside [0, B).
  void slide_row_buffers(int64_t t, std::initializer_list<std::vector<uint32_t>*> bufs) {
    if (off - t - (R - 1) >= 0) return;
    const int64_t from = off - t - (R - 1) + 1;  // >= 0: it was in range last cycle
    const int64_t shift = (B - C) - (off - t);
    const int64_t len = (off - t + C) - from;
    for (std::vector<uint32_t>* v : bufs)
      for (int r = 0; r < R; ++r) {
        uint32_t* b = v->data() + static_cast<int64_t>(r) * B;
        std::memmove(b + from + shift, b + from, static_cast<std::size_t>(len) * sizeof(uint32_t));
      }
    off += shift;
  }

  // Output-stationary array: activations enter the rows (skewed by row) and move right, weights
  // enter the columns (skewed by column) and move down, PE(r, c) accumulates output (m0 + r, n0 +
  // c) over the fold's reduction steps. The step flagged `last` copies each PE's sum into its
  // shadow register; when column c's bottom PE has done so, the column loads the shadows into its
  // drain chain, which shifts one row per cycle onto the PsumBeat stream, bottom row first.
  void array_os(int64_t t, const ActBeat& in, bool in_valid) {
    slide_row_buffers(t, {&abuf_u, &bbuf, &lbuf});
    for (int r = 0; r < R; ++r) {
      const int64_t i = static_cast<int64_t>(r) * B + off - (t + r);
      abuf_u[static_cast<std::size_t>(i)] = in_valid ? static_cast<uint32_t>(in.a[r]) : 0u;
      bbuf[static_cast<std::size_t>(i)] = in_valid && in.first ? ~0u : 0u;  // restart mask
      lbuf[static_cast<std::size_t>(i)] = in_valid && in.last ? ~0u : 0u;
    }
    for (int c = 0; c < C; ++c)
      ubuf[static_cast<std::size_t>(((t + c) & u_mask) * C + c)] =
          in_valid ? static_cast<uint32_t>(in.w[c]) : 0u;
    meta[static_cast<std::size_t>(t & meta_mask)] = {in_valid, in_valid && in.last,
                                                     in_valid ? in.fold : 0, in_valid ? in.j : 0};
    const int64_t base = off - t;
    for (int r = 0; r < R; ++r) {
      const int64_t row = static_cast<int64_t>(r) * B + base;
      mac_row_os(acc.data() + static_cast<int64_t>(r) * C,
                 shadow.data() + static_cast<int64_t>(r) * C, abuf_u.data() + row,
                 ubuf.data() + ((t - r) & u_mask) * C, bbuf.data() + row, lbuf.data() + row, C);
    }
    // Drain chains: emit (bottom row first), then load the columns whose bottom PE just finished.
    p_next.run = run_id;
    const int64_t done_tin = t - (R - 1);
    for (int c = 0; c < C; ++c) {
      int32_t& left = chain_left[static_cast<std::size_t>(c)];
      p_next.valid[c] = left > 0;
      if (left > 0) {
        const int row = left - 1;  // left = R: row R - 1 first
        p_next.fold[c] = chain_fold[static_cast<std::size_t>(c)];
        p_next.j[c] = row;
        p_next.psum[c] = wrap_acc(chain[static_cast<std::size_t>(c) * R + row], arch.acc_bits);
        --left;
      }
      const int64_t tin = done_tin - c;
      if (tin < 0) continue;
      const Meta& mt = meta[static_cast<std::size_t>(tin & meta_mask)];
      if (!mt.valid || !mt.last) continue;
      if (left > 0) return fail("drain chain of column " + std::to_string(c) + " still busy");
      for (int r = 0; r < R; ++r)
        chain[static_cast<std::size_t>(c) * R + r] = shadow[static_cast<std::size_t>(r) * C + c];
      left = R;
      chain_fold[static_cast<std::size_t>(c)] = mt.fold;
    }
    psum_out.write(p_next);
  }

  // ---------------------------------------------------------------- edge
  void edge() {
    const int64_t t = ed_t++;
    const GemmJob& jb = *job;
    const int F = jb.frac_bits;
    const int64_t m = jb.layer.m;
    bool out_valid = false;
    // Stage 4: requantization into the output buffer.
    for (int c = 0; c < C; ++c) {
      Stage& s = s3[c];
      if (!s.valid) continue;
      s.valid = false;
      const map::SystolicFold& f = folds[s.fold].f;
      const int64_t o = f.group * jb.layer.n + f.n0 + c, p = f.m0 + s.j;
      const int64_t code =
          jb.keep_acc ? s.v : quant::saturate(quant::round_shift_half_up(s.v, F), jb.clamp);
      out->output[static_cast<std::size_t>(o * m + p)] = code;
      out_valid = true;
      if (!jb.expected.empty() && jb.expected[static_cast<std::size_t>(o * m + p)] != code) {
        if (out->mismatches++ == 0)
          out->first_mismatch = {jb.layer.name,
                                 s.fold,
                                 o,
                                 p,
                                 t,
                                 code,
                                 jb.expected[static_cast<std::size_t>(o * m + p)]};
      }
      ++written;
    }
    // Stage 3: wide accumulator (bias + scaled group sums of every reduction group).
    for (int c = 0; c < C; ++c) {
      Stage& s = s2[c];
      if (!s.valid) continue;
      s.valid = false;
      const FoldCtl& fc = folds[s.fold];
      const int64_t o = fc.f.group * jb.layer.n + fc.f.n0 + c;
      int64_t& w = wacc[static_cast<std::size_t>(c * m_cap + s.j)];
      w = (fc.first_in_tile ? jb.bias_q[static_cast<std::size_t>(o)] : w) + s.v;
      if (fc.f.output_end) s3[c] = {true, s.fold, s.j, w};
    }
    // Stage 2: the scale unit, (P * m) << (F - r) written as a multiplication (int_arith.h).
    for (int c = 0; c < C; ++c) {
      Stage& s = s1[c];
      if (!s.valid) continue;
      s.valid = false;
      const FoldCtl& fc = folds[s.fold];
      if (scale_owner[fc.scale_bank] != fc.scale_event)
        return fail("scale bank " + std::to_string(fc.scale_bank) + " overwritten before fold " +
                    std::to_string(s.fold) + " used it");
      const std::size_t reg = static_cast<std::size_t>(fc.scale_bank) * C + fc.col_reg[c];
      s2[c] = {true, s.fold, s.j, s.v * scale_m[reg] * (int64_t{1} << (F - scale_r[reg]))};
    }
    // Stage 1: int32 group accumulator, one entry per output pixel and column.
    psum_ready.write(true);
    const PsumBeat& in = psum_out.read();
    if (in.run == run_id) {
      // The layer ends when the last vector's wavefront has crossed the last column (idle or not)
      // and left the edge pipeline: 3 more cycles after this stage.
      const FoldCtl& lf = folds.back();
      if (in.valid[C - 1] && in.fold[C - 1] == static_cast<int32_t>(folds.size() - 1) &&
          in.j[C - 1] == (os ? 0 : lf.f.stream - 1))
        done_at = t + 3;
      if (!os && in.valid[C - 1] && folds[in.fold[C - 1]].f.output_end)
        rows_due.push_back({t + 3, folds[in.fold[C - 1]].f.cols_used});
      for (int c = 0; c < C; ++c) {
        if (!in.valid[c]) continue;
        const FoldCtl& fc = folds[in.fold[c]];
        if (c >= fc.f.cols_used) continue;              // idle column
        if (os && in.j[c] >= fc.f.rows_used) continue;  // idle row of an os fold
        int32_t& g = gacc[static_cast<std::size_t>(c * m_cap + in.j[c])];
        g = fc.first_in_run ? in.psum[c]
                            : wrap_acc(static_cast<uint32_t>(g) + static_cast<uint32_t>(in.psum[c]),
                                       arch.acc_bits);
        if (fc.f.k.group_end) s1[c] = {true, in.fold[c], in.j[c], g};
      }
    }
    // Scale-register writes from the frontend.
    const ScaleWrite& sw = swrite.read();
    if (sw.valid && sw.run == run_id) {
      const std::size_t reg = static_cast<std::size_t>(sw.bank) * C + sw.reg;
      if (sw.reg == 0) scale_owner[sw.bank] = -1;
      scale_m[reg] = sw.m;
      scale_r[reg] = sw.r;
      if (sw.done) scale_owner[sw.bank] = sw.event;
    }
    if (tf) trace_out_valid.write(out_valid);
    if (rows_next < rows_due.size() && rows_due[rows_next].cycle == t) {
      if (!out_port.done()) return fail("ofmap write port still busy when the next row arrived");
      out_port.request(rows_due[rows_next++].words);
    }
    out_port.cycle(true);
    if (done_at >= 0 && t >= done_at && out_port.done()) {
      if (written != total)
        return fail("drained with " + std::to_string(written) + " of " + std::to_string(total) +
                    " outputs written");
      // The last row's beats after the cycle it completed: what the ofmap port's width cost.
      stalls += t - done_at;
      done_cycle = t;
      sc_core::sc_pause();
    }
  }

  // ---------------------------------------------------------------- setup
  void load(const GemmJob& jb, const map::ArchConfig& a, const SimOptions& options, LayerRun& res) {
    job = &jb;
    arch = a;
    R = a.rows;
    C = a.cols;
    os = a.dataflow == map::Dataflow::OS;
    ++run_id;
    error.clear();
    max_cycles = options.max_cycles;
    out = &res;
    const map::LayerWorkload& L = jb.layer;
    const auto sf = map::systolic_folds(L, a, options.align);
    folds.assign(sf.size(), FoldCtl{});
    scale_banks = scale_bank_count(static_cast<int>(R), static_cast<int>(C));
    int64_t event = -1;
    bool tile_scaled = false;  // a group-end fold of the current output tile has been seen
    for (std::size_t i = 0; i < sf.size(); ++i) {
      FoldCtl& fc = folds[i];
      fc.f = sf[i];
      const map::SystolicFold& f = sf[i];
      const bool same_outputs = i > 0 && sf[i - 1].group == f.group && sf[i - 1].n0 == f.n0 &&
                                sf[i - 1].m0 == f.m0 && !sf[i - 1].output_end;
      fc.first_in_run = !same_outputs || sf[i - 1].k.group_end;
      // Only group-end folds reach the wide accumulator: the first of them in a tile adds the bias.
      if (!same_outputs) tile_scaled = false;
      fc.first_in_tile = f.k.group_end && !tile_scaled;
      tile_scaled = tile_scaled || f.k.group_end;
      // Scale registers: this fold's blocks in increasing order, one register each.
      for (int64_t c = 0; c < f.cols_used; ++c) {
        const int64_t o = f.group * L.n + f.n0 + c;
        fc.reg_block.push_back(L.out_group[static_cast<std::size_t>(o)] * L.red_groups +
                               f.k.red_group);
      }
      std::sort(fc.reg_block.begin(), fc.reg_block.end());
      fc.reg_block.erase(std::unique(fc.reg_block.begin(), fc.reg_block.end()), fc.reg_block.end());
      if (static_cast<int64_t>(fc.reg_block.size()) != f.blocks)
        throw std::logic_error("sim: fold block count differs from the mapper's");
      for (int64_t c = 0; c < f.cols_used; ++c) {
        const int64_t o = f.group * L.n + f.n0 + c;
        const int64_t blk = L.out_group[static_cast<std::size_t>(o)] * L.red_groups + f.k.red_group;
        fc.col_reg.push_back(
            static_cast<int32_t>(std::lower_bound(fc.reg_block.begin(), fc.reg_block.end(), blk) -
                                 fc.reg_block.begin()));
      }
      if (f.scale_loads > 0 || i == 0) ++event;
      fc.scale_event = event;
      fc.scale_bank = static_cast<int>(event % scale_banks);
    }
    seg_k.assign(static_cast<std::size_t>(L.red_groups), {});
    for (int64_t k = 0; k < L.k; ++k)
      seg_k[static_cast<std::size_t>(L.red_group[static_cast<std::size_t>(k)])].push_back(k);
    // Frontend.
    fe_t = 0;
    cur = -1;
    cur_start = 0;
    vec = 0;
    prep = -1;
    pre_word = pre_shifts = 0;
    pre_done = true;
    sc_left = sc_next = 0;
    wgt_port = SramPort(a.weight_bw);
    ifm_port = SramPort(a.ifmap_bw);
    ofm_port = SramPort(a.ofmap_bw);
    wrow_port = SramPort(a.weight_bw);
    ofm_slot = false;
    ofm_ready_percent = options.ofmap_ready_percent;
    ofm_rng = options.ofmap_ready_seed;
    stalls = scale_loads = 0;
    last_issue = 0;
    act_next = ActBeat{};
    act_next.a.assign(static_cast<std::size_t>(R), 0);
    act_next.w.assign(static_cast<std::size_t>(os ? C : 0), 0);
    // Array.
    ar_t = 0;
    B = 4 * (R + C) + 256;  // slides every ~256 cycles; small enough to stay in cache
    off = B - C;
    abuf.assign(static_cast<std::size_t>(R) * B, 0);
    bbuf.assign(static_cast<std::size_t>(R) * B, 0);
    for (auto& w : wbank) w.assign(static_cast<std::size_t>(R) * C, 0);
    staging.assign(static_cast<std::size_t>(3 + ceil_div(C, R)),
                   std::vector<int32_t>(static_cast<std::size_t>(R) * C, 0));
    psum.assign(static_cast<std::size_t>(R) * C, 0);
    waves.clear();
    int64_t msz = 1;
    while (msz < R + C + 1) msz *= 2;
    meta_mask = msz - 1;
    meta.assign(static_cast<std::size_t>(msz), Meta{false, false, 0, 0});
    zero_row.assign(static_cast<std::size_t>(C), 0);
    if (os) {
      abuf_u.assign(static_cast<std::size_t>(R) * B, 0);
      lbuf.assign(static_cast<std::size_t>(R) * B, 0);
      u_mask = msz - 1;
      ubuf.assign(static_cast<std::size_t>(msz * C), 0);
      acc.assign(static_cast<std::size_t>(R) * C, 0);
      shadow.assign(static_cast<std::size_t>(R) * C, 0);
      chain.assign(static_cast<std::size_t>(R) * C, 0);
      chain_left.assign(static_cast<std::size_t>(C), 0);
      chain_fold.assign(static_cast<std::size_t>(C), 0);
    }
    p_next = PsumBeat{};
    p_next.valid.assign(static_cast<std::size_t>(C), 0);
    p_next.fold.assign(static_cast<std::size_t>(C), 0);
    p_next.j.assign(static_cast<std::size_t>(C), 0);
    p_next.psum.assign(static_cast<std::size_t>(C), 0);
    // Edge.
    ed_t = 0;
    scale_m.assign(static_cast<std::size_t>(scale_banks) * C, 0);
    scale_r.assign(static_cast<std::size_t>(scale_banks) * C, 0);
    scale_owner.assign(static_cast<std::size_t>(scale_banks), -1);
    // The accumulator storage per column: ws the largest fold's pixels (map::systolic_folds cuts
    // m into tiles of at most map::accumulator_words), os one word per row of the tile.
    m_cap = os ? R : 0;
    if (!os)
      for (const map::SystolicFold& f : sf) m_cap = std::max(m_cap, f.m_len);
    gacc.assign(static_cast<std::size_t>(C * m_cap), 0);
    wacc.assign(static_cast<std::size_t>(C * m_cap), 0);
    s1.assign(static_cast<std::size_t>(C), Stage{});
    s2 = s3 = s1;
    written = 0;
    total = L.groups * L.n * L.m;
    done_cycle = -1;
    done_at = -1;
    out_port = SramPort(os ? 0 : arch.ofmap_bw);
    rows_due.clear();
    rows_next = 0;
    res.output.assign(static_cast<std::size_t>(total), 0);
  }
};

std::string Mismatch::str() const {
  return "layer '" + layer + "' fold " + std::to_string(fold) + " output channel " +
         std::to_string(channel) + " pixel " + std::to_string(pixel) + " cycle " +
         std::to_string(cycle) + ": got " + std::to_string(got) + ", golden " +
         std::to_string(expected);
}

SystolicSim::SystolicSim(const std::string& trace_path)
    : impl_(std::make_unique<Impl>("systolic", trace_path)) {}
SystolicSim::~SystolicSim() = default;

SystolicSim& SystolicSim::instance(const std::string& trace_path) {
  // SystemC prints a banner on first use; it would land in --json output.
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  // Intentionally leaked: SystemC objects must not be destroyed after the kernel shuts down.
  static SystolicSim* sim = new SystolicSim(trace_path);
  return *sim;
}

LayerRun SystolicSim::run(const GemmJob& job, const map::ArchConfig& arch,
                          const SimOptions& options) {
  if (arch.kind != map::ArchKind::Systolic || arch.dataflow == map::Dataflow::IS)
    fail_input(arch.source,
               "the SystemC model runs weight- and output-stationary systolic arrays only (yet)");
  // The os drain chains move one row of every column per cycle; a narrower ofmap port would have
  // to stall them, which the model does not do yet (cycle_model.h's drain then exceeds R).
  if (arch.dataflow == map::Dataflow::OS && arch.ofmap_bw > 0 && arch.ofmap_bw < arch.cols)
    fail_input(arch.source, "field 'ofmap_bw': the os model needs >= cols words/cycle (or 0)");
  const map::LayerWorkload& L = job.layer;
  if (job.act.size() != static_cast<std::size_t>(L.groups * L.m * L.k) ||
      job.weight.size() != static_cast<std::size_t>(L.groups * L.k * L.n))
    throw std::invalid_argument("sim: GemmJob operand sizes do not match its workload");
  LayerRun res;
  res.name = L.name;
  Impl& m = *impl_;
  m.load(job, arch, options, res);
  sc_core::sc_start();
  if (!m.error.empty()) throw std::runtime_error("sim: layer '" + L.name + "': " + m.error);
  if (m.done_cycle < 0) throw std::runtime_error("sim: layer '" + L.name + "' did not finish");
  res.cycles = m.done_cycle + 1;
  res.stalls = m.stalls;
  res.folds = static_cast<int64_t>(m.folds.size());
  res.scale_loads = m.scale_loads;
  res.macs = L.macs();
  res.scale_banks = m.scale_banks;
  return res;
}

}  // namespace tilescale::sim

// libsystemc.so ships a main() that calls sc_main(); tilescale and the tests have their own main
// and drive sc_start() directly, so this one is never called but must exist for the link.
int sc_main(int, char**) { return 0; }
