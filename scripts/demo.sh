#!/usr/bin/env bash
# The main job on the bundled models. Set-up if needed, then the float accuracy report of the zoo.
# (Quantize -> map -> simulate joins this report as those stages land.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
ts="$build_dir/tilescale"
for pair in lenet5_mnist:mnist resnet8_fmnist:fmnist mobilenet_fmnist:fmnist; do
  model=${pair%%:*}; data=${pair##*:}
  echo "== $model: float reference executor on the $data test split"
  "$ts" eval --model "$root/models/$model.onnx" --dataset "$data"
  echo
done
