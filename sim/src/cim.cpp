// The CIM macro in SystemC (cim.h): CimCtrl -> CimArray -> CimDigital, one SC_METHOD each on the
// rising edge, joined by sc_signal ports carrying fixed-width beats.
//
// Timing, in cycles from the layer start (cycle 0 = first rising edge):
//   - a round with programming (layers needing more crossbars than `macros`) spends
//     P = max(xbar_rows, scale registers per crossbar) cycles writing one cell row (and one scale
//     register) of every crossbar of the round per cycle, its first read in the cycle after; the
//     next round's programming starts in the cycle after the array reports idle (its last sums
//     converted);
//   - a ReadCmd handshake in cycle e latches the column sums of the round's crossbars into a free
//     sample-and-hold buffer; the ADCs convert that buffer's column groups in the cycles after it,
//     one group per cycle, cols_per_adc groups, back to back with the previous buffer; the array
//     is ready for a read while one of its two buffers is free, so reads follow the ADCs' pace of
//     one input step per cols_per_adc cycles;
//   - the digital side takes an AdcBeat the cycle after it is sent (shift-add), then the scale
//     unit (+1), the accumulator across crossbars (+1), requantization and the output write (+1).
// With N = pixels x input steps reads per round and c = cols_per_adc, the reads of a round whose
// first read is in cycle s are in s, s + 1, s + 1 + c, s + 1 + 2c, ... and its last conversion in
// s + N * c. A layer of one round (cells resident, first read in cycle 1 after the controller's
// command register) takes N * c + 6 cycles; of R > 1 rounds (s_0 = P, s_{r+1} = s_r + N*c + 1 + P)
// R * (P + N * c + 1) + 4. mapper.cpp's map_cim predicts exactly this.
#include "tilescale/sim/cim.h"

#include <algorithm>
#include <array>
#include <ostream>
#include <stdexcept>
#include <systemc>

#include "tilescale/core/error.h"

