#include "tilescale/map/mapper.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "tilescale/core/error.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::map {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Bits of a signed integer holding any value of magnitude <= v.
int signed_bits(double v) { return v < 1 ? 1 : static_cast<int>(std::floor(std::log2(v))) + 2; }

double max_act_code(const LayerWorkload& l) {
  return l.act_signed ? std::ldexp(1.0, l.a_bits - 1) : std::ldexp(1.0, l.a_bits) - 1;
}
double max_weight_code(const LayerWorkload& l) { return std::ldexp(1.0, l.w_bits - 1); }

void check_registers(const LayerWorkload& l, const ArchConfig& arch, int64_t needed,
                     const std::string& where) {
  if (arch.scale_unit.kind == ScaleUnitKind::None && (l.out_groups > 1 || l.red_groups > 1))
    fail_input(arch.source, "layer '" + l.name + "': granularity " + l.granularity + " needs " +
                                std::to_string(l.out_groups * l.red_groups) +
                                " scales but scale_unit is 'none' (one scale per layer)");
  if (needed > arch.scale_regs_per_tile)
    fail_input(arch.source, "layer '" + l.name + "': " + where + " needs " +
                                std::to_string(needed) + " scale registers (granularity " +
                                l.granularity + "), the architecture has scale_regs_per_tile = " +
                                std::to_string(arch.scale_regs_per_tile));
}

LayerMap base_layer(const LayerWorkload& l) {
  LayerMap r;
  r.name = l.name;
  r.groups = l.groups;
  r.m = l.m;
  r.n = l.n;
  r.k = l.k;
  r.macs = l.macs();
  return r;
}

LayerMap map_systolic(const LayerWorkload& l, const ArchConfig& arch, const MapOptions& opt) {
  LayerMap r = base_layer(l);
  const int64_t R = arch.rows, C = arch.cols, pes = R * C;
  if (opt.cycle_model == CycleModel::ScaleSim) {
    const ScaleSimCycles s = scalesim_cycles(l, arch);
    r.folds = s.folds;
    r.cycles = s.cycles;
    r.utilization = s.overall_util / 100.0;
    r.mapping_utilization = s.mapping_eff / 100.0;
    r.scalesim_mapping_eff = s.mapping_eff;
    r.scalesim_compute_util = s.compute_util;
  }
  const std::vector<SystolicFold> folds = systolic_folds(l, arch, opt.align);
  double used = 0;
  int64_t k_folds_per_tile = 0;
  for (std::size_t i = 0; i < folds.size(); ++i) {
    const SystolicFold& f = folds[i];
    if (f.blocks > r.scale_registers) r.scale_registers = f.blocks;
    check_registers(l, arch, f.blocks, "fold " + std::to_string(i));
    r.scale_loads += f.scale_loads;
    r.scale_ops += f.scaled_outputs;
    used += static_cast<double>(f.rows_used * f.cols_used) / static_cast<double>(pes);
    r.acc_words = std::max(r.acc_words, fold_accumulator_words(arch, f.m_len, f.n_len));
    if (f.group == 0 && f.m0 == 0 && f.n0 == 0) ++k_folds_per_tile;
    switch (arch.dataflow) {
      case Dataflow::WS:
        r.ifmap_reads += f.stream * f.rows_used;
        r.weight_reads += f.rows_used * f.cols_used;
        r.psum_writes += f.stream * f.cols_used;
        break;
      case Dataflow::IS:
        r.ifmap_reads += f.rows_used * f.cols_used;
        r.weight_reads += f.stream * f.rows_used;
        r.psum_writes += f.stream * f.cols_used;
        break;
      case Dataflow::OS:
        r.ifmap_reads += f.stream * f.rows_used;
        r.weight_reads += f.stream * f.cols_used;
        r.psum_writes += f.rows_used * f.cols_used;
        break;
    }
  }
  r.ofmap_writes = l.groups * l.m * l.n;
  if (arch.dataflow != Dataflow::OS) {
    // Rows --align pad leaves empty beyond the natural fold count, for every column tile.
    const int64_t tiles = static_cast<int64_t>(folds.size()) / k_folds_per_tile;
    r.padded_rows = (k_folds_per_tile - ceil_div(l.k, R)) * R * tiles;
  }
  r.psum_bits = accumulator_bits(l, folds).fold;
  check_accumulator_bits(l, folds, arch);
  if (opt.cycle_model == CycleModel::Native) {
    const NativeCycles c = native_systolic_cycles(folds, arch);
    r.folds = static_cast<int64_t>(folds.size());
    r.cycles = c.cycles;
    r.stalls = c.stalls();
    r.utilization = static_cast<double>(r.macs) / (static_cast<double>(pes) * r.cycles);
    r.mapping_utilization = used / static_cast<double>(folds.size());
  }
  return r;
}

}  // namespace

