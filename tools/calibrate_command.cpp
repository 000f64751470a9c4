// fastconv calibrate: fits the machine model's rates to this machine and keeps them in the wisdom file.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include "args.hpp"
#include "commands.hpp"
#include "fastconv/fastconv.hpp"
#include "format.hpp"

namespace fastconv::tools {
namespace {

const char* kHelp =
    "usage: fastconv calibrate [--seconds N] [--threads N] [--wisdom FILE] [--show]\n"
    "\n"
    "Times every implementation that applies on a fixed set of layers for about N seconds\n"
    "(default 30, at least one pass over them), fits the machine model's rate for each kind of work\n"
    "(GEMM, packing, direct, depthwise, FFT, ...) and measures the memory bandwidth, with N threads\n"
    "(default: all). The fitted rates are used when they rank the timed layers at least as well as\n"
    "the defaults. The model is saved with the wisdom to FILE (default: $FASTCONV_WISDOM), keeping\n"
    "the file's other wisdom; a file from another CPU or version is replaced. Plans made with that\n"
    "wisdom loaded price their candidates with it ('fastconv plan' shows the model in use).\n"
    "--show prints the model in use and exits.\n";

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

int calibrate_command(const std::vector<std::string>& argv) {
  Args args(argv, {"seconds", "threads", "wisdom"}, {"help", "show"});
  if (args.flag("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (args.flag("show")) {
    std::printf("machine model: %s\n", describe_machine_model().c_str());
    return 0;
  }
  const double seconds = double(parse_count(args.value("seconds").value_or("30"), "seconds", 1, 86400));
  const int threads = int(parse_count(args.value("threads").value_or("0"), "threads", 0, 4096));
  std::string path;
  if (auto w = args.value("wisdom")) {
    path = *w;
  } else if (const char* env = std::getenv("FASTCONV_WISDOM"); env && *env) {
    path = env;
  }
  // The file's own wisdom is kept: it is loaded first (unless it is from another CPU or version).
  if (!path.empty() && exists(path)) {
    try {
      load_wisdom(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "fastconv calibrate: %s: it will be replaced\n", e.what());
    }
  }
  std::fputs(calibrate(seconds, threads).c_str(), stdout);
  std::printf("machine model: %s\n", describe_machine_model().c_str());
  if (path.empty()) {
    std::printf("not saved: give --wisdom FILE or set FASTCONV_WISDOM to keep it\n");
  } else {
    save_wisdom(path);
    std::printf("saved to %s\n", path.c_str());
  }
  return 0;
}

}  // namespace fastconv::tools
