#!/usr/bin/python3
"""The one source of the RTL's parameters: reads systolic configs/*.json and emits, per config, the
ts_top parameter set (Verilator -G arguments in a CMake file, yosys chparam arguments) and a C++
header with the same constants, so the Verilated RTL, its C++ testbench and synthesis cannot
disagree. Derived parameters (rtl/README.md, "Parameters"):
  ScaleBanks  ws: 3 + ceil((cols - 1) / rows)     map::scale_register_banks: the fold contexts and
              os: 4 + ceil((cols - 1) / rows)     scale banks ts_ctrl keeps in flight
  AccWords    ws: floor(ofmap_sram_kib * 8192 / (cols * (acc_bits + WideBits)))  one group word and
              one wide word per output pixel and column in the ofmap/accumulator SRAM
              os: rows                            one word per output pixel of the tile
  WideBits    64                                  int_arith.h's wide accumulator is exact in int64
  ActLanes    ws: min(ifmap_bw, rows), os: rows   activation lanes per beat (0 bw: rows)
  OutLanes    ws: min(ofmap_bw, cols), os: cols   output lanes per beat (0 bw: cols)
Narrowed ports are built for ws only, with weight_bw >= cols (a preload row per beat, so the
preload takes Rows beats as the mapper's max(R, ceil(rows_used * cols_used / weight_bw)) says); other
narrowed configs are skipped with a note (rtl/README.md, "Narrowed ports").
Configs the RTL does not build (CIM, input-stationary, scale_unit "none") are skipped with a note.

Usage:
  gen_rtl_config.py --out DIR CONFIG.json...   write DIR/rtl_params.cmake (TILESCALE_RTL_GARGS_<c>,
                                               TILESCALE_RTL_CONST_<c>: the C++ constant's name)
                                               and DIR/tilescale_rtl_configs.h
  gen_rtl_config.py --chparam CONFIG.json      print yosys "chparam -set K V ..." arguments for ts_top
  gen_rtl_config.py --show CONFIG.json         print the parameter set
"""
import json
import os
import sys

WIDE_BITS = 64
# The order of ts_top's parameters; every one is emitted.
PARAMS = ("Rows", "Cols", "Dataflow", "ActBits", "WeightBits", "AccBits", "WideBits", "ScaleKind",
          "MantBits", "ScaleBanks", "RegsPerBank", "AccWords", "ActLanes", "OutLanes")


class Skip(Exception):
    pass


def fail(path, msg):
    sys.exit(f"gen_rtl_config: {path}: {msg}")


def params_of(path):
    with open(path) as f:
        try:
            j = json.load(f)
        except json.JSONDecodeError as e:
            fail(path, f"not valid JSON: {e}")
    name = j.get("name", os.path.splitext(os.path.basename(path))[0])
    if j.get("kind") != "systolic":
        raise Skip(f"{name}: kind '{j.get('kind')}' has no RTL")
    dataflow = {"ws": 0, "os": 1}.get(j.get("dataflow"))
    if dataflow is None:
        raise Skip(f"{name}: dataflow '{j.get('dataflow')}' has no RTL")
    unit = j.get("scale_unit", "")
    if unit == "shift":
        kind, mant = 1, 1
    elif unit.startswith("fixed:"):
        kind, mant = 0, int(unit[len("fixed:"):])
    else:
        raise Skip(f"{name}: scale_unit '{unit}' has no RTL")
    rows, cols = int(j["rows"]), int(j["cols"])
    acc_bits = int(j.get("acc_bits", 32))
    act_bits = int(j["act_bits"])
    if rows < 2:
        fail(path, "the RTL needs rows >= 2")
    if act_bits >= 17:
        fail(path, "the RTL needs act_bits <= 16 (17-bit clamp bounds)")
    if dataflow == 0:
        acc_words = int(float(j["ofmap_sram_kib"]) * 8192) // (cols * (acc_bits + WIDE_BITS))
    else:
        acc_words = rows
    if acc_words < 1:
        fail(path, "ofmap_sram_kib holds no accumulator word per column")

    def lanes(key, full):
        bw = int(j.get(key, 0))
        return full if bw <= 0 else min(bw, full)
    act_lanes, out_lanes = lanes("ifmap_bw", rows), lanes("ofmap_bw", cols)
    wgt_lanes = lanes("weight_bw", cols)
    if dataflow == 1 and (act_lanes < rows or out_lanes < cols or wgt_lanes < cols):
        raise Skip(f"{name}: an os array with ports narrower than rows/cols has no RTL")
    if dataflow == 0 and wgt_lanes < cols:
        raise Skip(f"{name}: a ws weight port narrower than cols (weight_bw {wgt_lanes}) has no RTL")
    p = {
        "Rows": rows,
        "Cols": cols,
        "Dataflow": dataflow,
        "ActBits": act_bits,
        "WeightBits": int(j["weight_bits"]),
        "AccBits": acc_bits,
        "WideBits": WIDE_BITS,
        "ScaleKind": kind,
        "MantBits": mant,
        "ScaleBanks": (4 if dataflow == 1 else 3) + (cols - 1 + rows - 1) // rows,
        "RegsPerBank": int(j["scale_regs_per_tile"]),
        "AccWords": acc_words,
        "ActLanes": act_lanes,
        "OutLanes": out_lanes,
    }
    return name, p


