#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <string>

#include "tilescale/core/error.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/sim/cim.h"
#include "tilescale/sim/network_sim.h"

namespace tilescale::sim {
namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

NetworkRun simulate_network_cim(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                                const Dataset& data, int64_t images, const SimOptions& options) {
  arch.require_kind(map::ArchKind::Cim, "the SystemC CIM macro");
  map::check_bundle_fits(model, arch);
  check_image_count(data, images);
  model::check_model_fits_data(model.graph, data, model.graph.source);
  const auto workloads = map::workloads_from_model(model);
  // The prediction the measured cycles are compared with (never used by the model itself).
  map::MapOptions mo;
  mo.align = options.align;
  NetworkRun run;
  run.arch = arch.name;
  run.cim = true;
  run.images = images;
  for (std::size_t l = 0; l < workloads.size(); ++l) {
    LayerTotals t;
    t.name = workloads[l].name;
    const map::LayerMap lm = map::map_layer(workloads[l], arch, mo);
    t.native_cycles = lm.cycles;
    t.native_stall_free = t.native_cycles;
    t.map_events = lm.cim_events;
    t.macs = workloads[l].macs();
    run.layers.push_back(t);
  }
  // The energy table: the default estimates ($TILESCALE_AREA_DIR overrides the folder), as
  // `tilescale map`. The energy is an optional estimate: without the table or an entry for the
  // arch's adc_bits the simulation still runs and the report says why it has no energy.
  std::optional<map::CimEnergyTable> table;
  try {
    table = map::CimEnergyTable::from(map::AreaTable::load_default(), arch);
  } catch (const InputError& e) {
    run.energy_note = std::string("no energy estimate: ") + e.what();
  }
  // The ADC-aware golden executor: the codes every simulated layer must reproduce.
  const quant::IntExecutor golden(model, 1, quant::IntGemm::Fast, arch.cim_numerics());
  CimSim& sim = CimSim::instance(options.trace_path);
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
        CimLayerRun r = sim.run(job, arch, options);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cpu_seconds += thread_cpu_seconds() - c0;
        LayerTotals& t = run.layers[l];
        t.cycles += r.run.cycles;
        t.folds = r.run.folds;
        t.scale_loads = r.run.scale_loads;
        t.mismatches += r.run.mismatches;
        t.cim_events += r.events;
        run.total_cycles += r.run.cycles;
        run.mismatches += r.run.mismatches;
        if (r.run.mismatches && run.first_mismatch.empty())
          run.first_mismatch =
              "image " + std::to_string(first + s) + ": " + r.run.first_mismatch.str();
        if (op.output == model.graph.output) logits = std::move(r.run.output);
      }
      if (static_cast<int64_t>(logits.size()) != classes)
        throw std::runtime_error("sim: the network's output is not a Conv/Gemm layer");
      const int64_t pred = model::top1_class(logits.data(), classes);
      run.predictions.push_back(pred);
      run.correct += pred == data.labels[static_cast<std::size_t>(first + s)];
    }
  }
  // Utilization and speed in cells: a crossbar cell is the CIM's processing element.
  const double cells = static_cast<double>(arch.macros) * arch.xbar_rows * arch.xbar_cols;
  for (LayerTotals& t : run.layers)
    t.utilization =
        t.cycles ? static_cast<double>(t.macs * images) / (cells * static_cast<double>(t.cycles))
                 : 0.0;
  // Energy per image of the counted events (and of the mapper's count, for comparison).
  if (table) {
    run.energy_source = table->source;
    for (LayerTotals& t : run.layers) {
      t.energy = map::cim_energy(t.cim_events, *table) * (1.0 / static_cast<double>(images));
      t.map_energy = map::cim_energy(t.map_events, *table);
      run.energy += t.energy;
    }
  }
  run.seconds = seconds;
  run.cpu_seconds = cpu_seconds;
  run.pe_cycles_per_s = seconds > 0 ? cells * static_cast<double>(run.total_cycles) / seconds : 0;
  run.pe_cycles_per_cpu_s =
      cpu_seconds > 0 ? cells * static_cast<double>(run.total_cycles) / cpu_seconds : 0;
  return run;
}

}  // namespace tilescale::sim
