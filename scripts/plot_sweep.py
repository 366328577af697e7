#!/usr/bin/python3
"""Plots `tilescale sweep` results: top-1 versus the number of weight scales, and versus bits per weight.

usage: scripts/plot_sweep.py results.csv [more.csv ...] --out PREFIX

Writes PREFIX.png and PREFIX.svg (top-1 vs scales, log x) and PREFIX_bpw.png and PREFIX_bpw.svg
(top-1 vs bits per weight incl. scale storage). One column of subplots per weight bit width and one row
per model / data set; one colour and marker per reorder method (and per search, executor, activation
bits or first/last bits when the files mix several); every granularity is labelled once, vertically
along the top of its subplot with a dotted leader to its best point; the float baseline of each model
is a dashed line. The output is deterministic: the same CSVs give the same files.
"""

import argparse
import csv
import math
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["svg.hashsalt"] = "tilescale"  # stable element ids in the SVG
plt.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG

REORDER_STYLE = {  # colour, marker
    "none": ("#1f77b4", "o"),
    "sort": ("#ff7f0e", "s"),
    "kmeans": ("#2ca02c", "^"),
}
EXTRA_STYLES = [("#d62728", "D"), ("#9467bd", "v"), ("#8c564b", "P"), ("#e377c2", "X"),
                ("#7f7f7f", "*"), ("#bcbd22", "<"), ("#17becf", ">")]
REQUIRED = ["model", "dataset", "w_bits", "a_bits", "first_last", "granularity", "reorder", "search",
            "top1", "scales", "bits_per_weight"]


def read_rows(paths):
    rows = []
    for path in paths:
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
                if missing:
                    sys.exit(f"plot_sweep: {path}: not a tilescale sweep CSV (missing {', '.join(missing)})")
                for r in reader:
                    r["w_bits"] = int(r["w_bits"])
                    r["a_bits"] = int(r["a_bits"])
                    r["first_last"] = int(r["first_last"])
                    r["top1"] = float(r["top1"])
                    r["scales"] = int(r["scales"])
                    r["bits_per_weight"] = float(r["bits_per_weight"])
                    rows.append(r)
        except OSError as e:
            sys.exit(f"plot_sweep: {path}: {e.strerror}")
        except (KeyError, ValueError) as e:
            sys.exit(f"plot_sweep: {path}: malformed row ({e})")
    if not rows:
        sys.exit("plot_sweep: no rows in " + ", ".join(paths))
    return rows


def series_key(row, varying):
    """What distinguishes a line within a subplot: the reorder method, plus any setting that varies."""
    key = [row["reorder"]]
    for field in varying:
        key.append(f"{field}={row[field]}")
    return " ".join(key)


def style_of(key, styles):
    if key not in styles:
        reorder = key.split(" ")[0]
        if reorder in REORDER_STYLE and REORDER_STYLE[reorder] not in styles.values():
            styles[key] = REORDER_STYLE[reorder]
        else:
            used = set(styles.values())
            styles[key] = next((s for s in EXTRA_STYLES if s not in used), EXTRA_STYLES[len(styles) % 7])
    return styles[key]


def spread(positions, gap):
    """Moves sorted positions in [0, 1] apart so neighbours are at least `gap` apart, staying in [0, 1]."""
    out = list(positions)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    if out and out[-1] > 1.0:
        out[-1] = 1.0
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - gap)
    return out


def label_granularities(ax, cell, x_field, log_x):
    """Writes each granularity once, vertically in a lane along the top of the axes, with a dotted
    leader to its best point (reorder variants share the x position on the scales plot)."""
    best = OrderedDict()
    for r in sorted(cell, key=lambda r: (r[x_field], r["granularity"])):
        g = r["granularity"]
        if g not in best or r["top1"] > best[g]["top1"]:
            best[g] = r
    placed = sorted(best.values(), key=lambda r: (r[x_field], r["granularity"]))
    lo, hi = ax.get_xlim()
    t = (lambda x: math.log10(x)) if log_x else (lambda x: x)
    frac = [(t(r[x_field]) - t(lo)) / (t(hi) - t(lo)) for r in placed]
    for r, u in zip(placed, spread(frac, 0.035)):
        ax.annotate(r["granularity"], xy=(r[x_field], 100.0 * r["top1"]), xycoords="data",
                    xytext=(u, 0.985), textcoords="axes fraction", rotation=90, ha="center", va="top",
                    fontsize=7, color="#333333",
                    arrowprops=dict(arrowstyle="-", color="#999999", linewidth=0.6, linestyle=":",
                                    shrinkA=1, shrinkB=4))


