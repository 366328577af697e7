#!/usr/bin/env bash
# Installs the pinned onnxruntime-node (scripts/ort/package-lock.json) into scripts/ort/node_modules
# when it is not there yet; idempotent. Its postinstall step only fetches CUDA providers, so it is
# skipped: the CPU runtime ships inside the npm package. Exit 77 when node or npm is missing.
set -euo pipefail
ort_dir=$(cd "$(dirname "$0")/ort" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install_ort: node and npm are needed (scripts/setup.sh installs them)" >&2
  exit 77
fi
pinned=$(node -p "require('$ort_dir/package.json').dependencies['onnxruntime-node']")
installed=$(node -p "try { require('$ort_dir/node_modules/onnxruntime-node/package.json').version } catch (e) { '' }")
if [ "$installed" != "$pinned" ]; then
  echo "install_ort: installing onnxruntime-node@$pinned into scripts/ort/node_modules" >&2
  npm ci --prefix "$ort_dir" --ignore-scripts --no-audit --no-fund >&2
fi
