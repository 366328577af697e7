#!/usr/bin/env bash
# The PTQ-SL study of docs/results.md: every zoo model at W4A8, W3A8 and W2A8 (first/last layer 8
# bit), layer, channel and four block sizes, each with none/sort/kmeans reordering; then the
# tables and plots. One thread per point (points run in parallel on the cores; the results are the
# same bytes whatever the thread and job counts).
# Usage: scripts/run_study.sh [model ...]   (default: all three; results under out/study/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The binary can be pinned (TILESCALE_BIN) so a long study is not switched mid-way by a rebuild.
ts=${TILESCALE_BIN:-$root/build/tilescale}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(lenet5_mnist resnet8_fmnist mobilenet_fmnist)
for m in "${models[@]}"; do
  case "$m" in
    lenet5_mnist) ds=mnist ;;
    *) ds=fmnist ;;
  esac
  for w in 4 3 2; do
    out="$root/out/study/${m}_w$w"
    if [ -f "$out/results.csv" ]; then
      echo "study: $out exists, skipping"
      continue
    fi
    "$ts" sweep --model "$root/models/$m.onnx" --dataset "$ds" --wbits "$w" --abits 8 \
      --first-last 8 --granularity layer,channel,block:8x8,block:16x16,block:16x32,block:32x32 \
      --reorder none,sort,kmeans --mode fake --threads 1 --out "$out"
  done
done
