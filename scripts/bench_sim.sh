#!/usr/bin/env bash
# Simulator speed: resnet8_fmnist (W4A8 block:16x32, min-max search) through the SystemC model on
# sa16x16_ws and sa32x32_os, with every output checked against the golden executor. Prints
# simulated PE-cycles per second (rows x cols x cycles / seconds) by wall time and by the CPU time
# of the simulating thread (the two differ when other jobs share the cores), and seconds per image.
# The issue-5 goal: >= 1e8 PE-cycles/s on one core, one resnet8 image < 0.5 s.
#
# Usage: scripts/bench_sim.sh [IMAGES]     (default 16)
# Environment: TILESCALE_BIN (default: build/tilescale of the source tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TILESCALE_BIN:-$root/build/tilescale}
images=${1:-16}
[ -x "$bin" ] || { echo "bench_sim: no tilescale binary at $bin (set TILESCALE_BIN)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" quantize --model "$root/models/resnet8_fmnist.onnx" --dataset fmnist --wbits 4 --abits 8 \
  --first-last 8 --granularity block:16x32 --search minmax --calib 8 --out "$tmp/bundle" >/dev/null
printf '%-12s %7s %12s %10s %14s %12s %14s %12s\n' arch images cycles/img mismatch \
  "PE-cyc/s wall" "s/img wall" "PE-cyc/s cpu" "s/img cpu"
for arch in sa16x16_ws sa32x32_os; do
  "$bin" simulate --bundle "$tmp/bundle" --arch "$root/configs/$arch.json" --dataset fmnist \
    --images "$images" --json >"$tmp/$arch.json"
  /usr/bin/python3 - "$tmp/$arch.json" "$arch" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
n = j["images"]
print("%-12s %7d %12d %10d %14.3g %12.4f %14.3g %12.4f" % (
    sys.argv[2], n, j["cycles_per_image"], j["mismatches"], j["pe_cycles_per_s"],
    j["seconds"] / n, j["pe_cycles_per_cpu_s"], j["cpu_seconds"] / n))
PY
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
