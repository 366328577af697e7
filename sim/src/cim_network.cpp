#include <algorithm>
#include <optional>
#include <string>

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
  // Utilization and speed in cells: a crossbar cell is the CIM's processing element.
  const double cells = static_cast<double>(arch.macros) * arch.xbar_rows * arch.xbar_cols;
  drive_network(
      model, golden, workloads, data, images, cells,
      [&](const GemmJob& job, LayerTotals& t) {
        CimLayerRun r = sim.run(job, arch, options);
        t.cim_events += r.events;
        return std::move(r.run);
      },
      run);
  // Energy per image of the counted events (and of the mapper's count, for comparison).
  if (table) {
    run.energy_source = table->source;
    for (LayerTotals& t : run.layers) {
      t.energy = map::cim_energy(t.cim_events, *table) * (1.0 / static_cast<double>(images));
      t.map_energy = map::cim_energy(t.map_events, *table);
      run.energy += t.energy;
    }
  }
  return run;
}

}  // namespace tilescale::sim
