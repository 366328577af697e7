#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine, safe to rerun: Debian packages, the data sets (npm), the build.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}

# Everything the project builds, tests and plots with; all from Debian's archive.
packages=(
  cmake ninja-build g++ pkg-config git ca-certificates
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libboost-program-options-dev
  libonnx-dev libprotobuf-dev protobuf-compiler libopenblas-dev libdnnl-dev libeigen3-dev
  ocl-icd-opencl-dev
  libsystemc-dev verilator yosys qflow-tech-osu018
  libopenmpi-dev openmpi-bin
  python3-numpy python3-matplotlib python3-onnx
  time
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

bash "$root/scripts/fetch_data.sh"

if [ "${1:-}" != "--no-build" ]; then
  source "$root/scripts/lib/configure.sh"
  configure_build "$build_dir" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$build_dir" -j"$(nproc)"
  echo "setup: built $build_dir/tilescale"
fi