def plot(rows, x_field, x_label, log_x, title, out_prefix):
    quant = [r for r in rows if r["granularity"] != "float"]
    floats = [r for r in rows if r["granularity"] == "float"]
    if not quant:
        sys.exit("plot_sweep: the files hold only float baselines")
    models = list(OrderedDict.fromkeys((r["model"], r["dataset"]) for r in rows))
    bits = sorted({r["w_bits"] for r in quant})
    # Settings other than reorder that vary across the quantized rows get their own series.
    varying = [f for f in ("search", "executor", "a_bits", "first_last") if len({r[f] for r in quant}) > 1]
    series = sorted({series_key(r, varying) for r in quant},
                    key=lambda k: (list(REORDER_STYLE).index(k.split(" ")[0])
                                   if k.split(" ")[0] in REORDER_STYLE else 99, k))
    styles = OrderedDict()
    for k in series:
        style_of(k, styles)

    width, height = 4.6 * len(bits) + 0.4, 4.0 * len(models) + 0.9
    fig, axes = plt.subplots(len(models), len(bits), figsize=(width, height), squeeze=False)
    handles = OrderedDict()
    for mi, (model, dataset) in enumerate(models):
        base = [r["top1"] for r in floats if (r["model"], r["dataset"]) == (model, dataset)]
        for bi, w in enumerate(bits):
            ax = axes[mi][bi]
            cell = [r for r in quant if (r["model"], r["dataset"], r["w_bits"]) == (model, dataset, w)]
            for k in series:
                pts = sorted((r[x_field], 100.0 * r["top1"]) for r in cell if series_key(r, varying) == k)
                if not pts:
                    continue
                colour, marker = styles[k]
                (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, marker=marker,
                                  markersize=6, linewidth=1.0, alpha=0.85)
                handles.setdefault(k, line)
            title_text = f"{model} / {dataset}: W{w}A{','.join(map(str, sorted({r['a_bits'] for r in cell})))}"
            if base:
                line = ax.axhline(100.0 * max(base), color="black", linestyle="--", linewidth=1.0)
                handles.setdefault("float baseline", line)
                title_text += f" (float {100.0 * max(base):.2f} %)"
            if log_x:
                ax.set_xscale("log")
            ax.margins(x=0.1)
            # The lower ~70 % of the axes for the data, the top for the granularity labels.
            ys = [100.0 * r["top1"] for r in cell] + [100.0 * b for b in base]
            rng = max(max(ys) - min(ys), 1.0) if ys else 1.0
            if ys:
                lo, hi = min(ys) - 0.08 * rng, max(ys) + 0.5 * rng
                ax.set_ylim(lo, hi)
                # No accuracy ticks above 100 % in the label lane.
                ax.set_yticks([v for v in ax.get_yticks() if lo <= v <= 100.0 + 1e-9])
            ax.grid(True, which="major", linewidth=0.5, alpha=0.4)
            ax.set_title(title_text, fontsize=9.5)
            ax.set_xlabel(x_label)
            if bi == 0:
                ax.set_ylabel("top-1 accuracy (%)")
            if cell:
                label_granularities(ax, cell, x_field, log_x)
    fig.suptitle(title, fontsize=11)
    handles = OrderedDict([(k, handles[k]) for k in series if k in handles] +
                          [(k, handles[k]) for k in ("float baseline",) if k in handles])
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=min(len(handles), 6),
               fontsize=8, frameon=False, title="reorder method" + "".join(" / " + v for v in varying),
               title_fontsize=8)
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1))
    fig.savefig(out_prefix + ".png", dpi=130, metadata={"Software": None})
    fig.savefig(out_prefix + ".svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return [out_prefix + ".png", out_prefix + ".svg"]


def main():
    p = argparse.ArgumentParser(description="Plot tilescale sweep results (top-1 vs scale cost).")
    p.add_argument("csv", nargs="+", help="results.csv files written by tilescale sweep")
    p.add_argument("--out", required=True, help="output prefix: writes PREFIX.png/.svg and PREFIX_bpw.png/.svg")
    args = p.parse_args()
    rows = read_rows(args.csv)
    written = plot(rows, "scales", "number of weight scales (log)", True,
                   "top-1 vs number of weight scales", args.out)
    written += plot(rows, "bits_per_weight", "bits per weight (codes + scales)", False,
                    "top-1 vs bits per weight", args.out + "_bpw")
    for w in written:
        print(w)


if __name__ == "__main__":
    main()
