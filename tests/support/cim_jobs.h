// Seeded random CIM layers and their expected outputs by quant/adc.h's rule, tile by tile with
// cim_tile_sum_reference (independent of the SystemC macro and of the fast golden kernel), for the
// macro's tests (tests/sim/cim_test.cpp) and its lockstep with the Verilated shift-add
// (tests/rtl/cim_shift_add_lockstep_test.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tilescale/map/arch_config.h"
#include "tilescale/quant/adc.h"
#include "tilescale/quant/int_arith.h"
#include "tilescale/sim/systolic.h"

namespace tilescale::test {

// configs/cim128_2b.json with the crossbar, cell, ADC and input-step fields replaced (and scale
// registers unbounded).
inline map::ArchConfig cim_arch(int rows, int cols, int cell_bits, int adc_bits, int cols_per_adc,
                                int input_bits, int macros, quant::AdcRange range) {
  map::ArchConfig a =
      map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/configs/cim128_2b.json");
  a.xbar_rows = rows;
  a.xbar_cols = cols;
  a.cell_bits = cell_bits;
  a.adc_bits = adc_bits;
  a.cols_per_adc = cols_per_adc;
  a.input_bits_per_cycle = input_bits;
  a.macros = macros;
  a.adc_range = range;
  a.scale_regs_per_tile = 1 << 16;
  return a;
}

// A random grouped GEMM in hardware order with blocks of bo output x bi reduction indices.
inline sim::GemmJob random_job(std::mt19937& gen, int64_t groups, int64_t m, int64_t n, int64_t k,
                               int64_t bo, int64_t bi, int w_bits, int a_bits, bool a_signed,
                               bool keep_acc) {
  auto uni = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen);
  };
  sim::GemmJob job;
  map::LayerWorkload& L = job.layer;
  L.name = "random";
  L.groups = groups;
  L.m = m;
  L.n = n;
  L.k = k;
  L.cin_g = k;
  L.w_bits = w_bits;
  L.a_bits = a_bits;
  L.act_signed = a_signed;
  L.out_groups = (groups * n + bo - 1) / bo;
  L.red_groups = (k + bi - 1) / bi;
  for (int64_t o = 0; o < groups * n; ++o) L.out_group.push_back(o / bo);
  for (int64_t i = 0; i < k; ++i) L.red_group.push_back(i / bi);
  const quant::IntRange ar = a_signed ? quant::signed_range(a_bits) : quant::unsigned_range(a_bits);
  const quant::IntRange wr = quant::signed_range(w_bits);
  for (int64_t i = 0; i < groups * m * k; ++i)
    job.act.push_back(uni(0, 3) == 0 ? 0 : static_cast<int32_t>(uni(ar.lo, ar.hi)));
  for (int64_t i = 0; i < groups * k * n; ++i)
    job.weight.push_back(static_cast<int32_t>(uni(wr.lo, wr.hi)));
  int F = 0;
  for (int64_t b = 0; b < L.out_groups * L.red_groups; ++b) {
    quant::FixedMultiplier f;
    f.m = uni(1 << 15, (1 << 16) - 1);
    f.r = static_cast<int>(uni(22, 25));
    F = std::max(F, f.r);
    job.multiplier.push_back(f);
  }
  job.frac_bits = F;
  for (int64_t o = 0; o < groups * n; ++o) job.bias_q.push_back(uni(-(1 << 20), 1 << 20));
  job.keep_acc = keep_acc;
  job.clamp = quant::signed_range(8);
  return job;
}

// quant/adc.h's rule, tile by tile with cim_tile_sum_reference: [groups * n][m] codes.
inline std::vector<int64_t> expected_codes(const sim::GemmJob& job, const quant::AdcNumerics& adc) {
  const map::LayerWorkload& L = job.layer;
  const auto tiles = quant::crossbar_row_tiles(L.red_group, adc.xbar_rows);
  std::vector<int64_t> out(static_cast<std::size_t>(L.groups * L.n * L.m));
  std::vector<int64_t> x, w;
  for (int64_t g = 0; g < L.groups; ++g)
    for (int64_t o = 0; o < L.n; ++o)
      for (int64_t p = 0; p < L.m; ++p) {
        int64_t acc = job.bias_q[static_cast<std::size_t>(g * L.n + o)];
        for (const quant::RowTile& t : tiles) {
          x.clear();
          w.clear();
          for (int64_t r = t.k0; r < t.k0 + t.length; ++r) {
            x.push_back(job.act[static_cast<std::size_t>((g * L.m + p) * L.k + r)]);
            w.push_back(job.weight[static_cast<std::size_t>((g * L.k + r) * L.n + o)]);
          }
          const int64_t blk =
              L.out_group[static_cast<std::size_t>(g * L.n + o)] * L.red_groups + t.red_group;
          const quant::FixedMultiplier& f = job.multiplier[static_cast<std::size_t>(blk)];
          acc += quant::cim_tile_sum_reference(x.data(), w.data(), t.length, L.a_bits, L.act_signed,
                                               L.w_bits, adc) *
                 f.m * (int64_t{1} << (job.frac_bits - f.r));
        }
        out[static_cast<std::size_t>((g * L.n + o) * L.m + p)] =
            job.keep_acc
                ? acc
                : quant::saturate(quant::round_shift_half_up(acc, job.frac_bits), job.clamp);
      }
  return out;
}

}  // namespace tilescale::test