AccumulatorBits accumulator_bits(const LayerWorkload& l, const std::vector<SystolicFold>& folds) {
  const double code = max_act_code(l) * max_weight_code(l);
  int64_t worst_fold = 0, worst_run = 0, run = 0;
  for (const SystolicFold& f : folds) {
    worst_fold = std::max(worst_fold, f.k.length);
    run += f.k.length;
    worst_run = std::max(worst_run, run);
    if (f.k.group_end) run = 0;
  }
  return {signed_bits(static_cast<double>(worst_fold) * code),
          signed_bits(static_cast<double>(worst_run) * code)};
}

void check_accumulator_bits(const LayerWorkload& l, const std::vector<SystolicFold>& folds,
                            const ArchConfig& arch) {
  const AccumulatorBits b = accumulator_bits(l, folds);
  if (b.fold > arch.acc_bits)
    fail_input(arch.source, "layer '" + l.name + "': a fold's column sum needs " +
                                std::to_string(b.fold) + " bits, acc_bits is " +
                                std::to_string(arch.acc_bits));
  if (b.run > arch.acc_bits)
    fail_input(arch.source, "layer '" + l.name +
                                "': a reduction group's sum over a run of folds "
                                "needs " +
                                std::to_string(b.run) + " bits, acc_bits is " +
                                std::to_string(arch.acc_bits));
}