namespace tilescale::sim {
namespace {

using sc_core::sc_in;
using sc_core::sc_out;
using sc_core::sc_signal;

// ---- Beats (fixed width: scalars and fixed-capacity lane arrays) ----

// Controller -> array: read the round's crossbars for pixel m with input step `step`.
struct ReadCmd {
  int64_t run = -1;    // layer run
  bool valid = false;  // a command is on the bus
  int32_t round = 0;   // crossbar round
  int32_t m = 0;       // output pixel
  int32_t step = 0;    // input step (quant::input_steps order)
  bool operator==(const ReadCmd& o) const {
    return run == o.run && valid == o.valid && round == o.round && m == o.m && step == o.step;
  }
};
// Controller -> array: program cell row `row` of every crossbar of `round`.
struct ProgBeat {
  int64_t run = -1;
  bool valid = false;
  int32_t round = 0;
  int32_t row = 0;
  bool operator==(const ProgBeat& o) const {
    return run == o.run && valid == o.valid && round == o.round && row == o.row;
  }
};
// Controller -> digital: scale register `reg` of every crossbar slot of `round` (bank round % 2).
struct ScaleBeat {
  int64_t run = -1;
  bool valid = false;
  int32_t round = 0;
  int32_t reg = 0;
  std::array<int64_t, kCimMaxXbars> m{};  // multiplier mantissa per slot
  std::array<int32_t, kCimMaxXbars> r{};  // right shift per slot
  bool operator==(const ScaleBeat& o) const {
    return run == o.run && valid == o.valid && round == o.round && reg == o.reg && m == o.m &&
           r == o.r;
  }
};
// Array -> digital: the ADC codes of column group j of every crossbar of the round.
struct AdcBeat {
  int64_t run = -1;
  bool valid = false;
  int32_t round = 0;
  int32_t m = 0;
  int32_t step = 0;
  int32_t j = 0;                                  // column mux position
  std::array<int32_t, kCimMaxXbars> row_count{};  // digital R_t per slot
  std::array<uint16_t, kCimMaxLanes> code{};      // [slot * adcs + a]: ADC a's code
  bool operator==(const AdcBeat& o) const {
    return run == o.run && valid == o.valid && round == o.round && m == o.m && step == o.step &&
           j == o.j && row_count == o.row_count && code == o.code;
  }
};

std::ostream& operator<<(std::ostream& os, const ReadCmd& b) {
  return os << "read{" << b.valid << "," << b.round << "," << b.m << "," << b.step << "}";
}
std::ostream& operator<<(std::ostream& os, const ProgBeat& b) {
  return os << "prog{" << b.valid << "," << b.round << "," << b.row << "}";
}
std::ostream& operator<<(std::ostream& os, const ScaleBeat& b) {
  return os << "scale{" << b.valid << "," << b.round << "," << b.reg << "}";
}
std::ostream& operator<<(std::ostream& os, const AdcBeat& b) {
  return os << "adc{" << b.valid << "," << b.round << "," << b.m << "," << b.step << "," << b.j
            << "}";
}

// Ports of a beat type need an sc_trace overload; a trace shows its valid bit.
template <typename Beat>
void trace_valid(sc_core::sc_trace_file* tf, const Beat& b, const std::string& name) {
  sc_core::sc_trace(tf, b.valid, name + ".valid");
}
void sc_trace(sc_core::sc_trace_file* tf, const ReadCmd& b, const std::string& n) {
  trace_valid(tf, b, n);
}
void sc_trace(sc_core::sc_trace_file* tf, const ProgBeat& b, const std::string& n) {
  trace_valid(tf, b, n);
}
void sc_trace(sc_core::sc_trace_file* tf, const ScaleBeat& b, const std::string& n) {
  trace_valid(tf, b, n);
}
void sc_trace(sc_core::sc_trace_file* tf, const AdcBeat& b, const std::string& n) {
  trace_valid(tf, b, n);
}

// One crossbar of the layer: a row tile of one group's reduction axis and a run of its channels.
struct Xbar {
  int64_t g = 0;                   // conv group
  int64_t n0 = 0, n = 0;           // channels [n0, n0 + n) of the group
  quant::RowTile tile;             // rows
  std::vector<int64_t> sel;        // [n] scale register of each channel
  std::vector<int64_t> reg_block;  // [registers] block each register holds
};

// Everything the three modules know about the running layer (their configuration registers and
// the SRAMs the host filled): set by CimSim::run before sc_start.
struct Layer {
  const GemmJob* job = nullptr;
  map::ArchConfig arch;
  quant::AdcNumerics adc;
  int64_t run = 0;
  int slices = 1, wide = 1, shift = 0, adcs = 1, cpa = 1;
  std::vector<quant::InputStep> steps;
  std::vector<Xbar> xbars;  // in round order: round r holds [r * macros, (r + 1) * macros)
  int64_t rounds = 1, macros = 1, ch_per_xbar = 1, ktiles = 1, program_cycles = 0;
  bool programmed_up_front = true;  // one round: cells and scale registers resident before start
  CimShiftAddUnit* unit = nullptr;  // an external shift-add in lockstep (cim_shift_add.h)
  std::string error;                // internal model error, reported after the run
  int64_t max_cycles = 0;
  CimLayerRun* out = nullptr;
  int64_t slots(int64_t round) const {
    return std::min<int64_t>(macros, static_cast<int64_t>(xbars.size()) - round * macros);
  }
  const Xbar& xbar(int64_t round, int64_t slot) const {
    return xbars[static_cast<std::size_t>(round * macros + slot)];
  }
};

// ---- Controller ----
struct CimCtrl : sc_core::sc_module {
  SC_HAS_PROCESS(CimCtrl);
  sc_in<bool> clk{"clk"};
  sc_out<ReadCmd> cmd{"cmd"};
  sc_in<bool> cmd_ready{"cmd_ready"};
  sc_out<ProgBeat> prog{"prog"};
  sc_out<ScaleBeat> scale{"scale"};
  sc_in<bool> array_idle{"array_idle"};  // no sample-and-hold buffer full or converting
  Layer* L = nullptr;
  int64_t round = 0, prog_left = 0, prog_row = 0, m = 0, step = 0;
  bool reading = false, finished = false;
  bool draining = false;  // a round's reads are done; the next is programmed once the array idles

