#include "planner/solvers.hpp"

#include "direct/direct_conv.hpp"
#include "fft/fft_conv.hpp"
#include "im2col/im2col_conv.hpp"
#include "winograd/winograd_conv.hpp"

namespace fastconv::detail {

const std::vector<Solver>& all_solvers() {
  static const std::vector<Solver> solvers = {
      {Algorithm::Winograd, "winograd", propose_winograd},
      {Algorithm::FFT, "fft", propose_fft},
      {Algorithm::Im2col, "im2col", propose_im2col},
      {Algorithm::Direct, "direct", propose_direct},
  };
  return solvers;
}

}  // namespace fastconv::detail
