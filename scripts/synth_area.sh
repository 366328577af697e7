#!/usr/bin/env bash
# Synthesizes the RTL building blocks in rtl/ with yosys onto the OSU 0.18um standard cells and writes
# mapping/area_table.json (um^2, cell and flop counts per component and parameter set).
#
# Usage: scripts/synth_area.sh
#          regenerate mapping/area_table.json (about 2-3 minutes, 2 yosys jobs at a time)
#        scripts/synth_area.sh --check COMPONENT KEY=VAL[,KEY=VAL...] [--table FILE]
#          synthesize that one entry again and exit 1 unless area, cells and flops equal the table's
#        scripts/synth_area.sh --top [CONFIG...]
#          synthesize the whole accelerator ts_top for configs/CONFIG.json (default: sa8x8_ws
#          sa16x16_ws) with the parameters scripts/gen_rtl_config.py derives, and write
#          rtl/ts_top_area.json (a few minutes per config)
#        scripts/synth_area.sh --top --check CONFIG
#          synthesize CONFIG again and exit 1 unless its totals equal rtl/ts_top_area.json's
#
# Environment: TILESCALE_LIBERTY (default: Debian qflow-tech-osu018's osu018_stdcells.lib),
#              TILESCALE_SYNTH_JOBS (1 or 2, default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${TILESCALE_LIBERTY:-/usr/share/qflow/tech/osu018/osu018_stdcells.lib}
jobs=${TILESCALE_SYNTH_JOBS:-2}
if [ "$jobs" != 1 ] && [ "$jobs" != 2 ]; then
  echo "synth_area: TILESCALE_SYNTH_JOBS must be 1 or 2" >&2
  exit 2
fi
out="$root/mapping/area_table.json"

# -noalumacc: yosys 0.23's alumacc merges the weight-stationary PE's act*weight and the partial-sum
# add into one $macc cell whose mapping sign-extends every partial product to the accumulator width
# (ts_pe_ws 8x4x32: 24,790 um^2 merged, 16,141 um^2 not). Without alumacc every operator is mapped
# on its own; the other blocks change by 5% or less either way. Measured here, see rtl/README.md.
synth_cmd="synth -top %s -flatten -noalumacc"
caveats="Standard cells only: no wires, placement, clock tree or SRAM. ABC does not map the \
multi-output FAX1/HAX1 cells, so adders are built from simple gates and adder-heavy blocks are \
pessimistic. Flow: read_verilog -sv; chparam; synth -top M -flatten -noalumacc (yosys 0.23 \
alumacc merges a PE's multiply and add into one \$macc that maps much larger); dfflibmap, abc \
-liberty; opt_clean; stat -liberty. Datapath pipeline registers have no reset (DFFPOSX1, 96 um^2), \
state registers have an asynchronous reset (DFFSR, 176 um^2)."

# component  module  parameters (every parameter set explicitly, in the module's order)
entries=()
for a in 4 8; do
  for w in 2 4 8; do
    entries+=("pe_ws ts_pe_ws ActBits=$a,WeightBits=$w,AccBits=32")
  done
done
entries+=("pe_ws ts_pe_ws ActBits=8,WeightBits=8,AccBits=24")
entries+=("pe_ws ts_pe_ws ActBits=8,WeightBits=4,AccBits=24")
for a in 4 8; do
  for w in 2 4 8; do
    entries+=("pe_os ts_pe_os ActBits=$a,WeightBits=$w,AccBits=32")
  done
done
for m in 8 12 16; do
  entries+=("scale_unit_fixed ts_scale_unit InBits=32,MantBits=$m,ShiftBits=6,OutBits=48,Kind=0")
done
entries+=("scale_unit_fixed ts_scale_unit InBits=32,MantBits=16,ShiftBits=6,OutBits=64,Kind=0")
for o in 48 64; do
  entries+=("scale_unit_shift ts_scale_unit InBits=32,MantBits=1,ShiftBits=6,OutBits=$o,Kind=1")
