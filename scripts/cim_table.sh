#!/usr/bin/env bash
# Top-1 of the zoo at W4A8 (first/last layer 8 bit, PTQ-SL output search) with the CIM ADCs in
# the golden executor (`tilescale eval --arch`, quantizer/include/tilescale/quant/adc.h): ideal
# integer next to configs/cim128_2b.json with adc_bits set to each of ADC_BITS (default 4 6 8; 6 is
# the shipped config). Prints a markdown table (docs/results.md section 2). Results are cached in
# the output folder, so a rerun only evaluates what is missing.
# Usage: scripts/cim_table.sh [out_dir]   (default out/cim_table)
# Environment: MODELS, GRANS, ADC_BITS as below; LIMIT=N evaluates the first N test images only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ts=${TILESCALE_BIN:-$root/build/tilescale}
out=${1:-$root/out/cim_table}
mkdir -p "$out"
models=${MODELS:-"lenet5_mnist:mnist resnet8_fmnist:fmnist mobilenet_fmnist:fmnist"}
grans=${GRANS:-"layer channel block:16x16"}
adcs=${ADC_BITS:-"4 6 8"}
limit=()
tag=""
if [ -n "${LIMIT:-}" ]; then limit=(--limit "$LIMIT"); tag=".l$LIMIT"; fi
py=/usr/bin/python3
for bits in $adcs; do
  $py - "$root/configs/cim128_2b.json" "$out/cim128_2b_adc$bits.json" "$bits" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["adc_bits"] = int(sys.argv[3])
j["name"] = "cim128_2b_adc" + sys.argv[3]
json.dump(j, open(sys.argv[2], "w"))
PY
done
header="| model | granularity | top-1 ideal int |"
rule="|---|---|---:|"
for bits in $adcs; do header+=" cim128_2b adc_bits $bits |"; rule+="---:|"; done
echo "$header"
echo "$rule"
for m in $models; do
  model=${m%%:*}; ds=${m##*:}
  for g in $grans; do
    name="${model}_$(echo "$g" | tr ':' '_')"
    b="$out/$name"
    if [ ! -f "$b/manifest.json" ]; then
      "$ts" quantize --model "$root/models/$model.onnx" --dataset "$ds" --wbits 4 --abits 8 \
        --first-last 8 --granularity "$g" --out "$b" --json >"$out/$name.quantize.json"
    fi
    f="$out/$name.ideal$tag.json"
    if [ ! -f "$f" ]; then
      "$ts" eval --bundle "$b" --mode int --dataset "$ds" "${limit[@]}" --json >"$f.tmp"
      mv "$f.tmp" "$f"
    fi
    row="| $model | $g | $($py -c "import json,sys;print(f\"{100*json.load(open(sys.argv[1]))['top1']:.2f}%\")" "$f") |"
    for bits in $adcs; do
      f="$out/$name.adc$bits$tag.json"
      if [ ! -f "$f" ]; then
        "$ts" eval --bundle "$b" --mode int --dataset "$ds" --arch "$out/cim128_2b_adc$bits.json" \
          "${limit[@]}" --json >"$f.tmp"
        mv "$f.tmp" "$f"
      fi
      row+=" $($py -c "import json,sys;print(f\"{100*json.load(open(sys.argv[1]))['top1']:.2f}%\")" "$f") |"
    done
    echo "$row"
  done
done
