#!/usr/bin/env bash
# Fingerprints what tilescale computes, to show that a refactoring changed no behaviour: quantizes the
# three zoo models at several granularities, searches and reorderings (bundles and exported ONNX), dumps
# float, fake-quant and integer logits, and keeps the map, simulate and sweep reports with their
# timing fields removed; then writes the SHA-256 of every file to OUT/sha256.txt.
# Compare two builds:  scripts/identity_check.sh /tmp/before (old build) ; ... /tmp/after (new) ;
#                      diff /tmp/before/sha256.txt /tmp/after/sha256.txt && echo identical
# Usage: scripts/identity_check.sh OUT [--bin build/tilescale]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: identity_check.sh OUT [--bin tilescale]}
ts=${TILESCALE_BIN:-$root/build/tilescale}
[ "${2:-}" = "--bin" ] && ts=$3
# Reports name their files: work in one fixed folder, so two runs write the same paths; OUT gets
# the results at the end.
final=$out
out=${TMPDIR:-/tmp}/tilescale-identity
rm -rf "$out" "$final"; mkdir -p "$out"
py=/usr/bin/python3
# Timing and machine-dependent keys, dropped from JSON reports before hashing.
strip() {
  $py -c '
import json, sys
drop = {"seconds", "seconds_per_image", "images_per_s", "pe_cycles_per_s", "cpu_seconds",
        "pe_cycles_per_cpu_s", "threads", "quantize_seconds", "eval_seconds", "search_seconds",
        "provenance"}
def walk(x):
    if isinstance(x, dict):
        return {k: walk(v) for k, v in x.items() if k not in drop}
    if isinstance(x, list):
        return [walk(v) for v in x]
    return x
# The source tree'"'"'s own path (models, configs, area tables) is replaced, so two checkouts compare.
print(json.dumps(walk(json.load(sys.stdin)), indent=1, sort_keys=True).replace(sys.argv[1], "<src>"))' "$root"
}
runs=(
  "lenet5_mnist mnist layer minmax none 4"
  "lenet5_mnist mnist block:8x4 output kmeans 4"
  "lenet5_mnist mnist mx:32 wmse none 3"
  "lenet5_mnist mnist vsq:16 minmax sort 4"
  "resnet8_fmnist fmnist block:16x16 output kmeans 4"
  "resnet8_fmnist fmnist channel output none 3"
  "mobilenet_fmnist fmnist block:16x32 minmax sort 4"
)
for run in "${runs[@]}"; do
  read -r model data g search reorder wbits <<<"$run"
  name="${model}_$(echo "${g}_${search}_${reorder}_w$wbits" | tr ':' '_')"
  echo "identity_check: $name"
  "$ts" quantize --model "$root/models/$model.onnx" --dataset "$data" --granularity "$g" \
    --search "$search" --reorder "$reorder" --wbits "$wbits" --abits 8 --first-last 8 --seed 7 \
    --calib 16 --out "$out/$name.bundle" --export-onnx "$out/$name.qdq.onnx" --json | strip >"$out/$name.quantize.json"
  for mode in int fake; do
    "$ts" eval --bundle "$out/$name.bundle" --dataset "$data" --mode "$mode" --limit 1000 --json \
      --dump-logits "$out/$name.$mode.npy" | strip >"$out/$name.$mode.json"
  done
  for arch in sa16x16_ws cim128_2b; do
    "$ts" map --bundle "$out/$name.bundle" --arch "$root/configs/$arch.json" --align pad --json |
      strip >"$out/$name.map_$arch.json"
  done
  "$ts" simulate --bundle "$out/$name.bundle" --arch "$root/configs/sa8x8_ws.json" --align pad \
    --dataset "$data" --images 2 --json | strip >"$out/$name.simulate.json"
done
for pair in lenet5_mnist:mnist resnet8_fmnist:fmnist mobilenet_fmnist:fmnist; do
  model=${pair%%:*}; data=${pair##*:}
  "$ts" eval --model "$root/models/$model.onnx" --dataset "$data" --limit 1000 --json \
    --dump-logits "$out/$model.float.npy" | strip >"$out/$model.float.json"
done
"$ts" sweep --model "$root/models/lenet5_mnist.onnx" --dataset mnist --granularity layer,channel,block:8x4 \
  --reorder none,kmeans --search minmax --wbits 4 --calib 8 --eval-limit 200 --no-timing \
  --out "$out/sweep" >/dev/null
# The study rows name the commit they were made by (git_commit): dropped, like "provenance" above.
$py - "$out/sweep" <<'PY'
import csv, io, json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"{d}/results.jsonl")]
with open(f"{d}/results.jsonl", "w") as f:
    for r in rows:
        r.pop("git_commit", None)
        f.write(json.dumps(r) + "\n")
table = list(csv.reader(open(f"{d}/results.csv", newline="")))
col = table[0].index("git_commit")
with open(f"{d}/results.csv", "w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows([r[:col] + r[col + 1:] for r in table])
PY
(cd "$out" && find . -type f ! -name sha256.txt | LC_ALL=C sort | xargs sha256sum) >"$out/sha256.txt"
mkdir -p "$(dirname "$final")"; mv "$out" "$final"
echo "identity_check: $(wc -l <"$final/sha256.txt") files fingerprinted in $final/sha256.txt"
