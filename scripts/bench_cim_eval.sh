#!/usr/bin/env bash
# Speed of the golden executor with the CIM ADCs in the loop (`tilescale eval --arch`,
# quantizer/src/int_cim.cpp) against the ideal integer executor on the same bundles: resnet8_fmnist
# and mobilenet_fmnist W4A8 (first/last 8 bit, min-max search), granularities layer, channel,
# block:8x8 and block:16x16, on configs/cim128_2b.json (6-bit ADCs), one thread, each CIM pixel
# kernel the CPU runs (TILESCALE_CIM_KERNEL = avx512 / avx2 / portable: the same numerics, so the
# top-1 columns must agree). Prints CPU seconds per 1,000 images (user + system of the eval
# process) and the top-1, with the CPU model, vector ISA and load average.
#
# Usage: scripts/bench_cim_eval.sh [IMAGES]     (default 2000)
# Environment: TILESCALE_BIN (default: build/tilescale of the source tree); MODELS, GRANS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TILESCALE_BIN:-$root/build/tilescale}
images=${1:-2000}
models=${MODELS:-"resnet8_fmnist mobilenet_fmnist"}
grans=${GRANS:-"layer channel block:8x8 block:16x16"}
[ -x "$bin" ] || { echo "bench_cim_eval: no tilescale binary at $bin (set TILESCALE_BIN)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3

source "$root/scripts/lib/cpu_info.sh"
print_cpu_info
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $images test images, 1 thread"

measure() {  # measure KERNEL BUNDLE [--arch A]: prints "cpu_s_per_1000 top1"
  local kernel=$1 bundle=$2; shift 2
  TILESCALE_CIM_KERNEL=$kernel /usr/bin/time -f '%U %S' -o "$tmp/time" \
    "$bin" eval --bundle "$bundle" --mode int --dataset fmnist --limit "$images" --threads 1 \
    --json "$@" >"$tmp/eval.json"
  $py - "$tmp/time" "$tmp/eval.json" "$images" <<'PY'
import json, sys
u, s = (float(v) for v in open(sys.argv[1]).read().split()[-2:])
j = json.load(open(sys.argv[2]))
print("%.2f %.2f%%" % ((u + s) * 1000.0 / int(sys.argv[3]), 100.0 * j["top1"]))
PY
}

kernels=()
for k in avx512 avx2 portable; do
  case $k in
    avx512) grep -q avx512bw /proc/cpuinfo && kernels+=("$k") ;;
    avx2) grep -q avx2 /proc/cpuinfo && kernels+=("$k") ;;
    *) kernels+=("$k") ;;
  esac
done
printf '%-18s %-12s %18s' model granularity "ideal int s/1k"
for k in "${kernels[@]}"; do printf ' %18s' "cim $k s/1k"; done
printf '  %s\n' "top-1 ideal / cim"
for model in $models; do
  for g in $grans; do
    b="$tmp/$model.${g//:/_}"
    "$bin" quantize --model "$root/models/$model.onnx" --dataset fmnist --wbits 4 --abits 8 \
      --first-last 8 --granularity "$g" --search minmax --calib 8 --out "$b" >/dev/null
    read -r ideal ideal_top1 < <(measure portable "$b")
    printf '%-18s %-12s %18s' "$model" "$g" "$ideal"
    tops=()
    for k in "${kernels[@]}"; do
      read -r s top1 < <(measure "$k" "$b" --arch "$root/configs/cim128_2b.json")
      printf ' %18s' "$s"
      tops+=("$top1")
    done
    printf '  %s / %s\n' "$ideal_top1" "$(printf '%s ' "${tops[@]}")"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
