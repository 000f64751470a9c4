// The one ordered list of algorithms (most specialised first). Adding an algorithm is adding a
// folder and one line in solvers.cpp.
#pragma once

#include <vector>

#include "core/algorithm.hpp"

namespace fastconv::detail {

const std::vector<Solver>& all_solvers();

}  // namespace fastconv::detail
