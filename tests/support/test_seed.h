// The seed of a randomized test: $TILESCALE_SEED, or a fresh one, printed once so a failure can be
// rerun with it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

namespace tilescale::test {

// $TILESCALE_SEED or a fresh seed, printed once.
inline uint64_t test_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("TILESCALE_SEED");
    const uint64_t s = env != nullptr ? std::strtoull(env, nullptr, 0) : std::random_device{}();
    std::cout << "TILESCALE_SEED=" << s << " (set it to rerun with this seed)\n";
    return s;
  }();
  return seed;
}
inline std::string seed_note() { return "TILESCALE_SEED=" + std::to_string(test_seed()); }

}  // namespace tilescale::test
