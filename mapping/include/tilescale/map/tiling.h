// Tiling a layer's GEMMs onto a systolic array: which reduction indices, output channels and
// output pixels each fold holds, and which scale blocks it touches. Pure enumeration; timing is
// in cycle_model.h. The simulators execute exactly this fold list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/core/error.h"
#include "tilescale/map/arch_config.h"
#include "tilescale/map/workload.h"

namespace tilescale::map {

// A fold may not mix two reduction (input-channel) blocks in one column sum, since partial sums of
// different blocks must be scaled before they meet (DESIGN.md section 5).
enum class Align {
  Strict,  // refuse layers whose natural folds straddle a block boundary (InputError explains)
  Pad,     // start a new fold at every block boundary; the unused rows are reported as waste
};

// The --align option of map and simulate.
inline constexpr auto kAlignNames =
    make_enum_names<Align>("alignment", {{Align::Strict, "strict"}, {Align::Pad, "pad"}});

// Reduction indices of one fold: hardware-order indices k0 .. k0 + length - 1 (ws/is, CIM), or for
// output-stationary arrays every index of reduction group red_group in increasing order (k0 = -1),
// since the reduction then runs in time and its order is free.
struct KFold {
  int64_t k0 = 0;          // first hardware reduction index, or -1: the whole reduction group
  int64_t length = 0;      // reduction indices in the fold (array rows used, or cycles streamed)
  int64_t red_group = 0;   // the one reduction group of these indices
  bool group_end = false;  // the next fold starts another group (or none follows): the int32
                           // partial sums are complete and go through the scale unit
};

// A strict alignment refusal: a fold that would mix reduction groups. Its message describes the
// layer, fold and blocks, not the option that chose strict (the CLI adds its flag with
// with_source<AlignError>).
class AlignError : public InputError {
 public:
  using InputError::InputError;
};

// Cuts [0, k) into folds of at most `rows` indices, none mixing reduction groups. Strict: the
// natural folds [i*rows, (i+1)*rows) or an AlignError naming the layer, fold and the two blocks;
// Pad: each maximal run of one group is cut on its own.
std::vector<KFold> reduction_folds(const LayerWorkload& layer, int64_t rows, Align align);
// Output-stationary: one segment per reduction group, all its indices (any count).
std::vector<KFold> reduction_segments(const LayerWorkload& layer);

struct SystolicFold {
  int64_t group = 0;          // conv group
  int64_t m0 = 0, m_len = 0;  // output pixels [m0, m0 + m_len)
  int64_t n0 = 0, n_len = 0;  // output channels of the group [n0, n0 + n_len)
  KFold k;                    // reduction indices
  int64_t rows_used = 0;      // array rows holding data, PEs
  int64_t cols_used = 0;      // array columns holding data, PEs
  int64_t stream = 0;         // vectors streamed through the array (ws: m_len, is: n_len, os: k)
  int64_t blocks = 0;         // distinct scale blocks among its outputs: scale registers it needs
  int64_t scale_loads = 0;    // scale registers written before it starts (0: same blocks as before)
  bool output_end = false;    // last fold of its outputs: they are requantized and written
  int64_t scaled_outputs = 0;  // scale-unit operations it triggers (0 unless k.group_end)
};

// Wide accumulator bits of the hardware's accumulator storage (the RTL's WideBits: int_arith.h's
// wide sum is exact in int64).
inline constexpr int kAccStorageWideBits = 64;

// Accumulator words per array column at the edge: the outputs one fold may keep in flight per
// column, each an int32 group sum (acc_bits) and a wide sum (kAccStorageWideBits), held in the
// ofmap SRAM. ws/is: floor(ofmap_sram_kib * 8192 / (cols * (acc_bits + 64))) (rtl/README.md
// "AccWords", scripts/gen_rtl_config.py computes the same); os: rows (one word per pixel of the
// tile; the PEs hold the sums). Can be 0 for a tiny ofmap SRAM (systolic_folds refuses it).
int64_t accumulator_words(const ArchConfig& arch);

// Accumulator words per column a fold keeps (ws: its output pixels, is: its output channels, os:
// its pixels), i.e. what accumulator_words() must hold.
inline int64_t fold_accumulator_words(const ArchConfig& arch, int64_t m_len, int64_t n_len) {
  return arch.dataflow == Dataflow::IS ? n_len : m_len;
}

// The fold sequence in execution order: ws: group, n tile, m tile, k fold (m tiles of at most
// accumulator_words() pixels); is: group, m tile, n tile, k fold (n tiles of at most
// accumulator_words() channels); os: group, m tile, n tile, segment. Throws InputError naming the
// arch file when ofmap_sram_kib holds no accumulator word per column, or (os) not the Rows words
// per column an output tile needs.
std::vector<SystolicFold> systolic_folds(const LayerWorkload& layer, const ArchConfig& arch,
                                         Align align);

}  // namespace tilescale::map
