#!/usr/bin/env bash
# Benchmark of the PTQ-SL quantizer (issue 3): `tilescale quantize --search output --reorder kmeans`
# on resnet8_fmnist (32 calibration images) and on a generated ResNet-18-shaped model (11.7M
# parameters, 3x224x224, random weights, 8 random calibration images); wall time and peak RSS from
# GNU time. Goals: resnet8 < 20 s; ResNet-18 shape < 3 min and < 4 GiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ts=${TILESCALE_BIN:-$root/build/tilescale}
out="$root/out/bench_quantize"
mkdir -p "$out"
[ -f "$out/resnet18/resnet18.onnx" ] || /usr/bin/python3 "$root/scripts/make_resnet18.py" "$out/resnet18"
source "$root/scripts/lib/cpu_info.sh"
print_cpu_info
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() {
  local name=$1; shift
  /usr/bin/time -v "$ts" quantize "$@" --search output --reorder kmeans --granularity block:16x32 \
    --wbits 4 --abits 8 --out "$out/$name.bundle" >/dev/null 2>"$out/$name.time"
  printf '%-12s wall %s  peak RSS %s MiB\n' "$name" \
    "$(grep 'Elapsed' "$out/$name.time" | awk '{print $NF}')" \
    "$(awk '/Maximum resident/ {printf "%.0f", $NF / 1024}' "$out/$name.time")"
}
run resnet8 --model "$root/models/resnet8_fmnist.onnx" --dataset fmnist --first-last 8
run resnet18 --model "$out/resnet18/resnet18.onnx" --images "$out/resnet18/images.idx" \
  --labels "$out/resnet18/labels.idx" --calib 8
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
