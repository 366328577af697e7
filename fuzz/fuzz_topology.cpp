// libFuzzer target: tilescale::map::read_scalesim_topology and read_scalesim_gemm on an arbitrary
// file (fuzz_inputs.h: topology_input).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& dir = tilescale::fuzz::scratch_dir();
  tilescale::fuzz::expect_input_error_or_success(
      [&] { tilescale::fuzz::topology_input(data, size, dir); });
  return 0;
}
