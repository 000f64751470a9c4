#include "core/verbose.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace fastconv::detail {

int verbose_level() {
  static const int level = [] {
    const char* env = std::getenv("FASTCONV_VERBOSE");
    return env ? std::atoi(env) : 0;
  }();
  return level;
}

void verbose_print(const std::string& line) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::fprintf(stderr, "fastconv: %s\n", line.c_str());
}

}  // namespace fastconv::detail
