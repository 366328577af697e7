// The host side of ts_top, written from rtl/README.md: a layer as a GEMM with block scales, the
// fold list a host executes (the mapper's tiling rules, reimplemented), every beat of every input
// stream, the expected output beats from int_arith.h (the golden numerics) and the documented cycle
// formula. Header-only and independent of the mapping library and of SystemC, so the C++ Verilated
// test (tests/rtl/top_test.cpp) links nothing but int_arith.h, and the SystemC testbench
// (ts_bench.h) feeds the same beats; tests/rtl/contract_test.cpp compares its folds and cycles with
// the mapper's.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tilescale/quant/int_arith.h"

namespace tilescale::sim::host {

// ts_pkg constants (rtl/ts_pkg.sv).
inline constexpr int kShiftBits = 6;
inline constexpr int kStreamBits = 16;
inline constexpr int kCountBits = 12;
inline constexpr int kClampBits = 17;
inline constexpr int kDescBits = 5 + kStreamBits + 3 * kCountBits;  // ts_pkg::desc_t
inline constexpr int kLayerBits = 3 + kShiftBits + 2 * kClampBits;  // ts_pkg::layer_t

// The array a layer runs on (the ts_top parameters the host needs).
struct Arch {
  int rows = 4;        // Rows
  int cols = 4;        // Cols
  bool os = false;     // Dataflow == 1
  int regs = 4;        // RegsPerBank
  int acc_words = 64;  // AccWords
  int mant_bits = 16;  // MantBits (1: shift-only unit, mantissas must be 1)
  int wide_bits = 64;  // WideBits
  int act_lanes = 0;   // ActLanes (0: Rows)
  int out_lanes = 0;   // OutLanes (0: Cols)
  int act_lanes_or_rows() const { return act_lanes > 0 ? std::min(act_lanes, rows) : rows; }
  int out_lanes_or_cols() const { return out_lanes > 0 ? std::min(out_lanes, cols) : cols; }
};

// One Conv/Gemm layer as one GEMM: out[o][p] = sum_k act[p][k] * weight[k][o], o < n, p < m, with
// the block structure and requantization constants of int_arith.h.
struct GemmLayer {
  int64_t m = 0, n = 0, k = 0;                     // output pixels, output channels, reduction
  std::vector<int32_t> act;                        // [m][k] input codes
  std::vector<int32_t> weight;                     // [k][n] signed weight codes
  std::vector<int64_t> out_group;                  // [n] output-channel group of o
  std::vector<int64_t> red_group;                  // [k] reduction group of index k
  int64_t out_groups = 1, red_groups = 1;          // block of (o, k): out_group * red_groups + red
  std::vector<quant::FixedMultiplier> multiplier;  // [out_groups * red_groups]
  int frac_bits = 0;                               // F = max r
  std::vector<int64_t> bias_q;                     // [n] bias with F fractional bits
  bool act_signed = false;                         // input codes are signed
  bool out_signed = false;                         // output grid is signed
  int out_bits = 8;                                // output grid bits (<= ActBits)
  bool keep_acc = false;                           // logits: outputs are the wide accumulators
  quant::IntRange clamp;                           // output grid intersected with a fused clamp
};

// The golden outputs [n][m]: int_arith.h's acc, then saturate(round_shift_half_up(acc, F)).
inline std::vector<int64_t> reference(const GemmLayer& L) {
  std::vector<int64_t> out(static_cast<std::size_t>(L.n * L.m));
  for (int64_t o = 0; o < L.n; ++o) {
    for (int64_t p = 0; p < L.m; ++p) {
      std::vector<int64_t> psum(static_cast<std::size_t>(L.red_groups), 0);
      for (int64_t kk = 0; kk < L.k; ++kk)
        psum[static_cast<std::size_t>(L.red_group[kk])] +=
            int64_t{L.act[p * L.k + kk]} * L.weight[kk * L.n + o];
      int64_t acc = L.bias_q[o];
      for (int64_t r = 0; r < L.red_groups; ++r) {
        const quant::FixedMultiplier& fm =
            L.multiplier[static_cast<std::size_t>(L.out_group[o] * L.red_groups + r)];
        // (P * m) << (F - r): int_arith's shift function with a negative shift multiplies.
        acc += quant::round_shift_half_up(psum[static_cast<std::size_t>(r)] * fm.m,
                                          fm.r - L.frac_bits);
      }
      out[static_cast<std::size_t>(o * L.m + p)] =
          L.keep_acc ? acc : quant::saturate(quant::round_shift_half_up(acc, L.frac_bits), L.clamp);
    }
  }
  return out;
}

// One fold of the host's schedule: the mapper's SystolicFold plus what the descriptor carries.
struct Fold {
  int64_t m0 = 0, m_len = 0;   // output pixels [m0, m0 + m_len)
  int64_t n0 = 0, n_len = 0;   // output channels [n0, n0 + n_len)
  std::vector<int64_t> ks;     // reduction indices, in streaming (ws: row) order
  int64_t red_group = 0;       // their reduction group
  bool group_end = false;      // last fold of a run of one reduction group
  bool first_in_run = false;   // first fold of that run (group sums restart)
  bool first_in_tile = false;  // first group-end fold of its outputs (bias)
  bool output_end = false;     // last fold of its outputs
  int64_t rows_used = 0, cols_used = 0, stream = 0;
  std::vector<int64_t> reg_block;  // register r of the fold's bank holds block reg_block[r]
  std::vector<int> col_reg;        // [cols_used] register of column c
  int64_t scale_loads = 0;         // registers written before the fold (0: previous set kept)
};

enum class Align { Strict, Pad };  // as map::Align

// Reduction folds of <= rows indices that never mix groups (map::reduction_folds).
inline std::vector<std::vector<int64_t>> reduction_runs(const GemmLayer& L, int64_t rows,
                                                        Align align) {
  std::vector<std::vector<int64_t>> folds;
  if (align == Align::Strict) {
    for (int64_t k0 = 0; k0 < L.k; k0 += rows) {
      std::vector<int64_t> f;
      for (int64_t kk = k0; kk < std::min(L.k, k0 + rows); ++kk) {
        if (L.red_group[kk] != L.red_group[k0])
          throw std::invalid_argument("strict alignment: a fold would mix reduction groups");
        f.push_back(kk);
      }
      folds.push_back(f);
    }
    return folds;
  }
  int64_t run0 = 0;
  for (int64_t kk = 1; kk <= L.k; ++kk) {
    if (kk < L.k && L.red_group[kk] == L.red_group[run0]) continue;
    for (int64_t k0 = run0; k0 < kk; k0 += rows) {
      std::vector<int64_t> f;
      for (int64_t i = k0; i < std::min(kk, k0 + rows); ++i) f.push_back(i);
      folds.push_back(f);
    }
    run0 = kk;
  }
  return folds;
}

// The fold list in execution order (map::systolic_folds): ws: n tile, m tile of at most AccWords
// pixels, k fold; os: m tile, n tile, one segment per reduction group (all its indices streamed).
inline std::vector<Fold> make_folds(const GemmLayer& L, const Arch& A, Align align) {
  const int64_t R = A.rows, C = A.cols;
  std::vector<Fold> folds;
  auto add_tile = [&](int64_t m0, int64_t m_len, int64_t n0, int64_t n_len,
                      const std::vector<std::vector<int64_t>>& kf) {
    bool tile_scaled = false;
    for (std::size_t i = 0; i < kf.size(); ++i) {
      Fold f;
      f.m0 = m0;
      f.m_len = m_len;
      f.n0 = n0;
      f.n_len = n_len;
      f.ks = kf[i];
      f.red_group = L.red_group[kf[i][0]];
      f.group_end = i + 1 == kf.size() || L.red_group[kf[i + 1][0]] != f.red_group;
      f.first_in_run = i == 0 || folds.back().group_end;
      f.first_in_tile = f.group_end && !tile_scaled;
      tile_scaled = tile_scaled || f.group_end;
      f.output_end = i + 1 == kf.size();
      f.rows_used = A.os ? m_len : static_cast<int64_t>(kf[i].size());
      f.cols_used = n_len;
      f.stream = A.os ? static_cast<int64_t>(kf[i].size()) : m_len;
      std::set<int64_t> blocks;
      for (int64_t c = 0; c < n_len; ++c)
        blocks.insert(L.out_group[n0 + c] * L.red_groups + f.red_group);
      f.reg_block.assign(blocks.begin(), blocks.end());
      for (int64_t c = 0; c < n_len; ++c) {
        const int64_t blk = L.out_group[n0 + c] * L.red_groups + f.red_group;
        f.col_reg.push_back(static_cast<int>(
            std::lower_bound(f.reg_block.begin(), f.reg_block.end(), blk) - f.reg_block.begin()));
      }
      f.scale_loads = !folds.empty() && folds.back().reg_block == f.reg_block
                          ? 0
                          : static_cast<int64_t>(f.reg_block.size());
      folds.push_back(f);
    }
  };
  if (!A.os) {
    // Pixel tiles of at most AccWords pixels: the edge keeps one int32 and one wide word per
    // pixel and column of a fold (map::accumulator_words).
    const auto kf = reduction_runs(L, R, align);
    const int64_t words = A.acc_words;
    for (int64_t n0 = 0; n0 < L.n; n0 += C)
      for (int64_t m0 = 0; m0 < L.m; m0 += words)
        add_tile(m0, std::min(words, L.m - m0), n0, std::min(C, L.n - n0), kf);
  } else {
    std::vector<std::vector<int64_t>> segs(static_cast<std::size_t>(L.red_groups));
    for (int64_t kk = 0; kk < L.k; ++kk)
      segs[static_cast<std::size_t>(L.red_group[kk])].push_back(kk);
    segs.erase(std::remove_if(segs.begin(), segs.end(), [](const auto& s) { return s.empty(); }),
               segs.end());
    for (int64_t m0 = 0; m0 < L.m; m0 += R)
      for (int64_t n0 = 0; n0 < L.n; n0 += C)
        add_tile(m0, std::min(R, L.m - m0), n0, std::min(C, L.n - n0), segs);
  }
  return folds;
}

// The stall-free cycles of a layer (rtl/README.md, "Cycles"): first input beat taken to last
// output beat taken, both included. s_f is the cycle fold f's first vector is taken.
inline int64_t expected_cycles(const std::vector<Fold>& folds, const Arch& A) {
  const int64_t R = A.rows, C = A.cols;
  const int64_t AL = A.act_lanes_or_rows(), OL = A.out_lanes_or_cols();
  if (!A.os && (AL < R || OL < C)) {
    // Narrowed ports (rtl/README.md, "Narrowed ports"): e = the cycle a vector enters the array.
    int64_t s = std::max(R, folds[0].scale_loads), prev_out = -1, prev_beats = 0, e = 0;
    int64_t last_beats = 1;
    for (std::size_t f = 0; f < folds.size(); ++f) {
      const Fold& x = folds[f];
      const int64_t na = (x.rows_used + AL - 1) / AL;
      const int64_t no = x.output_end ? (x.cols_used + OL - 1) / OL : 0;
      e = s + na - 1;
      if (prev_out >= 0) e = std::max(e, prev_out + prev_beats);
      e += (x.stream - 1) * std::max(na, no);
      if (x.output_end) prev_out = e, prev_beats = no;
      last_beats = std::max<int64_t>(no, 1);
      if (f + 1 < folds.size()) s = std::max({e + 1, s + R, s + folds[f + 1].scale_loads});
    }
    return e + R + C + 4 + last_beats - 1;
  }
  int64_t s = A.os ? folds[0].scale_loads : std::max(R, folds[0].scale_loads);
  for (std::size_t f = 0; f + 1 < folds.size(); ++f) {
    const int64_t T = folds[f].stream, Tn = folds[f + 1].stream, Sn = folds[f + 1].scale_loads;
    s += A.os ? std::max({T, T + R - Tn, Sn}) : std::max({T, R, Sn});
  }
  return s + folds.back().stream + R + C + 3 + (A.os ? R : 0);
}

// A little-endian bit vector: one beat's payload, lane i of a packed port at [i*w +: w].
struct Bits {
  std::vector<uint32_t> w;
  explicit Bits(int width = 0) : w(static_cast<std::size_t>((width + 31) / 32), 0u) {}
  void set(int lsb, int width, uint64_t v) {
    for (int i = 0; i < width; ++i) {
      const int b = lsb + i;
      const uint32_t bit = static_cast<uint32_t>((v >> i) & 1u);
      w[static_cast<std::size_t>(b / 32)] =
          (w[static_cast<std::size_t>(b / 32)] & ~(1u << (b % 32))) | (bit << (b % 32));
    }
  }
  uint64_t get(int lsb, int width) const {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      const int b = lsb + i;
      v |= static_cast<uint64_t>((w[static_cast<std::size_t>(b / 32)] >> (b % 32)) & 1u) << i;
    }
    return v;
  }
  uint64_t u64() const {
    uint64_t v = w.empty() ? 0 : w[0];
    if (w.size() > 1) v |= static_cast<uint64_t>(w[1]) << 32;
    return v;
  }
};