namespace {

LayerMap map_cim(const LayerWorkload& l, const ArchConfig& arch, const MapOptions& opt) {
  if (opt.cycle_model == CycleModel::ScaleSim)
    fail_input(arch.source, "kind 'cim': the scalesim cycle model takes systolic arrays only");
  LayerMap r = base_layer(l);
  const int64_t slices = arch.weight_slices(l.w_bits);
  const int64_t ch_per_xbar = arch.xbar_cols / slices;
  const std::vector<KFold> kf = reduction_folds(l, arch.xbar_rows, opt.align);
  const int64_t col_tiles = ceil_div(l.n, ch_per_xbar);
  const int64_t xbars = l.groups * static_cast<int64_t>(kf.size()) * col_tiles;
  const int64_t rounds = ceil_div(xbars, arch.macros);
  // Bit-serial input steps (quant/adc.h input_steps): a signed input's sign bit has its own step.
  const int64_t passes = l.act_signed ? ceil_div(l.a_bits - 1, arch.input_bits_per_cycle) + 1
                                      : ceil_div(l.a_bits, arch.input_bits_per_cycle);
  r.folds = xbars;
  double used_cells = 0;
  int64_t group_ends = 0;
  const quant::AdcNumerics adc = arch.cim_numerics();
  for (const KFold& f : kf) {
    used_cells += static_cast<double>(f.length);
    group_ends += f.group_end ? 1 : 0;
    // The ADC may change a sum of this fold (quant/adc.h): clip saturates, rows drops low bits.
    if (!quant::adc_lossless(adc, f.length)) r.adc_clips = true;
  }
  used_cells *= static_cast<double>(l.groups * l.n * slices);
  r.mapping_utilization =
      used_cells / (static_cast<double>(xbars) * arch.xbar_rows * arch.xbar_cols);
  r.utilization = r.mapping_utilization * static_cast<double>(xbars) /
                  static_cast<double>(rounds * arch.macros);
  for (int64_t g = 0; g < l.groups; ++g) {
    for (int64_t n0 = 0; n0 < l.n; n0 += ch_per_xbar) {
      std::set<int64_t> og;
      for (int64_t o = n0; o < std::min(l.n, n0 + ch_per_xbar); ++o)
        og.insert(l.out_group[static_cast<std::size_t>(g * l.n + o)]);
      r.scale_registers = std::max<int64_t>(r.scale_registers, static_cast<int64_t>(og.size()));
    }
  }
  check_registers(l, arch, r.scale_registers, "a crossbar");
  // All crossbars of a round work in parallel, one input step of one pixel at a time: a crossbar
  // read latches every column sum, then the shared ADCs convert cols_per_adc column groups, one
  // per cycle, while the next read waits in the second sample-and-hold buffer (the timeline of
  // sim/src/cim.cpp). A round of N = m * passes reads thus converts for N * cols_per_adc cycles.
  // One round: the cells are resident; + 1 command register + 1 crossbar read before the first
  // conversion and the digital pipeline (shift-add, scale unit, accumulator, requantization)
  // after the last. More rounds: each first programs a cell row (and a scale register) of every
  // crossbar per cycle, P = max(xbar_rows, scale registers) cycles, and the next round starts one
  // cycle after the ADCs have finished (the array's idle handshake).
  const int64_t conv = l.m * passes * arch.cols_per_adc;
  const int64_t program = std::max<int64_t>(arch.xbar_rows, r.scale_registers);
  r.cycles =
      rounds > 1 ? rounds * (program + conv + 1) + kPostArrayLatency : conv + 2 + kPostArrayLatency;
  r.scale_loads = rounds > 1 ? xbars * r.scale_registers : 0;
  r.scale_ops = l.groups * l.m * l.n * group_ends;
  r.padded_rows = (static_cast<int64_t>(kf.size()) - ceil_div(l.k, arch.xbar_rows)) *
                  arch.xbar_rows * col_tiles * l.groups;
  r.ifmap_reads = l.groups * l.m * l.k;
  r.weight_reads = rounds > 1 ? l.groups * l.k * l.n : 0;
  r.psum_writes = l.groups * l.m * l.n * static_cast<int64_t>(kf.size());
  r.ofmap_writes = l.groups * l.m * l.n;
  r.psum_bits = signed_bits(static_cast<double>(l.k) * max_act_code(l) * max_weight_code(l));
  r.cim_events = cim_layer_events(l, arch, kf);
  return r;
}

void compose_area(NetworkMap& net, const ArchConfig& arch, const AreaTable& t) {
  AreaBreakdown& a = net.area;
  const int wide = net.wide_acc_bits <= 48 ? 48 : 64;
  const int m = arch.scale_unit.mant_bits;
  int64_t lanes = 0;
  if (arch.kind == ArchKind::Systolic) {
    const char* pe = arch.dataflow == Dataflow::OS ? "pe_os" : "pe_ws";
    a.pe_array = static_cast<double>(arch.rows) * arch.cols *
                 t.component(pe, {{"ActBits", arch.act_bits},
                                  {"WeightBits", arch.weight_bits},
                                  {"AccBits", arch.acc_bits}});
    lanes = arch.cols;  // one scale / accumulate / requantize lane per column at the array edge
  } else {
    const double cells = static_cast<double>(arch.macros) * arch.xbar_rows * arch.xbar_cols;
    a.pe_array = cells * t.estimate("cim_cell_um2");  // a cell's footprint, whatever bits it holds
    const int64_t adcs = static_cast<int64_t>(arch.macros) * (arch.xbar_cols / arch.cols_per_adc);
    a.adcs =
        static_cast<double>(adcs) * t.estimate("adc_um2_" + std::to_string(arch.adc_bits) + "b");
    // A macro finishes its channels once per (bit-serial passes x ADC sharing) cycles, so the
    // scale / accumulate / requantize lanes it needs are its channels over that many cycles.
    const int64_t channels = arch.xbar_cols / arch.weight_slices(arch.weight_bits);
    const int64_t cycles_per_vector =
        int64_t{arch.cols_per_adc} *
        ((arch.act_bits + arch.input_bits_per_cycle - 1) / arch.input_bits_per_cycle);
    lanes = static_cast<int64_t>(arch.macros) *
            ((channels + cycles_per_vector - 1) / cycles_per_vector);
    a.shift_add = static_cast<double>(adcs) *
                  t.component("shift_add", {{"AdcBits", arch.adc_bits},
                                            {"CellBits", arch.cell_bits},
                                            {"Slices", arch.weight_slices(arch.weight_bits)}});
  }
  const double lanes_d = static_cast<double>(lanes);
  if (arch.scale_unit.kind == ScaleUnitKind::Fixed) {
    a.scale_units = lanes_d * t.component("scale_unit_fixed",
                                          {{"InBits", 32}, {"MantBits", m}, {"OutBits", wide}});
  } else if (arch.scale_unit.kind == ScaleUnitKind::Shift) {
    a.scale_units = lanes_d * t.component("scale_unit_shift", {{"InBits", 32}, {"OutBits", wide}});
  }
  a.accumulators = lanes_d * (t.component("accumulator", {{"Bits", 32}}) +
                              t.component("accumulator", {{"Bits", wide}}));
  a.requant = lanes_d * t.component("requant", {{"InBits", wide}, {"OutBits", arch.act_bits}});
  if (arch.scale_unit.kind != ScaleUnitKind::None) {
    // Systolic: the banks the pipelined array keeps in flight (scale_register_banks); CIM: one
    // set per macro plus a shadow set loaded while the macro computes.
    const int64_t copies = arch.kind == ArchKind::Cim
                               ? int64_t{2} * arch.macros
                               : scale_register_banks(arch.rows, arch.cols, arch.dataflow);
    a.scale_registers = static_cast<double>(net.scale_registers * copies) *
                        t.component("scale_reg", {{"MantBits", m}, {"ShiftBits", 6}});
  }
  a.sram = (arch.ifmap_sram_kib + arch.weight_sram_kib + arch.ofmap_sram_kib) *
           t.estimate("sram_um2_per_kib");
  if (arch.kind == ArchKind::Systolic) {
    // The accumulator storage lives in the ofmap SRAM (systolic_folds checked that it fits): the
    // words the schedule keeps per column, int32 + wide each, shown as its own share.
    const double kib = static_cast<double>(net.acc_words_needed * arch.cols *
                                           (arch.acc_bits + kAccStorageWideBits)) /
                       8192.0;
    a.acc_storage = kib * t.estimate("sram_um2_per_kib");
    a.sram -= a.acc_storage;
  }
  net.area_sources = t.synth_source + " (" + t.yosys_version + ", " + t.liberty + "); " +
                     t.params_source + " (estimates)";
}

}  // namespace

