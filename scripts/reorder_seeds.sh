#!/usr/bin/env bash
# The reorder acceptance study of docs/results.md: every zoo model at W4A8, W3A8 and W2A8 (first and
# last layer 8 bit), the given granularities, none/sort/kmeans, seeds 0 1 2, top-1 of the golden
# integer executor on the first EVAL_LIMIT test images (default 2000); then the table of means and
# spreads with the check "mean >= none's mean - max(2 std, 0.1 point)" (scripts/seed_table.py).
# Usage: scripts/reorder_seeds.sh OUT_DIR [granularity,...]   (default block:16x16)
# Environment: MODELS (default "lenet5_mnist resnet8_fmnist mobilenet_fmnist"), WIDTHS (default
# "4 3 2"), REORDERS (default none,sort,kmeans), EVAL_LIMIT, THREADS, TILESCALE_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ts=${TILESCALE_BIN:-$root/build/tilescale}
out=${1:?usage: reorder_seeds.sh OUT_DIR [granularities]}
grans=${2:-block:16x16}
limit=${EVAL_LIMIT:-2000}
for m in ${MODELS:-lenet5_mnist resnet8_fmnist mobilenet_fmnist}; do
  case "$m" in lenet5_mnist) ds=mnist ;; *) ds=fmnist ;; esac
  for w in ${WIDTHS:-4 3 2}; do
    for seed in 0 1 2; do
      dir="$out/${m}_w${w}_s${seed}"
      [ -f "$dir/results.json" ] && grep -q '"complete": true' "$dir/results.json" && continue
      "$ts" sweep --model "$root/models/$m.onnx" --dataset "$ds" --wbits "$w" --abits 8 \
        --first-last 8 --granularity "$grans" --reorder "${REORDERS:-none,sort,kmeans}" --seed "$seed" \
        --mode int --eval-limit "$limit" --threads "${THREADS:-2}" --out "$dir" >/dev/null
    done
  done
done
/usr/bin/python3 "$root/scripts/seed_table.py" "$out"/*/results.csv