def snake(name):
    return "".join("_" + c.lower() if c.isupper() and i > 0 else c.lower()
                   for i, c in enumerate(name))


def ident(name):
    return "".join(c if c.isalnum() else "_" for c in name)


def camel(name):
    return "k" + "".join(part[:1].upper() + part[1:] for part in ident(name).split("_"))


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    if len(argv) >= 2 and argv[0] in ("--chparam", "--show"):
        name, p = params_of(argv[1])
        if argv[0] == "--chparam":
            print(" ".join(f"-set {k} {p[k]}" for k in PARAMS))
        else:
            print(name, " ".join(f"{k}={p[k]}" for k in PARAMS))
        return
    if len(argv) < 2 or argv[0] != "--out":
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    configs = []
    for path in sorted(argv[2:]):
        try:
            configs.append((path, *params_of(path)))
        except Skip as s:
            print(f"gen_rtl_config: skipped {s}")
    stamp = "generated by scripts/gen_rtl_config.py from configs/*.json, do not edit"
    cm = [f"# {stamp}", "set(TILESCALE_RTL_CONFIGS " + " ".join(n for _, n, _ in configs) + ")"]
    for _, name, p in configs:
        cm.append(f"set(TILESCALE_RTL_GARGS_{ident(name)} " +
                  " ".join(f"-G{k}={p[k]}" for k in PARAMS) + ")")
        cm.append(f"set(TILESCALE_RTL_CONST_{ident(name)} {camel(name)})")
    write_if_changed(os.path.join(out, "rtl_params.cmake"), "\n".join(cm) + "\n")
    h = [f"// {stamp}", "#pragma once", "", "namespace tilescale::rtl {", "",
         "// One Verilated ts_top parameter set (rtl/README.md, \"Parameters\").",
         "struct RtlConfig {",
         "  const char* name;   // config name (configs/<name>.json)",
         "  const char* source; // file it came from"]
    for k in PARAMS:
        h.append(f"  int {snake(k)};")
    h += ["};", ""]
    for path, name, p in configs:
        vals = ", ".join(str(p[k]) for k in PARAMS)
        h.append(f'inline constexpr RtlConfig {camel(name)}{{"{name}", "configs/'
                 f'{os.path.basename(path)}", {vals}}};')
    h += ["", "inline constexpr RtlConfig kRtlConfigs[] = {" +
          ", ".join(camel(n) for _, n, _ in configs) + "};", "", "}  // namespace tilescale::rtl", ""]
    write_if_changed(os.path.join(out, "tilescale_rtl_configs.h"), "\n".join(h))


if __name__ == "__main__":
    main(sys.argv[1:])
