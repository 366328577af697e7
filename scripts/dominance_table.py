#!/usr/bin/python3
"""Does a sub-layerwise point dominate channelwise? From tilescale sweep results over seeds.

Reads results.csv files (rows of one or more studies; one row per model x quantization x arch, the
seed a column), groups them by (model, W/A, granularity, reorder) on one arch, and prints per
model and width a Markdown table: mean top-1 and sample std over the seeds, scales, scale
registers per fold, scale-path area and cycles per image (mapper), and whether the row *dominates channelwise*:
    mean >= channel's mean - max(2 std(channel), 0.1 point)   (within the seed spread, the bound
                                                              of the reorder acceptance check)
    and scale-path area < channel's.
Cycles are reported, not part of the rule: a block that does not fill the array's rows costs cycles
(for example block:8x8 on a 16x16 array with `--align pad`), and the verdict line names the ratio.
Then one verdict line per model and width.

Usage: scripts/dominance_table.py [--arch sa16x16_ws] DIR/results.csv ...
"""
import argparse
import csv
import statistics


def order_key(g):
    if g == "layer":
        return (0, 0)
    if g == "channel":
        return (1, 0)
    if g.startswith("block:"):
        a, b = g[6:].split("x")
        return (2, int(a) * int(b), int(a))
    return (3, g)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="sa16x16_ws")
    ap.add_argument("csv", nargs="+")
    args = ap.parse_args()
    groups = {}
    for path in args.csv:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if r["kind"] != "quant" or r["arch"] != args.arch or r["error"]:
                    continue
                key = (r["model"], int(r["w_bits"]), int(r["a_bits"]), r["granularity"], r["reorder"])
                g = groups.setdefault(key, {"top1": {}, "cost": None})
                g["top1"][r["seed"]] = 100.0 * float(r["top1"])
                g["cost"] = (int(r["scales"]), int(r["scale_registers"]), float(r["scale_area_um2"]),
                             int(r["cycles"]) if r.get("cycles") else 0)
    cells = {}
    for key, g in groups.items():
        v = list(g["top1"].values())
        cells[key] = (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) + g["cost"]
    for model in sorted({k[0] for k in cells}):
        for w, a in sorted({(k[1], k[2]) for k in cells if k[0] == model}, reverse=True):
            rows = sorted((k for k in cells if k[:3] == (model, w, a)),
                          key=lambda k: (order_key(k[3]), ["none", "sort", "kmeans"].index(k[4])))
            ch = cells.get((model, w, a, "channel", "none"))
            print("\n#### %s W%dA%d (%s)\n" % (model, w, a, args.arch))
            print("| granularity | reorder | top-1 mean ± std (n) | scales | scale regs | scale area mm² | cycles | dominates channel |")
            print("|---|---|---:|---:|---:|---:|---:|---|")
            winners = []
            bound = None
            if ch:
                bound = ch[0] - max(2 * ch[1], 0.1)
            for k in rows:
                mean, std, n, scales, regs, area, cycles = cells[k]
                dom = "-"
                if ch and k[3] not in ("channel", "layer"):
                    ok = mean >= bound and area < ch[5]
                    dom = "**yes**" if ok else "no"
                    if ok:
                        slower = ", %.2fx cycles" % (cycles / ch[6]) if ch[6] and cycles != ch[6] else ""
                        winners.append("%s %s (%.2f%%, %d reg%s%s)" % (
                            k[3], k[4], mean, regs, slower,
                            "" if n >= 3 else ", %d seed%s only" % (n, "s" * (n > 1))))
                print("| %s | %s | %.2f ± %.2f (%d) | %d | %d | %.2f | %s | %s |" %
                      (k[3], k[4], mean, std, n, scales, regs, area / 1e6,
                       "{:,}".format(cycles) if cycles else "", dom))
            if ch:
                print("\nChannel %.2f ± %.2f, bound %.2f: %s" % (
                    ch[0], ch[1], bound,
                    ("dominated by " + "; ".join(winners)) if winners else "no sub-layerwise point dominates"))


if __name__ == "__main__":
    main()
