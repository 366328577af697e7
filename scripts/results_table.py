#!/usr/bin/python3
"""Print a tilescale sweep results.csv as a Markdown table: one row per (w_bits, granularity), one column
per reorder method (top-1 %), plus the number of scales and bits per weight.

Usage: scripts/results_table.py out/sweep/results.csv [more.csv ...]
"""
import csv
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = []
    for path in sys.argv[1:]:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    float_rows = [r for r in rows if r["granularity"] == "float"]
    reorders = []
    keys = []
    cell = {}
    for r in rows:
        if r["granularity"] == "float":
            continue
        if r["reorder"] not in reorders:
            reorders.append(r["reorder"])
        key = (r["model"], r["w_bits"], r["a_bits"], r["granularity"])
        if key not in keys:
            keys.append(key)
        cell[key + (r["reorder"],)] = r
    if float_rows:
        f = float_rows[0]
        print(f"Float: {100 * float(f['top1']):.2f}% top-1 on {f['images']} test images.\n")
    print("| model | W/A | granularity | scales | bits/weight | "
          + " | ".join(f"top-1 {m}" for m in reorders) + " |")
    print("|---|---|---|---:|---:|" + "---:|" * len(reorders))
    for key in keys:
        any_row = next(cell[key + (m,)] for m in reorders if key + (m,) in cell)
        tops = [f"{100 * float(cell[key + (m,)]['top1']):.2f}%" if key + (m,) in cell else "-"
                for m in reorders]
        print(f"| {key[0]} | W{key[1]}A{key[2]} | {key[3]} | {any_row['scales']} | "
              f"{float(any_row['bits_per_weight']):.3f} | " + " | ".join(tops) + " |")


if __name__ == "__main__":
    main()
