#include "network_driver.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <stdexcept>

#include "tilescale/map/mapper.h"
#include "tilescale/model/evaluate.h"

namespace tilescale::sim {
namespace {

// CPU time of the calling thread: the simulator's own work, whatever else shares the cores.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

void check_network_inputs(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                          const Dataset& data, int64_t images) {
  map::check_bundle_fits(model, arch);
  check_image_count(data, images);
  model::check_model_fits_data(model.graph, data, model.graph.source);
}

void drive_network(const quant::QuantizedModel& model, const quant::IntExecutor& golden,
                   const std::vector<map::LayerWorkload>& workloads, const Dataset& data,
                   int64_t images, double pes, const LayerSimulator& simulate, NetworkRun& run) {
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
        LayerTotals& t = run.layers[l];
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = thread_cpu_seconds();
        LayerRun r = simulate(job, t);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cpu_seconds += thread_cpu_seconds() - c0;
        t.cycles += r.cycles;
        t.folds = r.folds;
        t.scale_loads = r.scale_loads;
        t.mismatches += r.mismatches;
        run.total_cycles += r.cycles;
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
  for (LayerTotals& t : run.layers)
    t.utilization =
        t.cycles ? static_cast<double>(t.macs * images) / (pes * static_cast<double>(t.cycles))
                 : 0.0;
  run.seconds = seconds;
  run.cpu_seconds = cpu_seconds;
  run.pe_cycles_per_s = seconds > 0 ? pes * static_cast<double>(run.total_cycles) / seconds : 0;
  run.pe_cycles_per_cpu_s =
      cpu_seconds > 0 ? pes * static_cast<double>(run.total_cycles) / cpu_seconds : 0;
}

}  // namespace tilescale::sim
