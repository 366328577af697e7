#include "tilescale/map/cycle_model.h"

#include <algorithm>

namespace tilescale::map {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Cycles to move `words` through a port of `bw` words per cycle (0 = unlimited: one cycle).
int64_t port_cycles(int64_t words, int bw) {
  return bw <= 0 ? 1 : std::max<int64_t>(1, ceil_div(words, bw));
}

NativeCycles run(const std::vector<SystolicFold>& folds, const ArchConfig& arch, bool limited) {
  NativeCycles out;
  if (folds.empty()) return out;
  const int64_t R = arch.rows, C = arch.cols;
  const bool os = arch.dataflow == Dataflow::OS;
  auto bw = [&](int b) { return limited ? b : 0; };
  // Words each streamed vector needs from the feeding SRAMs, and cycles per vector.
  auto stream_cycles = [&](const SystolicFold& f) {
    int64_t per_vector = 1;
    if (arch.dataflow == Dataflow::WS) {
      per_vector = port_cycles(f.rows_used, bw(arch.ifmap_bw));
      if (f.output_end)
        per_vector = std::max(per_vector, port_cycles(f.cols_used, bw(arch.ofmap_bw)));
    } else if (arch.dataflow == Dataflow::IS) {
      per_vector = port_cycles(f.rows_used, bw(arch.weight_bw));
      if (f.output_end)
        per_vector = std::max(per_vector, port_cycles(f.cols_used, bw(arch.ofmap_bw)));
    } else {
      per_vector = std::max(port_cycles(f.rows_used, bw(arch.ifmap_bw)),
                            port_cycles(f.cols_used, bw(arch.weight_bw)));
    }
    return f.stream * per_vector;
  };
  // Cycles before a fold may start that overlap the previous fold: preload (ws/is) or the
  // previous fold's drain (os), and the scale-register loads.
  auto preload = [&](const SystolicFold& f) {
    if (os) return int64_t{0};
    const int b = arch.dataflow == Dataflow::WS ? bw(arch.weight_bw) : bw(arch.ifmap_bw);
    return b <= 0 ? R : std::max(R, ceil_div(f.rows_used * f.cols_used, b));
  };
  auto drain = [&](const SystolicFold& f) {
    if (!os) return int64_t{0};
    return f.output_end && bw(arch.ofmap_bw) > 0
               ? std::max(R, ceil_div(f.rows_used * f.cols_used, bw(arch.ofmap_bw)))
               : R;
  };
  int64_t start = std::max(preload(folds[0]), folds[0].scale_loads);
  out.fold_start.push_back(start);
  if (arch.dataflow == Dataflow::WS) {
    // ws, vector by vector: vector j of a fold enters the array in the cycle its last activation
    // beat arrives (ceil(rows_used / ifmap_bw) beats from the cycle its predecessor entered, or
    // from the fold's start), and not before the ofmap port has written the previous output
    // vector's row (ceil(cols_used / ofmap_bw) beats from the cycle after that vector entered, in
    // any fold). A fold starts when its predecessor's last vector has entered, its preload is
    // complete and its scale registers are written. The last output row leaves in
    // ceil(cols_used / ofmap_bw) beats after it is complete (rtl/README.md, "Narrowed ports").
    int64_t prev_out = -1, prev_beats = 0, last_vec = 0, last_beats = 1;
    for (std::size_t i = 0; i < folds.size(); ++i) {
      const SystolicFold& f = folds[i];
      const int64_t act_beats = port_cycles(f.rows_used, bw(arch.ifmap_bw));
      const int64_t out_beats = f.output_end ? port_cycles(f.cols_used, bw(arch.ofmap_bw)) : 0;
      int64_t e = start + act_beats - 1;
      if (prev_out >= 0) e = std::max(e, prev_out + prev_beats);
      e += (f.stream - 1) * std::max(act_beats, out_beats);
      if (f.output_end) prev_out = e, prev_beats = out_beats;
      last_vec = e;
      last_beats = std::max<int64_t>(out_beats, 1);
      if (i + 1 < folds.size()) {
        start = std::max({e + 1, start + preload(folds[i + 1]), start + folds[i + 1].scale_loads});
        out.fold_start.push_back(start);
      }
    }
    out.cycles = last_vec + 1 + (R - 1) + (C - 1) + 1 + kPostArrayLatency + (last_beats - 1);
    return out;
  }
  for (std::size_t i = 0; i + 1 < folds.size(); ++i) {
    // os: the next fold's results may reach the drain chains only once this fold's have left,
    // so the folds' last streaming cycles are at least drain(f) apart. The controller decides it
    // at the fold's start from the next fold's T (its T steps take at least T cycles), not from
    // how long narrow ports will make them take: with narrow ports the start is conservative.
    const int64_t t = stream_cycles(folds[i]);
    const int64_t gap =
        std::max({t, os ? t + drain(folds[i]) - folds[i + 1].stream : preload(folds[i + 1]),
                  folds[i + 1].scale_loads});
    start += gap;
    out.fold_start.push_back(start);
  }
  const SystolicFold& last = folds.back();
  out.cycles =
      start + stream_cycles(last) + (R - 1) + (C - 1) + 1 + drain(last) + kPostArrayLatency;
  return out;
}

}  // namespace

