// Accelerator architecture descriptions (configs/*.json): a systolic array or a set of CIM
// crossbar macros, plus the scale unit and on-chip SRAM around it. One schema, parsed and
// validated here (errors name the file, the field and the allowed range); the mapper, the
// simulators and the area model only read the validated struct.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "tilescale/core/enum_names.h"
#include "tilescale/quant/adc.h"

namespace tilescale::map {

enum class ArchKind { Systolic, Cim };
// The config's "kind" field.
inline constexpr auto kArchKindNames = make_enum_names<ArchKind>(
    "architecture kind", {{ArchKind::Systolic, "systolic"}, {ArchKind::Cim, "cim"}});
enum class Dataflow { WS, OS, IS };  // weight-, output-, input-stationary
inline constexpr auto kDataflowNames = make_enum_names<Dataflow>(
    "dataflow", {{Dataflow::WS, "ws"}, {Dataflow::OS, "os"}, {Dataflow::IS, "is"}});

// How block scales reach the partial sums.
enum class ScaleUnitKind {
  None,   // no per-block scaling on chip: one requantization scale per layer only
  Fixed,  // fixed-point multiplier of mant_bits bits and a shift (int_arith.h FixedMultiplier)
  Shift,  // shift only: every multiplier must be a power of two
};
// The part of a "scale_unit" text before its ':' ("fixed:<m>" carries the mantissa bits).
inline constexpr auto kScaleUnitKindNames =
    make_enum_names<ScaleUnitKind>("scale unit", {{ScaleUnitKind::None, "none"},
                                                  {ScaleUnitKind::Fixed, "fixed"},
                                                  {ScaleUnitKind::Shift, "shift"}});

struct ScaleUnit {
  ScaleUnitKind kind = ScaleUnitKind::Fixed;
  int mant_bits = 16;  // bits of the multiplier mantissa m (Fixed); 1 for Shift; 0 for None
  // "none" | "fixed:<m>" | "shift"; throws InputError naming `source` on anything else.
  static ScaleUnit parse(const std::string& text, const std::string& source);
  std::string str() const;
};

struct ArchConfig {
  std::string name;    // "name" field, else the file's stem
  std::string source;  // file it came from, for messages
  ArchKind kind = ArchKind::Systolic;

  // Shared by both kinds.
  int act_bits = 8;              // widest activation code the datapath takes, bits
  int weight_bits = 8;           // widest weight code, bits
  ScaleUnit scale_unit;          // block-scale datapath
  int scale_regs_per_tile = 16;  // scale registers available per array (systolic) or macro (CIM)
  double ifmap_sram_kib = 64;    // input activation SRAM, KiB
  double weight_sram_kib = 64;   // weight SRAM, KiB
  double ofmap_sram_kib = 64;    // output / accumulator SRAM, KiB
  int ifmap_bw = 0;              // ifmap SRAM read bandwidth, words/cycle (0: unlimited)
  int weight_bw = 0;             // weight SRAM read bandwidth, words/cycle (0: unlimited)
  int ofmap_bw = 0;              // ofmap SRAM write bandwidth, words/cycle (0: unlimited)
  double clock_mhz = 500;        // clock, MHz

  // Systolic array.
  int rows = 0;                      // PE rows (reduction axis for ws/is), PEs
  int cols = 0;                      // PE columns, PEs
  Dataflow dataflow = Dataflow::WS;  // which operand stays in the PEs
  int acc_bits = 32;                 // PE partial-sum width, bits

  // Compute-in-memory macros.
  int xbar_rows = 0;             // crossbar word lines (reduction axis), cells
  int xbar_cols = 0;             // crossbar bit lines, cells
  int cell_bits = 0;             // bits stored per cell
  int adc_bits = 0;              // ADC resolution, bits
  int cols_per_adc = 0;          // bit lines sharing one ADC (converted one after another)
  int input_bits_per_cycle = 0;  // activation bits applied per pass (bit-serial inputs)
  int macros = 0;                // crossbars working in parallel
  quant::AdcRange adc_range = quant::AdcRange::Clip;  // "adc_range": ADC LSB rule (quant/adc.h)

  // Validates a parsed JSON object; unknown keys are errors (they are usually typos). Throws
  // InputError "<source>: field '<f>': <problem> (allowed: ...)".
  static ArchConfig parse(const nlohmann::json& j, const std::string& source);
  // Reads and parses a configs/*.json file; bad JSON names the file and the position.
  static ArchConfig parse_file(const std::string& path);
  // Reads a SCALE-Sim v2 .cfg ([architecture_presets] ArrayHeight, ArrayWidth, IfmapSramSzkB,
  // FilterSramSzkB, OfmapSramSzkB, Dataflow; [run_presets] InterfaceBandwidth and Bandwidth) into a
  // systolic config with 8-bit operands and one layer scale.
  static ArchConfig from_scalesim_cfg(const std::string& path);

  // Throws InputError "<source>: kind '<kind>': <what> needs a '<wanted>' config" unless this
  // config is of kind `wanted`; commands call it before any other work.
  void require_kind(ArchKind wanted, const std::string& what) const;

  // CIM: the numerics description the golden executor takes (quant/adc.h); refuses other kinds.
  quant::AdcNumerics cim_numerics() const;

  nlohmann::json to_json() const;
  // CIM: bit lines one weight of w_bits occupies, ceil(w_bits / cell_bits).
  int weight_slices(int w_bits) const { return (w_bits + cell_bits - 1) / cell_bits; }
};

}  // namespace tilescale::map
