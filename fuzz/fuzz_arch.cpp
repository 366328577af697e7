// libFuzzer target: tilescale::map::ArchConfig::parse_file on an arbitrary file (configs/*.json are
// the seeds).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& dir = tilescale::fuzz::scratch_dir();
  tilescale::fuzz::expect_input_error_or_success(
      [&] { tilescale::fuzz::arch_input(data, size, dir); });
  return 0;
}
