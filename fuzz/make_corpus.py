#!/usr/bin/python3
"""Writes the committed seed corpora under fuzz/corpus/ (run from anywhere; needs data/ and onnx).

fuzz_onnx:        one tiny model per supported operator (opsets 9, 11, 13), float_data and raw_data
fuzz_idx:         2-byte split + image file + label file, cut from data/mnist and data/fmnist
fuzz_cifar:       synthetic CIFAR-10 batches in the 1-, 2- and 3-file layouts of fuzz_inputs.h
fuzz_npy:         small arrays saved by NumPy (<f4, <f8, 0-d, empty, versions 1 and 2) and a few it
                  refuses (>f4, Fortran order, int8); scripts/fuzz.sh adds models/fixtures/*.npy
fuzz_bundle_blob: one small patch per blob (fuzz_inputs.h: bundle_blob_input)
fuzz_scalesim:    SCALE-Sim v2 .cfg files (CALC and USER bandwidth, each dataflow)
fuzz_topology:    SCALE-Sim topology and GEMM CSVs (byte 0: 0 topology, 1 GEMM)
fuzz_arch:        variants of configs/sa8x8_ws.json and configs/cim128_2b.json (other dataflows,
                  scale units, widths); scripts/fuzz.sh adds configs/*.json themselves
fuzz_bundle:      manifest.json of LeNet-5 bundles made by build/tilescale (or $TILESCALE_BIN) with four
                  option sets; the one made like scripts/fuzz.sh's template (minmax, 8 images) loads
                  against it as long as the quantizer's output does not change
The models/*.onnx files are added to fuzz_onnx's scratch corpus by scripts/fuzz.sh, not copied here.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
RNG = np.random.default_rng(6)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ----- fuzz_onnx -----------------------------------------------------------------------------------


def tensor(name, shape, raw=True, dtype=np.float32):
    a = (RNG.standard_normal(shape) * 0.5).astype(dtype)
    if raw:
        return numpy_helper.from_array(a, name)
    t = helper.make_tensor(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], shape, a.flatten().tolist())
    return t


def model(name, nodes, in_shape, out_name, inits=(), opset=13, batch=1):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch] + list(in_shape))
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, name, [x], [y], initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="fuzz/make_corpus.py")
    write("fuzz_onnx", name + ".onnx", m.SerializeToString())


def onnx_seeds():
    n = helper.make_node
    model("conv_relu_pool_gemm", [
        n("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
        n("Relu", ["c"], ["r"]),
        n("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["p"], ["f"]),
        n("Gemm", ["f", "G", "GB"], ["y"], transB=1),
    ], [1, 4, 4], "y", [tensor("W", [2, 1, 3, 3]), tensor("B", [2]), tensor("G", [3, 8], raw=False),
                        tensor("GB", [3])])
    model("conv_bn_fold", [
        n("Conv", ["x", "W"], ["c"], group=2, dilations=[1, 1], auto_pad="SAME_UPPER"),
        n("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=1e-5),
    ], [2, 3, 3], "y", [tensor("W", [2, 1, 2, 2]), tensor("s", [2]), tensor("b", [2]),
                        tensor("m", [2]), numpy_helper.from_array(np.ones(2, np.float32), "v")])
    model("bn_alone_affine", [
        n("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"]),
    ], [2, 2, 2], "y", [tensor("s", [2]), tensor("b", [2]), tensor("m", [2]),
                        numpy_helper.from_array(np.ones(2, np.float32), "v")])
    model("binary_broadcast", [
        n("Add", ["x", "a"], ["t1"]),
        n("Sub", ["k", "t1"], ["t2"]),
        n("Mul", ["t2", "m"], ["t3"]),
        n("Div", ["t3", "d"], ["t4"]),
        n("Add", ["t4", "t3"], ["y"]),
    ], [2, 3], "y", [tensor("a", [1, 2, 1]), tensor("k", [3]), tensor("m", [2, 3]),
                     numpy_helper.from_array(np.full([1], 2.0, np.float32), "d")])
    model("clip_opset11", [
        n("Clip", ["x", "lo", "hi"], ["y"]),
    ], [4], "y", [numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
                  numpy_helper.from_array(np.array(6.0, np.float32), "hi")], opset=11)
    model("clip_pad_opset9", [
        n("Clip", ["x"], ["c"], min=-1.0, max=1.0),
        n("Pad", ["c"], ["y"], pads=[0, 0, 1, 0, 0, 0, 0, 1], value=0.5),
    ], [1, 3, 3], "y", opset=9)
    model("pad_avgpool_gap", [
        n("Pad", ["x", "pads", "pv"], ["p"]),
        n("AveragePool", ["p"], ["a"], kernel_shape=[2, 2], ceil_mode=1, count_include_pad=1),
        n("GlobalAveragePool", ["a"], ["y"]),
    ], [2, 4, 4], "y", [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
                        numpy_helper.from_array(np.array(0.0, np.float32), "pv")], opset=11)
    model("reshape_concat_matmul", [
        n("Reshape", ["x", "shape"], ["r"]),
        n("Identity", ["r"], ["i"]),
        n("Dropout", ["i"], ["d"]),
        n("Concat", ["d", "r"], ["c"], axis=1),
        n("MatMul", ["c", "M"], ["y"]),
    ], [2, 3], "y", [numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
                     tensor("M", [12, 5], dtype=np.float64)])
    model("constant_node", [
        n("Constant", [], ["k"], value=numpy_helper.from_array(np.ones([1, 3], np.float32), "kv")),
        n("Mul", ["x", "k"], ["y"]),
    ], [3], "y")
    model("qdq_pair", [
        n("QuantizeLinear", ["x", "s", "z"], ["q"]),
        n("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ], [4], "y", [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                  numpy_helper.from_array(np.array(-3, np.int8), "z")])
    model("qdq_uint8_gemm", [
        n("QuantizeLinear", ["x", "s"], ["q"]),
        n("DequantizeLinear", ["q", "s"], ["d"]),
        n("Gemm", ["d", "G", "C"], ["y"], alpha=0.5, beta=2.0),
    ], [4], "y", [numpy_helper.from_array(np.array(0.1, np.float32), "s"), tensor("G", [4, 2]),
                  tensor("C", [1])])


# ----- fuzz_idx and fuzz_cifar --------------------------------------------------------------------


def idx_seeds():
    for name in ("mnist", "fmnist"):
        base = os.path.join(ROOT, "data", name, "test")
        with open(base + "-images.idx", "rb") as f:
            images = f.read()
        with open(base + "-labels.idx", "rb") as f:
            labels = f.read()
        n, h, w = struct.unpack(">III", images[4:16])
        for count in (1, 3):
            img = images[:4] + struct.pack(">III", count, h, w) + images[16:16 + count * h * w]
            lab = labels[:4] + struct.pack(">I", count) + labels[8:8 + count]
            write("fuzz_idx", f"{name}_{count}.bin", struct.pack("<H", len(img)) + img + lab)
    # A 4-D [N][C][H][W] image file: two 2x3x3 images.
    img = bytes([0, 0, 8, 4]) + struct.pack(">IIII", 2, 2, 3, 3) + bytes(range(36))
    lab = bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([3, 11])
    write("fuzz_idx", "nchw_2.bin", struct.pack("<H", len(img)) + img + lab)


def cifar_seeds():
    def record(label, seed):
        return bytes([label]) + bytes((seed + k) & 0xFF for k in range(3 * 32 * 32))

    write("fuzz_cifar", "one_file_2.bin", bytes([0]) + record(3, 0) + record(9, 7))
    write("fuzz_cifar", "two_files_2.bin", bytes([1]) + record(0, 1) + record(5, 2))
    write("fuzz_cifar", "three_files_3.bin",
          bytes([2]) + record(1, 3) + record(2, 4) + record(8, 5))


# ----- fuzz_arch ----------------------------------------------------------------------------------


def arch_seeds():
    import json

    def load(name):
        with open(os.path.join(ROOT, "configs", name)) as f:
            return json.load(f)

    def put(name, cfg):
        write("fuzz_arch", name, (json.dumps(cfg, indent=1) + "\n").encode())

    sa = load("sa8x8_ws.json")
    put("sa4x2_os_none.json", dict(sa, name="sa4x2_os_none", rows=4, cols=2, dataflow="os",
                                   scale_unit="none", ifmap_bw=0, weight_bw=0, ofmap_bw=0))
    put("sa2x2_is_shift.json", dict(sa, name="sa2x2_is_shift", rows=2, cols=2, dataflow="is",
                                    scale_unit="shift", act_bits=4, weight_bits=2, acc_bits=16,
                                    ifmap_sram_kib=0.5))
    cim = load("cim128_2b.json")
    put("cim64x32_1b.json", dict(cim, name="cim64x32_1b", xbar_rows=64, xbar_cols=32, cell_bits=1,
                                 adc_bits=4, cols_per_adc=4, input_bits_per_cycle=2, macros=2,
                                 scale_unit="fixed:8"))


def scalesim_seeds():
    base = ("[general]\nrun_name = {name}\n\n[architecture_presets]\nArrayHeight:    {h}\n"
            "ArrayWidth:     {w}\nIfmapSramSzkB:    64\nFilterSramSzkB:   64\nOfmapSramSzkB:    32\n"
            "IfmapOffset:    0\nFilterOffset:    10000000\nOfmapOffset:    20000000\n"
            "Dataflow : {df}\nBandwidth : {bw}\n\n[run_presets]\nInterfaceBandwidth: {mode}\n")
    write("fuzz_scalesim", "google_os_user.cfg",
          base.format(name="google", h=32, w=32, df="os", bw=10, mode="USER").encode())
    write("fuzz_scalesim", "eyeriss_ws_calc.cfg",
          base.format(name="eyeriss", h=12, w=14, df="ws", bw=4, mode="CALC").encode())
    write("fuzz_scalesim", "tiny_is.cfg",
          base.format(name="tiny", h=2, w=4, df="is", bw=1, mode="USER").encode())


def topology_seeds():
    topo = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
            "Num Filter, Strides,\n"
            "Conv1, 224, 224, 11, 11, 3, 96, 4,\n"
            "Conv2, 27, 27, 5, 5, 96, 256, 1, 2,\n"
            "DP1, 10, 10, 3, 3, 8, 1, 1,\n")
    write("fuzz_topology", "alexnet_dp.csv", bytes([0]) + topo.encode())
    gemm = "Layer, M, N, K,\nfc1, 1, 4096, 9216,\nqkv, 128, 768, 2304,\n"
    write("fuzz_topology", "gemm.csv", bytes([1]) + gemm.encode())


# ----- fuzz_npy -----------------------------------------------------------------------------------


def npy_seeds():
    import io

    def save(name, a, version=None):
        f = io.BytesIO()
        if version is None:
            np.save(f, a)
        else:
            np.lib.format.write_array(f, a, version=version)
        write("fuzz_npy", name, f.getvalue())

    save("f4_2x3.npy", RNG.standard_normal((2, 3)).astype("<f4"))
    save("f8_5.npy", RNG.standard_normal(5).astype("<f8"))
    save("f4_scalar.npy", np.array(1.5, "<f4"))
    save("f4_empty.npy", np.zeros((0, 4), "<f4"))
    save("f4_v2.npy", np.arange(6, dtype="<f4").reshape(3, 2), version=(2, 0))
    save("big_endian.npy", np.arange(4, dtype=">f4"))
    save("fortran.npy", np.asfortranarray(np.ones((2, 2), "<f4")))
    save("int8.npy", np.arange(4, dtype=np.int8))


# ----- fuzz_bundle --------------------------------------------------------------------------------


def bundle_seeds():
    tool = os.environ.get("TILESCALE_BIN", os.path.join(ROOT, "build", "tilescale"))
    common = ["quantize", "--model", os.path.join(ROOT, "models", "lenet5_mnist.onnx"),
              "--dataset", "mnist", "--search", "minmax", "--calib", "8"]
    variants = {
        "lenet5_minmax_calib8": [],  # the same options as scripts/fuzz.sh's template
        "lenet5_block4x8_kmeans": ["--granularity", "block:4x8", "--reorder", "kmeans"],
        "lenet5_mx32_float_acts": ["--granularity", "mx:32", "--abits", "32"],
        "lenet5_vsq16_a6": ["--granularity", "vsq:16", "--abits", "6", "--first-last", "8"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in variants.items():
            out = os.path.join(tmp, name)
            subprocess.run([tool] + common + extra + ["--out", out], check=True,
                           stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "manifest.json"), "rb") as f:
                write("fuzz_bundle", name + ".json", f.read())


# ----- fuzz_bundle_blob ---------------------------------------------------------------------------


def blob_seeds():
    # byte 0: blob (0 weights, 1 scales, 2 multipliers, 3 bias; +0x80 cuts it), bytes 1-4 offset.
    write("fuzz_bundle_blob", "weights_code.bin", bytes([0]) + struct.pack("<I", 5) + bytes([7, 0xF9]))
    write("fuzz_bundle_blob", "scales_nan.bin", bytes([1]) + struct.pack("<I", 4) +
          struct.pack("<f", float("nan")))
    write("fuzz_bundle_blob", "scales_tiny.bin", bytes([1]) + struct.pack("<I", 0) +
          struct.pack("<f", 1e-30))
    write("fuzz_bundle_blob", "multiplier.bin", bytes([2]) + struct.pack("<I", 8) +
          struct.pack("<ii", 1 << 30, 40))
    write("fuzz_bundle_blob", "bias_cut.bin", bytes([0x83]) + struct.pack("<I", 16) + bytes(3))
    write("fuzz_bundle_blob", "unchanged.bin", bytes([0]) + struct.pack("<I", 0))


if __name__ == "__main__":
    onnx_seeds()
    idx_seeds()
    cifar_seeds()
    npy_seeds()
    arch_seeds()
    scalesim_seeds()
    topology_seeds()
    blob_seeds()
    bundle_seeds()
    sys.exit(0)
