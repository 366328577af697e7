#!/usr/bin/python3
"""Recompute a sweep's hardware columns with the current mapper, keeping its accuracies.

A study's accuracy depends on the quantizer only; its cycles, scale registers and areas come from
`tilescale map`. When the mapper changes (for example the register-bank count of issue 12), the
bundles in the study's `--cache` can be mapped again in seconds instead of requantizing for hours.
For every row of kind `quant` with a `quant_key`, this runs
    tilescale map --bundle CACHE/<quant_key> --arch <arch>.json --align ALIGN --json
(the arch file from the study's own `archs/` folder beside the csv, where a sweep writes generated
configs, else from CONFIGS/) and replaces cycles, macs, utilization, scale_registers, area_um2,
scale_area_um2 (scale units + scale registers, as the sweep computes it) and, on CIM rows,
energy_bound_pj. Other rows are copied unchanged. A row whose bundle is
missing from the cache is an error (nothing is written), never silently kept with old figures.

Usage: scripts/remap_results.py --cache DIR --out OUT [--tilescale build/tilescale]
                                [--configs configs] [--align pad] STUDY/results.csv ...
Writes OUT/<name of the csv's folder>/results.csv for each input (temp file + rename).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile


def map_bundle(args, bundle, arch, study_dir):
    cfg = os.path.join(study_dir, "archs", arch + ".json")
    if not os.path.isfile(cfg):
        cfg = os.path.join(args.configs, arch + ".json")
    out = subprocess.run([args.tilescale, "map", "--bundle", bundle, "--arch", cfg, "--align", args.align,
                          "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("remap_results: map of %s on %s failed: %s" % (bundle, cfg, out.stderr.strip()))
    t = json.loads(out.stdout)["total"]
    br = t["area_breakdown_um2"]
    cols = {"cycles": str(t["cycles"]), "macs": str(t["macs"]), "utilization": repr(t["utilization"]),
            "scale_registers": str(t["scale_registers"]), "area_um2": repr(float(t["area_um2"])),
            "scale_area_um2": repr(float(br["scale_units"] + br["scale_registers"]))}
    if "energy_pj" in t:
        cols["energy_bound_pj"] = repr(float(t["energy_pj"]["total"]))
    return cols


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tilescale", default="build/tilescale")
    ap.add_argument("--configs", default="configs")
    ap.add_argument("--align", default="pad")
    ap.add_argument("csv", nargs="+")
    args = ap.parse_args()
    memo = {}
    results = []
    for path in args.csv:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, list(reader)
        for r in rows:
            if r.get("kind") != "quant" or r.get("error") or not r.get("quant_key"):
                continue
            bundle = os.path.join(args.cache, r["quant_key"])
            if not os.path.isfile(os.path.join(bundle, "manifest.json")):
                sys.exit("remap_results: %s row %s: bundle %s is not in the cache" % (path, r["point_id"], bundle))
            key = (bundle, r["arch"])
            if key not in memo:
                memo[key] = map_bundle(args, bundle, r["arch"], os.path.dirname(os.path.abspath(path)))
            r.update({k: v for k, v in memo[key].items() if k in fields})
        name = os.path.basename(os.path.dirname(os.path.abspath(path)))
        results.append((os.path.join(args.out, name), fields, rows))
    for folder, fields, rows in results:   # only after every row mapped: no partial output
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, os.path.join(folder, "results.csv"))
    print("remapped %d bundles (%d maps) into %d files" % (len({b for b, _ in memo}), len(memo), len(results)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
