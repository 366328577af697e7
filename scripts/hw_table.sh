#!/usr/bin/env bash
# Granularity vs hardware for resnet8_fmnist at W4A8 (first/last layer 8 bit): for each
# granularity, quantize (PTQ-SL output search), measure top-1 with the golden integer executor on
# the full test split, and map onto sa16x16_ws and cim128_2b. Prints a markdown table (docs/results.md).
# Usage: scripts/hw_table.sh [out_dir]   (default out/hw_resnet8)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ts=${TILESCALE_BIN:-$root/build/tilescale}  # pin a binary for long runs
out=${1:-$root/out/hw_resnet8}
mkdir -p "$out"
model="$root/models/resnet8_fmnist.onnx"
runs=("layer none" "channel none" "block:8x8 none" "block:16x16 none" "block:16x32 none"
      "block:16x32 kmeans" "mx:32 none")
py=/usr/bin/python3

echo "| granularity | reorder | scales | top-1 (int) | sa16x16_ws scale regs | sa16x16_ws scale units + regs (um^2) | sa16x16_ws total area (mm^2) | sa16x16_ws cycles | sa16x16_ws padded rows | cim128_2b scale regs/macro | cim128_2b scale units + regs (um^2) | cim128_2b total area (mm^2) | cim128_2b cycles |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for run in "${runs[@]}"; do
  read -r g r <<<"$run"
  name=$(echo "${g}_$r" | tr ':' '_')
  b="$out/$name"
  # Quantizing and evaluating take minutes; a rerun reuses them and only maps again.
  if [ ! -f "$out/$name.eval.json" ] || [ ! -f "$b/manifest.json" ]; then
    "$ts" quantize --model "$model" --dataset fmnist --wbits 4 --abits 8 --first-last 8 \
      --granularity "$g" --reorder "$r" --out "$b" --json >"$out/$name.quantize.json"
    "$ts" eval --bundle "$b" --mode int --dataset fmnist --json >"$out/$name.eval.json.tmp"
    mv "$out/$name.eval.json.tmp" "$out/$name.eval.json"
  fi
  "$ts" map --bundle "$b" --arch "$root/configs/sa16x16_ws.json" --align pad --json >"$out/$name.sa16.json"
  "$ts" map --bundle "$b" --arch "$root/configs/cim128_2b.json" --align pad --json >"$out/$name.cim.json"
  $py - "$out/$name" "$g" "$r" <<'PY'
import json, sys
base, g, r = sys.argv[1:4]
q = json.load(open(base + ".quantize.json"))
e = json.load(open(base + ".eval.json"))
sa = json.load(open(base + ".sa16.json"))["total"]
cim = json.load(open(base + ".cim.json"))["total"]
scales = q.get("scales", q.get("summary", {}).get("scales", "?"))
def scale_area(t):
    a = t["area_breakdown_um2"]
    return a["scale_units"] + a["scale_registers"]
pad = sum(l["padded_rows"] for l in json.load(open(base + ".sa16.json"))["layers"])
print(f"| {g} | {r} | {scales} | {100*e['top1']:.2f}% | {sa['scale_registers']} | {scale_area(sa):,.0f} | "
      f"{sa['area_um2']/1e6:.2f} | {sa['cycles']:,} | {pad} | {cim['scale_registers']} | {scale_area(cim):,.0f} | "
      f"{cim['area_um2']/1e6:.2f} | {cim['cycles']:,} |")
PY
done
