#!/usr/bin/env bash
# Speed of the Verilated ts_top beside its SystemC twin (TsTopModel), in the same port-level
# SystemC testbench: seeded random layers back to back on sa8x8_ws and sa16x16_ws, every output
# checked against the golden numerics. Prints array cycles per second and PE-cycles per second
# (rows x cols x cycles / s) by wall time and by the simulating thread's CPU time, with the CPU
# model and the load average. A benchmark, not a test: numbers depend on the machine and its load.
#
# Usage: scripts/bench_rtl.sh [LAYERS]     (default 1000 random layers per run)
# Environment: TILESCALE_BUILD_DIR (default: build/ of the source tree; configured with tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TILESCALE_BUILD_DIR:-$root/build}
layers=${1:-1000}
cmake --build "$build" --target rtl_speed_bench >/dev/null
bin=$build/tests/rtl/rtl_speed_bench
source "$root/scripts/lib/cpu_info.sh"
print_cpu_info
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for config in sa8x8_ws sa16x16_ws; do
  for model in rtl twin; do
    "$bin" "$model" "$config" "$layers"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
