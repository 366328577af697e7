// Error types shared by every stage. Errors are thrown where they are found and caught once in
// main.
#pragma once

#include <stdexcept>
#include <string>

namespace tilescale {

// A problem the user can fix: a missing or malformed file, a bad option, an impossible shape.
// main() prints what() and exits with kInputErrorExit; what() always names the file or option.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kInputErrorExit = 2;     // exit code for InputError
inline constexpr int kInternalErrorExit = 1;  // exit code for any other exception

// Throws InputError("<source>: <problem>"); source is a file path or an option name.
[[noreturn]] void fail_input(const std::string& source, const std::string& problem);

}  // namespace tilescale
