#!/usr/bin/python3
"""A ResNet-18-shaped ONNX model with random weights (11.7M parameters, 3x224x224 input, 1000
classes) and a small random IDX image set to calibrate it, for the quantizer benchmark
(scripts/bench_quantize.sh). Seeded; built with Debian's python3-onnx helper and NumPy (no torch).

BatchNormalization is written already folded into each conv (weights and bias), as torch.onnx.export
of an eval-mode model emits it; He-initialized weights and random biases keep the activations
non-degenerate through all 20 layers.

Usage: scripts/make_resnet18.py OUT_DIR [--images 16]
Writes OUT_DIR/resnet18.onnx, OUT_DIR/images.idx, OUT_DIR/labels.idx.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx_file import write_idx  # noqa: E402


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.params, self.n = [], [], 0, 0

    def name(self, kind):
        self.n += 1
        return f"{kind}{self.n}"

    def const(self, array):
        n = self.name("w")
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), n))
        self.params += array.size
        return n

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride, relu):
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        b = self.rng.uniform(-0.1, 0.1, cout)
        y = self.node("Conv", [x, self.const(w), self.const(b)], kernel_shape=[k, k],
                      strides=[stride, stride], pads=[k // 2] * 4)
        return self.node("Relu", [y]) if relu else y

    def basic(self, x, cin, cout, stride):
        y = self.conv(x, cin, cout, 3, stride, True)
        y = self.conv(y, cout, cout, 3, 1, False)
        skip = self.conv(x, cin, cout, 1, stride, False) if stride != 1 or cin != cout else x
        return self.node("Relu", [self.node("Add", [y, skip])])


def resnet18(seed=0):
    b = Builder(seed)
    x = b.conv("x", 3, 64, 7, 2, True)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        x = b.basic(x, cin, cout, stride)
        x = b.basic(x, cout, cout, 1)
        cin = cout
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    w = b.rng.normal(0, np.sqrt(1.0 / 512), (1000, 512))
    y = b.node("Gemm", [x, b.const(w), b.const(b.rng.uniform(-0.1, 0.1, 1000))], transB=1)
    graph = helper.make_graph(
        b.nodes, "resnet18_random",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 1000])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="scripts/make_resnet18.py")
    onnx.checker.check_model(model)
    return model, b.params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model, params = resnet18()
    onnx_path = os.path.join(args.out, "resnet18.onnx")
    onnx.save(model, onnx_path + ".tmp")
    os.replace(onnx_path + ".tmp", onnx_path)
    rng = np.random.default_rng(0)
    write_idx(os.path.join(args.out, "images.idx"),
              rng.integers(0, 256, size=(args.images, 3, 224, 224)))
    write_idx(os.path.join(args.out, "labels.idx"), rng.integers(0, 10, size=(args.images,)))
    print(f"{onnx_path}: {params} parameters; {args.images} random 3x224x224 images")


if __name__ == "__main__":
    main()