inline int clog2_1(int n) {
  int b = 0;
  while ((1 << b) < n) ++b;
  return std::max(b, 1);
}

// Every beat a host sends for one layer, and the output beats it must receive, in order.
struct DescBeat {
  Bits desc{kDescBits}, layer{kLayerBits}, sel;
};
struct ScaleBeat {
  int reg = 0;
  uint64_t mant = 0;
  int shift = 0;
};
struct OutBeat {
  std::vector<int64_t> lane;             // [cols] expected values (int64), valid where mask
  uint32_t mask = 0;                     // columns carrying outputs
  bool last = false;                     // the layer's last output beat
  int64_t fold = 0, pixel0 = 0, n0 = 0;  // where it comes from, for messages
};
struct Stimulus {
  std::vector<DescBeat> desc;
  std::vector<Bits> wgt;      // ws preload rows
  std::vector<Bits> act;      // activation vectors (os: codes then weights, two Bits)
  std::vector<Bits> act_wgt;  // os: the weights beside each activation vector
  std::vector<ScaleBeat> scl;
  std::vector<Bits> bias;
  std::vector<OutBeat> out;
  int64_t cycles = 0;  // expected_cycles
};

// uint64 pattern of a (possibly negative) value in `bits` bits.
inline uint64_t field(int64_t v, int bits) {
  return bits >= 64 ? static_cast<uint64_t>(v)
                    : static_cast<uint64_t>(v) & ((uint64_t{1} << bits) - 1);
}

