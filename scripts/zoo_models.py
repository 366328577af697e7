"""Model definitions for the tilescale model zoo (shared by train_zoo.py and bench_torch.py).

Input convention for every model: NCHW float32 pixels scaled to [0, 1] (pixel / 255), shape [N, 1, 28, 28].
The per-dataset mean/std normalization is done inside forward() with Python float constants, so it is part
of the exported ONNX graph (Sub/Div with scalar constants). Flattening uses torch.flatten(x, 1) (ONNX
Flatten), and MobileNet uses nn.ReLU6 (ONNX Clip with min/max inputs).
"""
import os
import struct

import numpy as np
import torch
import torch.nn as nn

# Mean/std of the training pixels in [0, 1] (the usual published values for each dataset).
NORM = {
    "mnist": (0.1307, 0.3081),
    "fmnist": (0.2860, 0.3530),
}


class LeNet5(nn.Module):
    """Classic LeNet-5 layout with ReLU and max pooling: conv5x5(6, pad 2) - pool - conv5x5(16) - pool -
    fc120 - fc84 - fc10."""

    def __init__(self, mean=NORM["mnist"][0], std=NORM["mnist"][1], num_classes=10):
        super().__init__()
        self.mean = float(mean)
        self.std = float(std)
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) - ReLU. The shortcut is a 1x1 conv + BN
    projection when the stride or the channel count changes, identity otherwise."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                nn.BatchNorm2d(cout),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet8(nn.Module):
    """ResNet-8: conv3x3 stem (16) + three basic-block stages (16, 32/s2, 64/s2) + global average pool +
    Linear. 8 weighted layers on the main path (stem, 6 block convs, fc)."""

    def __init__(self, mean=NORM["fmnist"][0], std=NORM["fmnist"][1], widths=(16, 32, 64), num_classes=10):
        super().__init__()
        self.mean = float(mean)
        self.std = float(std)
        w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(1, w1, 3, padding=1, bias=False),
            nn.BatchNorm2d(w1),
            nn.ReLU(),
        )
        self.stage1 = BasicBlock(w1, w1, 1)
        self.stage2 = BasicBlock(w1, w2, 2)
        self.stage3 = BasicBlock(w2, w3, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.stem(x)
        x = self.stage1(x)
        x = self.stage2(x)
        x = self.stage3(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class DWSeparable(nn.Module):
    """MobileNet depthwise-separable block: 3x3 depthwise (groups=C) + BN + ReLU6, 1x1 pointwise + BN + ReLU6."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.bn_dw = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6()

    def forward(self, x):
        x = self.act(self.bn_dw(self.dw(x)))
        return self.act(self.bn_pw(self.pw(x)))


# (out_channels, stride) of the depthwise-separable blocks after the stem.
MOBILENET_BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1))


class MobileNetFM(nn.Module):
    """MobileNet-v1 style network for 28x28 inputs: conv3x3 stem (16) + BN + ReLU6, depthwise-separable blocks
    (MOBILENET_BLOCKS; two of them strided: 28 -> 14 -> 7), global average pool, Linear."""

    def __init__(self, mean=NORM["fmnist"][0], std=NORM["fmnist"][1], stem=16, blocks=MOBILENET_BLOCKS,
                 num_classes=10):
        super().__init__()
        self.mean = float(mean)
        self.std = float(std)
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU6(),
        )
        layers = []
        cin = stem
        for cout, stride in blocks:
            layers.append(DWSeparable(cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.stem(x)
        x = self.features(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


# name -> (dataset, constructor)
ZOO = {
    "lenet5_mnist": ("mnist", lambda: LeNet5(*NORM["mnist"])),
    "resnet8_fmnist": ("fmnist", lambda: ResNet8(*NORM["fmnist"])),
    "mobilenet_fmnist": ("fmnist", lambda: MobileNetFM(*NORM["fmnist"])),
}


def build(name):
    """A freshly initialized model of the zoo entry `name` (call torch.manual_seed first for determinism)."""
    if name not in ZOO:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name][1]()


def read_idx(path):
    """Read an IDX file (big-endian magic 0,0,0x08,ndim; u32 BE dims; uint8 data) into a numpy uint8 array."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    n = int(np.prod(dims)) if dims else 1
    body = data[4 + 4 * ndim:]
    if len(body) != n:
        raise ValueError(f"{path}: expected {n} data bytes, found {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims).copy()


def load_split(data_dir, dataset, split):
    """(images uint8 [N, 28, 28], labels int64 [N]) of data/<dataset>/<split>-{images,labels}.idx."""
    base = os.path.join(data_dir, dataset)
    images = read_idx(os.path.join(base, f"{split}-images.idx"))
    labels = read_idx(os.path.join(base, f"{split}-labels.idx")).astype(np.int64)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"{base}/{split}: unexpected shapes {images.shape} / {labels.shape}")
    return images, labels


def to_input(images_u8):
    """uint8 [N, 28, 28] -> float32 NCHW tensor in [0, 1] (the zoo's input convention)."""
    return torch.from_numpy(np.ascontiguousarray(images_u8)).to(torch.float32).div_(255.0).unsqueeze(1)


def count_macs(model, input_shape=(1, 1, 28, 28)):
    """Multiply-accumulates per image of all Conv2d and Linear layers, measured with forward hooks.

    Conv2d: out_elems * (Cin / groups) * kh * kw  (so a depthwise conv costs kh*kw per output element).
    Linear: out_features * in_features.  Bias adds, BN, activations and pooling are not counted.
    """
    total = [0]
    hooks = []

    def conv_hook(mod, inp, out):
        kh, kw = mod.kernel_size
        total[0] += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod, inp, out):
        total[0] += out.numel() // out.shape[0] * mod.in_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total[0]


def count_params(model):
    return sum(p.numel() for p in model.parameters())
