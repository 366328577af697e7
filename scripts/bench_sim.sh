#!/usr/bin/env bash
# Simulator speed: resnet8_fmnist (W4A8 block:16x32, min-max search) through the SystemC models,
# with every output checked against the golden executor: the systolic array on sa16x16_ws and
# sa32x32_os, and the CIM macro set on cim128_2b (`--align pad`, its 6-bit ADCs in both the model
# and the golden executor). Prints simulated PE-cycles per second (rows x cols x cycles / seconds;
# for the CIM macro, macro cycles per second: every cycle reads all active crossbars of a round)
# by wall time and by the CPU time of the simulating thread (the two differ when other jobs share
# the cores), and seconds per image, with the CPU model and vector ISA.
# The issue-5 goal: >= 1e8 PE-cycles/s on one core, one resnet8 image < 0.5 s.
#
# Usage: scripts/bench_sim.sh [IMAGES]     (default 16)
# Environment: TILESCALE_BIN (default: build/tilescale of the source tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TILESCALE_BIN:-$root/build/tilescale}
images=${1:-16}
[ -x "$bin" ] || { echo "bench_sim: no tilescale binary at $bin (set TILESCALE_BIN)" >&2; exit 2; }
source "$root/scripts/lib/cpu_info.sh"
print_cpu_info
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" quantize --model "$root/models/resnet8_fmnist.onnx" --dataset fmnist --wbits 4 --abits 8 \
  --first-last 8 --granularity block:16x32 --search minmax --calib 8 --out "$tmp/bundle" >/dev/null
printf '%-12s %7s %12s %10s %14s %12s %14s %12s\n' arch images cycles/img mismatch \
  "PE-cyc/s wall" "s/img wall" "PE-cyc/s cpu" "s/img cpu"
for arch in sa16x16_ws sa32x32_os cim128_2b; do
  "$bin" simulate --bundle "$tmp/bundle" --arch "$root/configs/$arch.json" --dataset fmnist \
    --images "$images" --align pad --json >"$tmp/$arch.json"
  /usr/bin/python3 - "$tmp/$arch.json" "$arch" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
n = j["images"]
if sys.argv[2].startswith("cim"):  # macro cycles per second, not cells x cycles
    wall, cpu = j["total_cycles"] / j["seconds"], j["total_cycles"] / j["cpu_seconds"]
    label = sys.argv[2] + "*"
else:
    wall, cpu, label = j["pe_cycles_per_s"], j["pe_cycles_per_cpu_s"], sys.argv[2]
print("%-12s %7d %12d %10d %14.3g %12.4f %14.3g %12.4f" % (
    label, n, j["cycles_per_image"], j["mismatches"], wall, j["seconds"] / n, cpu,
    j["cpu_seconds"] / n))
PY
done
echo "*: the CIM macro's PE-cycle columns are macro cycles per second"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