void check_bundle_fits(const quant::QuantizedModel& model, const ArchConfig& arch) {
  for (const quant::LayerQuant& lq : model.layers) {
    const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(lq.op)];
    const quant::ActQuant& in = model.act_of(op.inputs.at(0));
    if (in.is_float())
      fail_input(arch.source, "layer '" + lq.name +
                                  "' has float activations (a_bits 32); the accelerator runs "
                                  "integer activations only");
    if (in.bits > arch.act_bits)
      fail_input(arch.source,
                 "field 'act_bits': layer '" + lq.name + "' has " + std::to_string(in.bits) +
                     "-bit activations, the datapath takes " + std::to_string(arch.act_bits));
    if (lq.w_bits > arch.weight_bits)
      fail_input(arch.source, "field 'weight_bits': layer '" + lq.name + "' has " +
                                  std::to_string(lq.w_bits) + "-bit weights, the datapath takes " +
                                  std::to_string(arch.weight_bits));
    for (std::size_t b = 0; b < lq.multiplier.size(); ++b) {
      const int64_t mm = lq.multiplier[b].m;
      const bool ok = arch.scale_unit.kind == ScaleUnitKind::Shift
                          ? (mm & (mm - 1)) == 0
                          : arch.scale_unit.kind == ScaleUnitKind::None ||
                                mm < (int64_t{1} << arch.scale_unit.mant_bits);
      if (!ok)
        fail_input(arch.source,
                   "field 'scale_unit': layer '" + lq.name + "' block " + std::to_string(b) +
                       " has multiplier mantissa " + std::to_string(mm) + " (bundle scale_bits " +
                       std::to_string(model.options.scale_bits) + "), which scale unit " +
                       arch.scale_unit.str() + " cannot apply");
    }
  }
}

