"""Writes an IDX file (the MNIST format tilescale's loaders read: magic 0x0000 08 <dims>, big-endian
uint32 sizes, uint8 data), atomically (temp file + rename). Shared by the scripts that make test
and benchmark inputs (scripts/make_resnet18.py, tests/data/affine/make_affine_nets.py)."""
import os
import struct

import numpy as np


def write_idx(path, array):
    dims = array.shape
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(array.astype(np.uint8).tobytes())
    os.replace(path + ".tmp", path)
