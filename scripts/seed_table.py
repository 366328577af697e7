#!/usr/bin/python3
"""Mean and spread over seeds of tilescale sweep results, with the reorder acceptance check.

Each results.csv is one seed (scripts/reorder_seeds.sh writes <model>_w<bits>_s<seed>/results.csv).
Prints one Markdown row per (model, W/A, granularity): per reorder method the mean top-1 and the
sample standard deviation over the seeds, and whether every method other than `none` keeps
mean >= none's mean - max(2 std(none), 0.1 point).

A (model, W/A, granularity, reorder, seed) that several files hold counts once (the last file's
row), so overlapping study files do not weigh a seed twice. Reorder columns: none, sort, kmeans,
then any other in order of appearance.

Usage: scripts/seed_table.py DIR/*/results.csv
"""
import csv
import statistics
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = {}
    reorders = []
    keys = []
    for path in sys.argv[1:]:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if r["granularity"] == "float" or r.get("error"):
                    continue
                key = (r["model"], "W%sA%s" % (r["w_bits"], r["a_bits"]), r["granularity"])
                if key not in keys:
                    keys.append(key)
                if r["reorder"] not in reorders:
                    reorders.append(r["reorder"])
                runs.setdefault(key + (r["reorder"],), {})[r.get("seed", path)] = 100.0 * float(r["top1"])
    known = ["none", "sort", "kmeans"]
    reorders = [m for m in known if m in reorders] + [m for m in reorders if m not in known]
    head = "| model | W/A | granularity | " + " | ".join(
        "%s mean ± std (n)" % m for m in reorders) + " | none - bound | pass |"
    print(head)
    print("|" + "---|" * (3 + len(reorders)) + "---:|---|")
    failures = 0
    for key in keys:
        cells = []
        stats = {}
        for m in reorders:
            v = list(runs.get(key + (m,), {}).values())
            if not v:
                cells.append("-")
                continue
            mean = statistics.mean(v)
            std = statistics.stdev(v) if len(v) > 1 else 0.0
            stats[m] = (mean, std, len(v))
            cells.append("%.2f ± %.2f (%d)" % (mean, std, len(v)))
        ok = "-"
        bound = "-"
        if "none" in stats and len(stats) > 1:
            mean, std, _ = stats["none"]
            lo = mean - max(2 * std, 0.1)
            bound = "%.2f" % lo
            good = all(stats[m][0] >= lo for m in stats if m != "none")
            ok = "yes" if good else "**no**"
            failures += 0 if good else 1
        print("| %s | %s | %s | %s | %s | %s |" % (key + (" | ".join(cells), bound, ok)))
    print("\n%d of %d rows fail the check" % (failures, len(keys)))


if __name__ == "__main__":
    main()
