// Option parsing shared by every subcommand.
#pragma once

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "tilescale/core/enum_names.h"
#include "tilescale/core/error.h"

namespace tilescale::cli {

// Parses args into desc's variables. Returns false (after printing desc) when --help was given, so
// the caller returns 0; unknown or malformed options throw boost::program_options::error (exit 2).
inline bool parse_options(const boost::program_options::options_description& desc,
                          const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  return true;
}

// The value of an option naming one value of an enum's name table; an unknown name is an
// InputError naming the option: "--search: unknown search method 'best' (allowed: ...)".
template <typename E, std::size_t N>
E parse_flag(const std::string& flag, const std::string& text, const EnumNames<E, N>& names) {
  return with_source(flag, [&] { return names.parse(text); });
}

}  // namespace tilescale::cli
