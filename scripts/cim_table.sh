#!/usr/bin/env bash
# Top-1 of the zoo at W4A8 (first/last layer 8 bit, PTQ-SL output search) with the CIM ADCs in
# the golden executor (`tilescale eval --arch`, quantizer/include/tilescale/quant/adc.h), on
# configs/cim128_2b.json with adc_bits set to each of ADC_BITS (temporary arch JSONs in the output
# folder; 6 is the shipped config), for each granularity, with the search on ideal integer products
# ("ideal" rows: one bundle, evaluated at every ADC width) and with the ADC-aware search ("adc"
# rows: `quantize --arch` for each ADC width, evaluated at that width). Prints a markdown table
# (docs/results.md section 2b/2d) and the quantize times. Results are cached in the output folder,
# so a rerun only computes what is missing.
# Usage: scripts/cim_table.sh [out_dir]   (default out/cim_table)
# Environment:
#   MODELS    "model:dataset ..." (default lenet5_mnist:mnist resnet8_fmnist:fmnist
#             mobilenet_fmnist:fmnist)
#   GRANS     granularities; "G/kmeans" reorders with kmeans; "xbar" is the crossbar-aligned block
#             resolved from the arch (default "layer channel block:16x16")
#   ADC_BITS  ADC widths (default "4 6 8")
#   SEARCHES  "ideal adc" (default "ideal"): which searches to run
#   AWARE_ADC_BITS  the ADC widths of the ADC-aware rows (default ADC_BITS; others left blank)
#   LIMIT=N   evaluates the first N test images only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ts=${TILESCALE_BIN:-$root/build/tilescale}
out=${1:-$root/out/cim_table}
mkdir -p "$out"
models=${MODELS:-"lenet5_mnist:mnist resnet8_fmnist:fmnist mobilenet_fmnist:fmnist"}
grans=${GRANS:-"layer channel block:16x16"}
adcs=${ADC_BITS:-"4 6 8"}
searches=${SEARCHES:-"ideal"}
aware_adcs=" ${AWARE_ADC_BITS:-$adcs} "
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
first_adc=${adcs%% *}
top1() { $py -c "import json,sys;print(f\"{100*json.load(open(sys.argv[1]))['top1']:.2f}%\")" "$1"; }
seconds() { $py -c "import json,sys;print(f\"{json.load(open(sys.argv[1]))['seconds']:.1f}\")" "$1"; }
# quantize NAME GRAN ARCH ADC_SEARCH: the bundle $out/NAME (cached), its report NAME.quantize.json.
quantize() {
  local name=$1 gran=$2 arch=$3 search=$4 g=${2%/*} reorder=none
  if [ "$gran" != "$g" ]; then reorder=${gran#*/}; fi
  if [ ! -f "$out/$name/manifest.json" ]; then
    "$ts" quantize --model "$root/models/$model.onnx" --dataset "$ds" --wbits 4 --abits 8 \
      --first-last 8 --granularity "$g" --reorder "$reorder" --arch "$arch" \
      --adc-search "$search" --out "$out/$name" --json >"$out/$name.quantize.json"
  fi
}
# evaluate NAME ARCH|"" KEY: top-1 of bundle NAME (cached in NAME.KEY$tag.json).
evaluate() {
  local name=$1 arch=$2 key=$3 f="$out/$1.$3$tag.json"
  if [ ! -f "$f" ]; then
    local extra=()
    if [ -n "$arch" ]; then extra=(--arch "$arch"); fi
    "$ts" eval --bundle "$out/$name" --mode int --dataset "$ds" "${extra[@]}" "${limit[@]}" \
      --json >"$f.tmp" 2>/dev/null
    mv "$f.tmp" "$f"
  fi
  top1 "$f"
}
header="| model | granularity | search | top-1 ideal int |"
rule="|---|---|---|---:|"
for bits in $adcs; do header+=" adc $bits |"; rule+="---:|"; done
echo "$header"
echo "$rule"
times=""
for m in $models; do
  model=${m%%:*}; ds=${m##*:}
  for gran in $grans; do
    base="${model}_$(echo "$gran" | tr ':/' '__')"
    for search in $searches; do
      if [ "$search" = ideal ]; then
        quantize "$base" "$gran" "$out/cim128_2b_adc$first_adc.json" off
        row="| $model | $gran | ideal | $(evaluate "$base" "" ideal) |"
        for bits in $adcs; do
          row+=" $(evaluate "$base" "$out/cim128_2b_adc$bits.json" "adc$bits") |"
        done
        times+="$model $gran ideal-search quantize $(seconds "$out/$base.quantize.json") s"$'\n'
      else
        row="| $model | $gran | ADC-aware | |"
        for bits in $adcs; do
          if [[ "$aware_adcs" != *" $bits "* ]]; then row+=" |"; continue; fi
          name="${base}_aware$bits"
          quantize "$name" "$gran" "$out/cim128_2b_adc$bits.json" on
          row+=" $(evaluate "$name" "$out/cim128_2b_adc$bits.json" "adc$bits") |"
          times+="$model $gran adc$bits-search quantize $(seconds "$out/$name.quantize.json") s"$'\n'
        done
      fi
      echo "$row"
    done
  done
done
echo
echo "quantize seconds (wall, as each run's JSON report; cached runs keep their first time):"
printf '%s' "$times"
