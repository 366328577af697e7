#include "tilescale/sim/network_sim.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "tilescale/core/error.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/quant/int_executor.h"

namespace tilescale::sim {
namespace {

// Codes of a Relu/Clip folded into a requantization, intersected with the output grid. The same
// rule as the golden executor's (int_executor.cpp, output_clamp); the bit-exact tests guard it.
quant::IntRange output_clamp(const quant::QuantizedModel& m, const quant::QOp& op) {
  const quant::ActQuant& out = m.act_of(op.output);
  quant::IntRange r = out.range();
  if (op.fused_act < 0) return r;
  const model::Node& act = m.graph.nodes[static_cast<std::size_t>(op.fused_act)];
  if (act.op == model::Op::Relu) {
    r.lo = std::max<int64_t>(r.lo, 0);
  } else {
    if (std::isfinite(act.clip_min))
      r.lo = std::max(r.lo, quant::round_half_up(act.clip_min / double(out.scale)));
    if (std::isfinite(act.clip_max))
      r.hi = std::min(r.hi, quant::round_half_up(act.clip_max / double(out.scale)));
  }
  return r;
}

// CPU time of the calling thread: the simulator's own work, whatever else shares the cores.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

GemmJob make_gemm_job(const quant::QuantizedModel& model, std::size_t index,
                      const int64_t* input_codes, const int64_t* output_codes) {
  return make_gemm_job(model, index, map::workloads_from_model(model)[index], input_codes,
                       output_codes);
}

GemmJob make_gemm_job(const quant::QuantizedModel& model, std::size_t index,
                      const map::LayerWorkload& workload, const int64_t* input_codes,
                      const int64_t* output_codes) {
  const quant::LayerQuant& lq = model.layers[index];
  const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(lq.op)];
  const model::Node& node = model.graph.nodes[static_cast<std::size_t>(op.node)];
  GemmJob job;
  job.layer = workload;
  const map::LayerWorkload& L = job.layer;
  const quant::BlockGrid& grid = lq.grid;
  // Weights [g][k_hw][n] from the ONNX layout [o][c][ky][kx].
  job.weight.assign(static_cast<std::size_t>(L.groups * L.k * L.n), 0);
  for (int64_t g = 0; g < L.groups; ++g)
    for (int64_t n = 0; n < L.n; ++n)
      for (int64_t c = 0; c < L.cin_g; ++c)
        for (int64_t p = 0; p < L.kernel; ++p)
          job.weight[static_cast<std::size_t>((g * L.k + grid.hw_index(c, p)) * L.n + n)] =
              lq.q_weight[static_cast<std::size_t>((g * L.n + n) * L.k + c * L.kernel + p)];
  // im2col [g][m][k_hw]: output pixel m, kernel position p = ky * kw + kx, input channel c.
  job.act.assign(static_cast<std::size_t>(L.groups * L.m * L.k), 0);
  const auto& in_shape = model.graph.values[static_cast<std::size_t>(op.inputs[0])].shape;
  if (L.is_conv) {
    const model::Window& w = node.window;
    const int64_t h = in_shape[1], wd = in_shape[2], wo = L.ofmap_w;
    for (int64_t g = 0; g < L.groups; ++g)
      for (int64_t m = 0; m < L.m; ++m) {
        int32_t* row = job.act.data() + (g * L.m + m) * L.k;
        for (int64_t ky = 0; ky < w.kernel_h; ++ky) {
          const int64_t iy = m / wo * w.stride_h - w.pad_top + ky * w.dilation_h;
          if (iy < 0 || iy >= h) continue;
          for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
            const int64_t ix = m % wo * w.stride_w - w.pad_left + kx * w.dilation_w;
            if (ix < 0 || ix >= wd) continue;
            const int64_t p = ky * w.kernel_w + kx;
            for (int64_t c = 0; c < L.cin_g; ++c)
              row[grid.hw_index(c, p)] =
                  static_cast<int32_t>(input_codes[((g * L.cin_g + c) * h + iy) * wd + ix]);
          }
        }
      }
  } else {
    for (int64_t i = 0; i < L.k; ++i)
      job.act[static_cast<std::size_t>(i)] = static_cast<int32_t>(input_codes[i]);
  }
  job.multiplier = lq.multiplier;
  job.frac_bits = lq.frac_bits;
  job.bias_q = lq.bias_q;
  job.keep_acc = model.act_of(op.output).is_float();
  job.clamp = output_clamp(model, op);
  if (output_codes) {
    // Golden layout is [o][p] per image (CHW), the same as the model's output buffer.
    const int64_t size = L.groups * L.n * L.m;
    job.expected.assign(output_codes, output_codes + size);
  }
  return job;
}

