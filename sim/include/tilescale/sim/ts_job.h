// A layer as the network simulation builds it (GemmJob: the mapper's LayerWorkload and the
// operands in hardware order, from make_gemm_job) as ts_top's host sees it: one host::GemmLayer per
// conv group, so the SystemC testbench (ts_bench.h) can feed network layers to the Verilated RTL.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tilescale/sim/systolic.h"
#include "tilescale/sim/ts_host.h"

namespace tilescale::sim {

// Smallest output grid that holds job.clamp: signed iff the clamp reaches below zero. The RTL's
// requantizer saturates to that grid, then ts_edge clamps to [lo, hi]; since [lo, hi] lies inside
// it, the result is int_arith's saturate(round_shift_half_up(acc, F), [lo, hi]) for any such grid.
inline int host_out_bits(const quant::IntRange& clamp, bool* out_signed) {
  *out_signed = clamp.lo < 0;
  for (int b = 1; b <= 62; ++b) {
    const quant::IntRange g = *out_signed ? quant::signed_range(b) : quant::unsigned_range(b);
    if (g.lo <= clamp.lo && clamp.hi <= g.hi) return b;
  }
  throw std::invalid_argument("output clamp wider than 62 bits");
}

// One GemmLayer per conv group g: act [m][k] and weight [k][n] of that group, output channels
// g * n .. g * n + n - 1 (their out_group and bias), the layer's blocks and constants.
inline std::vector<host::GemmLayer> host_layers(const GemmJob& job) {
  const map::LayerWorkload& w = job.layer;
  std::vector<host::GemmLayer> out;
  for (int64_t g = 0; g < w.groups; ++g) {
    host::GemmLayer L;
    L.m = w.m;
    L.n = w.n;
    L.k = w.k;
    L.act.assign(job.act.begin() + g * w.m * w.k, job.act.begin() + (g + 1) * w.m * w.k);
    L.weight.assign(job.weight.begin() + g * w.k * w.n, job.weight.begin() + (g + 1) * w.k * w.n);
    L.out_group.assign(w.out_group.begin() + g * w.n, w.out_group.begin() + (g + 1) * w.n);
    L.red_group = w.red_group;
    L.out_groups = w.out_groups;
    L.red_groups = w.red_groups;
    L.multiplier = job.multiplier;
    L.frac_bits = job.frac_bits;
    L.bias_q.assign(job.bias_q.begin() + g * w.n, job.bias_q.begin() + (g + 1) * w.n);
    L.act_signed = w.act_signed;
    L.keep_acc = job.keep_acc;
    L.clamp = job.clamp;
    L.out_bits = job.keep_acc ? 0 : host_out_bits(job.clamp, &L.out_signed);
    out.push_back(std::move(L));
  }
  return out;
}

}  // namespace tilescale::sim