  explicit CimCtrl(sc_core::sc_module_name n) : sc_module(n) {
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
  }
  void start() {
    round = 0;
    finished = draining = false;
    begin_round();
  }
  void begin_round() {
    prog_row = 0;
    prog_left = L->programmed_up_front ? 0 : L->program_cycles;
    m = step = 0;
    reading = prog_left == 0;
  }
  void tick() {
    ReadCmd c = cmd.read();
    // The read on the bus was taken at this edge.
    if (c.valid && c.run == L->run && cmd_ready.read()) {
      if (++step == static_cast<int64_t>(L->steps.size())) {
        step = 0;
        if (++m == L->job->layer.m) {
          if (++round == L->rounds) {
            finished = true;
          } else {
            // The cells are reprogrammed only after the ADCs have converted the last sums read
            // from them (the array reports idle), so a round's sums never mix two programmings.
            draining = true;
            reading = false;
          }
        }
      }
    }
    if (draining && array_idle.read()) {
      draining = false;
      begin_round();
    }
    ProgBeat p;
    ScaleBeat s;
    if (!finished && !draining && prog_left > 0) {
      p = ProgBeat{L->run, prog_row < L->arch.xbar_rows, static_cast<int32_t>(round),
                   static_cast<int32_t>(prog_row)};
      s.run = L->run;
      s.round = static_cast<int32_t>(round);
      s.reg = static_cast<int32_t>(prog_row);
      for (int64_t slot = 0; slot < L->slots(round); ++slot) {
        const Xbar& x = L->xbar(round, slot);
        if (prog_row < static_cast<int64_t>(x.reg_block.size())) {
          const quant::FixedMultiplier& f =
              L->job->multiplier[static_cast<std::size_t>(x.reg_block[prog_row])];
          s.valid = true;
          s.m[slot] = f.m;
          s.r[slot] = f.r;
        }
      }
      ++prog_row;
      if (--prog_left == 0) reading = true;
    }
    prog.write(p);
    scale.write(s);
    ReadCmd next;
    if (!finished && !draining && reading && prog_left == 0)
      next = ReadCmd{L->run, true, static_cast<int32_t>(round), static_cast<int32_t>(m),
                     static_cast<int32_t>(step)};
    cmd.write(next);
  }
};

// ---- Crossbars, sample-and-hold, ADCs ----
struct CimArray : sc_core::sc_module {
  SC_HAS_PROCESS(CimArray);
  sc_in<bool> clk{"clk"};
  sc_in<ReadCmd> cmd{"cmd"};
  sc_out<bool> cmd_ready{"cmd_ready"};
  sc_in<ProgBeat> prog{"prog"};
  sc_out<AdcBeat> adc_out{"adc_out"};
  sc_out<bool> idle{"idle"};
  Layer* L = nullptr;
  // Cells: [slot][row][col] slice values of the round's crossbars.
  std::vector<uint8_t> cells;
  struct Buffer {
    bool full = false;
    int64_t filled_at = 0;
    ReadCmd cmd;
    int32_t next_group = 0;
    std::vector<int64_t> sum;  // [slot][col] column sums
    std::array<int32_t, kCimMaxXbars> row_count{};
  };
  Buffer buf[2];
  int converting = -1;  // buffer being converted, -1 none
  int64_t t = 0;
  std::vector<int64_t> digits;  // [rows] of the read being latched

