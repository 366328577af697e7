#!/usr/bin/python3
"""Train, evaluate and export the tilescale model zoo.

The one script that needs more than scripts/setup.sh installs: PyTorch (apt-get install python3-torch).

Models (architectures in scripts/zoo_models.py):
  lenet5_mnist      LeNet-5 (ReLU, max pool) on MNIST (8,000 train / 2,000 test)
  resnet8_fmnist    ResNet-8 (16/32/64, BN, projection shortcuts) on Fashion-MNIST (60,000 / 10,000)
  mobilenet_fmnist  MobileNet-style depthwise-separable net (BN, ReLU6) on Fashion-MNIST

For each model this writes
  models/<name>.onnx                      opset 13, input "input" [batch,1,28,28] float32 in [0,1], output "logits"
  models/<name>.pt                        the trained state_dict (only if it is under --max-pt-bytes)
  models/fixtures/<name>_logits64.npy     float32 [64,10] torch logits of the first 64 test images (file order)
and updates models/zoo.json (one object per model; other models' entries are kept).

Everything is seeded: torch.manual_seed, numpy, the epoch shuffles and the augmentation draws come from a
dedicated torch.Generator, and torch.use_deterministic_algorithms(True) is on.  With the same torch build and
thread count the run is bit-for-bit repeatable.

The exported ONNX graph is also checked with onnx.checker and executed by a small numpy interpreter (there
is no onnxruntime here) on the first 64 test images; its logits must match torch's.

Usage: scripts/train_zoo.py [--models a,b] [--epochs N] [--threads 2] [--out models] [--data data] [--seed S]
"""
import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_models  # noqa: E402

# Per-model training recipe.  lr is the OneCycle peak; weight decay applies to conv/linear weights only
# (not to biases or BatchNorm parameters).
RECIPES = {
    "lenet5_mnist": dict(epochs=60, batch=64, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                         label_smoothing=0.0, pad=2, hflip=False),
    "resnet8_fmnist": dict(epochs=28, batch=128, lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4,
                           label_smoothing=0.1, pad=2, hflip=True),
    "mobilenet_fmnist": dict(epochs=18, batch=128, lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-4,
                             label_smoothing=0.1, pad=2, hflip=True),
}
TARGETS = {"lenet5_mnist": 0.980, "resnet8_fmnist": 0.920, "mobilenet_fmnist": 0.900}
FIXTURE_IMAGES = 64


def log(msg):
    print(msg, flush=True)


def augment(x, pad, hflip, gen):
    """Random crop of the zero-padded image (= random shift by -pad..+pad in each axis) and, optionally, a random
    horizontal flip.  x: float [B,1,H,W].  All draws come from `gen`."""
    b, c, h, w = x.shape
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        # Output pixel (i, j) of image k is padded pixel (dy[k] + i, dx[k] + j): gather rows, then columns.
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, c, h, w + 2 * pad)
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, c, h, w)
        x = torch.gather(torch.gather(xp, 2, rows), 3, cols)
    if hflip:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def predict(model, x, batch=1000):
    model.eval()
    outs = [model(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
    return torch.cat(outs)


# ----------------------------------------------------------------------------------------------------------
# A minimal numpy ONNX interpreter for the ops these models export to (used to check the exported graph).

def _np_conv(x, w, b, strides, pads, group, dilations):
    if any(d != 1 for d in dilations):
        raise NotImplementedError("dilated Conv")
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    pt, pl, pb, pr = pads
    sh, sw = strides
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    # patches: [n, cin, kh, kw, oh, ow]
    patches = np.empty((n, cin, kh, kw, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patches[:, :, i, j] = xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    cout_g = cout // group
    out = np.empty((n, cout, oh, ow), dtype=np.float64)
    for g in range(group):
        pg = patches[:, g * cin_g:(g + 1) * cin_g].reshape(n, cin_g * kh * kw, oh * ow)
        wg = w[g * cout_g:(g + 1) * cout_g].reshape(cout_g, cin_g * kh * kw).astype(np.float64)
        out[:, g * cout_g:(g + 1) * cout_g] = np.einsum("ok,nkp->nop", wg, pg).reshape(n, cout_g, oh, ow)
    if b is not None:
        out += b.astype(np.float64)[None, :, None, None]
    return out


def _np_maxpool(x, kernel, strides, pads):
    if any(pads):
        raise NotImplementedError("padded MaxPool")
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides
    oh = (h - kh) // sh + 1
    ow = (w - kw) // sw + 1
    out = np.full((n, c, oh, ow), -np.inf)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw])
    return out


def run_onnx_numpy(model_proto, x):
    """Evaluate an ONNX graph in float64 numpy.  Supports exactly the ops the zoo exports; raises otherwise."""
    from onnx import numpy_helper

    g = model_proto.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    env[g.input[0].name] = x.astype(np.float64)

    def attrs(node):
        import onnx
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    for node in g.node:
        a = attrs(node)
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            from onnx import numpy_helper as nh
            out = nh.to_array(a["value"])
        elif op == "Sub":
            out = ins[0] - ins[1]
        elif op == "Div":
            out = ins[0] / ins[1]
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "Mul":
            out = ins[0] * ins[1]
        elif op == "Relu":
            out = np.maximum(ins[0], 0)
        elif op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            out = np.clip(ins[0], lo, hi)
        elif op == "Conv":
            k = ins[1].shape[2:]
            out = _np_conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1, 1]),
                           a.get("pads", [0, 0, 0, 0]), a.get("group", 1), a.get("dilations", [1, 1]))
            assert tuple(a.get("kernel_shape", k)) == tuple(k)
        elif op == "MaxPool":
            out = _np_maxpool(ins[0], a["kernel_shape"], a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]))
        elif op == "GlobalAveragePool":
            out = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
        elif op == "Gemm":
            aa = ins[0].T if a.get("transA", 0) else ins[0]
            bb = ins[1].T if a.get("transB", 0) else ins[1]
            out = a.get("alpha", 1.0) * (aa @ bb)
            if len(ins) > 2 and ins[2] is not None:
                out = out + a.get("beta", 1.0) * ins[2]
        elif op == "BatchNormalization":
            xx, sc, bi, mu, var = ins[:5]
            eps = a.get("epsilon", 1e-5)
            sh = (1, -1, 1, 1)
            out = (xx - mu.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) * sc.reshape(sh) + bi.reshape(sh)
        else:
            raise NotImplementedError(f"numpy ONNX check: op {op} not supported")
        env[node.output[0]] = np.asarray(out, dtype=np.float64)
    return env[g.output[0].name]


