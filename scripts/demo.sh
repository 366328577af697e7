#!/usr/bin/env bash
# The main job on the bundled default model, resnet8_fmnist: quantize -> map -> simulate -> report.
#  1. PTQ-SL at W4A8 (first/last layer 8 bit): block:16x32 scales with k-means channel reordering,
#     next to the channelwise baseline (PTQ-SL output search for both).
#  2. Accuracy of each bundle on the whole Fashion-MNIST test split with the golden integer executor.
#  3. Map each onto configs/sa16x16_ws.json: cycles, scale registers, area (yosys OSU 0.18um blocks
#     plus documented SRAM estimates).
#  4. Simulate 16 test images on the cycle-accurate SystemC array, every layer checked bit for bit
#     against the golden executor and every layer's cycles against the mapper.
#  5. Verify one test image on the Verilated RTL of configs/sa8x8_ws.json (ts_top), layers chained:
#     every output bit against the golden executor, every layer's RTL cycles against the mapper.
#  6. One report. Set-up (packages, data, build) runs first if needed; safe to rerun.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TILESCALE_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
ts="$build_dir/tilescale"
out="$root/out/demo"
arch="$root/configs/sa16x16_ws.json"
images=16
rtl_arch="$root/configs/sa8x8_ws.json"
mkdir -p "$out"

runs=("block:16x32 kmeans" "channel none")
for run in "${runs[@]}"; do
  read -r g r <<<"$run"
  name="resnet8_w4a8_$(echo "${g}_$r" | tr ':' '_')"
  echo "== $g, reorder $r: quantize, evaluate (10,000 images), map, simulate ($images images)"
  "$ts" quantize --model "$root/models/resnet8_fmnist.onnx" --dataset fmnist --granularity "$g" \
    --wbits 4 --abits 8 --first-last 8 --reorder "$r" --out "$out/$name" --json >"$out/$name.quantize.json"
  "$ts" eval --bundle "$out/$name" --dataset fmnist --mode int --json >"$out/$name.eval.json"
  "$ts" map --bundle "$out/$name" --arch "$arch" --json >"$out/$name.map.json"
  "$ts" simulate --bundle "$out/$name" --arch "$arch" --images "$images" --json >"$out/$name.sim.json"
  echo "   RTL check: 1 image through the Verilated ts_top of sa8x8_ws"
  "$ts" verify --bundle "$out/$name" --arch "$rtl_arch" --images 1 --json >"$out/$name.verify.json"
done

echo
/usr/bin/python3 - "$out" "${runs[@]}" <<'PY'
import json, sys
out, runs = sys.argv[1], sys.argv[2:]
rows = []
for run in runs:
    g, r = run.split()
    name = "resnet8_w4a8_" + f"{g}_{r}".replace(":", "_")
    load = lambda kind: json.load(open(f"{out}/{name}.{kind}.json"))
    q, e, m, s, v = load("quantize"), load("eval"), load("map"), load("sim"), load("verify")
    t = m["total"]
    a = t["area_breakdown_um2"]
    cycles_match = all(ls["cycles_per_image"] == lm["cycles"] for ls, lm in zip(s["layers"], m["layers"]))
    rows.append([f"{g} ({r})", f"{q['scales']}", f"{100 * e['top1']:.2f}%",
                 f"{t['scale_registers']}", f"{(a['scale_units'] + a['scale_registers']) / 1e6:.3f}",
                 f"{t['area_um2'] / 1e6:.2f}", f"{t['cycles']:,}",
                 f"{s['mismatches']}", "yes" if cycles_match else "NO",
                 f"{v['mismatches']}", f"{v['rtl_cycles']:,}",
                 "yes" if all(l["rtl_cycles"] == l["mapper_cycles"] for l in v["layers"]) else "NO"])
head = ["granularity (reorder)", "weight scales", "top-1 (int, 10k)", "scale regs",
        "scale path mm^2", "total mm^2", "cycles/image", "sim mismatches", "sim cycles == mapper",
        "RTL mismatches", "RTL cycles (sa8x8_ws)", "RTL cycles == mapper"]
print("resnet8_fmnist W4A8 on sa16x16_ws (16x16 weight-stationary, fixed:16 scale unit, OSU 0.18um)")
widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
for r in rows:
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
print("scale path = scale units + scale registers; area excludes wires; SRAM is a cited estimate "
      "(mapping/area_params.json). RTL = 1 test image through the Verilated ts_top of sa8x8_ws, "
      "layers chained (tilescale verify). Details: out/demo/*.json")
PY
