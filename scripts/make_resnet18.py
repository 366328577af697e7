#!/usr/bin/python3
"""A ResNet-18-shaped ONNX model with random weights (11.7M parameters, 3x224x224 input, 1000
classes) and a small random IDX image set to calibrate it, for the quantizer benchmark
(scripts/bench_quantize.sh). Seeded; needs Debian's python3-torch and python3-onnx.

Usage: scripts/make_resnet18.py OUT_DIR [--images 16]
Writes OUT_DIR/resnet18.onnx, OUT_DIR/images.idx, OUT_DIR/labels.idx.
"""
import argparse
import os
import struct

import numpy as np
import torch
from torch import nn


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.down(x) if self.down is not None else x))


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def write_idx(path, array):
    dims = array.shape
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(array.astype(np.uint8).tobytes())
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model = ResNet18().eval()
    with torch.no_grad():  # random but non-degenerate BN statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    params = sum(p.numel() for p in model.parameters())
    onnx_path = os.path.join(args.out, "resnet18.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), onnx_path + ".tmp", opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    os.replace(onnx_path + ".tmp", onnx_path)
    rng = np.random.default_rng(0)
    write_idx(os.path.join(args.out, "images.idx"),
              rng.integers(0, 256, size=(args.images, 3, 224, 224)))
    write_idx(os.path.join(args.out, "labels.idx"), rng.integers(0, 10, size=(args.images,)))
    print(f"{onnx_path}: {params} parameters; {args.images} random 3x224x224 images")


if __name__ == "__main__":
    main()
