// FASTCONV_VERBOSE: 1 prints one line per plan and per execute, 2 adds every declined candidate.
#pragma once

#include <string>

namespace fastconv::detail {

int verbose_level();                       // read once from the environment
void verbose_print(const std::string& line);  // one line to stderr, prefixed "fastconv: ", atomic

}  // namespace fastconv::detail
