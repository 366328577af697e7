#include "tilescale/map/cim_energy.h"

#include <algorithm>
#include <set>
#include <utility>

namespace tilescale::map {

CimEvents& CimEvents::operator+=(const CimEvents& o) {
  xbar_reads += o.xbar_reads;
  active_cells += o.active_cells;
  adc_conversions += o.adc_conversions;
  shift_add_ops += o.shift_add_ops;
  scale_ops += o.scale_ops;
  accumulations += o.accumulations;
  requants += o.requants;
  ifmap_words += o.ifmap_words;
  ofmap_words += o.ofmap_words;
  weight_words += o.weight_words;
  cell_writes += o.cell_writes;
  return *this;
}

bool CimEvents::operator==(const CimEvents& o) const {
  return xbar_reads == o.xbar_reads && active_cells == o.active_cells &&
         adc_conversions == o.adc_conversions && shift_add_ops == o.shift_add_ops &&
         scale_ops == o.scale_ops && accumulations == o.accumulations && requants == o.requants &&
         ifmap_words == o.ifmap_words && ofmap_words == o.ofmap_words &&
         weight_words == o.weight_words && cell_writes == o.cell_writes;
}

CimEnergy& CimEnergy::operator+=(const CimEnergy& o) {
  xbar += o.xbar;
  adc += o.adc;
  shift_add += o.shift_add;
  scale += o.scale;
  accumulate += o.accumulate;
  requant += o.requant;
  sram += o.sram;
  return *this;
}

CimEnergy CimEnergy::operator*(double f) const {
  CimEnergy r = *this;
  for (double* v : {&r.xbar, &r.adc, &r.shift_add, &r.scale, &r.accumulate, &r.requant, &r.sram})
    *v *= f;
  return r;
}

CimEnergyTable CimEnergyTable::from(const AreaTable& table, const ArchConfig& arch) {
  CimEnergyTable t;
  t.adc_pj = table.estimate("cim_energy_adc_pj_" + std::to_string(arch.adc_bits) + "b");
  t.cell_read_pj = table.estimate("cim_energy_cell_read_pj");
  t.add_pj = table.estimate("energy_add32_pj");
  t.mult_pj = table.estimate("energy_mult32_pj");
  t.sram_bit_pj = table.estimate("energy_sram_pj_per_bit");
  t.act_bits = arch.act_bits;
  t.weight_bits = arch.weight_bits;
  t.source = table.params_source;
  return t;
}

CimEnergy cim_energy(const CimEvents& e, const CimEnergyTable& t) {
  auto d = [](int64_t v) { return static_cast<double>(v); };
  CimEnergy r;
  r.xbar = d(e.active_cells) * t.cell_read_pj;
  r.adc = d(e.adc_conversions) * t.adc_pj;
  r.shift_add = d(e.shift_add_ops) * t.add_pj;
  r.scale = d(e.scale_ops) * t.mult_pj;
  // The wide accumulator and the requantizer's rounding add are 48/64-bit adders: two 32-bit adds.
  r.accumulate = d(e.accumulations) * 2 * t.add_pj;
  r.requant = d(e.requants) * 2 * t.add_pj;
  r.sram = (d(e.ifmap_words + e.ofmap_words) * t.act_bits + d(e.weight_words) * t.weight_bits) *
           t.sram_bit_pj;
  return r;
}

CimEvents cim_layer_events(const LayerWorkload& l, const ArchConfig& arch,
                           const std::vector<KFold>& folds) {
  const int64_t slices = arch.weight_slices(l.w_bits);
  const int64_t ch_per_xbar = arch.xbar_cols / slices;
  // Bit-serial input steps (quant/adc.h input_steps): a signed input's sign bit has its own step.
  const int64_t ipc = arch.input_bits_per_cycle;
  const int64_t steps =
      l.act_signed ? (l.a_bits - 1 + ipc - 1) / ipc + 1 : (l.a_bits + ipc - 1) / ipc;
  const int64_t m = l.m;
  // The crossbars in the order the macro runs them: group, column tile, row tile.
  struct Xbar {
    int64_t g, fold, n;
  };
  std::vector<Xbar> xbars;
  for (int64_t g = 0; g < l.groups; ++g)
    for (int64_t n0 = 0; n0 < l.n; n0 += ch_per_xbar)
      for (std::size_t f = 0; f < folds.size(); ++f)
        xbars.push_back({g, static_cast<int64_t>(f), std::min(ch_per_xbar, l.n - n0)});
  const int64_t count = static_cast<int64_t>(xbars.size());
  const int64_t macros = arch.macros;
  const int64_t rounds = (count + macros - 1) / macros;
  CimEvents e;
  e.xbar_reads = rounds * m * steps;
  for (int64_t r = 0; r < rounds; ++r) {
    // A round's crossbars that share a row tile of one group share its input registers.
    std::set<std::pair<int64_t, int64_t>> inputs;
    for (int64_t i = r * macros; i < std::min(count, (r + 1) * macros); ++i) {
      const Xbar& x = xbars[static_cast<std::size_t>(i)];
      const int64_t rows = folds[static_cast<std::size_t>(x.fold)].length;
      const int64_t cols = x.n * slices;
      e.active_cells += rows * cols * m * steps;  // every digit non-zero: the upper bound
      e.adc_conversions += cols * m * steps;
      e.shift_add_ops += (cols + x.n) * m * steps;
      e.scale_ops += x.n * m;
      e.accumulations += x.n * m;
      if (inputs.insert({x.g, x.fold}).second) e.ifmap_words += rows * m;
      if (rounds > 1) {  // one round: the cells stay programmed from image to image
        e.weight_words += rows * x.n;
        e.cell_writes += rows * cols;
      }
    }
  }
  e.requants = l.groups * l.n * m;
  e.ofmap_words = e.requants;
  return e;
}

nlohmann::ordered_json to_json(const CimEvents& e) {
  return {{"xbar_reads", e.xbar_reads},
          {"active_cells", e.active_cells},
          {"adc_conversions", e.adc_conversions},
          {"shift_add_ops", e.shift_add_ops},
          {"scale_ops", e.scale_ops},
          {"accumulations", e.accumulations},
          {"requants", e.requants},
          {"ifmap_words", e.ifmap_words},
          {"ofmap_words", e.ofmap_words},
          {"weight_words", e.weight_words},
          {"cell_writes", e.cell_writes}};
}

nlohmann::ordered_json to_json(const CimEnergy& e) {
  return {{"total", e.total()},       {"xbar", e.xbar},   {"adc", e.adc},
          {"shift_add", e.shift_add}, {"scale", e.scale}, {"accumulate", e.accumulate},
          {"requant", e.requant},     {"sram", e.sram}};
}

}  // namespace tilescale::map
