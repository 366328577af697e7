#!/usr/bin/python3
"""Tiny ONNX models with constant elementwise ops after the first quantized tensor, for the tests
of the quantizer's Affine and StepScale ops (tests/quantizer/affine_test.cpp,
tests/cli/quantize_affine_cli_test.cpp). Seeded; Debian's python3-onnx and NumPy, no torch.

  bn_unfused.onnx   BatchNormalization that the importer cannot fold into a conv: after a Conv
                    whose output has another reader, after an Add, after a Concat
  const_ops.onnx    Sub/Mul/Div/Add with scalar and per-channel constants (mixed signs, c - x),
                    a positive scalar Mul (StepScale), and a per-channel Mul/Add right after a
                    Conv and a Div after the last Gemm (both folded into the layer on import)
  div_by_tensor.onnx  Div of two tensors (no integer form: quantize must refuse it)
  reciprocal.onnx   1 / x (no integer form: quantize must refuse it)
  images.idx, labels.idx  64 random 3x8x8 images and labels

Usage: tests/data/affine/make_affine_nets.py [OUT_DIR]   (default: this script's folder; the build
writes them to <build>/tests/data/affine, tests/CMakeLists.txt)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
from idx_file import write_idx  # noqa: E402


class Net:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, kind):
        self.n += 1
        return f"{kind}{self.n}"

    def const(self, array):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, name=None, **attrs):
        name = name or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x, cin, cout, relu=False):
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * 9)), (cout, cin, 3, 3))
        b = self.rng.normal(0, 0.1, (cout,))
        y = self.node("Conv", [x, self.const(w), self.const(b)], pads=[1, 1, 1, 1],
                      kernel_shape=[3, 3])
        return self.node("Relu", [y]) if relu else y

    def bn(self, x, c):
        gamma = self.rng.uniform(0.5, 1.5, c)
        beta = self.rng.normal(0, 0.2, c)
        mean = self.rng.normal(0, 0.2, c)
        var = self.rng.uniform(0.5, 1.5, c)
        return self.node("BatchNormalization",
                         [x] + [self.const(v) for v in (gamma, beta, mean, var)], epsilon=1e-5)

    def head(self, x, c, classes=10):
        g = self.node("GlobalAveragePool", [x])
        f = self.node("Flatten", [g], axis=1)
        w = self.rng.normal(0, np.sqrt(1.0 / c), (classes, c))
        return self.node("Gemm", [f, self.const(w), self.const(self.rng.normal(0, 0.1, classes))],
                         transB=1)

    def model(self, out):
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])
        outp = helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", 10])
        g = helper.make_graph(self.nodes, "net", [inp], [outp], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="make_affine_nets.py")
        m.ir_version = 7
        onnx.checker.check_model(m)
        return m


def bn_unfused():
    n = Net(1)
    t1 = n.conv("input", 3, 8)
    r1 = n.node("Relu", [t1])
    r2 = n.node("Relu", [n.bn(t1, 8)])           # BN after a Conv with another reader
    a1 = n.node("Add", [r1, r2])
    r3 = n.node("Relu", [n.bn(a1, 8)])           # BN after an Add (+ Relu, fused)
    cat = n.node("Concat", [r3, r1], axis=1)
    b3 = n.bn(cat, 16)                           # BN after a Concat (signed output)
    r4 = n.conv(b3, 16, 8, relu=True)
    return n.model(n.head(r4, 8))


def const_ops():
    n = Net(2)
    x = n.node("Div", [n.node("Sub", ["input", n.const(0.5)]), n.const(0.25)])  # host
    r1 = n.conv(x, 3, 8, relu=True)
    m1 = n.node("Mul", [r1, n.const(0.5)])                         # StepScale
    t2 = n.conv(m1, 8, 8)                                          # two readers
    per_c = n.rng.uniform(0.3, 1.5, (1, 8, 1, 1)) * np.where(np.arange(8) % 3 == 0, -1, 1).reshape(
        1, 8, 1, 1)
    s2 = n.node("Sub", [t2, n.const(0.1)])
    m2 = n.node("Mul", [s2, n.const(per_c)])
    d2 = n.node("Div", [m2, n.const(2.0)])
    chain = n.node("Relu", [d2])                                   # Affine + fused Relu
    o2 = n.node("Sub", [n.const(1.0), t2])                         # c - x (signed)
    a2 = n.node("Add", [chain, o2])
    t3 = n.conv(a2, 8, 8)
    f1 = n.node("Mul", [t3, n.const(n.rng.uniform(0.5, 2.0, (8, 1, 1)))])  # folded into t3
    f2 = n.node("Add", [f1, n.const(n.rng.normal(0, 0.2, (8, 1, 1)))])     # folded into t3
    r3 = n.node("Relu", [f2])
    a3 = n.node("Add", [r3, n.const(n.rng.normal(0, 0.3, (1, 8, 1, 1)))])  # per-channel Affine
    logits = n.head(a3, 8)
    return n.model(n.node("Div", [logits, n.const(2.0)]))          # folded into the Gemm


def div_by_tensor():
    n = Net(3)
    r = n.conv("input", 3, 4, relu=True)
    s = n.node("Add", [n.conv("input", 3, 4, relu=True), n.const(1.0)])
    return n.model(n.head(n.node("Div", [r, s], name="div_two_tensors"), 4))


def reciprocal():
    n = Net(4)
    r = n.node("Add", [n.conv("input", 3, 4, relu=True), n.const(1.0)])
    r = n.node("Relu", [r])
    return n.model(n.head(n.node("Div", [n.const(1.0), r], name="reciprocal"), 4))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    for name, build in [("bn_unfused", bn_unfused), ("const_ops", const_ops),
                        ("div_by_tensor", div_by_tensor), ("reciprocal", reciprocal)]:
        m = build()
        m.doc_string = "generated by tests/data/affine/make_affine_nets.py, do not edit"
        path = os.path.join(out, name + ".onnx")
        onnx.save(m, path + ".tmp")
        os.replace(path + ".tmp", path)
    rng = np.random.default_rng(0)
    write_idx(os.path.join(out, "images.idx"), rng.integers(0, 256, size=(64, 3, 8, 8)))
    write_idx(os.path.join(out, "labels.idx"), rng.integers(0, 10, size=(64,)))


if __name__ == "__main__":
    main()
