#!/usr/bin/env bash
# Benchmark: float inference throughput of `tilescale eval` vs PyTorch 1.13 (Debian) on the same machine,
# same models, same 10,000 Fashion-MNIST test images, both at 2 threads and each at its best batch size.
# Usage: scripts/bench_float.sh [--json OUT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
threads=2
batches="16 64 256 1024"
out_json=""
[ "${1:-}" = "--json" ] && out_json=${2:?--json needs a file}

# Packages and data; then only the program itself (the whole tree with its tests and RTL is not needed).
"$root/scripts/setup.sh" --no-build >/dev/null
[ -f "$build_dir/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" --target tilescale >/dev/null
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-torch
fi

results="[]"
# Both runtimes share the machine with whatever else runs: say how loaded it was.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
printf '%-18s %10s %14s %14s %8s\n' model "top-1" "tilescale/s" "pytorch/s" ratio
for model in resnet8_fmnist mobilenet_fmnist; do
  best_ts=0; best_ts_batch=0; top1=""
  for b in $batches; do
    j=$("$build_dir/tilescale" eval --model "$root/models/$model.onnx" --dataset fmnist \
        --batch "$b" --threads "$threads" --json)
    ips=$(echo "$j" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['images_per_s'])")
    top1=$(echo "$j" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['top1'])")
    if /usr/bin/python3 -c "import sys; sys.exit(0 if $ips > $best_ts else 1)"; then
      best_ts=$ips; best_ts_batch=$b
    fi
  done
  tj=$(/usr/bin/python3 "$root/scripts/bench_torch.py" --model "$model" --dataset fmnist \
       --threads "$threads" --batches "${batches// /,}" --json)
  best_pt=$(echo "$tj" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['best_images_per_s'])")
  best_pt_batch=$(echo "$tj" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['best_batch'])")
  ratio=$(/usr/bin/python3 -c "print(f'{$best_ts / $best_pt:.2f}')")
  printf '%-18s %9.2f%% %8.0f (b%-4s) %8.0f (b%-4s) %7sx\n' "$model" \
    "$(/usr/bin/python3 -c "print(100*$top1)")" "$best_ts" "$best_ts_batch" "$best_pt" "$best_pt_batch" "$ratio"
  results=$(/usr/bin/python3 -c "
import json,sys
r=json.loads(sys.argv[1]); r.append({'model':sys.argv[2],'tilescale_images_per_s':float(sys.argv[3]),
 'tilescale_batch':int(sys.argv[4]),'pytorch_images_per_s':float(sys.argv[5]),'pytorch_batch':int(sys.argv[6]),
 'ratio':float(sys.argv[7]),'threads':$threads}); print(json.dumps(r))" \
    "$results" "$model" "$best_ts" "$best_ts_batch" "$best_pt" "$best_pt_batch" "$ratio")
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$out_json" ]; then
  echo "$results" | /usr/bin/python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))" > "$out_json.tmp"
  mv "$out_json.tmp" "$out_json"
fi
