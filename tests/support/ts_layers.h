// What the ts_top tests share (tests/sim/twin_test.cpp, tests/rtl/lockstep_test.cpp,
// tests/rtl/sc_top_test.cpp): seeded random layers for the bench with the mapper's cycle prediction
// of each (with the config's SRAM port widths) (the prediction the measured cycles are checked
// against; the models never see it), and the test seed. A config's TopParams and host view are
// sim::ParamsOf / sim::arch_of (tilescale/sim/ts_rtl_config.h).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "support/test_seed.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/tiling.h"
#include "tilescale/map/workload.h"
#include "tilescale/sim/ts_bench.h"
#include "tilescale/sim/ts_pins.h"
#include "tilescale/sim/ts_rtl_config.h"

namespace tilescale::test {

// The traffic of the random back-pressure benches (lockstep, twin, sc_top).
constexpr double kOutStall = 0.3;  // probability that out_ready_i is low in a traffic cycle
constexpr double kInGap = 0.25;    // probability that a stream withholds its next beat

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
  return map::native_systolic_cycles(mf, arch).cycles;
}

// Random layers for the bench (host::random_layer: ws/os as the config, shift-only and
// fixed-point multipliers, w_bits 2/4/8, partial last blocks and tiles), each with the traffic
// given, and the mapper's stall-free cycles of each.
struct RandomLayers {
  std::vector<sim::BenchLayer> layers;
  std::vector<int64_t> mapper;  // per layer, map::native_systolic_cycles().cycles
  int64_t port_cycles = 0;      // sum over layers of cycles - stall_free_cycles (narrow ports)
};
inline RandomLayers random_layers(const rtl::RtlConfig& C, int n, uint64_t seed, double out_stall,
                                  double in_gap) {
  std::mt19937_64 rng(seed);
  const sim::host::Arch A = sim::arch_of(C);
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
    const std::vector<map::SystolicFold> mf = map::systolic_folds(
        workload_of(lc.layer, lc.a_bits, lc.w_bits), arch,
        lc.align == sim::host::Align::Strict ? map::Align::Strict : map::Align::Pad);
    out.port_cycles += map::native_systolic_cycles(mf, arch).stalls();
  }
  return out;
}

}  // namespace tilescale::test