// Builds the beats. `junk` fills lanes the hardware must ignore (unused rows of activations,
// unused columns of weights and biases, unused register selects) with random codes; the
// expected outputs do not depend on them.
template <class Rng>
Stimulus make_stimulus(const GemmLayer& L, const Arch& A, const std::vector<Fold>& folds,
                       int act_bits, int weight_bits, Rng& junk) {
  const int R = A.rows, C = A.cols, sel_bits = clog2_1(A.regs);
  const int AL = A.act_lanes_or_rows(), OL = A.out_lanes_or_cols();
  const std::vector<int64_t> golden = reference(L);
  auto rnd = [&](int bits) { return static_cast<uint64_t>(junk()) & ((uint64_t{1} << bits) - 1); };
  Stimulus s;
  for (std::size_t fi = 0; fi < folds.size(); ++fi) {
    const Fold& f = folds[fi];
    // Descriptor (ts_pkg::desc_t, first field most significant) and layer constants.
    DescBeat d;
    d.desc.set(0, kCountBits, static_cast<uint64_t>(f.scale_loads));
    d.desc.set(12, kCountBits, static_cast<uint64_t>(f.cols_used));
    d.desc.set(24, kCountBits, static_cast<uint64_t>(f.rows_used));
    d.desc.set(36, kStreamBits, static_cast<uint64_t>(f.stream));
    d.desc.set(52, 1, f.output_end);
    d.desc.set(53, 1, f.first_in_tile);
    d.desc.set(54, 1, f.group_end);
    d.desc.set(55, 1, f.first_in_run);
    d.desc.set(56, 1, fi + 1 == folds.size());
    d.layer.set(0, kClampBits, field(L.clamp.hi, kClampBits));
    d.layer.set(17, kClampBits, field(L.clamp.lo, kClampBits));
    d.layer.set(34, kShiftBits, static_cast<uint64_t>(L.frac_bits));
    d.layer.set(40, 1, L.keep_acc);
    d.layer.set(41, 1, L.out_signed);
    d.layer.set(42, 1, L.act_signed);
    d.sel = Bits(C * sel_bits);
    for (int c = 0; c < C; ++c)
      d.sel.set(c * sel_bits, sel_bits,
                c < f.cols_used ? static_cast<uint64_t>(f.col_reg[c]) : rnd(sel_bits) % A.regs);
    s.desc.push_back(d);
    // Scale registers, in a shuffled order: the beat names its register.
    std::vector<int> order;
    for (int r = 0; r < f.scale_loads; ++r) order.push_back(r);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[junk() % i]);
    for (int r : order) {
      const quant::FixedMultiplier& fm =
          L.multiplier[static_cast<std::size_t>(f.reg_block[static_cast<std::size_t>(r)])];
      s.scl.push_back({r, static_cast<uint64_t>(fm.m), L.frac_bits - fm.r});
    }
    // Bias of the output tile, with the first group-end fold.
    if (f.first_in_tile) {
      Bits b(C * A.wide_bits);
      for (int c = 0; c < C; ++c)
        b.set(c * A.wide_bits, A.wide_bits,
              c < f.cols_used ? field(L.bias_q[f.n0 + c], A.wide_bits) : junk());
      s.bias.push_back(b);
    }
    if (!A.os) {
      // Preload: Rows rows, row r holds weight[ks[r]][n0 + c]; rows beyond rows_used are junk
      // (the controller writes zeros there).
      for (int r = 0; r < R; ++r) {
        Bits b(C * weight_bits);
        for (int c = 0; c < C; ++c) {
          const bool used = r < f.rows_used && c < f.cols_used;
          b.set(c * weight_bits, weight_bits,
                used ? field(L.weight[f.ks[r] * L.n + f.n0 + c], weight_bits) : rnd(weight_bits));
        }
        s.wgt.push_back(b);
      }
      // Vectors: pixel p's inputs at the fold's reduction indices, in beats of ActLanes rows
      // (ceil(rows_used / ActLanes) beats, beat b lane i = row b * ActLanes + i); unused rows
      // are junk.
      for (int64_t p = 0; p < f.stream; ++p) {
        for (int r0 = 0; r0 < f.rows_used; r0 += AL) {
          Bits b(AL * act_bits);
          for (int i = 0; i < AL; ++i) {
            const int r = r0 + i;
            b.set(i * act_bits, act_bits,
                  r < f.rows_used ? field(L.act[(f.m0 + p) * L.k + f.ks[r]], act_bits)
                                  : rnd(act_bits));
          }
          s.act.push_back(b);
          s.act_wgt.push_back(Bits(C * weight_bits));
        }
      }
    } else {
      // Step i: row r holds pixel m0 + r's input at ks[i], column c the weight of n0 + c.
      for (int64_t i = 0; i < f.stream; ++i) {
        Bits a(R * act_bits), w(C * weight_bits);
        for (int r = 0; r < R; ++r)
          a.set(
              r * act_bits, act_bits,
              r < f.rows_used ? field(L.act[(f.m0 + r) * L.k + f.ks[i]], act_bits) : rnd(act_bits));
        for (int c = 0; c < C; ++c)
          w.set(c * weight_bits, weight_bits,
                c < f.cols_used ? field(L.weight[f.ks[i] * L.n + f.n0 + c], weight_bits)
                                : rnd(weight_bits));
        s.act.push_back(a);
        s.act_wgt.push_back(w);
      }
    }
    // Outputs: ws one beat per pixel in order; os the tile's rows bottom first.
    if (f.output_end) {
      std::vector<int64_t> pixels;
      if (!A.os) {
        for (int64_t p = 0; p < f.m_len; ++p) pixels.push_back(p);
      } else {
        for (int64_t r = R - 1; r >= 0; --r)
          if (r < f.m_len) pixels.push_back(r);
      }
      // A pixel's outputs in beats of OutLanes columns: beat b lane i = column b * OutLanes + i.
      for (std::size_t i = 0; i < pixels.size(); ++i) {
        for (int c0 = 0; c0 < f.cols_used; c0 += OL) {
          OutBeat o;
          o.lane.assign(static_cast<std::size_t>(OL), 0);
          for (int j = 0; j < OL && c0 + j < f.cols_used; ++j) {
            o.lane[static_cast<std::size_t>(j)] =
                golden[static_cast<std::size_t>((f.n0 + c0 + j) * L.m + f.m0 + pixels[i])];
            o.mask |= 1u << j;
          }
          o.last = fi + 1 == folds.size() && i + 1 == pixels.size() && c0 + OL >= f.cols_used;
          o.fold = static_cast<int64_t>(fi);
          o.pixel0 = f.m0 + pixels[i];
          o.n0 = f.n0 + c0;
          s.out.push_back(o);
        }
      }
    }
  }
  s.cycles = expected_cycles(folds, A);
  return s;
}