done
for i in 32 48 64; do
  entries+=("requant ts_requant InBits=$i,OutBits=8,ShiftBits=6")
done
for b in 32 48 64; do
  entries+=("accumulator ts_accumulator Bits=$b")
done
for m in 1 8 12 16; do
  entries+=("scale_reg ts_scale_reg MantBits=$m,ShiftBits=6")
done
for a in 4 6 8; do
  entries+=("shift_add ts_shift_add AdcBits=$a,Slices=4,CellBits=2,AccBits=32,ActBits=8,CountBits=8")
done
entries+=("shift_add ts_shift_add AdcBits=6,Slices=8,CellBits=1,AccBits=32,ActBits=8,CountBits=8")

# synth_one MODULE PARAMS RESULT_FILE LOG_FILE: writes "area cells flops" to RESULT_FILE.
synth_one() {
  local module=$1 params=$2 result=$3 log=$4 chparam="" kv script
  for kv in ${params//,/ }; do
    chparam+=" -set ${kv%%=*} ${kv#*=}"
  done
  # shellcheck disable=SC2059
  script="read_verilog -sv $root/rtl/$module.sv; chparam$chparam $module; \
$(printf "$synth_cmd" "$module"); dfflibmap -liberty $lib; abc -liberty $lib; opt_clean; \
tee -o $log.stat stat -liberty $lib"
  if ! yosys -q -p "$script" >"$log" 2>&1; then
    echo "synth_area: yosys failed on $module $params:" >&2
    tail -20 "$log" >&2
    return 1
  fi
  awk '
    /Number of cells:/ && cells == "" { cells = $NF }
    $1 ~ /^DFF/ && $2 ~ /^[0-9]+$/ { flops += $2 }
    /Chip area for module/ { area = $NF }
    END {
      if (area == "" || cells == "") exit 1
      printf "%.10g %d %d\n", area, cells, flops
    }' "$log.stat" >"$result"
}

# params_json "K=V,K=V" -> {"K": V, "K": V}
params_json() {
  local kv first=1 s="{"
  for kv in ${1//,/ }; do
    [ $first -eq 1 ] || s+=", "
    s+="\"${kv%%=*}\": ${kv#*=}"
    first=0
  done
  echo "$s}"
}

command -v yosys >/dev/null || { echo "synth_area: yosys not found (scripts/setup.sh installs it)" >&2; exit 2; }
[ -f "$lib" ] || { echo "synth_area: liberty $lib not found (Debian package qflow-tech-osu018)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- The whole accelerator. Synthesized hierarchically (every distinct module once, then counted
# per instance), which keeps yosys to about a minute for 8x8 and a few for 16x16; the accumulator
# storage (ts_acc_mem: two words per output pixel and column) is the ofmap SRAM and is left as a
# black box, its bits reported beside the logic.
top_sources="ts_top ts_ctrl ts_clock_gate ts_delay ts_systolic_array ts_pe_ws ts_pe_os ts_scale_regs
  ts_scale_reg ts_edge ts_acc_mem ts_scale_unit ts_requant"
# synth_top CONFIG STAT_FILE LOG_FILE
synth_top() {
  local config=$1 stat=$2 log=$3 files="" m params
  for m in $top_sources; do files+=" $root/rtl/$m.sv"; done
  params=$(/usr/bin/python3 "$root/scripts/gen_rtl_config.py" --chparam "$root/configs/$config.json")
  if ! yosys -q -p "read_verilog -sv -I$root/rtl$files; blackbox ts_acc_mem; chparam $params ts_top; \
synth -top ts_top -noalumacc; dfflibmap -liberty $lib; abc -liberty $lib; opt_clean; \
tee -o $stat stat -liberty $lib" >"$log" 2>&1; then
    echo "synth_area: yosys failed on ts_top for $config:" >&2
    tail -20 "$log" >&2
    return 1
  fi
}
# top_json CONFIG STAT_FILE SECONDS: one JSON object with the totals and the breakdown by the
# blocks ts_top instantiates (each including everything below it).
top_json() {
  /usr/bin/python3 - "$@" "$root" <<'PY'
import json, re, subprocess, sys
config, stat, seconds, root = sys.argv[1:]
text = open(stat).read()
params = subprocess.run(["/usr/bin/python3", f"{root}/scripts/gen_rtl_config.py", "--show",
                         f"{root}/configs/{config}.json"], capture_output=True, text=True,
                        check=True).stdout.split()[1:]
params = {k: int(v) for k, v in (p.split("=") for p in params)}
# Per module: its own cells (library cells and submodule instances) and its own area.
mods = {}
for sec in re.split(r"^=== ", text, flags=re.M)[1:]:
    name = sec.split(" ===", 1)[0].strip()
    if name == "design hierarchy":
        continue
    cells = {}
    body = sec.split("Number of cells:", 1)[1]
    for line in body.splitlines()[1:]:
        f = line.split()
        if len(f) == 2 and f[1].isdigit():
            cells[f[0]] = int(f[1])
        elif f and not line.startswith("     "):
            break
    area = re.search(r"Chip area for module '.*?': ([0-9.]+)", sec)
    mods[name] = {"cells": cells, "area": float(area.group(1)) if area else 0.0}
def short(name):
    return name.split("\\")[-1]
def total(name):
    m = mods[name]
    area, cells, flops = m["area"], 0, 0
    for c, n in m["cells"].items():
        if c in mods:
            a, k, f = total(c)
            area, cells, flops = area + n * a, cells + n * k, flops + n * f
        else:
            cells += n
            if c.startswith("DFF"):
                flops += n
    return area, cells, flops
top = "ts_top" if "ts_top" in mods else next(n for n in mods if short(n) == "ts_top")
area, cells, flops = total(top)
reported = float(re.search(r"Chip area for top module '\\ts_top': ([0-9.]+)", text).group(1))
if abs(area - reported) > 1e-6 * reported:
    sys.exit(f"synth_area: breakdown sums to {area}, yosys reports {reported}")
parts = {}
local = mods[top]["area"]
for c, n in mods[top]["cells"].items():
    if c in mods:
        a, k, f = total(c)
        parts[short(c)] = {"instances": n, "area_um2": round(n * a, 3), "cells": n * k,
                           "flops": n * f}
parts["ts_top (glue)"] = {"instances": 1, "area_um2": local, "cells": sum(
    n for c, n in mods[top]["cells"].items() if c not in mods and c != "ts_acc_mem"), "flops": 0}
unmapped = sorted({c for m in mods.values() for c in m["cells"]
                   if c.startswith("$") and c not in mods})
words, cols = params["AccWords"], params["Cols"]
bits = cols * words * (params["AccBits"] + params["WideBits"])
print(json.dumps({"config": config, "params": params, "area_um2": round(reported, 3),
                  "cells": cells, "flops": flops, "parts": parts,
                  "acc_storage": {"words_per_column": words, "bits": bits,
                                  "kib": round(bits / 8192, 3),
                                  "note": "ts_acc_mem black boxes (ofmap SRAM), not in area_um2"},
                  "unmapped_cells": unmapped, "yosys_seconds": int(seconds)}))
PY
}
if [ "${1:-}" = "--top" ]; then
  shift
  out_top="$root/rtl/ts_top_area.json"
  if [ "${1:-}" = "--check" ]; then
    [ $# -eq 2 ] || { echo "usage: $0 --top --check CONFIG" >&2; exit 2; }
    t0=$SECONDS
    # The same file names as the full run below: yosys's result depends on its script text
    # (measured: with "top.stat" sa8x8_ws came out 37 um^2 larger, 4,101,467 vs 4,101,430; the
    # temporary folder's name is in the text too, hence the tolerance below).
    synth_top "$2" "$tmp/$2.stat" "$tmp/$2.log"
    top_json "$2" "$tmp/$2.stat" $((SECONDS - t0)) >"$tmp/now.json"
    /usr/bin/python3 - "$out_top" "$tmp/now.json" <<'PY'
import json, sys
table, now = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rows = [e for e in table["configs"] if e["config"] == now["config"]]
if len(rows) != 1:
    sys.exit(f"synth_area --top --check: {len(rows)} entries for {now['config']}")
was = rows[0]
print(f"{now['config']}: synthesized {now['area_um2']} um^2, table {was['area_um2']} um^2")
# yosys/ABC's mapping depends on the text of its script, which holds the checkout's paths: the
# same RTL came out at 4,101,430 and 4,101,467 um^2 (sa8x8_ws) from two folders. So parameters and
# flip-flops must match exactly, area and cell count within 0.01% (410 um^2 on sa8x8_ws; one
# added register costs more).
def close(a, b):
    return abs(a - b) <= 1e-4 * max(abs(a), abs(b))
if (was["params"] != now["params"] or was["flops"] != now["flops"]
        or not close(was["area_um2"], now["area_um2"]) or not close(was["cells"], now["cells"])):
    sys.exit("synth_area --top --check: rtl/ts_top_area.json is stale, rerun scripts/synth_area.sh --top")
PY
    exit 0
  fi
  configs=("$@")
  [ ${#configs[@]} -gt 0 ] || configs=(sa8x8_ws sa16x16_ws)
  entries_json=()
  for c in "${configs[@]}"; do
    t0=$SECONDS
    synth_top "$c" "$tmp/$c.stat" "$tmp/$c.log"
    entries_json+=("$(top_json "$c" "$tmp/$c.stat" $((SECONDS - t0)))")
    echo "synth_area: ts_top $c synthesized in $((SECONDS - t0)) s" >&2
  done
  json="$out_top.tmp.$$"
  trap 'rm -rf "$tmp" "$json"' EXIT
  {
    echo "{"
    echo "  \"generated_by\": \"scripts/synth_area.sh --top; do not edit\","
    echo "  \"yosys_version\": \"$(yosys -V)\","
    echo "  \"liberty\": \"$(basename "$lib")\","
    echo "  \"units\": \"um^2\","
    echo "  \"flow\": \"read_verilog -sv; blackbox ts_acc_mem; chparam (scripts/gen_rtl_config.py); synth -top ts_top -noalumacc (hierarchy kept: each distinct module synthesized once, counted per instance); dfflibmap, abc -liberty; opt_clean; stat -liberty\","
    echo "  \"caveats\": \"Standard cells only: no wires, placement, clock tree or SRAM (the accumulator storage is a black box, reported in bits). ABC does not map the multi-output FAX1/HAX1 cells, so adders are built from simple gates and adder-heavy blocks are pessimistic. -noalumacc as for mapping/area_table.json. Hierarchical: no optimization across module boundaries (constant inputs of edge PEs, unused outputs). The clock gate's latch maps to no library cell (OSU's LATCH has area 0).\","
    echo "  \"configs\": ["
    for i in "${!entries_json[@]}"; do
      sep=","
      [ "$i" -eq $((${#entries_json[@]} - 1)) ] && sep=""
      echo "    ${entries_json[$i]}$sep"
    done
    echo "  ]"
    echo "}"
  } >"$json"
  /usr/bin/python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[1], "w"), indent=2); open(sys.argv[1], "a").write("\n")' "$json"
  mv "$json" "$out_top"
  /usr/bin/python3 - "$out_top" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1]))["configs"]:
    print(f"{e['config']}: {e['area_um2']:,.0f} um^2, {e['cells']:,} cells, {e['flops']:,} flops "
          f"(+ {e['acc_storage']['kib']} KiB accumulator SRAM), yosys {e['yosys_seconds']} s")
    for name, p in e["parts"].items():
        print(f"  {name:16s} x{p['instances']:<3d} {p['area_um2']:>14,.0f} um^2 {p['flops']:>7,} flops")
PY
  echo "synth_area: wrote $out_top"
  exit 0
fi

if [ "${1:-}" = "--check" ]; then
  [ $# -ge 3 ] || { echo "usage: $0 --check COMPONENT KEY=VAL[,KEY=VAL...] [--table FILE]" >&2; exit 2; }
  component=$2 params=$3 table=$out
  [ "${4:-}" = "--table" ] && table=$5
  module=""
  for e in "${entries[@]}"; do
    read -r c m p <<<"$e"
    if [ "$c" = "$component" ] && [ "$p" = "$params" ]; then module=$m; fi
  done
  [ -n "$module" ] || { echo "synth_area: no entry $component $params in this script" >&2; exit 2; }
  synth_one "$module" "$params" "$tmp/result" "$tmp/log"
  read -r area cells flops <"$tmp/result"
  /usr/bin/python3 - "$table" "$component" "$(params_json "$params")" "$area" "$cells" "$flops" \
    "$(yosys -V)" <<'PY'
import json, sys
table, component, params, area, cells, flops, version = sys.argv[1:]
t = json.load(open(table))
params = json.loads(params)
rows = [c for c in t["components"] if c["component"] == component and c["params"] == params]
if len(rows) != 1:
    sys.exit(f"synth_area --check: {len(rows)} entries for {component} {params} in {table}")
row = rows[0]
now = {"area_um2": float(area), "cells": int(cells), "flops": int(flops)}
was = {k: row[k] for k in now}
print(f"{component} {params}: synthesized {now}, table {was} ({t['yosys_version']}; now {version})")
if now != was:
    sys.exit("synth_area --check: the table is stale, rerun scripts/synth_area.sh")
PY
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--check COMPONENT KEY=VAL[,KEY=VAL...] [--table FILE]]" >&2; exit 2; }

start=$SECONDS
running=0
for i in "${!entries[@]}"; do
  read -r c m p <<<"${entries[$i]}"
  if [ $running -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  synth_one "$m" "$p" "$tmp/$i.result" "$tmp/$i.log" &
  running=$((running + 1))
done
while [ $running -gt 0 ]; do
  wait -n
  running=$((running - 1))
done

json="$out.tmp.$$"
trap 'rm -rf "$tmp" "$json"' EXIT
{
  echo "{"
  echo "  \"generated_by\": \"scripts/synth_area.sh; do not edit\","
  echo "  \"yosys_version\": \"$(yosys -V)\","
  echo "  \"liberty\": \"$(basename "$lib")\","
  echo "  \"liberty_path\": \"$lib\","
  echo "  \"units\": \"um^2\","
  echo "  \"caveats\": \"$caveats\","
  echo "  \"components\": ["
  for i in "${!entries[@]}"; do
    read -r c m p <<<"${entries[$i]}"
    read -r area cells flops <"$tmp/$i.result"
    sep=","
    [ "$i" -eq $((${#entries[@]} - 1)) ] && sep=""
    echo "    {\"component\": \"$c\", \"module\": \"$m\", \"params\": $(params_json "$p"), \"area_um2\": $area, \"cells\": $cells, \"flops\": $flops}$sep"
  done
  echo "  ]"
  echo "}"
} >"$json"
/usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$json"
mv "$json" "$out"

printf "%-17s %-62s %10s %6s %6s\n" component params "area_um2" cells flops
for i in "${!entries[@]}"; do
  read -r c m p <<<"${entries[$i]}"
  read -r area cells flops <"$tmp/$i.result"
  printf "%-17s %-62s %10s %6s %6s\n" "$c" "$p" "$area" "$cells" "$flops"
done
echo "synth_area: wrote $out (${#entries[@]} entries, $((SECONDS - start)) s)"
