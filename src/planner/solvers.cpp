#include "planner/solvers.hpp"

#include "backward/backward_data.hpp"
#include "backward/backward_weights.hpp"
#include "direct/direct_conv.hpp"
#include "direct/direct_dots.hpp"
#include "fft/fft_conv.hpp"
#include "im2col/im2col_conv.hpp"
#include "im2col/im2col_pixels.hpp"
#include "im2col/im2col_regions.hpp"
#include "winograd/winograd_1d.hpp"
#include "winograd/winograd_conv.hpp"

namespace fastconv::detail {

const std::vector<Solver>& all_solvers() {
  static const std::vector<Solver> solvers = {
      // First, for equal estimates keep this order: a fully connected layer is a stream of its weights
      // for every candidate, and direct_dots is the one that runs at the stream's pace (VGG-16's
      // 25088->4096 at batch 1: 1.9x the 1x1 GEMM, measured).
      {Algorithm::Direct, "direct_dots", propose_direct_dots},
      {Algorithm::Winograd, "winograd", propose_winograd},
      {Algorithm::Winograd, "winograd_1d", propose_winograd_1d},
      {Algorithm::FFT, "fft", propose_fft},
      {Algorithm::Im2col, "im2col", propose_im2col},
      {Algorithm::Im2col, "im2col_regions", propose_im2col_regions},
      {Algorithm::Im2col, "im2col_pixels", propose_im2col_pixels},
      {Algorithm::Im2col, "im2col_implicit", propose_im2col_implicit},
      {Algorithm::Direct, "direct", propose_direct},
      // Backward-data: the forward algorithms on the stride phases of dx.
      {Algorithm::Winograd, "bwd_data_winograd", propose_backward_data<Algorithm::Winograd>, Direction::BackwardData},
      {Algorithm::FFT, "bwd_data_fft", propose_backward_data<Algorithm::FFT>, Direction::BackwardData},
      {Algorithm::Im2col, "bwd_data_im2col", propose_backward_data<Algorithm::Im2col>, Direction::BackwardData},
      {Algorithm::Direct, "bwd_data_direct", propose_backward_data<Algorithm::Direct>, Direction::BackwardData},
      {Algorithm::Im2col, "bwd_data_patches", propose_backward_data_patches, Direction::BackwardData},
      {Algorithm::Direct, "bwd_data_depthwise_s2", propose_backward_data_depthwise, Direction::BackwardData},
      // Backward-weights.
      {Algorithm::Direct, "bwd_weights_depthwise", propose_backward_weights_depthwise, Direction::BackwardWeights},
      {Algorithm::Im2col, "bwd_weights_dot", propose_backward_weights_dot, Direction::BackwardWeights},
      {Algorithm::Im2col, "bwd_weights_gemm", propose_backward_weights_gemm, Direction::BackwardWeights},
      {Algorithm::Im2col, "bwd_weights_sliced", propose_backward_weights_sliced_gemm, Direction::BackwardWeights},
      {Algorithm::Direct, "bwd_weights_outer", propose_backward_weights_outer, Direction::BackwardWeights},
      {Algorithm::Direct, "bwd_weights_direct", propose_backward_weights_direct, Direction::BackwardWeights},
  };
  return solvers;
}

}  // namespace fastconv::detail
