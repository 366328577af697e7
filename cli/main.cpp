// tilescale: quantize -> map -> simulate -> report. Dispatches to one subcommand per file.
#include <boost/program_options/errors.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "tilescale/core/error.h"

namespace {

const char kUsage[] =
    "usage: tilescale <command> [options]\n"
    "commands:\n"
    "  eval      top-1 accuracy of a model or a bundle on a data set\n"
    "  quantize  PTQ-SL quantization of an ONNX model into a bundle\n"
    "  sweep     top-1 versus scale cost over weight bits x granularity x reordering\n"
    "  map       tile a bundle onto an accelerator: folds, cycles, scale registers, area\n"
    "  simulate  run images on the cycle-accurate SystemC accelerator, checked bit for bit\n"
    "  verify    run images through the Verilated RTL of the accelerator, layers chained, checked\n"
    "            bit for bit against the golden executor and cycle for cycle against the mapper\n"
    "run 'tilescale <command> --help' for the options of a command\n";

}  // namespace

int main(int argc, char** argv) {
  using Command = std::function<int(const std::vector<std::string>&)>;
  const std::map<std::string, Command> commands = {
      {"eval", tilescale::cli::run_eval},         {"quantize", tilescale::cli::run_quantize},
      {"sweep", tilescale::cli::run_sweep},       {"map", tilescale::cli::run_map},
      {"simulate", tilescale::cli::run_simulate}, {"verify", tilescale::cli::run_verify}};
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? tilescale::kInputErrorExit : 0;
  }
  auto it = commands.find(argv[1]);
  if (it == commands.end()) {
    std::fprintf(stderr, "tilescale: error: unknown command '%s'\n%s", argv[1], kUsage);
    return tilescale::kInputErrorExit;
  }
  try {
    return it->second(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const tilescale::InputError& e) {
    std::fprintf(stderr, "tilescale %s: error: %s\n", argv[1], e.what());
    return tilescale::kInputErrorExit;
  } catch (const boost::program_options::error& e) {
    std::fprintf(stderr, "tilescale %s: error: %s (see 'tilescale %s --help')\n", argv[1], e.what(),
                 argv[1]);
    return tilescale::kInputErrorExit;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tilescale %s: error: out of memory\n", argv[1]);
    return tilescale::kInternalErrorExit;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tilescale %s: internal error: %s\n", argv[1], e.what());
    return tilescale::kInternalErrorExit;
  }
}