NetworkRun simulate_network(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                            const Dataset& data, int64_t images, const SimOptions& options) {
  arch.require_kind(map::ArchKind::Systolic, "tilescale simulate (the SystemC systolic model)");
  map::check_bundle_fits(model, arch);
  if (images < 1) fail_input("--images", "must be >= 1");
  if (images > data.count)
    fail_input("--images", std::to_string(images) + " images requested but " + data.source +
                               " holds " + std::to_string(data.count));
  model::check_model_fits_data(model.graph, data, model.graph.source);
  const auto workloads = map::workloads_from_model(model);
  NetworkRun run;
  run.arch = arch.name;
  run.images = images;
  for (const auto& w : workloads) {
    LayerTotals t;
    t.name = w.name;
    const auto folds = map::systolic_folds(w, arch, options.align);
    const map::NativeCycles nc = map::native_systolic_cycles(folds, arch);
    t.native_cycles = nc.cycles;
    t.native_stall_free = nc.stall_free_cycles;
    t.macs = w.macs();
    run.layers.push_back(t);
  }
  quant::IntExecutor golden(model, 1);
  SystolicSim& sim = SystolicSim::instance(options.trace_path);
  const int64_t in_size = data.image_size();
  const int64_t classes = model.graph.output_value().size();
  constexpr int64_t kChunk = 8;
  std::vector<float> input;
  double seconds = 0, cpu_seconds = 0;
  for (int64_t first = 0; first < images; first += kChunk) {
    const int64_t n = std::min(kChunk, images - first);
    input.resize(static_cast<std::size_t>(n * in_size));
    data.fill_batch(first, n, input.data());
    const auto codes = golden.run_codes(input.data(), n);
    for (int64_t s = 0; s < n; ++s) {
      std::vector<int64_t> logits;
      for (std::size_t l = 0; l < model.layers.size(); ++l) {
        const quant::QOp& op = model.plan.ops[static_cast<std::size_t>(model.layers[l].op)];
        const auto& xin = codes[static_cast<std::size_t>(op.inputs[0])];
        const auto& xout = codes[static_cast<std::size_t>(op.output)];
        const int64_t isz = static_cast<int64_t>(xin.size()) / n;
        const int64_t osz = static_cast<int64_t>(xout.size()) / n;
        const GemmJob job =
            make_gemm_job(model, l, workloads[l], xin.data() + s * isz, xout.data() + s * osz);
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = thread_cpu_seconds();
        LayerRun r = sim.run(job, arch, options);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cpu_seconds += thread_cpu_seconds() - c0;
        LayerTotals& t = run.layers[l];
        t.cycles += r.cycles;
        t.stalls += r.stalls;
        t.folds = r.folds;
        t.scale_loads = r.scale_loads;
        t.mismatches += r.mismatches;
        run.total_cycles += r.cycles;
        run.stalls += r.stalls;
        run.mismatches += r.mismatches;
        if (r.mismatches && run.first_mismatch.empty())
          run.first_mismatch = "image " + std::to_string(first + s) + ": " + r.first_mismatch.str();
        if (op.output == model.graph.output) logits = std::move(r.output);
      }
      if (static_cast<int64_t>(logits.size()) != classes)
        throw std::runtime_error("sim: the network's output is not a Conv/Gemm layer");
      const int64_t pred = model::top1_class(logits.data(), classes);
      run.predictions.push_back(pred);
      run.correct += pred == data.labels[static_cast<std::size_t>(first + s)];
    }
  }
  const double pes = static_cast<double>(arch.rows) * arch.cols;
  for (LayerTotals& t : run.layers)
    t.utilization =
        t.cycles ? static_cast<double>(t.macs * images) / (pes * static_cast<double>(t.cycles))
                 : 0.0;
  run.seconds = seconds;
  run.cpu_seconds = cpu_seconds;
  run.pe_cycles_per_s = seconds > 0 ? pes * static_cast<double>(run.total_cycles) / seconds : 0;
  run.pe_cycles_per_cpu_s =
      cpu_seconds > 0 ? pes * static_cast<double>(run.total_cycles) / cpu_seconds : 0;
  return run;
}

}  // namespace tilescale::sim
