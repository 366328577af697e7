// The SystemC CIM macro (sim/cim.h): seeded random layers bit-exact against quant/adc.h's rule
// (cim_tile_sum_reference, independent of both the model and the fast golden kernel) with
// clipping, lossless and full-scale ADCs, one and several crossbar rounds, ADC sharing from 1 to
// all columns; its measured cycles equal the mapper's CIM prediction; every layer of resnet8 (and
// the other zoo models) for one image bit-exact on cim128_2b against the ADC-aware golden executor.
// A separate binary from sim_tests: SystemC elaborates one model per process.
#include "tilescale/sim/cim.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>

#include "support/cim_jobs.h"
#include "support/zoo_w4a8.h"
#include "tilescale/map/mapper.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/quantize.h"
#include "tilescale/sim/network_sim.h"

namespace tilescale::sim {
namespace {

const std::string kSource = TILESCALE_SOURCE_DIR;
using test::cim_arch;
using test::expected_codes;
using test::random_job;

uint32_t seed_or(uint32_t fixed) {
  const char* env = std::getenv("TILESCALE_TEST_SEED");
  return env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : fixed;
}

// The macro's energy events against the mapper's count: equal event for event, except that the
// mapper counts every row of every read as driven (its bound) where the macro counts the rows
// whose input digit is not 0.
void expect_events_match(const map::CimEvents& sim, const map::CimEvents& mapped, bool tight) {
  map::CimEvents a = sim, b = mapped;
  EXPECT_LE(a.active_cells, b.active_cells);
  EXPECT_GT(a.active_cells, 0);
  if (tight) {
    EXPECT_EQ(a.active_cells, b.active_cells);
  }
  a.active_cells = b.active_cells = 0;
  EXPECT_EQ(map::to_json(a).dump(), map::to_json(b).dump());
}

map::CimEvents predicted_events(const GemmJob& job, const map::ArchConfig& arch) {
  map::MapOptions o;
  o.align = map::Align::Pad;
  return map::map_layer(job.layer, arch, o).cim_events;
}

int64_t predicted_cycles(const GemmJob& job, const map::ArchConfig& arch) {
  map::MapOptions o;
  o.align = map::Align::Pad;
  return map::map_layer(job.layer, arch, o).cycles;
}

struct RandomCase {
  int64_t groups, m, n, k, bo, bi;
  int w_bits, a_bits;
  bool a_signed, keep_acc;
  int rows, cols, cell_bits, adc_bits, cols_per_adc, input_bits, macros;
  quant::AdcRange range;
};

TEST(CimSim, RandomLayersBitExactWithTheAdcRuleAndCyclesAsPredicted) {
  using quant::AdcRange;
  const RandomCase cases[] = {
      // one round, clipping 3-bit ADCs shared by 4 columns
      {1, 5, 6, 40, 3, 40, 4, 8, false, false, 16, 32, 2, 3, 4, 1, 4, AdcRange::Clip},
      // several rounds (2 macros), blocks along the reduction, signed inputs
      {1, 4, 20, 50, 4, 10, 4, 6, true, false, 16, 16, 2, 4, 2, 1, 2, AdcRange::Clip},
      // groups, 3-bit cells (slices straddle ADC groups), 2 input bits per step, full-scale rule
      {3, 3, 5, 20, 5, 20, 5, 8, false, true, 8, 12, 3, 5, 3, 2, 4, AdcRange::Rows},
      // one ADC for all columns; one ADC per column; lossless 10-bit ADCs
      {1, 3, 4, 30, 2, 30, 8, 8, true, false, 32, 16, 1, 4, 16, 1, 8, AdcRange::Clip},
      {1, 3, 4, 30, 1, 15, 3, 4, false, false, 32, 8, 2, 3, 1, 3, 1, AdcRange::Clip},
      {2, 4, 7, 70, 7, 70, 4, 8, false, true, 64, 32, 2, 10, 8, 1, 3, AdcRange::Clip},
  };
  const uint32_t seed = seed_or(1234);
  std::mt19937 gen(seed);
  int idx = 0;
  for (const RandomCase& c : cases) {
    SCOPED_TRACE("case " + std::to_string(idx++) + ", seed " + std::to_string(seed) +
                 " (rerun with TILESCALE_TEST_SEED=" + std::to_string(seed) + ")");
    const map::ArchConfig arch = cim_arch(c.rows, c.cols, c.cell_bits, c.adc_bits, c.cols_per_adc,
                                          c.input_bits, c.macros, c.range);
    GemmJob job = random_job(gen, c.groups, c.m, c.n, c.k, c.bo, c.bi, c.w_bits, c.a_bits,
                             c.a_signed, c.keep_acc);
    job.expected = expected_codes(job, arch.cim_numerics());
    const CimLayerRun r = CimSim::instance().run(job, arch, SimOptions{});
    EXPECT_EQ(r.run.mismatches, 0) << r.run.first_mismatch.str();
    EXPECT_EQ(r.run.output, job.expected);
    EXPECT_EQ(r.run.cycles, predicted_cycles(job, arch));
    EXPECT_GT(r.events.adc_conversions, 0);
    expect_events_match(r.events, predicted_events(job, arch), false);
    EXPECT_EQ(r.events.cell_writes > 0, r.rounds > 1);  // several rounds: reprogrammed
  }
}

// With every input bit set every row is driven in every step: the mapper's bound is reached.
TEST(CimSim, EnergyEventsReachTheMappersBoundWhenEveryInputDigitIsOne) {
  std::mt19937 gen(seed_or(99));
  for (const int macros : {1, 8}) {  // several rounds (reprogramming) and one
    GemmJob job = random_job(gen, 2, 3, 6, 40, 6, 20, 4, 6, false, false);
    std::fill(job.act.begin(), job.act.end(), (1 << 6) - 1);
    const map::ArchConfig arch = cim_arch(16, 16, 2, 4, 4, 1, macros, quant::AdcRange::Clip);
    job.expected = expected_codes(job, arch.cim_numerics());
    const CimLayerRun r = CimSim::instance().run(job, arch, SimOptions{});
    EXPECT_EQ(r.run.mismatches, 0);
    expect_events_match(r.events, predicted_events(job, arch), true);
    EXPECT_EQ(r.events.cell_writes > 0, macros == 1) << "macros " << macros;
  }
}

TEST(CimSim, AdcSharingCostsColsPerAdcCyclesPerInputStep) {
  // The same layer with 1, 2, 4 and 8 columns per ADC: one round, so N * cols_per_adc + 6 cycles.
  std::mt19937 gen(seed_or(77));
  GemmJob job = random_job(gen, 1, 6, 4, 24, 4, 24, 4, 8, false, false);
  const int64_t reads = 6 * 8;  // pixels x input steps
  for (const int cpa : {1, 2, 4, 8}) {
    const map::ArchConfig arch = cim_arch(32, 16, 2, 6, cpa, 1, 2, quant::AdcRange::Clip);
    job.expected = expected_codes(job, arch.cim_numerics());
    const CimLayerRun r = CimSim::instance().run(job, arch, SimOptions{});
    EXPECT_EQ(r.run.mismatches, 0);
    EXPECT_EQ(r.events.xbar_reads, reads);
    EXPECT_EQ(r.run.cycles, reads * cpa + 6) << "cols_per_adc " << cpa;
  }
}

const quant::QuantizedModel& zoo_bundle(const std::string& model, const std::string& ds,
                                        const std::string& granularity) {
  static std::map<std::string, quant::QuantizedModel> cache;
  const std::string key = model + granularity;
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, test::quantize_w4a8(model, ds, granularity)).first;
  return it->second;
}

// Every layer of the zoo for one image on cim128_2b (6-bit ADCs: clipping on most layers) bit-exact
// with the ADC-aware golden executor, each layer's cycles equal to the mapper's prediction.
TEST(CimSim, ZooEveryLayerOfOneImageBitExactOnCim128) {
  const map::ArchConfig arch = map::ArchConfig::parse_file(kSource + "/configs/cim128_2b.json");
  for (const auto& [model, ds, g] : {std::tuple<std::string, std::string, std::string>{
                                         "resnet8_fmnist", "fmnist", "block:16x16"},
                                     {"lenet5_mnist", "mnist", "channel"},
                                     {"mobilenet_fmnist", "fmnist", "block:16x16"}}) {
    SCOPED_TRACE(model + " " + g);
    SimOptions opt;
    opt.align = map::Align::Pad;
    const Dataset test = load_named(ds, "test", default_data_dir());
    const NetworkRun run = simulate_network_cim(zoo_bundle(model, ds, g), arch, test, 1, opt);
    EXPECT_EQ(run.mismatches, 0) << run.first_mismatch;
    EXPECT_GT(run.energy.total(), 0);
    for (const LayerTotals& l : run.layers) {
      EXPECT_EQ(l.cycles, l.native_cycles) << l.name;
      EXPECT_GT(l.cim_events.adc_conversions, 0) << l.name;
      // Energy: the events the macro counted equal the mapper's, layer by layer, but for the
      // driven cells (data-dependent, at most the mapper's bound); so does the energy.
      SCOPED_TRACE(l.name);
      expect_events_match(l.cim_events, l.map_events, false);
      EXPECT_DOUBLE_EQ(l.energy.adc, l.map_energy.adc);
      EXPECT_DOUBLE_EQ(l.energy.scale, l.map_energy.scale);
      EXPECT_DOUBLE_EQ(l.energy.sram, l.map_energy.sram);
      EXPECT_LT(l.energy.xbar, l.map_energy.xbar);
      EXPECT_GT(l.energy.total(), 0);
    }
  }
}

}  // namespace
}  // namespace tilescale::sim
