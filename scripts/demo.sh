#!/usr/bin/env bash
# The main job on the bundled models. Set-up if needed, then:
#  1. the float accuracy of the zoo through tilescale's ONNX importer and float executor;
#  2. PTQ-SL on resnet8_fmnist at W4A8 (first/last layer 8 bit): sub-layerwise blocks with k-means
#     channel reordering next to the channelwise baseline, each scored by the golden integer executor
#     on the whole test split.
# (Map -> simulate join this report as those stages land.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
ts="$build_dir/tilescale"
out="$root/out/demo"
mkdir -p "$out"

for pair in lenet5_mnist:mnist resnet8_fmnist:fmnist mobilenet_fmnist:fmnist; do
  model=${pair%%:*}; data=${pair##*:}
  echo "== $model: float reference executor on the $data test split"
  "$ts" eval --model "$root/models/$model.onnx" --dataset "$data"
  echo
done

for cfg in "block:16x32 kmeans" "channel none"; do
  set -- $cfg
  name="resnet8_w4a8_${1//[:x]/_}_$2"
  echo "== resnet8_fmnist W4A8 $1, reorder $2 (PTQ-SL output search)"
  "$ts" quantize --model "$root/models/resnet8_fmnist.onnx" --dataset fmnist --granularity "$1" \
    --wbits 4 --abits 8 --first-last 8 --reorder "$2" --out "$out/$name"
  "$ts" eval --bundle "$out/$name" --dataset fmnist --mode int
  echo
done