// A grouped layer as one ts_top layer: `groups` are its conv groups (one GemmLayer each, with the
// layer's constants and global block ids, as sim::host_layers builds them), run back to back in
// one fold stream, group outermost, exactly as map::systolic_folds schedules the whole layer: a
// group's first fold loads no scales when its blocks equal the previous fold's, only the last
// fold of the last group is `last`, and the layer's cycles are the mapper's for the whole layer.
// Output beats name global channels (OutBeat::n0 = g * n + the fold's n0) and fold indices of the
// whole stream.
template <class Rng>
Stimulus make_group_stimulus(const std::vector<GemmLayer>& groups, const Arch& A, Align align,
                             int act_bits, int weight_bits, Rng& junk) {
  Stimulus all;
  std::vector<Fold> every;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::vector<Fold> folds = make_folds(groups[g], A, align);
    if (!every.empty() && every.back().reg_block == folds.front().reg_block)
      folds.front().scale_loads = 0;
    Stimulus s = make_stimulus(groups[g], A, folds, act_bits, weight_bits, junk);
    const bool final_group = g + 1 == groups.size();
    if (!final_group) {
      s.desc.back().desc.set(56, 1, 0);
      s.out.back().last = false;
    }
    for (OutBeat& o : s.out) {
      o.fold += static_cast<int64_t>(every.size());
      o.n0 += static_cast<int64_t>(g) * groups[g].n;
    }
    auto append = [](auto& to, auto& from) {
      to.insert(to.end(), std::make_move_iterator(from.begin()),
                std::make_move_iterator(from.end()));
    };
    append(all.desc, s.desc);
    append(all.wgt, s.wgt);
    append(all.act, s.act);
    append(all.act_wgt, s.act_wgt);
    append(all.scl, s.scl);
    append(all.bias, s.bias);
    append(all.out, s.out);
    every.insert(every.end(), folds.begin(), folds.end());
  }
  all.cycles = every.empty() ? 0 : expected_cycles(every, A);
  return all;
}

