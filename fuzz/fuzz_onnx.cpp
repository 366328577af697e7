// libFuzzer target: tilescale::quant::import_onnx_bytes on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  tilescale::fuzz::expect_input_error_or_success([&] { tilescale::fuzz::onnx_input(data, size); });
  return 0;
}