  explicit CimArray(sc_core::sc_module_name n) : sc_module(n) {
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
  }
  int64_t cell_index(int64_t slot, int64_t row, int64_t col) const {
    return (slot * L->arch.xbar_rows + row) * L->arch.xbar_cols + col;
  }
  void start() {
    t = 0;
    converting = -1;
    for (Buffer& b : buf) {
      b.full = false;
      b.sum.assign(static_cast<std::size_t>(L->macros * L->arch.xbar_cols), 0);
    }
    cells.assign(static_cast<std::size_t>(L->macros * L->arch.xbar_rows * L->arch.xbar_cols), 0);
    digits.assign(static_cast<std::size_t>(L->arch.xbar_rows), 0);
    if (L->programmed_up_front)
      for (int64_t r = 0; r < L->arch.xbar_rows; ++r) program_row(0, r);
  }
  // Writes row `row` of every crossbar of `round` from the weight SRAM (offset-binary slices).
  void program_row(int64_t round, int64_t row) {
    const GemmJob& job = *L->job;
    const int64_t n = job.layer.n, k = job.layer.k;
    for (int64_t slot = 0; slot < L->macros; ++slot) {
      uint8_t* c = cells.data() + cell_index(slot, row, 0);
      std::fill(c, c + L->arch.xbar_cols, uint8_t{0});
      if (slot >= L->slots(round)) continue;
      const Xbar& x = L->xbar(round, slot);
      if (row >= x.tile.length) continue;
      for (int64_t ch = 0; ch < x.n; ++ch) {
        const int64_t w =
            job.weight[static_cast<std::size_t>((x.g * k + x.tile.k0 + row) * n + x.n0 + ch)];
        for (int s = 0; s < L->slices; ++s)
          c[ch * L->slices + s] =
              static_cast<uint8_t>(quant::weight_slice(w, L->wide, L->adc.cell_bits, s));
      }
    }
  }
  // The crossbar read: every column sum of every crossbar of the round for (m, step).
  void latch(Buffer& b, const ReadCmd& c) {
    const GemmJob& job = *L->job;
    const int64_t k = job.layer.k, cols = L->arch.xbar_cols;
    const quant::InputStep& st = L->steps[static_cast<std::size_t>(c.step)];
    const int a_bits = job.layer.a_bits;
    std::fill(b.sum.begin(), b.sum.end(), 0);
    map::CimEvents& ev = L->out->events;
    for (int64_t slot = 0; slot < L->slots(c.round); ++slot) {
      const Xbar& x = L->xbar(c.round, slot);
      const int32_t* act = job.act.data() + (x.g * job.layer.m + c.m) * k + x.tile.k0;
      // A pixel's first step loads the tile's input codes into the input registers, once for
      // the crossbars of the round that share the row tile (the same group and first row).
      if (c.step == 0) {
        bool shared = false;
        for (int64_t o = 0; o < slot; ++o)
          shared =
              shared || (L->xbar(c.round, o).g == x.g && L->xbar(c.round, o).tile.k0 == x.tile.k0);
        if (!shared) ev.ifmap_words += x.tile.length;
      }
      int64_t rc = 0, driven = 0;
      int64_t* sum = b.sum.data() + slot * cols;
      const int64_t used = x.n * L->slices;
      for (int64_t r = 0; r < x.tile.length; ++r) {
        const uint64_t pattern =
            static_cast<uint64_t>(static_cast<int64_t>(act[r])) & ((uint64_t{1} << a_bits) - 1);
        const int64_t d = static_cast<int64_t>(pattern >> st.bit0) & ((int64_t{1} << st.bits) - 1);
        if (d == 0) continue;
        rc += d;
        ++driven;
        const uint8_t* row = cells.data() + cell_index(slot, r, 0);
        for (int64_t col = 0; col < used; ++col) sum[col] += d * row[col];
      }
      b.row_count[slot] = static_cast<int32_t>(rc);
      ev.active_cells += driven * used;
    }
    b.cmd = c;
    b.full = true;
    b.filled_at = t;
    b.next_group = 0;
  }
  void tick() {
    // Programming: one row of every crossbar of the round per cycle.
    const ProgBeat p = prog.read();
    if (p.valid && p.run == L->run) {
      program_row(p.round, p.row);
      // Energy events: the weights read from the weight SRAM and the cells written (cells
      // resident before the start, a one-round layer's, are not reprogrammed per image).
      for (int64_t slot = 0; slot < L->slots(p.round); ++slot) {
        const Xbar& x = L->xbar(p.round, slot);
        if (p.row >= x.tile.length) continue;
        L->out->events.weight_words += x.n;
        L->out->events.cell_writes += x.n * L->slices;
      }
    }
    // ADC: convert one column group of the oldest full buffer latched before this cycle.
    AdcBeat beat;
    if (converting < 0) {
      for (int i = 0; i < 2; ++i)
        if (buf[i].full && buf[i].filled_at < t &&
            (converting < 0 || buf[i].filled_at < buf[converting].filled_at))
          converting = i;
    }
    if (converting >= 0) {
      Buffer& b = buf[converting];
      beat.run = L->run;
      beat.valid = true;
      beat.round = b.cmd.round;
      beat.m = b.cmd.m;
      beat.step = b.cmd.step;
      beat.j = b.next_group;
      beat.row_count = b.row_count;
      const int64_t full = (int64_t{1} << L->adc.adc_bits) - 1;
      for (int64_t slot = 0; slot < L->slots(b.cmd.round); ++slot) {
        const int64_t used = L->xbar(b.cmd.round, slot).n * L->slices;
        for (int64_t a = 0; a < L->adcs; ++a) {
          const int64_t col = static_cast<int64_t>(b.next_group) * L->adcs + a;
          if (col >= used) continue;  // an unused column: the ADC idles
          const int64_t s = b.sum[static_cast<std::size_t>(slot * L->arch.xbar_cols + col)];
          // The converter: LSB 2^shift, round half up, saturate at full scale (quant/adc.h).
          const int64_t code =
              std::min(L->shift > 0 ? (s + (int64_t{1} << (L->shift - 1))) >> L->shift : s, full);
          beat.code[static_cast<std::size_t>(slot * L->adcs + a)] = static_cast<uint16_t>(code);
          ++L->out->events.adc_conversions;
        }
      }
      if (++b.next_group == L->cpa) {
        b.full = false;
        converting = -1;
      }
    }
    adc_out.write(beat);
    // A read on the bus is taken when a buffer is free (the ready we drove last cycle says so).
    const ReadCmd c = cmd.read();
    if (c.valid && c.run == L->run && cmd_ready.read()) {
      Buffer& b = !buf[0].full ? buf[0] : buf[1];
      if (b.full) {
        L->error = "read taken with both sample-and-hold buffers full";
      } else {
        latch(b, c);
        ++L->out->events.xbar_reads;
      }
    }
    cmd_ready.write(!buf[0].full || !buf[1].full);
    idle.write(!buf[0].full && !buf[1].full);
    ++t;
  }
};

// ---- Shift-add, scale unit, accumulation across crossbars, requantization ----
struct CimDigital : sc_core::sc_module {
  SC_HAS_PROCESS(CimDigital);
  sc_in<bool> clk{"clk"};
  sc_in<AdcBeat> adc_in{"adc_in"};
  sc_in<ScaleBeat> scale_in{"scale_in"};
  Layer* L = nullptr;
  std::vector<int64_t> sa;             // [slot][channel] shift-add accumulators
  std::vector<CimShiftAddTerm> terms;  // [slot][channel] the unit's term being collected
  // Scale registers, two banks (round parity): [bank][slot][reg].
  std::vector<int64_t> reg_m;
  std::vector<int32_t> reg_r;
  int64_t bank_owner[2] = {-1, -1};
  int64_t regs = 1;
  struct Stage {
    bool valid = false;
    int32_t round = 0, m = 0;
    std::vector<int64_t> v;  // [slot][channel]
  };
  Stage s_scale, s_acc;           // after shift-add, after the scale unit
  std::vector<int64_t> wacc;      // [groups * n][m] wide accumulators (bias preset)
  std::vector<int32_t> tiles_in;  // [groups * n][m] crossbars accumulated
  struct Write {
    int64_t o = 0, m = 0, v = 0;
  };
  std::vector<Write> s_out;  // outputs requantized this cycle
  int64_t t = 0, written = 0, total = 0, done_cycle = -1;

