#!/usr/bin/python3
"""Area, cycles and energy per image of quantized bundles on a CIM macro (docs/results.md 2d).

usage: scripts/cim_cost_table.py --arch ARCH.json [--images N] [--tilescale BIN] LABEL=BUNDLE ...

For each bundle runs `tilescale map --align pad --json` (area breakdown from the yosys table and
the cited estimates of mapping/area_params.json, the mapper's cycles) and `tilescale simulate
--align pad --images N --json` (the SystemC CIM macro: cycles from its own handshakes, energy from
the events it counts: driven cells, conversions, shift-adds, scale-unit and accumulator operations,
SRAM words). Prints two markdown tables, area and energy, and exits non-zero when a simulation has
a mismatch against the golden executor or its cycles differ from the mapper's, so a table is only
printed for runs that agree.
"""

import argparse
import json
import os
import subprocess
import sys

AREA_PARTS = [
    ("pe_array", "crossbar cells"),
    ("adcs", "ADCs"),
    ("shift_add", "shift-add"),
    ("scale_units", "scale units"),
    ("scale_registers", "scale registers"),
    ("accumulators", "accumulators"),
    ("requant", "requant"),
    ("sram", "buffer SRAM"),
]
ENERGY_PARTS = ["xbar", "adc", "shift_add", "scale", "accumulate", "requant", "sram"]


def run_json(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"cim_cost_table: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def mm2(um2):
    return f"{um2 / 1e6:.2f}"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", required=True)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--dataset", default="fmnist")
    ap.add_argument("--tilescale", default=os.environ.get("TILESCALE_BIN", os.path.join(root, "build", "tilescale")))
    ap.add_argument("runs", nargs="+", metavar="LABEL=BUNDLE")
    args = ap.parse_args()

    rows = []
    for run in args.runs:
        label, sep, bundle = run.partition("=")
        if not sep:
            sys.exit(f"cim_cost_table: '{run}' is not LABEL=BUNDLE")
        common = ["--bundle", bundle, "--arch", args.arch, "--align", "pad", "--json"]
        mapped = run_json([args.tilescale, "map"] + common)["total"]
        sim = run_json([args.tilescale, "simulate"] + common + ["--images", str(args.images), "--dataset", args.dataset])
        if sim["mismatches"] != 0:
            sys.exit(f"cim_cost_table: {label}: {sim['mismatches']} mismatches against the golden executor")
        if sim["cycles_per_image"] != mapped["cycles"]:
            sys.exit(f"cim_cost_table: {label}: simulated {sim['cycles_per_image']} cycles per image, mapper {mapped['cycles']}")
        rows.append((label, mapped, sim))

    print(f"Area (mm^2) and cycles per image on {os.path.basename(args.arch)} (`map --align pad`):\n")
    print("| run | scale regs/macro | " + " | ".join(name for _, name in AREA_PARTS) + " | total | cycles |")
    print("|---|---:|" + "---:|" * (len(AREA_PARTS) + 2))
    for label, mapped, _ in rows:
        area = mapped["area_breakdown_um2"]
        cells = " | ".join(mm2(area.get(key, 0.0)) for key, _ in AREA_PARTS)
        print(f"| {label} | {mapped['scale_registers']} | {cells} | {mm2(mapped['area_um2'])} | {mapped['cycles']:,} |")

    print(f"\nEnergy per image (uJ, estimates) simulated over {args.images} images; 'map bound' counts every input digit as driven:\n")
    print("| run | map bound | simulated | " + " | ".join(ENERGY_PARTS) + " | mismatches |")
    print("|---|---:|---:|" + "---:|" * len(ENERGY_PARTS) + "---:|")
    for label, mapped, sim in rows:
        e = sim["energy_pj_per_image"]
        parts = " | ".join(f"{e.get(key, 0.0) / 1e6:.2f}" for key in ENERGY_PARTS)
        print(f"| {label} | {mapped['energy_pj']['total'] / 1e6:.2f} | {e['total'] / 1e6:.2f} | {parts} | {sim['mismatches']} |")


if __name__ == "__main__":
    main()
