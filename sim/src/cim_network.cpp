#include <algorithm>

#include "network_driver.h"
#include "tilescale/core/error.h"
#include "tilescale/map/mapper.h"
#include "tilescale/map/workload.h"
#include "tilescale/model/evaluate.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/sim/cim.h"
#include "tilescale/sim/network_sim.h"

namespace tilescale::sim {

NetworkRun simulate_network_cim(const quant::QuantizedModel& model, const map::ArchConfig& arch,
                                const Dataset& data, int64_t images, const SimOptions& options) {
  arch.require_kind(map::ArchKind::Cim, "the SystemC CIM macro");
  check_network_inputs(model, arch, data, images);
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
    t.native_cycles = map::map_layer(workloads[l], arch, mo).cycles;
    t.native_stall_free = t.native_cycles;
    t.macs = workloads[l].macs();
    run.layers.push_back(t);
  }
  // The ADC-aware golden executor: the codes every simulated layer must reproduce.
  const quant::IntExecutor golden(model, 1, quant::IntGemm::Fast, arch.cim_numerics());
  CimSim& sim = CimSim::instance(options.trace_path);
  // Utilization and speed in cells: a crossbar cell is the CIM's processing element.
  const double cells = static_cast<double>(arch.macros) * arch.xbar_rows * arch.xbar_cols;
  drive_network(
      model, golden, workloads, data, images, cells,
      [&](const GemmJob& job, LayerTotals& t) {
        CimLayerRun r = sim.run(job, arch, options);
        t.adc_conversions += r.conversions;
        t.xbar_reads += r.reads;
        return std::move(r.run);
      },
      run);
  return run;
}

}  // namespace tilescale::sim