  explicit CimDigital(sc_core::sc_module_name n) : sc_module(n) {
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
  }
  void start() {
    const GemmJob& job = *L->job;
    const int64_t lanes = L->macros * L->ch_per_xbar;
    sa.assign(static_cast<std::size_t>(lanes), 0);
    terms.assign(L->unit ? static_cast<std::size_t>(lanes) : 0, CimShiftAddTerm{});
    regs = 1;
    for (const Xbar& x : L->xbars) regs = std::max<int64_t>(regs, x.reg_block.size());
    reg_m.assign(static_cast<std::size_t>(2 * L->macros * regs), 0);
    reg_r.assign(reg_m.size(), 0);
    bank_owner[0] = bank_owner[1] = -1;
    if (L->programmed_up_front) {
      for (int64_t slot = 0; slot < L->slots(0); ++slot) {
        const Xbar& x = L->xbar(0, slot);
        for (std::size_t i = 0; i < x.reg_block.size(); ++i) {
          const auto& f = job.multiplier[static_cast<std::size_t>(x.reg_block[i])];
          reg_m[static_cast<std::size_t>(slot * regs) + i] = f.m;
          reg_r[static_cast<std::size_t>(slot * regs) + i] = f.r;
        }
      }
      bank_owner[0] = 0;
    }
    s_scale = Stage{};
    s_scale.v.assign(static_cast<std::size_t>(lanes), 0);
    s_acc = s_scale;
    const int64_t outs = job.layer.groups * job.layer.n;
    wacc.assign(static_cast<std::size_t>(outs * job.layer.m), 0);
    for (int64_t o = 0; o < outs; ++o)
      std::fill_n(wacc.begin() + o * job.layer.m, job.layer.m,
                  job.bias_q[static_cast<std::size_t>(o)]);
    tiles_in.assign(wacc.size(), 0);
    s_out.clear();
    t = written = 0;
    total = outs * job.layer.m;
    done_cycle = -1;
    L->out->run.output.assign(static_cast<std::size_t>(total), 0);
  }
  // Collects slice s of a lane's term; when the channel's last slice is in (columns arrive in
  // increasing order, so it comes last), applies the term to the external unit and checks it
  // against the model's own sum, which then takes the unit's value.
  void shift_add_unit_term(std::size_t lane, int64_t s, int64_t level, const AdcBeat& b,
                           const quant::InputStep& st) {
    CimShiftAddTerm& term = terms[lane];
    term.code[static_cast<std::size_t>(s)] = level;
    if (s + 1 < L->slices) return;
    term.lane = static_cast<int64_t>(lane);
    term.pixel = b.m;
    term.step = b.step;
    term.clear = b.step == 0;
    term.slices = L->slices;
    term.cell_bits = L->adc.cell_bits;
    term.row_count = b.row_count[lane / static_cast<std::size_t>(L->ch_per_xbar)];
    term.bit_pos = st.bit0;
    term.negative = st.negative;
    const int64_t got = L->unit->add(term);
    if (got != sa[lane] && L->error.empty())
      L->error = "shift-add unit lane " + std::to_string(lane) + ", pixel " + std::to_string(b.m) +
                 ", step " + std::to_string(b.step) + ": unit " + std::to_string(got) + ", model " +
                 std::to_string(sa[lane]);
    sa[lane] = got;
  }
  void tick() {
    const GemmJob& job = *L->job;
    const int64_t n = job.layer.n, M = job.layer.m;
    // Stage 4: output buffer writes (requantized last cycle), checked against the golden codes.
    for (const Write& w : s_out) {
      const std::size_t idx = static_cast<std::size_t>(w.o * M + w.m);
      L->out->run.output[idx] = w.v;
      ++L->out->events.ofmap_words;
      if (!job.expected.empty() && job.expected[idx] != w.v) {
        LayerRun& r = L->out->run;
        if (r.mismatches++ == 0)
          r.first_mismatch = Mismatch{job.layer.name, -1, w.o, w.m, t, w.v, job.expected[idx]};
      }
      if (++written == total) done_cycle = t;
    }
    s_out.clear();
    // Stage 3: accumulation across crossbars; a channel's last crossbar triggers requantization.
    if (s_acc.valid) {
      for (int64_t slot = 0; slot < L->slots(s_acc.round); ++slot) {
        const Xbar& x = L->xbar(s_acc.round, slot);
        for (int64_t ch = 0; ch < x.n; ++ch) {
          const int64_t o = x.g * n + x.n0 + ch;
          const std::size_t idx = static_cast<std::size_t>(o * M + s_acc.m);
          wacc[idx] += s_acc.v[static_cast<std::size_t>(slot * L->ch_per_xbar + ch)];
          ++L->out->events.accumulations;
          if (++tiles_in[idx] == L->ktiles) {
            ++L->out->events.requants;
            const int64_t acc = wacc[idx];
            s_out.push_back(
                {o, s_acc.m,
                 job.keep_acc
                     ? acc
                     : quant::saturate(quant::round_shift_half_up(acc, job.frac_bits), job.clamp)});
          }
        }
      }
    }
    s_acc.valid = false;
    // Stage 2: the scale unit, D * m << (F - r) from the crossbar's register of the channel.
    if (s_scale.valid) {
      const int64_t bank = s_scale.round % 2;
      if (bank_owner[bank] != s_scale.round)
        L->error = "scale bank " + std::to_string(bank) + " holds round " +
                   std::to_string(bank_owner[bank]) + ", not " + std::to_string(s_scale.round);
      for (int64_t slot = 0; slot < L->slots(s_scale.round); ++slot) {
        const Xbar& x = L->xbar(s_scale.round, slot);
        for (int64_t ch = 0; ch < x.n; ++ch) {
          const std::size_t ri = static_cast<std::size_t>((bank * L->macros + slot) * regs +
                                                          x.sel[static_cast<std::size_t>(ch)]);
          const std::size_t lane = static_cast<std::size_t>(slot * L->ch_per_xbar + ch);
          ++L->out->events.scale_ops;
          // m = 0: the block contributes nothing (int_kernels.h).
          s_acc.v[lane] = reg_m[ri] == 0 ? 0
                                         : s_scale.v[lane] * reg_m[ri] *
                                               (int64_t{1} << (job.frac_bits - reg_r[ri]));
        }
      }
      s_acc.valid = true;
      s_acc.round = s_scale.round;
      s_acc.m = s_scale.m;
    }
    s_scale.valid = false;
    // Scale register writes of a programming phase (bank of the round's parity).
    const ScaleBeat sb = scale_in.read();
    if (sb.valid && sb.run == L->run) {
      const int64_t bank = sb.round % 2;
      bank_owner[bank] = sb.round;
      for (int64_t slot = 0; slot < L->slots(sb.round); ++slot)
        if (sb.reg < static_cast<int64_t>(L->xbar(sb.round, slot).reg_block.size())) {
          const std::size_t ri =
              static_cast<std::size_t>((bank * L->macros + slot) * regs + sb.reg);
          reg_m[ri] = sb.m[static_cast<std::size_t>(slot)];
          reg_r[ri] = sb.r[static_cast<std::size_t>(slot)];
        }
    }
    // Stage 1: shift-add of this cycle's ADC codes.
    const AdcBeat b = adc_in.read();
    if (b.valid && b.run == L->run) {
      const quant::InputStep& st = L->steps[static_cast<std::size_t>(b.step)];
      const int cb = L->adc.cell_bits;
      if (b.step == 0 && b.j == 0) std::fill(sa.begin(), sa.end(), 0);  // a new pixel: clear
      for (int64_t slot = 0; slot < L->slots(b.round); ++slot) {
        const Xbar& x = L->xbar(b.round, slot);
        const int64_t used = x.n * L->slices;
        for (int64_t a = 0; a < L->adcs; ++a) {
          const int64_t col = static_cast<int64_t>(b.j) * L->adcs + a;
          if (col >= used) continue;
          const int64_t ch = col / L->slices, s = col % L->slices;
          const int64_t level =
              static_cast<int64_t>(b.code[static_cast<std::size_t>(slot * L->adcs + a)])
              << L->shift;
          int64_t v = level << (s * cb);
          // The offset of the offset-binary code, once per channel and step.
          if (s == 0) {
            v -= static_cast<int64_t>(b.row_count[slot]) << (L->wide - 1);
            ++L->out->events.shift_add_ops;
          }
          ++L->out->events.shift_add_ops;
          const std::size_t lane = static_cast<std::size_t>(slot * L->ch_per_xbar + ch);
          sa[lane] += (st.negative ? -v : v) * (int64_t{1} << st.bit0);
          if (L->unit) shift_add_unit_term(lane, s, level, b, st);
        }
      }
      if (b.step + 1 == static_cast<int32_t>(L->steps.size()) && b.j + 1 == L->cpa) {
        s_scale.valid = true;
        s_scale.round = b.round;
        s_scale.m = b.m;
        s_scale.v = sa;
      }
    }
    if (t >= L->max_cycles && done_cycle < 0) L->error = "watchdog: no end after max_cycles";
    if (done_cycle >= 0 || !L->error.empty()) sc_core::sc_pause();
    ++t;
  }
};

}  // namespace

struct CimSim::Impl : sc_core::sc_module {
  SC_HAS_PROCESS(Impl);
  sc_core::sc_clock clk{"clk", 1, sc_core::SC_NS};
  sc_signal<ReadCmd> cmd{"cmd"};
  sc_signal<bool> cmd_ready{"cmd_ready"};
  sc_signal<ProgBeat> prog{"prog"};
  sc_signal<ScaleBeat> scale{"scale"};
  sc_signal<AdcBeat> adc{"adc"};
  sc_signal<bool> array_idle{"array_idle"};
  CimCtrl ctrl{"ctrl"};
  CimArray array{"array"};
  CimDigital digital{"digital"};
  Layer layer;
  CimShiftAddUnit* unit = nullptr;
  sc_core::sc_trace_file* tf = nullptr;

