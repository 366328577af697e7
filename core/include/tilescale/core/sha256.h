// SHA-256 (FIPS 180-4), written out so that bundles and their checks need no crypto library.
#pragma once

#include <string>

namespace tilescale {

// SHA-256 of bytes as 64 lowercase hex digits.
std::string sha256_hex(const std::string& bytes);

}  // namespace tilescale