// A random layer for an array (the tests' generator): shapes, block structure, bit widths,
// scales, grids.
struct LayerCase {
  GemmLayer layer;
  Align align = Align::Pad;
  int a_bits = 8, w_bits = 8, scale_bits = 16;
  std::string str() const {
    std::ostringstream s;
    s << "m=" << layer.m << " n=" << layer.n << " k=" << layer.k << " a" << a_bits
      << (layer.act_signed ? "s" : "u") << " w" << w_bits << " blocks " << layer.out_groups << "x"
      << layer.red_groups << (align == Align::Strict ? " strict" : " pad") << " m_bits "
      << scale_bits << " F=" << layer.frac_bits << " out " << (layer.out_signed ? "s" : "u")
      << layer.out_bits << " clamp [" << layer.clamp.lo << "," << layer.clamp.hi << "]"
      << (layer.keep_acc ? " keep_acc" : "");
    return s.str();
  }
};

template <class Rng>
LayerCase random_layer(Rng& rng, const Arch& A, int act_bits) {
  auto pick = [&](int64_t lo, int64_t hi) {  // uniform in [lo, hi]
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t R = A.rows, C = A.cols;
  LayerCase lc;
  GemmLayer& L = lc.layer;
  const int shape = static_cast<int>(rng() % 8);
  // Shapes: 0 a Gemm (one pixel, many folds: back-to-back folds of T = 1), 1 one block per
  // layer, 2 (ws) every accumulator word in use, 3 (ws, AccWords <= 64) several pixel tiles, else
  // general; several tiles in m (os) and n, partial last tiles.
  // Small accumulators (ws) also get layers of up to two and a bit pixel tiles (shape 3).
  L.m = shape == 0                        ? 1
        : A.os                            ? pick(1, 2 * R + 1)
        : shape == 2                      ? A.acc_words
        : shape == 3 && A.acc_words <= 64 ? pick(A.acc_words + 1, 2 * A.acc_words + 3)
                                          : pick(1, std::min<int64_t>(A.acc_words, 3 * R));
  L.n = pick(1, 2 * C + 1);
  L.k = shape == 0 ? pick(2 * R, 6 * R) : pick(1, 4 * R);
  lc.a_bits = static_cast<int>(pick(4, act_bits));
  lc.w_bits = std::vector<int>{2, 4, 8}[rng() % 3];
  L.act_signed = rng() % 2 == 0;
  // Reduction groups: strict (runs of whole multiples of R, as block:BOxBI with R | BI) or pad
  // (runs of any length; a group may come back later, non-contiguous).
  L.red_group.assign(static_cast<std::size_t>(L.k), 0);
  lc.align = (shape != 1 && rng() % 3 == 0) ? Align::Strict : Align::Pad;
  if (shape != 1) {
    int64_t kk = 0, id = 0;
    const int64_t ids = pick(1, 4);
    while (kk < L.k) {
      const int64_t len = lc.align == Align::Strict ? R * pick(1, 2) : pick(1, 2 * R);
      const int64_t g = lc.align == Align::Strict ? id++ : pick(0, ids - 1);
      for (int64_t i = 0; i < len && kk < L.k; ++i) L.red_group[kk++] = g;
    }
  }
  // Dense ids in order of first use.
  std::vector<int64_t> remap(64, -1);
  L.red_groups = 0;
  for (auto& g : L.red_group) {
    if (remap[g] < 0) remap[g] = L.red_groups++;
    g = remap[g];
  }
  // Output groups: contiguous runs (block:BO) or scattered (a permuted channel order).
  L.out_groups = shape == 1 ? 1 : pick(1, std::min<int64_t>(C, 4));
  L.out_group.resize(static_cast<std::size_t>(L.n));
  const int64_t bo = pick(1, C);
  const bool scattered = rng() % 2 == 0;
  for (int64_t o = 0; o < L.n; ++o)
    L.out_group[o] = scattered ? pick(0, L.out_groups - 1) : (o / bo) % L.out_groups;
  // Operands.
  const quant::IntRange ar =
      L.act_signed ? quant::signed_range(lc.a_bits) : quant::unsigned_range(lc.a_bits);
  const quant::IntRange wr = quant::signed_range(lc.w_bits);
  L.act.resize(static_cast<std::size_t>(L.m * L.k));
  L.weight.resize(static_cast<std::size_t>(L.k * L.n));
  for (auto& a : L.act) a = static_cast<int32_t>(pick(ar.lo, ar.hi));
  for (auto& w : L.weight) w = static_cast<int32_t>(pick(wr.lo, wr.hi));
  // Output grid and clamp.
  L.out_signed = rng() % 2 == 0;
  L.out_bits = static_cast<int>(pick(4, act_bits));
  const quant::IntRange grid =
      L.out_signed ? quant::signed_range(L.out_bits) : quant::unsigned_range(L.out_bits);
  L.clamp = grid;
  const int clamp_kind = static_cast<int>(rng() % 4);
  if (clamp_kind == 1) {
    L.clamp.lo = std::max<int64_t>(0, grid.lo);  // fused Relu
  } else if (clamp_kind == 2) {
    L.clamp.lo = pick(grid.lo, grid.hi);  // fused Clip
    L.clamp.hi = pick(L.clamp.lo, grid.hi);
  }
  L.keep_acc = rng() % 10 == 0;
  // Block multipliers: outputs of a few grid steps, so rounding and both saturation ends occur.
  // Shift-only hardware takes powers of two (1-bit mantissas); the fixed unit runs both kinds.
  lc.scale_bits = A.mant_bits == 1 ? 1 : std::vector<int>{A.mant_bits, 8, 1}[rng() % 3];
  const double a_rms = std::ldexp(1.0, lc.a_bits - 1), w_rms = std::ldexp(1.0, lc.w_bits - 1) / 1.7;
  std::vector<int64_t> len(static_cast<std::size_t>(L.red_groups), 0);
  for (int64_t g : L.red_group) ++len[static_cast<std::size_t>(g)];
  L.multiplier.resize(static_cast<std::size_t>(L.out_groups * L.red_groups));
  for (int64_t b = 0; b < L.out_groups * L.red_groups; ++b) {
    const double typ = std::sqrt(static_cast<double>(len[b % L.red_groups])) * a_rms * w_rms;
    const double M = std::ldexp(1.0, L.out_bits - 1) / typ /
                     std::sqrt(static_cast<double>(L.red_groups)) *
                     std::exp2(3.0 * unit(rng) - 1.5);
    L.multiplier[static_cast<std::size_t>(b)] = quant::to_fixed_multiplier(M, lc.scale_bits);
  }
  L.frac_bits = 0;
  for (const auto& fm : L.multiplier) L.frac_bits = std::max(L.frac_bits, fm.r);
  // F must be a 6-bit shift; the tiny layers here never need more (asserted by the caller).
  const int64_t span = int64_t{1} << std::min(L.frac_bits + L.out_bits, 60);
  L.bias_q.resize(static_cast<std::size_t>(L.n));
  for (auto& b : L.bias_q) b = pick(-span / 2, span / 2);
  return lc;
}

}  // namespace tilescale::sim::host
