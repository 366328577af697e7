// Error types shared by every stage. Errors are thrown where they are found and caught once in
// main.
#pragma once

#include <stdexcept>
#include <string>

namespace tilescale {

// A problem the user can fix: a missing or malformed file, a bad option, an impossible shape.
// main() prints what() and exits with kInputErrorExit; what() names the file or option, except
// from a parser of a single value, whose caller adds it (with_source below).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kInputErrorExit = 2;     // exit code for InputError
inline constexpr int kInternalErrorExit = 1;  // exit code for any other exception

// Throws InputError("<source>: <problem>"); source is a file path or an option name.
[[noreturn]] void fail_input(const std::string& source, const std::string& problem);

// Returns parse(); an InputError it throws is thrown again as "<source>: <its message>". Value
// parsers (name tables, Granularity::parse) describe the value and what is allowed but not where
// the value came from; the caller that knows (the CLI its flag, a reader its field) adds it.
// Error narrows which errors get the source (a subclass of InputError, e.g. map::AlignError).
template <typename Error = InputError, typename Parse>
auto with_source(const std::string& source, const Parse& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const Error& e) {
    fail_input(source, e.what());
  }
}

}  // namespace tilescale
