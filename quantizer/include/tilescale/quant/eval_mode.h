// How a quantized model is evaluated: `tilescale eval --mode`, `tilescale sweep --mode` and the
// "executor" field of their reports.
#pragma once

#include "tilescale/core/enum_names.h"

namespace tilescale::quant {

enum class EvalMode {
  Int,   // the golden integer executor (IntExecutor), bit-exact with the hardware
  Fake,  // the fake-quant float graph (make_fake_quant_graph) on the float executor
};
inline constexpr auto kEvalModeNames = make_enum_names<EvalMode>(
    "evaluation mode", {{EvalMode::Int, "int"}, {EvalMode::Fake, "fake"}});

}  // namespace tilescale::quant
