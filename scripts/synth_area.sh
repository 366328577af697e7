#!/usr/bin/env bash
# Synthesizes the RTL building blocks in rtl/ with yosys onto the OSU 0.18um standard cells and writes
# mapping/area_table.json (um^2, cell and flop counts per component and parameter set).
#
# Usage: scripts/synth_area.sh
#          regenerate mapping/area_table.json (about 2-3 minutes, 2 yosys jobs at a time)
#        scripts/synth_area.sh --check COMPONENT KEY=VAL[,KEY=VAL...] [--table FILE]
#          synthesize that one entry again and exit 1 unless area, cells and flops equal the table's
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
