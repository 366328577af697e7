// Shared by the fast Conv/Gemm routes (int_gemm_fast.cpp, int_gemm_int16.cpp); not public.
#pragma once

#include <cstdint>

#include "tilescale/quant/int_gemm_fast.h"
#include "tilescale/quant/int_kernels.h"

namespace tilescale::quant::kernels::detail {

// y[i][o][oy][ox] = the layer's output codes from the exact sums (integers below 2^53 held in
// doubles) part[o][i * ho * pitch + oy * pitch + ox], pitch >= wo (columns ox >= wo are not read):
// bias_q[o] added and the one rounding applied in int64, exactly as conv_gemm_blocks does (or the
// accumulator kept, keep_acc).
void finish_folded(const GemmLayer& layer, int64_t n, const double* part, int64_t* y,
                   int64_t pitch);

// The int16 route in two steps, so that conv_gemm reads the input once to both bound and narrow
// it. True iff this CPU has an int16 kernel and `folded` holds packed weights.
bool int16_packed(const FoldedGemm& folded);
// ws.x16 = the n samples' codes as int16 (exact only where |q_x| <= 2^15 - 1); returns max |q_x|.
int64_t input_to_int16(const GemmLayer& layer, int64_t n, const int64_t* x, GemmScratch& ws);
// conv_gemm_int16 from ws.x16. Requires int16_exact(folded, max |q_x|).
void int16_from_converted(const GemmLayer& layer, const FoldedGemm& folded, int64_t n, int64_t* y,
                          GemmScratch& ws);

}  // namespace tilescale::quant::kernels::detail
