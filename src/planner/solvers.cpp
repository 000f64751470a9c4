#include "planner/solvers.hpp"

#include "direct/direct_plain.hpp"

namespace fastconv::detail {

const std::vector<Solver>& all_solvers() {
  static const std::vector<Solver> solvers = {
      {Algorithm::Direct, "direct_plain", propose_direct_plain},
  };
  return solvers;
}

}  // namespace fastconv::detail
