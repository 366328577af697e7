// One name table per option enum, declared next to the enum: printing, parsing, bundle manifests,
// sweep rows and messages all read that one table, so a name cannot differ between them.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "tilescale/core/error.h"

namespace tilescale {

template <typename E>
struct EnumName {
  E value;           // the enumerator
  const char* name;  // its spelling in options, files and reports
};

template <typename E, std::size_t N>
struct EnumNames {
  const char* noun;                    // what a value is, for messages ("search method")
  std::array<EnumName<E>, N> entries;  // every enumerator once, in the order messages list them

  // The spelling of value ("?" for a value outside the enum, which only a cast can make).
  const char* name(E value) const {
    for (const EnumName<E>& e : entries)
      if (e.value == value) return e.name;
    return "?";
  }

  // The value spelled text. Throws InputError "unknown <noun> '<text>' (allowed: a, b, c)"; it
  // names no option or file, which the caller adds (the CLI its flag, a reader the field).
  E parse(const std::string& text) const {
    for (const EnumName<E>& e : entries)
      if (text == e.name) return e.value;
    throw InputError("unknown " + std::string(noun) + " '" + text + "' (allowed: " + list(", ") +
                     ")");
  }

  // The spellings joined by sep: "a, b, c" for messages, "a | b | c" for help texts.
  std::string list(const char* sep) const {
    std::string out;
    for (const EnumName<E>& e : entries) out += (out.empty() ? "" : sep) + std::string(e.name);
    return out;
  }
};

// Deduces N from the entries: make_enum_names<E>("noun", {{E::A, "a"}, {E::B, "b"}}).
template <typename E, std::size_t N>
constexpr EnumNames<E, N> make_enum_names(const char* noun, const EnumName<E> (&entries)[N]) {
  EnumNames<E, N> names{noun, {}};
  for (std::size_t i = 0; i < N; ++i) names.entries[i] = entries[i];
  return names;
}

}  // namespace tilescale
