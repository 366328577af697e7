#!/usr/bin/env bash
# Benchmark: tilescale's float, fake-quant and golden integer executors against ONNX Runtime (the pinned
# onnxruntime-node in scripts/ort) in one run, on the same machine, models and 10,000 Fashion-MNIST
# test images, both at the same thread count.
#   float: `tilescale eval --model M`            vs ORT on M.onnx
#   int:   `tilescale eval --bundle B --mode int`  vs ORT's default session on B's --export-onnx file
#   fake:  `tilescale eval --bundle B --mode fake` vs ORT on the same file with QDQ transformers off
# B is W4A8 block:16x16 (first/last layer 8 bit, output search, kmeans reorder, seed 7), made once
# and kept under out/bench_ort/. Runs alternate between the two runtimes; each figure is the best of
# --repeat runs. Prints the CPU model, its vector ISA and the load average before and after.
# Usage: scripts/bench_ort.sh [--repeat 5] [--threads 2] [--batch 256] [--models "resnet8_fmnist ..."]
#          [--json OUT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
repeat=5; threads=2; batch=256; models="resnet8_fmnist mobilenet_fmnist"; out_json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --json) out_json=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_ort: unknown option '$1'" >&2; exit 2 ;;
  esac
done

# Packages and data; then only the program itself (the tests and RTL are not needed here).
"$root/scripts/setup.sh" --no-build >/dev/null
source "$root/scripts/lib/configure.sh"
configure_build "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" --target tilescale >/dev/null
"$root/scripts/install_ort.sh"
ts="$build_dir/tilescale"
work="$root/out/bench_ort"
mkdir -p "$work"
py=/usr/bin/python3
jget() { $py -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

source "$root/scripts/lib/cpu_info.sh"
print_cpu_info
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads $threads, ORT batch $batch, best of $repeat alternating runs, 10,000 test images"

rows=()
printf '%-18s %-6s %11s %11s %8s  %s\n' model path "tilescale s" "ORT s" ratio "ORT session"
for model in $models; do
  onnx="$root/models/$model.onnx"
  bundle="$work/${model}_w4a8_b16x16"
  if [ ! -f "$bundle/manifest.json" ] || [ ! -f "$bundle.qdq.onnx" ]; then
    "$ts" quantize --model "$onnx" --dataset fmnist --granularity block:16x16 --wbits 4 --abits 8 \
      --first-last 8 --reorder kmeans --seed 7 --out "$bundle" --export-onnx "$bundle.qdq.onnx" >/dev/null
  fi
  for path in float int fake; do
    case $path in
      float) ts_args=(--model "$onnx"); ort_model=$onnx; ort_args=() ;;
      int) ts_args=(--bundle "$bundle" --mode int); ort_model=$bundle.qdq.onnx; ort_args=(--ort-qdq-transforms) ;;
      fake) ts_args=(--bundle "$bundle" --mode fake); ort_model=$bundle.qdq.onnx; ort_args=(--no-qdq-transforms) ;;
    esac
    logits="$work/$model.$path.logits.npy"
    best_ts=""; best_ort=""
    for ((i = 0; i < repeat; ++i)); do
      s=$("$ts" eval "${ts_args[@]}" --dataset fmnist --threads "$threads" --batch "$batch" --json \
          --dump-logits "$logits" | jget seconds)
      o=$(node "$root/scripts/check_export_ort.js" --model "$ort_model" --logits "$logits" \
          --dataset fmnist --data-dir "${TILESCALE_DATA:-$root/data}" --threads "$threads" \
          --batch "$batch" "${ort_args[@]}" --json | jget seconds)
      best_ts=$($py -c "print(min(float(x) for x in '$s ${best_ts}'.split()))")
      best_ort=$($py -c "print(min(float(x) for x in '$o ${best_ort}'.split()))")
    done
    ratio=$($py -c "print(f'{$best_ort / $best_ts:.2f}')")
    session=$([ "$path" = int ] && echo "default (QDQ transformers on)" || { [ "$path" = fake ] && echo "QDQ transformers off" || echo "default"; })
    printf '%-18s %-6s %11.3f %11.3f %7sx  %s\n' "$model" "$path" "$best_ts" "$best_ort" "$ratio" "$session"
    rows+=("{\"model\":\"$model\",\"path\":\"$path\",\"tilescale_s\":$best_ts,\"ort_s\":$best_ort,\"ratio\":$ratio,\"images_per_s\":$($py -c "print(round(10000/$best_ts))")}")
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio = ORT seconds / tilescale seconds (> 1: tilescale is faster)"
if [ -n "$out_json" ]; then
  (IFS=,; echo "{\"cpu\":\"$cpu\",\"isa\":\"$isa\",\"threads\":$threads,\"repeat\":$repeat,\"rows\":[${rows[*]}]}") |
    $py -c "import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))" >"$out_json.tmp"
  mv "$out_json.tmp" "$out_json"
fi