  Impl(sc_core::sc_module_name n, const std::string& trace_path) : sc_module(n) {
    ctrl.clk(clk);
    ctrl.cmd(cmd);
    ctrl.cmd_ready(cmd_ready);
    ctrl.prog(prog);
    ctrl.scale(scale);
    ctrl.array_idle(array_idle);
    array.clk(clk);
    array.cmd(cmd);
    array.cmd_ready(cmd_ready);
    array.prog(prog);
    array.adc_out(adc);
    array.idle(array_idle);
    digital.clk(clk);
    digital.adc_in(adc);
    digital.scale_in(scale);
    ctrl.L = array.L = digital.L = &layer;
    if (!trace_path.empty()) {
      tf = sc_core::sc_create_vcd_trace_file(trace_path.c_str());
      if (tf) {
        sc_core::sc_trace(tf, clk, "clk");
        sc_core::sc_trace(tf, cmd_ready, "cmd_ready");
      }
    }
  }
  ~Impl() override {
    if (tf) sc_core::sc_close_vcd_trace_file(tf);
  }
};

CimSim::CimSim(const std::string& trace_path) : impl_(std::make_unique<Impl>("cim", trace_path)) {}
CimSim::~CimSim() = default;

CimSim& CimSim::instance(const std::string& trace_path) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  // Intentionally leaked: SystemC objects must not be destroyed after the kernel shuts down.
  static CimSim* sim = new CimSim(trace_path);
  return *sim;
}

