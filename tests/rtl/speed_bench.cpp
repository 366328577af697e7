// Speed of the Verilated ts_top and of its SystemC twin (TsTopModel) in the same port-level bench
// (ts_bench.h): seeded random layers (host::random_layer) back to back, every beat offered at once
// and out_ready_i high, simulated to the end. Prints array cycles per second and PE-cycles per
// second (Rows x Cols x cycles / s), over wall time and over the simulating thread's CPU time.
// A benchmark, not a test (scripts/bench_rtl.sh runs it and adds the CPU model and load average).
//
//   rtl_speed_bench MODEL CONFIG [LAYERS]   MODEL: rtl | twin; CONFIG: sa8x8_ws | sa16x16_ws
//
// The Verilations here are the bench's own (Vbench_*, built only on request), without --assert:
// the speed of the design, not of its simulation checks. SystemC elaborates once per process, so
// one process measures one model on one config.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <systemc>
#include <vector>

#include "Vbench_sa16x16_ws.h"
#include "Vbench_sa8x8_ws.h"
#include "support/ts_layers.h"
#include "tilescale/sim/ts_bench.h"
#include "tilescale/sim/ts_top_model.h"

namespace rtl = tilescale::rtl;
namespace sim = tilescale::sim;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

template <const rtl::RtlConfig& C, class Top>
int run(const std::string& model, int layers) {
  using P = tilescale::sim::ParamsOf<C>;
  tilescale::test::RandomLayers rl = tilescale::test::random_layers(C, layers, 12345, 0, 0);
  sim::TopBench<P, Top> bench("speed", std::move(rl.layers), 1);
  const sc_core::sc_time chunk(10000, sc_core::SC_NS);  // 1,000 cycles of 10 ns: little overshoot
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu_seconds();
  for (int i = 0; i < 1000000 && !bench.done(); ++i) sc_core::sc_start(chunk);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = thread_cpu_seconds() - c0;
  int64_t mismatches = 0, outputs = 0;
  for (const auto& r : bench.results()) {
    mismatches += r.mismatches;
    outputs += r.outputs;
  }
  // Every simulated clock cycle (reset, layers, the gaps between them, the chunk's tail).
  const double cycles = static_cast<double>(bench.total_cycles());
  const double pes = static_cast<double>(C.rows) * C.cols;
  std::printf(
      "%-5s %-10s layers %d  output beats %lld  mismatches %lld  cycles %.0f  wall %.2f s  cpu "
      "%.2f s  cycles/s %.3g (cpu %.3g)  PE-cycles/s %.3g (cpu %.3g)\n",
      model.c_str(), C.name, layers, static_cast<long long>(outputs),
      static_cast<long long>(mismatches), cycles, wall, cpu, cycles / wall, cycles / cpu,
      pes * cycles / wall, pes * cycles / cpu);
  return bench.done() && mismatches == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s rtl|twin sa8x8_ws|sa16x16_ws [layers]\n", argv[0]);
    return 2;
  }
  const std::string model = argv[1], config = argv[2];
  const int layers = argc > 3 ? std::atoi(argv[3]) : 1000;
  using W8 = tilescale::sim::ParamsOf<rtl::kSa8x8Ws>;
  using W16 = tilescale::sim::ParamsOf<rtl::kSa16x16Ws>;
  if (model == "rtl" && config == "sa8x8_ws")
    return run<rtl::kSa8x8Ws, Vbench_sa8x8_ws>(model, layers);
  if (model == "twin" && config == "sa8x8_ws")
    return run<rtl::kSa8x8Ws, sim::TsTopModel<W8>>(model, layers);
  if (model == "rtl" && config == "sa16x16_ws")
    return run<rtl::kSa16x16Ws, Vbench_sa16x16_ws>(model, layers);
  if (model == "twin" && config == "sa16x16_ws")
    return run<rtl::kSa16x16Ws, sim::TsTopModel<W16>>(model, layers);
  std::fprintf(stderr, "unknown model or config: %s %s\n", model.c_str(), config.c_str());
  return 2;
}
