// libFuzzer target: tilescale::map::ArchConfig::from_scalesim_cfg on an arbitrary file (the
// SCALE-Sim v2 .cfg that `tilescale map --scalesim-cfg` reads).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& dir = tilescale::fuzz::scratch_dir();
  tilescale::fuzz::expect_input_error_or_success(
      [&] { tilescale::fuzz::scalesim_input(data, size, dir); });
  return 0;
}
