// Fuzz target: the command-line parsing of the fastconv tool (tools/args.hpp, tools/suite.cpp) and
// `fastconv plan` end to end (estimate mode; its table goes to /dev/null). Input: arguments
// separated by NUL bytes. `run` and `bench` are left out: they read and write files named by the
// arguments and time layers.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "fastconv/fastconv.hpp"
#include "suite.hpp"

using namespace fastconv;
using namespace fastconv::tools;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const int null = ::open("/dev/null", O_WRONLY);
  if (null >= 0) ::dup2(null, STDOUT_FILENO);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::vector<std::string> argv;
  std::string cur;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      argv.push_back(cur), cur.clear();
    } else {
      cur.push_back(char(data[i]));
    }
  }
  argv.push_back(cur);
  if (argv.size() > 16) return 0;
  // The parsers on their own.
  for (const std::string& a : argv) {
    try {
      (void)parse_list(a, "fuzz", 0);
    } catch (const UsageError&) {
    }
    try {
      (void)parse_shape_argument(a);
    } catch (const Error&) {
    }
    try {
      (void)parse_suite(a, "fuzz.csv");
    } catch (const Error&) {
    }
  }
  // `fastconv plan <args>`; Measure mode times layers: not here.
  for (const std::string& a : argv)
    if (a.find("meas") != std::string::npos) return 0;
  try {
    (void)plan_command(argv);
  } catch (const UsageError&) {
  } catch (const Error&) {
  }
  return 0;
}