void CimSim::set_shift_add_unit(CimShiftAddUnit* unit) { impl_->unit = unit; }

CimLayerRun CimSim::run(const GemmJob& job, const map::ArchConfig& arch,
                        const SimOptions& options) {
  arch.require_kind(map::ArchKind::Cim, "the SystemC CIM macro");
  const map::LayerWorkload& W = job.layer;
  if (job.act.size() != static_cast<std::size_t>(W.groups * W.m * W.k) ||
      job.weight.size() != static_cast<std::size_t>(W.groups * W.k * W.n))
    throw std::invalid_argument("sim: GemmJob operand sizes do not match its workload");
  Layer& L = impl_->layer;
  L = Layer{};
  L.job = &job;
  L.arch = arch;
  L.adc = arch.cim_numerics();
  static int64_t runs = 0;
  L.run = ++runs;
  L.slices = quant::weight_slices(W.w_bits, arch.cell_bits);
  L.wide = L.slices * arch.cell_bits;
  L.shift = quant::adc_shift(L.adc);
  L.cpa = arch.cols_per_adc;
  L.adcs = arch.xbar_cols / arch.cols_per_adc;
  L.steps = quant::input_steps(W.a_bits, W.act_signed, arch.input_bits_per_cycle);
  L.macros = arch.macros;
  L.ch_per_xbar = arch.xbar_cols / L.slices;
  if (L.macros > kCimMaxXbars || L.macros * L.adcs > kCimMaxLanes || arch.adc_bits > 16)
    fail_input(arch.source, "the SystemC CIM model takes at most " + std::to_string(kCimMaxXbars) +
                                " macros and " + std::to_string(kCimMaxLanes) + " ADCs in all");
  const auto tiles = quant::crossbar_row_tiles(W.red_group, arch.xbar_rows);
  L.ktiles = static_cast<int64_t>(tiles.size());
  int64_t max_regs = 1;
  for (int64_t g = 0; g < W.groups; ++g)
    for (int64_t n0 = 0; n0 < W.n; n0 += L.ch_per_xbar)
      for (const quant::RowTile& t : tiles) {
        Xbar x;
        x.g = g;
        x.n0 = n0;
        x.n = std::min(L.ch_per_xbar, W.n - n0);
        x.tile = t;
        for (int64_t ch = 0; ch < x.n; ++ch) {
          const int64_t blk =
              W.out_group[static_cast<std::size_t>(g * W.n + n0 + ch)] * W.red_groups + t.red_group;
          const auto it = std::find(x.reg_block.begin(), x.reg_block.end(), blk);
          x.sel.push_back(it - x.reg_block.begin());
          if (it == x.reg_block.end()) x.reg_block.push_back(blk);
        }
        max_regs = std::max<int64_t>(max_regs, x.reg_block.size());
        L.xbars.push_back(std::move(x));
      }
  if (max_regs > arch.scale_regs_per_tile)
    fail_input(arch.source,
               "layer '" + W.name + "': a crossbar needs " + std::to_string(max_regs) +
                   " scale registers, the architecture has " +
                   "scale_regs_per_tile = " + std::to_string(arch.scale_regs_per_tile));
  L.rounds = (static_cast<int64_t>(L.xbars.size()) + L.macros - 1) / L.macros;
  L.programmed_up_front = L.rounds == 1;
  L.program_cycles = std::max<int64_t>(arch.xbar_rows, max_regs);
  L.max_cycles = options.max_cycles;
  L.unit = impl_->unit;
  if (L.unit && L.slices > kCimMaxSlices)
    throw std::invalid_argument("sim: the shift-add hook carries at most " +
                                std::to_string(kCimMaxSlices) + " slices per weight");
  CimLayerRun res;
  res.run.name = W.name;
  res.rounds = L.rounds;
  L.out = &res;
  impl_->ctrl.start();
  impl_->array.start();
  impl_->digital.start();
  sc_core::sc_start();
  if (!L.error.empty()) throw std::runtime_error("sim: layer '" + W.name + "': " + L.error);
  if (impl_->digital.done_cycle < 0)
    throw std::runtime_error("sim: layer '" + W.name + "' did not finish");
  res.run.cycles = impl_->digital.done_cycle + 1;
  res.run.folds = static_cast<int64_t>(L.xbars.size());
  res.run.macs = W.macs();
  res.run.scale_loads = L.programmed_up_front ? 0 : static_cast<int64_t>(L.xbars.size()) * max_regs;
  L.out = nullptr;
  return res;
}

}  // namespace tilescale::sim