NativeCycles native_systolic_cycles(const std::vector<SystolicFold>& folds,
                                    const ArchConfig& arch) {
  NativeCycles limited = run(folds, arch, true);
  limited.stall_free_cycles = run(folds, arch, false).cycles;
  return limited;
}

ScaleSimCycles scalesim_cycles(const LayerWorkload& layer, const ArchConfig& arch) {
  const int64_t R = arch.rows, C = arch.cols;
  int64_t sr = 0, sc = 0, t = 0;
  switch (arch.dataflow) {
    case Dataflow::WS:
      sr = layer.k, sc = layer.n, t = layer.m;
      break;
    case Dataflow::OS:
      sr = layer.m, sc = layer.n, t = layer.k;
      break;
    case Dataflow::IS:
      sr = layer.k, sc = layer.m, t = layer.n;
      break;
  }
  const int64_t row_folds = ceil_div(sr, R), col_folds = ceil_div(sc, C);
  const bool os = arch.dataflow == Dataflow::OS;
  const int64_t lines = os ? R + C + t - 2 : 2 * R + C + t - 2;
  // SCALE-Sim's per-fold compute utilization divides by (demand rows + demand cols - 1) of the
  // matrix it builds the fold from: ws/is (2R + C + T - 2) + C - 1, os (T - 1 + R) + C - 1.
  const int64_t util_cycles = os ? t + R + C - 2 : 2 * R + 2 * C + t - 3;
  double map_sum = 0, util_sum = 0;
  for (int64_t fc = 0; fc < col_folds; ++fc) {
    for (int64_t fr = 0; fr < row_folds; ++fr) {
      const int64_t rows_used = std::min(R, sr - fr * R), cols_used = std::min(C, sc - fc * C);
      map_sum += static_cast<double>(rows_used * cols_used) / static_cast<double>(R * C);
      util_sum +=
          static_cast<double>(rows_used * cols_used * t) / static_cast<double>(R * C * util_cycles);
    }
  }
  const int64_t folds = row_folds * col_folds;
  ScaleSimCycles s;
  s.cycles = layer.groups * (folds * lines - 1);
  s.folds = layer.groups * folds;
  s.overall_util = 100.0 * static_cast<double>(layer.macs()) /
                   (static_cast<double>(s.cycles) * static_cast<double>(R * C));
  s.mapping_eff = 100.0 * map_sum / static_cast<double>(folds);
  s.compute_util = 100.0 * util_sum / static_cast<double>(folds);
  return s;
}

}  // namespace tilescale::map
