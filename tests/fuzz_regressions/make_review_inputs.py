#!/usr/bin/python3
"""Writes the review-* inputs of fuzz_onnx/: ONNX files found by reading onnx_import.cpp while fixing
the fuzzers' findings, each confirmed to hit undefined behaviour (UBSan) in the importer before the
fix (integer overflow in the window/Pad/Reshape shape arithmetic, a double out of int64's range).
"""
import os

import numpy as np
import onnx  # noqa: F401  (helper and numpy_helper need it)
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_onnx")
BIG = 2**62
n = helper.make_node


def model(name, nodes, in_shape, inits=(), opset=13):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] + list(in_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, name, [x], [y], initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    with open(os.path.join(OUT, "review-" + name), "wb") as f:
        f.write(m.SerializeToString())


def ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


weight = numpy_helper.from_array(np.ones([1, 1, 3, 3], np.float32), "W")
model("reshape_float_shape_1e30", [n("Reshape", ["x", "s"], ["y"])], [4],
      [numpy_helper.from_array(np.array([0, 1e30], np.float32), "s")])
model("reshape_int64_overflow", [n("Reshape", ["x", "s"], ["y"])], [4], [ints("s", [0, BIG, BIG, 4])])
model("reshape_int64_2e40", [n("Reshape", ["x", "s"], ["y"])], [4],
      [ints("s", [0, 2**40, 2**40, 4])])
model("conv_dilation_2e62", [n("Conv", ["x", "W"], ["y"], dilations=[BIG, 1])], [1, 4, 4], [weight])
model("conv_same_stride_2e62", [n("Conv", ["x", "W"], ["y"], strides=[BIG, 1], dilations=[BIG, 1],
                                  auto_pad="SAME_UPPER")], [1, 4, 4], [weight])
model("maxpool_kernel_2e62", [n("MaxPool", ["x"], ["y"], kernel_shape=[BIG, BIG],
                                pads=[BIG, BIG, BIG, BIG])], [1, 4, 4])
model("pad_2e62", [n("Pad", ["x", "p"], ["y"])], [1, 4, 4], [ints("p", [0, 0, BIG, 0, 0, 0, BIG, 0])],
      opset=11)
model("pad_attr_opset9_2e62", [n("Pad", ["x"], ["y"], pads=[0, 0, BIG, 0, 0, 0, BIG, 0])], [1, 4, 4],
      opset=9)
