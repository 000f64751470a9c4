// fastconv: run a convolution on .npy files, benchmark the algorithms, show the planner's ranking.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "fastconv/fastconv.hpp"
#include "npy.hpp"

namespace {

const char* kUsage =
    "usage: fastconv <command> [options]\n"
    "\n"
    "commands:\n"
    "  run     convolve an input .npy with a weight .npy, write the output .npy\n"
    "  bench   time every algorithm and the planner's pick over a suite of layer shapes\n"
    "  plan    rank the candidate algorithms for one layer, like cuDNN's find\n"
    "  calibrate  fit the planner's machine model to this machine, kept with the wisdom\n"
    "\n"
    "'fastconv <command> --help' describes each. fastconv %s, kernels: %s.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::printf(kUsage, fastconv::kVersion, fastconv::instruction_set().c_str());
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::printf("fastconv %s\n", fastconv::kVersion);
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "run") return fastconv::tools::run_command(args);
    if (command == "bench") return fastconv::tools::bench_command(args);
    if (command == "plan") return fastconv::tools::plan_command(args);
    if (command == "calibrate") return fastconv::tools::calibrate_command(args);
    std::fprintf(stderr, "fastconv: unknown command '%s' (try fastconv --help)\n", command.c_str());
    return 2;
  } catch (const fastconv::tools::UsageError& e) {
    std::fprintf(stderr, "fastconv %s: %s (try fastconv %s --help)\n", command.c_str(), e.what(), command.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fastconv %s: error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
