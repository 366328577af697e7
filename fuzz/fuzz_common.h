// Shared by the libFuzzer targets: the verdict on one input, and a per-process scratch folder for
// loaders that read files. An InputError is the expected rejection of a bad file; anything else
// that escapes the loader (another exception, a crash, a sanitizer report, a hang, a huge
// allocation) is a bug, and abort() turns an unexpected exception into a crash libFuzzer records.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "tilescale/core/error.h"

namespace tilescale::fuzz {

// Runs f on one input: returns normally if f succeeds or throws InputError, aborts otherwise.
template <typename F>
void expect_input_error_or_success(F&& f) {
  try {
    f();
  } catch (const InputError&) {
    // The loader refused the file with a message naming it: the intended behaviour.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: non-InputError exception escaped the loader: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: an exception of unknown type escaped the loader\n");
    std::abort();
  }
}

// A folder from mkdtemp under $TMPDIR (or /tmp), made once per process and removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tilescale_fuzz_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror(("fuzz: mkdtemp " + tmpl).c_str());
      std::abort();
    }
    return tmpl;
  }();
  static const bool cleanup_registered = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return true;
  }();
  (void)cleanup_registered;
  return dir;
}

// Replaces the file at path with bytes; aborts on failure (a harness problem, not a finding).
inline void put_file(const std::string& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

}  // namespace tilescale::fuzz