int wide_accumulator_bits(const quant::QuantizedModel& model) {
  int bits = 1;
  for (const quant::LayerQuant& lq : model.layers) {
    const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(lq.op)];
    const quant::ActQuant& in = model.act_of(op.inputs.at(0));
    const quant::IntRange ar = in.range();
    const double amax = static_cast<double>(std::max(-ar.lo, ar.hi));
    const quant::BlockGrid& g = lq.grid;
    const int64_t k = g.reduction();
    std::vector<int64_t> red_len(static_cast<std::size_t>(g.red_groups), 0);
    for (int64_t kk = 0; kk < k; ++kk) ++red_len[static_cast<std::size_t>(g.red_group[kk])];
    for (int64_t o = 0; o < g.out_channels; ++o) {
      double bound = static_cast<double>(std::llabs(lq.bias_q[static_cast<std::size_t>(o)]));
      for (int64_t r = 0; r < g.red_groups; ++r) {
        // |P| <= sum over the block's weights of |q_w| * max|q_x|, scaled to 2^F.
        double wsum = 0;
        for (int64_t kk = 0; kk < k; ++kk) {
          if (g.red_group[kk] != r) continue;
          const int64_t c = kk % g.cin_g, pos = kk / g.cin_g;
          wsum +=
              std::abs(lq.q_weight[static_cast<std::size_t>((o * g.cin_g + c) * g.kernel + pos)]);
        }
        const quant::FixedMultiplier& fm = lq.multiplier[static_cast<std::size_t>(
            g.out_group[static_cast<std::size_t>(o)] * g.red_groups + r)];
        bound += wsum * amax * static_cast<double>(fm.m) * std::ldexp(1.0, lq.frac_bits - fm.r);
      }
      bits = std::max(bits, signed_bits(bound));
    }
  }
  return bits;
}

LayerMap map_layer(const LayerWorkload& layer, const ArchConfig& arch, const MapOptions& options) {
  return arch.kind == ArchKind::Systolic ? map_systolic(layer, arch, options)
                                         : map_cim(layer, arch, options);
}

NetworkMap map_network(const std::vector<LayerWorkload>& layers, const ArchConfig& arch,
                       const MapOptions& options, const AreaTable& area, int wide_acc_bits) {
  NetworkMap net;
  net.arch = arch.name;
  net.cycle_model = options.cycle_model;
  // One name when every layer shares a granularity, else "per-layer" (each LayerMap has its own).
  net.granularity = layers.empty() ? "" : layers.front().granularity;
  for (const LayerWorkload& l : layers)
    if (l.granularity != net.granularity) net.granularity = "per-layer";
  net.wide_acc_bits = wide_acc_bits;
  if (wide_acc_bits > 64)
    fail_input(arch.source, "the bundle needs a " + std::to_string(wide_acc_bits) +
                                "-bit accumulator; at most 64 bits are supported");
  if (arch.kind == ArchKind::Systolic) net.acc_words = accumulator_words(arch);
  for (const LayerWorkload& l : layers) {
    LayerMap r = map_layer(l, arch, options);
    net.cycles += r.cycles;
    net.stalls += r.stalls;
    net.macs += r.macs;
    net.scale_ops += r.scale_ops;
    net.scale_registers = std::max(net.scale_registers, r.scale_registers);
    net.acc_words_needed = std::max(net.acc_words_needed, r.acc_words);
    net.utilization += r.utilization * static_cast<double>(r.cycles);
    net.layers.push_back(std::move(r));
  }
  if (net.cycles > 0) net.utilization /= static_cast<double>(net.cycles);
  compose_area(net, arch, area);
  if (arch.kind == ArchKind::Cim) {
    const CimEnergyTable table = CimEnergyTable::from(area, arch);
    net.cim = true;
    net.energy_source = table.source;
    for (LayerMap& l : net.layers) {
      l.energy = cim_energy(l.cim_events, table);
      net.energy += l.energy;
    }
  }
  return net;
}

}  // namespace tilescale::map