# ----------------------------------------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(path, saver):
    """Call saver(tmp_path) then rename tmp_path -> path."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        saver(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_zoo_json(path, entries):
    """Merge `entries` into the JSON list at `path` (replacing same-name entries, keeping the others).  The
    read-modify-write is serialized with an flock on the output directory, so concurrent runs of different
    --models subsets do not lose each other's entries."""
    import fcntl

    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        existing = []
        if os.path.exists(path):
            with open(path) as f:
                existing = json.load(f)
        by_name = {e["name"]: e for e in existing}
        for e in entries:
            by_name[e["name"]] = e
        order = list(zoo_models.ZOO)
        names = sorted(by_name, key=lambda n: (order.index(n) if n in order else len(order), n))
        text = json.dumps([by_name[n] for n in names], sort_keys=True, indent=2) + "\n"
        atomic_write_bytes(path, text.encode())
    finally:
        os.close(dfd)  # releases the lock


def train_one(name, args):
    dataset, _ = zoo_models.ZOO[name]
    recipe = dict(RECIPES[name])
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    seed = args.seed

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)

    xtr_u8, ytr_np = zoo_models.load_split(args.data, dataset, "train")
    xte_u8, yte_np = zoo_models.load_split(args.data, dataset, "test")
    xtr, ytr = zoo_models.to_input(xtr_u8), torch.from_numpy(ytr_np)
    xte, yte = zoo_models.to_input(xte_u8), torch.from_numpy(yte_np)
    log(f"[{name}] {dataset}: train {tuple(xtr.shape)}, test {tuple(xte.shape)}, recipe {recipe}")

    model = zoo_models.build(name)
    params = zoo_models.count_params(model)
    macs = zoo_models.count_macs(model)
    log(f"[{name}] params {params}, MACs/image {macs}")

    cl = torch.channels_last  # faster on CPU; converted back before export
    model = model.to(memory_format=cl)
    epochs, bs = recipe["epochs"], recipe["batch"]
    n = xtr.shape[0]
    steps_per_epoch = n // bs  # drop the last partial batch
    opt = torch.optim.SGD(param_groups(model, recipe["weight_decay"]), lr=recipe["lr"],
                          momentum=recipe["momentum"], nesterov=recipe["nesterov"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], epochs=epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25,
                                                anneal_strategy="cos", div_factor=25.0, final_div_factor=1e3)
    crit = nn.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])

    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tl, tc, seen = 0.0, 0, 0
        te = time.time()
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            xb = augment(xtr[idx], recipe["pad"], recipe["hflip"], gen).contiguous(memory_format=cl)
            yb = ytr[idx]
            out = model(xb)
            loss = crit(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tl += loss.item() * yb.shape[0]
            tc += (out.argmax(1) == yb).sum().item()
            seen += yb.shape[0]
        # Test accuracy is logged for monitoring only; the exported model is always the last epoch.
        acc = (predict(model, xte.contiguous(memory_format=cl)).argmax(1) == yte).float().mean().item()
        log(f"[{name}] epoch {ep + 1}/{epochs} loss {tl / seen:.4f} train_acc {tc / seen:.4f} "
            f"test_acc {acc:.4f} lr {sched.get_last_lr()[0]:.5f} ({time.time() - te:.1f}s)")
    train_seconds = time.time() - t0

    # Back to the plain NCHW layout for evaluation, export and the saved state_dict.
    model = model.to(memory_format=torch.contiguous_format).eval()
    logits = predict(model, xte)
    correct = int((logits.argmax(1) == yte).sum().item())
    top1 = correct / xte.shape[0]
    log(f"[{name}] final torch top-1 {top1:.6f} ({correct}/{xte.shape[0]}), training {train_seconds:.0f}s")

    os.makedirs(os.path.join(args.out, "fixtures"), exist_ok=True)
    fx = xte[:FIXTURE_IMAGES]
    with torch.no_grad():
        fix_logits = model(fx).numpy().astype(np.float32)
    assert fix_logits.shape == (FIXTURE_IMAGES, 10)
    fix_path = os.path.join(args.out, "fixtures", f"{name}_logits64.npy")
    atomic_save(fix_path, lambda p: np.save(open(p, "wb"), fix_logits))

    # ONNX export.
    import onnx
    onnx_path = os.path.join(args.out, f"{name}.onnx")
    dummy = torch.zeros(1, 1, 28, 28)

    def export(p):
        torch.onnx.export(model.eval(), dummy, p, opset_version=13, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True)
    atomic_save(onnx_path, export)
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto)
    ops = sorted({nd.op_type for nd in proto.graph.node})
    onnx_logits = run_onnx_numpy(proto, fx.numpy())
    max_diff = float(np.abs(onnx_logits - fix_logits.astype(np.float64)).max())
    same_argmax = bool((onnx_logits.argmax(1) == fix_logits.argmax(1)).all())
    log(f"[{name}] ONNX {onnx_path}: {os.path.getsize(onnx_path)} bytes, ops {ops}, numpy-vs-torch max |diff| "
        f"{max_diff:.2e}, same argmax {same_argmax}")
    if max_diff > 1e-3 or not same_argmax:
        raise SystemExit(f"[{name}] exported ONNX does not reproduce the torch logits (max diff {max_diff})")

    # state_dict (the torch reference used by bench_torch.py).
    pt_path = os.path.join(args.out, f"{name}.pt")
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    atomic_save(pt_path, lambda p: torch.save(sd, p))
    pt_bytes = os.path.getsize(pt_path)
    if pt_bytes > args.max_pt_bytes:
        os.unlink(pt_path)
        log(f"[{name}] state_dict is {pt_bytes} bytes > {args.max_pt_bytes}: not kept")
        pt_file = None
    else:
        pt_file = os.path.basename(pt_path)

    target = TARGETS[name]
    if top1 < target:
        log(f"[{name}] WARNING: top-1 {top1:.4f} is below the target {target:.3f}")

    entry = {
        "name": name,
        "dataset": dataset,
        "params": params,
        "macs": macs,
        "torch_top1": round(top1, 6),
        "test_images": int(xte.shape[0]),
        "correct": correct,
        "target_top1": target,
        "epochs": epochs,
        "batch_size": bs,
        "optimizer": (f"SGD(momentum={recipe['momentum']}, nesterov={recipe['nesterov']}, "
                      f"weight_decay={recipe['weight_decay']} on conv/linear weights)"),
        "schedule": f"OneCycleLR(max_lr={recipe['lr']}, pct_start=0.25, cos, div_factor=25, final_div_factor=1e3)",
        "loss": f"cross-entropy, label_smoothing={recipe['label_smoothing']}",
        "augmentation": (f"random shift +-{recipe['pad']} px (zero-pad + crop)"
                         + (", horizontal flip p=0.5" if recipe["hflip"] else "")),
        "input": "NCHW float32 [N,1,28,28], pixel/255; mean/std normalization inside the graph",
        "normalization": {"mean": zoo_models.NORM[dataset][0], "std": zoo_models.NORM[dataset][1]},
        "seed": seed,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "train_seconds": round(train_seconds, 1),
        "onnx": os.path.basename(onnx_path),
        "onnx_sha256": sha256_file(onnx_path),
        "onnx_ops": ops,
        "onnx_opset": 13,
        "state_dict": pt_file,
        "fixture_logits64": os.path.relpath(fix_path, args.out),
    }
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(zoo_models.ZOO),
                    help="comma-separated subset of: " + ", ".join(zoo_models.ZOO))
    ap.add_argument("--epochs", type=int, default=None, help="override every model's epoch count")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="models")
    ap.add_argument("--data", default="data")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-pt-bytes", type=int, default=400 * 1024)
    args = ap.parse_args()

    names = [s.strip() for s in args.models.split(",") if s.strip()]
    for nm in names:
        if nm not in zoo_models.ZOO:
            ap.error(f"unknown model {nm!r}")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    os.makedirs(args.out, exist_ok=True)

    entries = []
    t0 = time.time()
    for nm in names:
        entries.append(train_one(nm, args))
        write_zoo_json(os.path.join(args.out, "zoo.json"), entries)
    log(f"done in {time.time() - t0:.0f}s")
    for e in entries:
        log(f"  {e['name']}: top-1 {e['torch_top1']:.4f} (target {e['target_top1']}), params {e['params']}, "
            f"MACs {e['macs']}, epochs {e['epochs']}, {e['train_seconds']:.0f}s")


if __name__ == "__main__":
    main()
