// Algorithm::Winograd for 3x3 kernels at stride 1 (any padding, groups, batch; a dilated kernel
// runs over each input phase, see dilated_phases.hpp, as "winograd_f4x4_3x3_dilated_..."):
// F(2x2,3x3) ("winograd_f2x2_3x3_<gemm tile>", 4x4 tiles, 2.25x fewer multiplies, error <= 1e-5,
// exact on small integers) and F(4x4,3x3) ("winograd_f4x4_3x3_<gemm tile>", 6x6 tiles, 4x fewer
// multiplies, error <= 1e-4). The planner picks between them; PlanOptions::implementation =
// "winograd_f2x2" forces the tighter one.
//
// Non-finite inputs: F(2x2,3x3) puts NaN/Inf exactly where direct convolution does (only outputs
// whose 3x3 receptive field holds one). F(4x4,3x3) may spread it across its tile: a NaN or Inf on
// an input row (column) at position 1 to 4 of a 6x6 tile reaches all 4 output rows (columns) of
// that tile, not only the 2 or 3 whose receptive field holds it; through the overlap of tiles it
// reaches at most the outputs of the tiles whose input holds it. Inf may turn into NaN (Inf - Inf).
// Finite inputs above about 1e36 may overflow in the transforms.
#pragma once

#include <string>

#include "core/algorithm.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {

void propose_winograd(const Geometry&, const PlanContext&, Proposals&);

// U = G g G^T of one 3x3 filter g (row-major) for F(m x m, 3x3), m = 2 or 4, in double precision:
// (m+2) x (m+2) values, row-major.
void winograd_filter_transform(int m, const float* g, double* u);

// How a Winograd layer's tiles and output channels are cut into tasks (the 2-D and the 1-D alike).
struct WinogradBlocking {
  int64_t tiles;        // T: tiles per group, a multiple of NR (the last group of an image may have fewer)
  int64_t tile_groups;  // per image
  int64_t split_rows;   // output channels per task: a multiple of MR, or all of Kg
  int64_t splits;       // tasks per (image, group, tile group); each transforms the input again
  int64_t chunk_rows;   // output channels per M block inside a task: a multiple of MR, at most MC
  int64_t kc;           // depth per GEMM block: min(KC, Cg)
};

// Beyond this many tiles per group the products gain nothing and the transforms lose locality.
constexpr int64_t kMaxWinogradTilesPerGroup = 128;

// The blocking of a Winograd layer of `tiles` tiles in each of `spaces` tile spaces (images, or one
// for a batch tiled as one space), `points` transformed values per tile (alpha^2 in 2-D, alpha in
// 1-D) and `input_flops` input-transform flops per tile and channel: tile groups whose V and M stay
// within the L2 share and, with `fixed_bytes` of the caller's own buffers, the workspace budget;
// output channels split when tasks would leave threads idle and the split's transforms cost less.
// False, with the reason declined as `name`, when it cannot fit.
bool winograd_blocking(const Geometry& g, const PlanContext& ctx, const SgemmKernel& kernel, int64_t tiles,
                       int64_t spaces, int points, double input_flops, double fixed_bytes, const std::string& name,
                       Proposals& out, WinogradBlocking& b);

// What the products of a Winograd layer compute per tile space and group (the cost model's count):
// GEMM columns for `tiles` tiles in groups of `per_group` (each group run as execute runs it, a last
// narrow panel half-width) and GEMM rows for Kg output channels in splits of `split_rows`, each in
// chunks of `chunk_rows` padded to MR. Shared by the 2-D and the 1-D Winograd.
struct WinogradGemmShape {
  double rows, columns;
};
WinogradGemmShape winograd_gemm_shape(int64_t tiles, int64_t per_group, int64_t Kg, int64_t split_rows,
                                      int64_t chunk_rows, const SgemmKernel& kernel);

// Floats between the transform elements of V or M holding `floats` each (whole cache lines, an odd
// number of them): shared by the 2-D and the 1-D Winograd.
int64_t winograd_xi_stride(int64_t floats);

}  // namespace fastconv::detail
