// The tilescale subcommands. Each parses its own options and calls the stage libraries.
#pragma once

#include <string>
#include <vector>

namespace tilescale::cli {

// args excludes the program and subcommand names. Returns the process exit code; throws InputError
// for bad options or input files.
int run_eval(const std::vector<std::string>& args);
int run_quantize(const std::vector<std::string>& args);
int run_sweep(const std::vector<std::string>& args);
int run_map(const std::vector<std::string>& args);
int run_simulate(const std::vector<std::string>& args);
int run_verify(const std::vector<std::string>& args);

}  // namespace tilescale::cli
