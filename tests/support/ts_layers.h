// What the ts_top tests share (tests/sim/twin_test.cpp, tests/rtl/lockstep_test.cpp): the ts_top
// parameters of a generated RtlConfig as a TopParams for the SystemC twin, the host's view of the
// config, and seeded random layers for the bench with the mapper's cycle prediction of each (the
// prediction the measured cycles are checked against; the models never see it).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"
#include "tilescale/sim/ts_bench.h"
#include "tilescale/sim/ts_pins.h"
#include "tilescale_rtl_configs.h"

namespace tilescale::test {

// Every ts_top parameter of a generated config, for TsTopModel<ParamsOf<C>>.
template <const rtl::RtlConfig& C>
using ParamsOf =
    sim::TopParams<C.rows, C.cols, C.dataflow, C.act_bits, C.weight_bits, C.acc_bits, C.scale_kind,
                   C.mant_bits, C.scale_banks, C.regs_per_bank, C.acc_words, C.wide_bits>;

inline sim::host::Arch arch_of(const rtl::RtlConfig& c) {
  sim::host::Arch a;
  a.rows = c.rows;
  a.cols = c.cols;
  a.os = c.dataflow == 1;
  a.regs = c.regs_per_bank;
  a.acc_words = c.acc_words;
  a.mant_bits = c.mant_bits;
  a.wide_bits = c.wide_bits;
  return a;
}

// The mapper's view of a host layer (for map::systolic_folds / native_systolic_cycles).
inline map::LayerWorkload workload_of(const sim::host::GemmLayer& L, int a_bits, int w_bits) {
  map::LayerWorkload w;
  w.name = "random";
  w.is_conv = false;
  w.m = L.m;
  w.n = L.n;
  w.k = L.k;
  w.cin_g = L.k;
  w.w_bits = w_bits;
  w.a_bits = a_bits;
  w.act_signed = L.act_signed;
  w.out_group = L.out_group;
  w.red_group = L.red_group;
  w.out_groups = L.out_groups;
  w.red_groups = L.red_groups;
  w.granularity = "random";
  return w;
}

inline int64_t mapper_cycles(const sim::host::GemmLayer& L, const sim::host::LayerCase& lc,
                             const map::ArchConfig& arch) {
  const std::vector<map::SystolicFold> mf = map::systolic_folds(
      workload_of(L, lc.a_bits, lc.w_bits), arch,
      lc.align == sim::host::Align::Strict ? map::Align::Strict : map::Align::Pad);
  return map::native_systolic_cycles(mf, arch).stall_free_cycles;
}

// $TILESCALE_SEED or a fresh seed, printed once.
inline uint64_t test_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("TILESCALE_SEED");
    const uint64_t s = env != nullptr ? std::strtoull(env, nullptr, 0) : std::random_device{}();
    std::cout << "TILESCALE_SEED=" << s << " (set it to rerun with this seed)\n";
    return s;
  }();
  return seed;
}
inline std::string seed_note() { return "TILESCALE_SEED=" + std::to_string(test_seed()); }

// Random layers for the bench (host::random_layer: ws/os as the config, shift-only and
// fixed-point multipliers, w_bits 2/4/8, partial last blocks and tiles), each with the traffic
// given, and the mapper's stall-free cycles of each.
struct RandomLayers {
  std::vector<sim::BenchLayer> layers;
  std::vector<int64_t> mapper;  // per layer, map::native_systolic_cycles, cycles
};
inline RandomLayers random_layers(const rtl::RtlConfig& C, int n, uint64_t seed, double out_stall,
                                  double in_gap) {
  std::mt19937_64 rng(seed);
  const sim::host::Arch A = arch_of(C);
  const map::ArchConfig arch =
      map::ArchConfig::parse_file(std::string(TILESCALE_SOURCE_DIR) + "/" + C.source);
  RandomLayers out;
  while (static_cast<int>(out.layers.size()) < n) {
    const sim::host::LayerCase lc = sim::host::random_layer(rng, A, C.act_bits);
    if (lc.layer.frac_bits < 0 || lc.layer.frac_bits > 63) continue;  // not a 6-bit F
    const std::vector<sim::host::Fold> folds = sim::host::make_folds(lc.layer, A, lc.align);
    sim::BenchLayer b;
    b.stim = sim::host::make_stimulus(lc.layer, A, folds, C.act_bits, C.weight_bits, rng);
    b.name = lc.str();
    b.out_stall = out_stall;
    b.in_gap = in_gap;
    out.layers.push_back(std::move(b));
    out.mapper.push_back(mapper_cycles(lc.layer, lc, arch));
  }
  return out;
}

}  // namespace tilescale::test
