#!/usr/bin/env bash
# Set-up if needed, then every default test: all ctest labels except 'slow' on the Release build
# (unit, cli, sim, release, rtl), and the unit, cli and sim (SystemC) tests again on an
# AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/; it builds only those test
# binaries: no Verilated model, no 'release' zoo test). Labels: README.md, "Tests and benchmarks".
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
  source "$root/scripts/lib/configure.sh"
  configure_build "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILESCALE_SANITIZE=ON
  cmake --build "$asan_dir" -j"$jobs"
  ctest --test-dir "$asan_dir" --label-regex 'unit|cli|sim' --output-on-failure -j"$jobs" --timeout 900 "$@"
fi
