#!/usr/bin/python3
"""Torch CPU inference throughput of a trained zoo model (the reference figure for the tilescale runtime).

The model is rebuilt from scripts/zoo_models.py and loaded from models/<name>.pt (the state_dict written by
train_zoo.py).  For each batch size the whole test split (or its first --images images) is run under
torch.no_grad() in eval mode; one warm-up batch precedes each timed pass, and loading / tensor conversion are
not timed.  The figure is images per second of wall-clock time (best of --repeats passes).

Usage: scripts/bench_torch.py --model resnet8_fmnist [--dataset fmnist] [--images 10000] [--threads 2]
                              [--batches 1,16,64,256,1024] [--repeats 1] [--json]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=list(zoo_models.ZOO))
    ap.add_argument("--dataset", default=None, help="mnist | fmnist (default: the model's own dataset)")
    ap.add_argument("--images", type=int, default=None, help="use the first N test images (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,16,64,256,1024")
    ap.add_argument("--repeats", type=int, default=1, help="timed passes per batch size; the best is reported")
    ap.add_argument("--models-dir", default=None, help="default: <repo>/models")
    ap.add_argument("--data", default=None, help="default: <repo>/data")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    models_dir = args.models_dir or os.path.join(repo, "models")
    data_dir = args.data or os.path.join(repo, "data")
    dataset = args.dataset or zoo_models.ZOO[args.model][0]
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not batches or any(b <= 0 for b in batches):
        ap.error("--batches must be positive integers")

    torch.set_num_threads(args.threads)
    model = zoo_models.build(args.model)
    pt_path = os.path.join(models_dir, f"{args.model}.pt")
    model.load_state_dict(torch.load(pt_path, map_location="cpu"))
    model.eval()

    images, labels = zoo_models.load_split(data_dir, dataset, "test")
    if args.images is not None:
        if args.images <= 0 or args.images > images.shape[0]:
            ap.error(f"--images must be in 1..{images.shape[0]}")
        images, labels = images[:args.images], labels[:args.images]
    x = zoo_models.to_input(images).contiguous()
    y = torch.from_numpy(labels)
    n = x.shape[0]

    per_batch = {}
    top1 = None
    with torch.no_grad():
        for bs in batches:
            chunks = [x[i:i + bs] for i in range(0, n, bs)]
            best = float("inf")
            for _ in range(max(1, args.repeats)):
                model(chunks[0])  # warm-up
                preds = []
                t0 = time.perf_counter()
                for c in chunks:
                    preds.append(model(c).argmax(1))
                dt = time.perf_counter() - t0
                best = min(best, dt)
            per_batch[str(bs)] = round(n / best, 1)
            acc = (torch.cat(preds) == y).float().mean().item()
            if top1 is None:
                top1 = acc
            elif abs(acc - top1) > 1e-9:
                print(f"warning: top-1 at batch {bs} is {acc:.6f}, differs from {top1:.6f}", file=sys.stderr)
            if not args.json:
                print(f"batch {bs:5d}: {n / best:10.1f} images/s  ({best:.3f} s for {n} images)", flush=True)

    best_bs = max(per_batch, key=lambda k: per_batch[k])
    result = {
        "model": args.model,
        "dataset": dataset,
        "images": n,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "per_batch": per_batch,
        "best_batch": int(best_bs),
        "best_images_per_s": per_batch[best_bs],
        "top1": round(top1, 6),
    }
    if args.json:
        print(json.dumps(result, sort_keys=True, indent=2))
    else:
        print(f"best: batch {best_bs}, {per_batch[best_bs]:.1f} images/s; top-1 {top1:.4f} on {n} images "
              f"({args.threads} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
