#include "tilescale/sim/network_sim.h"

#include <algorithm>

#include "network_driver.h"
#include "tilescale/core/error.h"
#include "tilescale/map/cycle_model.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/model/layout.h"
#include "tilescale/quant/int_executor.h"

namespace tilescale::sim {
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
  check_network_inputs(model, arch, data, images);
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
  // Utilization and speed in PEs of the array.
  const double pes = static_cast<double>(arch.rows) * arch.cols;
  drive_network(
      model, golden, workloads, data, images, pes,
      [&](const GemmJob& job, LayerTotals& t) {
        LayerRun r = sim.run(job, arch, options);
        t.stalls += r.stalls;
        run.stalls += r.stalls;
        return r;
      },
      run);
  return run;
}

}  // namespace tilescale::sim
