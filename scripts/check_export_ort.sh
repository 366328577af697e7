#!/usr/bin/env bash
# Checks `tilescale quantize --export-onnx` against ONNX Runtime: quantizes a model, exports it, runs
# the ONNX file with onnxruntime-node and compares top-1 and logits with tilescale's fake-quant path.
# Installs the pinned onnxruntime-node into scripts/ort/node_modules first if it is not there (npm ci,
# idempotent; git-ignored). docs/export.md explains the output.
#
# Usage: scripts/check_export_ort.sh [--model models/lenet5_mnist.onnx] [--dataset mnist]
#          [--images N] [--min-agreement 0.999] [--keep DIR] [--json] [--no-qdq-transforms]
#          [-- quantize options...]
# Default quantize options: --granularity block:8x4 --wbits 4 --first-last 8 --search minmax.
# The file must also pass Debian's python3-onnx checker (/usr/bin/python3, onnx.checker) when that
# module is installed. ONNX Runtime runs a default session unless --no-qdq-transforms.
# Environment: TILESCALE_BIN (default $TILESCALE_BUILD_DIR/tilescale, else build/tilescale).
# Exit codes: 0 ok, 1 agreement below --min-agreement, 2 bad input, 77 node/npm missing (skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tilescale=${TILESCALE_BIN:-${TILESCALE_BUILD_DIR:-$root/build}/tilescale}

model="$root/models/lenet5_mnist.onnx"
dataset=mnist
images=0
min_agreement=-1
keep=""
json=()
ort_opts=()
quant=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --dataset) dataset=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --min-agreement) min_agreement=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --json) json=(--json); shift ;;
    --no-qdq-transforms) ort_opts=(--no-qdq-transforms); shift ;;
    --) shift; quant=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check_export_ort: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ ${#quant[@]} -gt 0 ] || quant=(--granularity block:8x4 --wbits 4 --first-last 8 --search minmax)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "check_export_ort: node and npm are needed (scripts/setup.sh installs them); skipped" >&2
  exit 77
fi
[ -x "$tilescale" ] || { echo "check_export_ort: $tilescale: not built (set TILESCALE_BIN)" >&2; exit 2; }

"$root/scripts/install_ort.sh"

if [ -n "$keep" ]; then
  work=$keep
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tilescale-ort.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
name=$(basename "$model" .onnx)
limit=()
[ "$images" -gt 0 ] && limit=(--limit "$images")

echo "== $name: quantize ${quant[*]} --export-onnx" >&2
"$tilescale" quantize --model "$model" --dataset "$dataset" --out "$work/$name.bundle" \
  --export-onnx "$work/$name.qdq.onnx" "${quant[@]}" >&2
if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
  echo "== $name: onnx.checker (python3-onnx)" >&2
  /usr/bin/python3 -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]))' \
    "$work/$name.qdq.onnx" || { echo "check_export_ort: onnx.checker rejects the export" >&2; exit 1; }
else
  echo "check_export_ort: /usr/bin/python3 has no onnx module (python3-onnx); checker skipped" >&2
fi
echo "== $name: tilescale eval --mode fake --dump-logits" >&2
"$tilescale" eval --bundle "$work/$name.bundle" --mode fake --dataset "$dataset" "${limit[@]}" \
  --dump-logits "$work/$name.logits.npy" >&2
echo "== $name: ONNX Runtime" >&2
node "$root/scripts/check_export_ort.js" --model "$work/$name.qdq.onnx" \
  --logits "$work/$name.logits.npy" --dataset "$dataset" --data-dir "${TILESCALE_DATA:-$root/data}" \
  --min-agreement "$min_agreement" "${ort_opts[@]}" "${json[@]}"
