#!/usr/bin/env bash
# Set-up if needed, then every default test (all ctest labels except 'slow').
# Usage: scripts/test.sh [extra ctest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
ctest --test-dir "$build_dir" --label-exclude slow --output-on-failure -j"$(nproc)" --timeout 900 "$@"
