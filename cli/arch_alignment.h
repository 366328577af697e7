// The layer above the quantizer and the mapper behind `quantize --arch`: the crossbar-aligned
// granularity `xbar` resolved from a CIM config, and the --align strict check that a granularity's
// blocks line up with the architecture's folds before anything is quantized (docs/granularity.md).
#pragma once

#include "tilescale/map/arch_config.h"
#include "tilescale/model/graph.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::cli {

// `xbar` on a CIM config: xbar:BOxR with R = xbar_rows (a block's reduction run fills one
// crossbar) and BO = xbar_cols / ceil(w_bits / cell_bits), the output channels one crossbar holds
// at w_bits (one scale per crossbar, array-wise). InputError("--granularity") on another kind.
quant::Granularity resolve_xbar_granularity(const map::ArchConfig& arch, int w_bits);

// Every layer's blocks (options.granularity_of, the first/last bits included) against the arch:
// no fold of the arch's rows (xbar_rows for cim, rows for systolic ws/is) may mix two reduction
// groups (map::reduction_folds with Align::Strict, the mapper's own rule: throws map::AlignError),
// and on a CIM config a column group may not be split unevenly over crossbars: its output
// channels are a multiple or a divisor of the channels one crossbar holds (InputError naming the
// layer). Output-stationary systolic arrays run the reduction in time: nothing to check there.
void check_arch_alignment(const model::Graph& graph, const quant::QuantOptions& options,
                          const map::ArchConfig& arch);

}  // namespace tilescale::cli
