#!/usr/bin/python3
"""Report of a `tilescale sweep` study folder: figures and report.md.

usage: scripts/report.py DIR [--out OUTDIR]

Reads DIR/results.csv (docs/study.md) and writes into OUTDIR (default DIR), each figure as PNG and SVG:
- area_<model>: top-1 versus scale-path area (scale units + scale registers, um^2), one colour per
  architecture, each architecture's Pareto front (highest top-1 for at most that area) as a line;
- cycles_<model>: the same versus cycles per image;
- scales_<model>: top-1 versus the mean number of weight scales per quantized layer (log x), one
  series per reorder method, one subplot per weight bit width (the quantization's ideal integer
  top-1, top1_ideal, the same on every arch; a CIM point's top1 has the ADCs in the loop);
- report.md: the study, the float baselines, the Pareto points of every model and architecture, the
  best point per granularity, and the failed points with their errors.
The float baseline of each model is a dashed line. The output depends only on results.csv (the
timing columns are not used), so the same results give the same files.
"""

import argparse
import csv
import math
import os
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["svg.hashsalt"] = "tilescale"  # stable element ids in the SVG
plt.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG

MARKERS = "osD^v<>pPX*h"
REORDER_COLOURS = {"none": "#1f77b4", "sort": "#ff7f0e", "kmeans": "#2ca02c"}


def number(text):
    return float(text) if text not in ("", None) else None


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"report.py: {path}: no rows")
    for key in ("point_id", "model", "kind", "top1"):
        if key not in rows[0]:
            sys.exit(f"report.py: {path}: not a tilescale study results file (no column '{key}')")
    for r in rows:
        for key in ("top1", "top1_ideal", "scale_area_um2", "cycles", "scales", "layers", "w_bits",
                    "area_um2", "adc_bits", "energy_bound_pj"):
            r[key] = number(r.get(key))
        # The quantization's own top-1, the same on every arch: schema 2 rows keep it apart from a
        # CIM point's top-1 with the ADCs in the loop; schema 1 rows have only top1 (ideal).
        r["quant_top1"] = r["top1_ideal"] if r["top1_ideal"] is not None else r["top1"]
    return rows


def pareto(points):
    """Points (cost, top1, row) on the front: no other point is cheaper or as cheap with more top-1."""
    front, best = [], -1.0
    for cost, top1, row in sorted(points, key=lambda p: (p[0], -p[1])):
        if top1 > best:
            front.append((cost, top1, row))
            best = top1
    return front


def label(r):
    return f"W{int(r['w_bits'])} {r['granularity']} {r['reorder']}"


def save(fig, out, name):
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out, f"{name}.{ext}"), dpi=120, bbox_inches="tight",
                    metadata={"Date": None} if ext == "svg" else {"Software": None})
    plt.close(fig)
    return name


def float_line(ax, floats, model):
    if model in floats:
        ax.axhline(100 * floats[model], color="grey", linestyle="--", linewidth=1,
                   label=f"float {100 * floats[model]:.2f}%")


