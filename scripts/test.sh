#!/usr/bin/env bash
# Set-up if needed, then every default test: all ctest labels except 'slow' on the Release build, and
# the unit and cli tests again on an AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/).
# Usage: scripts/test.sh [extra ctest arguments]
#   TILESCALE_SKIP_SANITIZE=1 skips the sanitizer build (quick local runs; CI always runs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
asan_dir=${TILESCALE_ASAN_DIR:-$root/build-asan}
jobs=$(nproc)
"$root/scripts/setup.sh"
ctest --test-dir "$build_dir" --label-exclude slow --output-on-failure -j"$jobs" --timeout 900 "$@"

if [ "${TILESCALE_SKIP_SANITIZE:-0}" != "1" ] || [ "${CI:-}" = "true" ]; then
  echo "test: sanitizer build (ASan + UBSan) in $asan_dir"
  if [ ! -f "$asan_dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILESCALE_SANITIZE=ON
  fi
  cmake --build "$asan_dir" -j"$jobs"
  ctest --test-dir "$asan_dir" --label-regex 'unit|cli' --output-on-failure -j"$jobs" --timeout 900 "$@"
fi
