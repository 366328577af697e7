// libFuzzer targets: tilescale::quant::read_bundle on a copy of a real bundle, the template named
// by $TILESCALE_FUZZ_BUNDLE (scripts/fuzz.sh makes it with `tilescale quantize`). Built twice:
// fuzz_bundle puts the input in place of manifest.json; fuzz_bundle_blob (TILESCALE_FUZZ_BLOB)
// patches one blob and fixes its checksum in the manifest (fuzz_inputs.h: bundle_blob_input).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_common.h"
#include "fuzz_inputs.h"

namespace {

std::string g_bundle;  // the per-process copy of the template bundle
#ifdef TILESCALE_FUZZ_BLOB
tilescale::fuzz::BundleTemplate g_template;
#endif

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* from = std::getenv("TILESCALE_FUZZ_BUNDLE");
  if (!from || !*from) {
    std::fprintf(stderr,
                 "fuzz_bundle: set TILESCALE_FUZZ_BUNDLE to a bundle directory to use as the "
                 "template (scripts/fuzz.sh makes one)\n");
    std::exit(2);
  }
  g_bundle = tilescale::fuzz::scratch_dir() + "/bundle";
  try {
    tilescale::fuzz::copy_bundle(from, g_bundle);
#ifdef TILESCALE_FUZZ_BLOB
    g_template = tilescale::fuzz::load_bundle_template(from);
#endif
    tilescale::quant::read_bundle(g_bundle);  // the template itself must be valid
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_bundle: bad template bundle %s: %s\n", from, e.what());
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  tilescale::fuzz::expect_input_error_or_success([&] {
#ifdef TILESCALE_FUZZ_BLOB
    tilescale::fuzz::bundle_blob_input(data, size, g_bundle, g_template);
#else
    tilescale::fuzz::bundle_manifest_input(data, size, g_bundle);
#endif
  });
  return 0;
}
