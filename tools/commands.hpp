// The subcommands of the fastconv tool. Each returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace fastconv::tools {

int run_command(const std::vector<std::string>& args);
int bench_command(const std::vector<std::string>& args);
int plan_command(const std::vector<std::string>& args);
int calibrate_command(const std::vector<std::string>& args);

}  // namespace fastconv::tools
