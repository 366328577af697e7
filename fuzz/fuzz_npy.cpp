// libFuzzer target: tilescale::read_npy on one .npy file (fuzz_inputs.h: npy_input).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& dir = tilescale::fuzz::scratch_dir();
  tilescale::fuzz::expect_input_error_or_success(
      [&] { tilescale::fuzz::npy_input(data, size, dir); });
  return 0;
}
