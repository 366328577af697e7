// The flag of each QuantOptions range check, shared by quantize and sweep.
#pragma once

#include <iterator>
#include <utility>

#include "tilescale/core/error.h"
#include "tilescale/quant/quantized_model.h"

namespace tilescale::cli {

// QuantOptions::validate with the flag in each message: "--wbits: 9 is outside 2..8".
inline void check_quant_flags(const quant::QuantOptions& o) {
  static constexpr std::pair<quant::QuantCheck, const char*> kFlags[] = {
      {quant::QuantCheck::WBits, "--wbits"},
      {quant::QuantCheck::ABits, "--abits"},
      {quant::QuantCheck::FirstLast, "--first-last"},
      {quant::QuantCheck::ScaleBits, "--scale-bits"},
      {quant::QuantCheck::GridPoints, "--grid-points"},
      {quant::QuantCheck::GridRange, "--grid-lo, --grid-hi"},
      {quant::QuantCheck::Rounds, "--rounds"},
      {quant::QuantCheck::CalibImages, "--calib"},
      {quant::QuantCheck::CalibPositions, "--calib-positions"},
      {quant::QuantCheck::Threads, "--threads"}};
  static_assert(std::size(kFlags) == std::size(quant::kQuantChecks), "a check without a flag");
  for (const auto& [check, flag] : kFlags) with_source(flag, [&] { o.check(check); });
}

}  // namespace tilescale::cli