def cost_figure(rows, floats, model, cost_key, xlabel, name, out, fronts):
    archs = OrderedDict()
    for r in rows:
        if r["kind"] == "quant" and r["arch"] and r[cost_key] is not None and r["top1"] is not None:
            archs.setdefault(r["arch"], []).append((r[cost_key], r["top1"], r))
    if not archs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (arch, pts) in enumerate(archs.items()):
        colour = f"C{i % 10}"
        ax.scatter([p[0] for p in pts], [100 * p[1] for p in pts], s=18, alpha=0.5, color=colour,
                   marker=MARKERS[i % len(MARKERS)], label=arch)
        front = pareto(pts)
        fronts[(model, arch, cost_key)] = front
        ax.step([p[0] for p in front], [100 * p[1] for p in front], where="post", color=colour,
                linewidth=1.5)
    float_line(ax, floats, model)
    costs = [p[0] for pts in archs.values() for p in pts]
    if min(costs) > 0 and max(costs) / min(costs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{model}: top-1 vs {xlabel} (lines: Pareto front per architecture)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save(fig, out, name)


def scales_figure(rows, floats, model, name, out):
    # Top-1 is per quantization: take each quantization once (its first row).
    seen, quants = set(), []
    for r in rows:
        if r["kind"] == "quant" and r["quant_top1"] is not None and r["scales"] and r["layers"]:
            if r["quant_key"] not in seen:
                seen.add(r["quant_key"])
                quants.append(r)
    if not quants:
        return None
    bits = sorted({int(r["w_bits"]) for r in quants}, reverse=True)
    fig, axes = plt.subplots(1, len(bits), figsize=(4.5 * len(bits), 4), squeeze=False, sharey=True)
    for ax, w in zip(axes[0], bits):
        for reorder in sorted({r["reorder"] for r in quants}):
            pts = sorted((r["scales"] / r["layers"], r["quant_top1"], r) for r in quants
                         if int(r["w_bits"]) == w and r["reorder"] == reorder)
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", markersize=4,
                    linestyle=":", color=REORDER_COLOURS.get(reorder), label=f"reorder {reorder}")
        float_line(ax, floats, model)
        ax.set_xscale("log")
        ax.set_xlabel("weight scales per layer (mean)")
        ax.set_title(f"W{w}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("top-1 (%)")
    fig.suptitle(f"{model}: top-1 vs scales per layer, per reorder method")
    return save(fig, out, name)


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def report(rows, src, out):
    models = list(OrderedDict.fromkeys(r["model"] for r in rows))
    floats = {r["model"]: r["top1"] for r in rows if r["kind"] == "float" and r["top1"] is not None}
    failed = [r for r in rows if r.get("error")]
    fronts = {}
    md = ["# Study report", "",
          f"generated by scripts/report.py from `{src}`, do not edit", "",
          f"{len(rows)} points, {len(failed)} with errors; "
          f"{len({r['quant_key'] for r in rows if r['quant_key']})} quantizations, "
          f"{len({r['arch'] for r in rows if r['arch']})} architectures. "
          "Scale-path area = scale units + scale registers (mapper's area model, um^2); "
          "cycles per image from the mapper's native model.", ""]
    commits = sorted({r["git_commit"] for r in rows if r.get("git_commit")})
    if commits:
        md += [f"tilescale {rows[0].get('tool_version', '?')}, commit(s) {', '.join(commits)}", ""]
    for model in models:
        mrows = [r for r in rows if r["model"] == model]
        md += [f"## {model}", ""]
        if model in floats:
            md += [f"Float baseline: top-1 {100 * floats[model]:.2f}% "
                   f"on {mrows[0]['images']} test images.", ""]
        figs = [cost_figure(mrows, floats, model, "scale_area_um2", "scale-path area (um^2)",
                            f"area_{model}", out, fronts),
                cost_figure(mrows, floats, model, "cycles", "cycles per image",
                            f"cycles_{model}", out, fronts),
                scales_figure(mrows, floats, model, f"scales_{model}", out)]
        for f in figs:
            if f:
                md += [f"![{f}]({f}.png) ([SVG]({f}.svg))", ""]
        for key, title in (("scale_area_um2", "scale-path area"), ("cycles", "cycles")):
            archs = [a for (m, a, k) in fronts if m == model and k == key]
            if not archs:
                continue
            md += [f"### Pareto front: top-1 vs {title}", "",
                   f"| arch | setting | top-1 % | {title} | scales | bits/weight |",
                   "|---|---|---:|---:|---:|---:|"]
            for a in archs:
                for cost, top1, r in fronts[(model, a, key)]:
                    md.append(f"| {a} | {label(r)} | {100 * top1:.2f} | {fmt(cost)} | "
                              f"{fmt(r['scales'])} | {float(r['bits_per_weight']):.3f} |")
            md.append("")
        # Best quantization per granularity and bit width (the ideal top-1, the same on every arch).
        best = OrderedDict()
        for r in mrows:
            if r["kind"] != "quant" or r["quant_top1"] is None:
                continue
            k = (int(r["w_bits"]), r["granularity"])
            if k not in best or r["quant_top1"] > best[k]["quant_top1"]:
                best[k] = r
        if best:
            md += ["### Best top-1 per bit width and granularity", "",
                   "| W | granularity | best reorder | top-1 % | scales | scales/layer |",
                   "|---:|---|---|---:|---:|---:|"]
            for (w, g), r in sorted(best.items(), key=lambda kv: (-kv[0][0], kv[1]["scales"] or 0)):
                per_layer = r["scales"] / r["layers"] if r["layers"] else None
                md.append(f"| {w} | {g} | {r['reorder']} | {100 * r['quant_top1']:.2f} | "
                          f"{fmt(r['scales'])} | {fmt(per_layer, 1)} |")
            md.append("")
    if failed:
        md += ["## Failed points", "", "| point | model | setting | arch | error |",
               "|---:|---|---|---|---|"]
        for r in failed:
            setting = label(r) if r["kind"] == "quant" else "float"
            err = r["error"].replace("|", "\\|").replace("\n", " ")
            md.append(f"| {r['point_id']} | {r['model']} | {setting} | {r['arch'] or '-'} | {err} |")
        md.append("")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="study folder (tilescale sweep --out)")
    ap.add_argument("--out", help="where to write report.md and the figures (default: DIR)")
    a = ap.parse_args()
    src = os.path.join(a.dir, "results.csv")
    if not os.path.isfile(src):
        sys.exit(f"report.py: {src}: no such file (run tilescale sweep --out {a.dir} first)")
    out = a.out or a.dir
    os.makedirs(out, exist_ok=True)
    report(load(src), src, out)
    print(f"report.py: wrote {os.path.join(out, 'report.md')}")


if __name__ == "__main__":
    main()
