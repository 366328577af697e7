#include "tilescale/core/error.h"

namespace tilescale {

void fail_input(const std::string& source, const std::string& problem) {
  throw InputError(source + ": " + problem);
}

}  // namespace tilescale
