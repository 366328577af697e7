#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/) one after another on a clang ASan + UBSan build in build-fuzz/.
# Each target starts from a scratch copy of its seed corpus (fuzz/corpus/<target>/ plus the repo's
# own files: models/*.onnx, configs/*.json, models/fixtures/*.npy, a fresh bundle); the committed corpus is never written.
# Crash, leak, timeout and out-of-memory inputs go to fuzz/crashes/<target>/.
# Usage: scripts/fuzz.sh [seconds-per-target] [targets...]
#   default 600 s per target and every target; TILESCALE_FUZZ_JOBS sets the build's -j (default
#   nproc), TILESCALE_FUZZ_DIR the build directory. A target stops at its first crash unless
#   TILESCALE_FUZZ_KEEP_GOING=1 (libFuzzer's -fork=1 mode, which records every crash and goes on).
#   Exit code 1 if any target found a crash.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_FUZZ_DIR:-$root/build-fuzz}
jobs=${TILESCALE_FUZZ_JOBS:-$(nproc)}
seconds=${1:-600}
[ $# -gt 0 ] && shift
case "$seconds" in '' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [seconds-per-target] [targets...]" >&2
  exit 2
  ;;
esac

all_targets=(fuzz_onnx fuzz_idx fuzz_cifar fuzz_npy fuzz_arch fuzz_scalesim fuzz_topology fuzz_bundle
  fuzz_bundle_blob)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || {
    echo "fuzz: unknown target '$t' (${all_targets[*]})" >&2
    exit 2
  }
done

# clang and its fuzzer/sanitizer runtimes and OpenMP, from Debian's archive (as scripts/setup.sh).
packages=(clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DTILESCALE_FUZZ=ON \
    -DBUILD_TESTING=OFF
fi
build_targets=("${targets[@]}")
needs_bundle=0
for t in "${targets[@]}"; do [[ $t == fuzz_bundle* ]] && needs_bundle=1; done
[ $needs_bundle -eq 1 ] && build_targets+=(tilescale)
cmake --build "$build_dir" -j"$jobs" --target "${build_targets[@]}"

# The bundle template: LeNet-5 quantized by this build's tilescale, remade when the binary changes.
template="$build_dir/bundle-template"
if [ $needs_bundle -eq 1 ] && [ "$build_dir/tilescale" -nt "$template/manifest.json" ]; then
  bash "$root/scripts/fetch_data.sh"
  echo "fuzz: making the bundle template $template"
  ASAN_OPTIONS=detect_leaks=0 "$build_dir/tilescale" quantize --model "$root/models/lenet5_mnist.onnx" \
    --dataset mnist --search minmax --calib 8 --out "$template" >/dev/null
fi

keep_going=()
[ "${TILESCALE_FUZZ_KEEP_GOING:-0}" = "1" ] &&
  keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
# The last match of an extended regex in a file (empty if none).
last_match() { grep -oE "$1" "$2" | tail -1 || true; }

export UBSAN_OPTIONS=print_stacktrace=1
export TILESCALE_FUZZ_BUNDLE=$template
summary=()
found=0
for t in "${targets[@]}"; do
  corpus="$build_dir/corpus/$t"
  crashes="$root/fuzz/crashes/$t"
  scratch_tmp="$build_dir/tmp/$t"
  log="$build_dir/logs/$t.log"
  rm -rf "$corpus" "$scratch_tmp"
  mkdir -p "$corpus" "$crashes" "$scratch_tmp" "$(dirname "$log")"
  [ -d "$root/fuzz/corpus/$t" ] && cp "$root/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  case $t in
    fuzz_onnx) cp "$root"/models/*.onnx "$corpus"/ ;;
    fuzz_bundle) cp "$template/manifest.json" "$corpus/template-manifest.json" ;;
    fuzz_arch) cp "$root"/configs/*.json "$corpus"/ ;;
    fuzz_npy) cp "$root"/models/fixtures/*.npy "$corpus"/ ;;
  esac
  before=$(find "$crashes" -type f | wc -l)
  echo "fuzz: $t for ${seconds}s on $(find "$corpus" -type f | wc -l) seed inputs (log: $log)"
  status=0
  start=$(date +%s)
  TMPDIR="$scratch_tmp" "$build_dir/fuzz/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 "${keep_going[@]}" \
    -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  rm -rf "$scratch_tmp"
  # Plain mode ends with stat:: lines; fork mode only prints "#<runs>: cov: ... exec/s <n> ...".
  runs=$(last_match 'stat::number_of_executed_units: *[0-9]+' "$log" | awk '{print $2}')
  [ -n "$runs" ] || runs=$(last_match '^#[0-9]+' "$log" | tr -d '#')
  eps=$(last_match 'stat::average_exec_per_sec: *[0-9]+' "$log" | awk '{print $2}')
  [ -n "$eps" ] || eps=$(last_match 'exec/s:? [0-9]+' "$log" | awk '{print $2}')
  cov=$(last_match 'cov: [0-9]+ ft: [0-9]+' "$log" | awk '{print $2 " edges, " $4 " features"}')
  corp=$(last_match 'corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' "$log" | awk '{print $2}')
  new_crashes=$(($(find "$crashes" -type f | wc -l) - before))
  if [ $status -ne 0 ] || [ $new_crashes -gt 0 ]; then
    found=1
    echo "fuzz: $t ended with exit code $status; $new_crashes new input(s) in $crashes"
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz: non-InputError' \
      "$log" || true
  fi
  summary+=("$(printf '%-17s %7ss %10s runs %7s exec/s  cov %-26s corpus %-10s crashes %s' "$t" \
    "$elapsed" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${corp:-?}" "$new_crashes")")
done

echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit $found
