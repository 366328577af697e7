#!/usr/bin/env bash
# Study throughput: points per minute of studies/bench_points.json (resnet8_fmnist W4A8, 6
# granularities x none/sort x 2 systolic archs = 24 points, 12 quantizations with output search,
# golden int top-1 on 2,000 images) run four ways, each from an empty cache:
#   serial   one process, --jobs 1 --threads 1
#   threads  one process, --jobs 1 --threads 2 (the quantizer and executors use both cores)
#   jobs     one process, --jobs 2 --threads 1 (two points at once)
#   mpi      mpirun -np 2, --threads 1 (rank 0 computes too; dynamic hand-out)
# and checks that the four results.csv agree once the timing columns are dropped. A benchmark, not
# a test: the figures depend on the machine and its load, so the CPU and load average are printed.
# Usage: scripts/bench_study.sh [OUT_DIR]   (default /tmp/tilescale-bench-study)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ts=${TILESCALE_BIN:-$root/build/tilescale}
out=${1:-/tmp/tilescale-bench-study}
study=$root/studies/bench_points.json
rm -rf "$out"
mkdir -p "$out"
source "$root/scripts/lib/cpu_info.sh"
print_cpu_info
echo "tilescale: $ts (commit $(git -C "$root" rev-parse --short HEAD))"
run() {
  local name=$1
  shift
  local load t0 t1
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  "$@" sweep --config "$study" --out "$out/$name" --quiet --no-timing "${extra[@]}"
  t1=$(date +%s.%N)
  local points
  points=$(($(wc -l <"$out/$name/results.csv") - 1))
  /usr/bin/python3 -c "import sys; p,t=int(sys.argv[1]),float(sys.argv[3])-float(sys.argv[2]);
print(f'{sys.argv[4]:8s} {p} points in {t:6.1f} s = {60*p/t:5.2f} points/min (load before {sys.argv[5]})')" \
    "$points" "$t0" "$t1" "$name" "$load"
}
extra=(--jobs 1 --threads 1); run serial "$ts"
extra=(--jobs 1 --threads 2); run threads "$ts"
extra=(--jobs 2 --threads 1); run jobs "$ts"
extra=(--threads 1)
run mpi env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -np 2 --oversubscribe --bind-to none "$ts"
for name in threads jobs mpi; do
  if cmp -s "$out/serial/results.csv" "$out/$name/results.csv"; then
    echo "results.csv: $name == serial"
  else
    echo "results.csv: $name differs from serial" >&2
    exit 1
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
