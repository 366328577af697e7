// The synthesized area of the whole accelerator (rtl/ts_top_area.json, written by
// scripts/synth_area.sh --top: yosys + OSU 0.18um on ts_top with the parameters
// scripts/gen_rtl_config.py generates from configs/*.json), looked up for an architecture so that
// `tilescale map` can print it beside the area it composes from per-block syntheses and estimates.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "tilescale/map/arch_config.h"

namespace tilescale::map {

struct SynthesizedTop {
  std::string config;   // configs/<config>.json the synthesis was run for
  std::string source;   // path of ts_top_area.json
  double area_um2 = 0;  // standard cells of ts_top, accumulator SRAM excluded (black box)
  int64_t cells = 0;    // standard cells
  int64_t flops = 0;    // flip-flops
  int acc_words = 0;    // accumulator words per column the synthesized top was built with
  std::string yosys_version;
  std::map<std::string, double> parts_um2;  // module -> area of all its instances (ts_edge, ...)
};

// The entry of `path` whose config name equals arch.name and whose parameters (Rows, Cols,
// Dataflow, ActBits, WeightBits, AccBits, ScaleKind, MantBits, RegsPerBank) equal the arch's;
// nullopt when the arch has no entry or a stale one (its file changed after the synthesis), or is
// not a systolic array. Bad JSON throws InputError naming the file.
std::optional<SynthesizedTop> find_synthesized_top(const std::string& path, const ArchConfig& arch);

// find_synthesized_top on the source tree's rtl/ts_top_area.json ($TILESCALE_RTL_AREA overrides
// the path); nullopt also when that file does not exist (an installed binary without sources).
std::optional<SynthesizedTop> find_synthesized_top_default(const ArchConfig& arch);

}  // namespace tilescale::map
