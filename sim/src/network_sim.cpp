#include "tilescale/sim/network_sim.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "tilescale/core/error.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/model/layout.h"
#include "tilescale/quant/int_executor.h"

namespace tilescale::sim {
namespace {

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
  job.weight.resize(static_cast<std::size_t>(L.groups * L.k * L.n));
  model::layout::pack_weights_hw(lq.q_weight.data(), L.groups, L.n, L.cin_g, L.kernel,
                                 job.weight.data());
  job.act.resize(static_cast<std::size_t>(L.groups * L.m * L.k));
  const model::Value& in_v = model.graph.values[static_cast<std::size_t>(op.inputs[0])];
  const model::layout::ConvShape shape = model::layout::conv_shape(
      node, in_v, model.graph.values[static_cast<std::size_t>(node.output)]);
  for (int64_t g = 0; g < L.groups; ++g)
    model::layout::im2col_hw(shape, input_codes + g * shape.cin_g * shape.h * shape.w,
                             job.act.data() + g * L.m * L.k);
  job.multiplier = lq.multiplier;
  job.frac_bits = lq.frac_bits;
  job.bias_q = lq.bias_q;
  job.keep_acc = model.act_of(op.output).is_float();
  job.clamp = model.output_range(op);
  if (output_codes) {
    // Golden layout is [o][p] per image (CHW), the same as the model's output buffer.
    const int64_t size = L.groups * L.n * L.m;
    job.expected.assign(output_codes, output_codes + size);
  }
  return job;
}

void check_image_count(const Dataset& data, int64_t images) {
  if (images < 1 || images > data.count)
    throw InputError(std::to_string(images) + " images requested but " + data.source + " holds " +
                     std::to_string(data.count) + " (allowed: 1.." + std::to_string(data.count) +
                     ")");
}

NetworkRun simulate_network(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                            const Dataset& data, int64_t images, const SimOptions& options) {
  arch.require_kind(map::ArchKind::Systolic, "tilescale simulate (the SystemC systolic model)");
  map::check_bundle_fits(model, arch);
  check_image_count(data, images);
  model::check_model_fits_data(model.graph, data, model.graph.source);
  const auto workloads = map::workloads_from_model(model);
  NetworkRun run;
  run.arch = arch.name;
  run.images = images;
  for (const auto& w : workloads) {
    LayerTotals t;
    t.name = w.name;
    const auto folds = map::systolic_folds(w, arch, options.align);
    // The registers are acc_bits wide: refuse as `tilescale map` does (the same check).
    if (!options.allow_narrow_acc) map::check_accumulator_bits(w, folds, arch);
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
