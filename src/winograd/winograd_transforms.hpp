// The tile transforms of Winograd F(m x m, 3x3) (m = 2: 4x4 tiles, m = 4: 6x6 tiles): input
// transform into the GEMM's packed-B panels and output transform out of the GEMM's result, one
// kernel per instruction set (winograd_transforms__<isa>.cpp), vectorised across tiles.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"
#include "core/epilogue.hpp"

namespace fastconv::detail {

// V = B^T d B for every channel of one group and every tile of one tile group, written as the
// GEMM's B micro-panels: element xi of tile column j (tile t0 + j) and channel c at
//   v[xi * xi_stride + (j / nr) * channels * nr + c * nr + j % nr].
// Tiles are numbered row-major over the image (tiles_w per row); tile t covers input rows
// (t / tiles_w) * m - pad_top + [0, m + 2) and columns (t % tiles_w) * m - pad_left + [0, m + 2),
// zero outside the image. Columns [tiles, columns) are written as zeros.
// A tile group may span images (many small images): tile t lies in image t / tiles_per_image, whose
// planes start image_stride floats after the previous image's.
struct WinogradInputArgs {
  const float* x;  // the group's first channel of one image: [channels][H][W]
  int64_t channels, H, W;
  int64_t pad_top, pad_left;
  int64_t tiles_w;
  int64_t t0, tiles, columns;  // first tile, tiles in the group, columns (a multiple of nr)
  int64_t nr;                  // the GEMM's NR: a multiple of the vector width
  float* v;
  int64_t xi_stride;
  int64_t tiles_per_image = INT64_MAX, image_stride = 0;
};

// y = A^T M A + bias (then the post-ops) for `channels` output channels and the tiles [t0, t0 + tiles), where M of
// channel k, tile column j is m[xi * xi_stride + k * ldm + j]; only outputs inside [P x Q] are
// written. Lanes past `tiles` are read (M must be finite there) but never stored.
struct WinogradOutputArgs {
  const float* m;
  int64_t ldm, xi_stride;
  int64_t channels;
  const float* bias;  // bias of the first channel (zeros when the layer has none)
  float* y;           // the first channel's output in one image: [channels][P][Q]
  int64_t P, Q;
  int64_t tiles_w;
  int64_t t0, tiles;
  // Post-ops (null: none): y = act(A^T M A + bias + scale * r), r laid out as y (null: none; it
  // may be y itself: each output's residual is read before the output is written).
  const Epilogue* epilogue = nullptr;
  const float* residual = nullptr;  // the first channel's residual
  // Tiles spanning images, as in WinogradInputArgs (y and the residual: image_stride apart).
  int64_t tiles_per_image = INT64_MAX, image_stride = 0;
};

using WinogradInputFn = void (*)(const WinogradInputArgs&);
using WinogradOutputFn = void (*)(const WinogradOutputArgs&);

// G of F(2,3) and F(4,3) on the points 0, +-1, +-2 (and infinity): U = G g G^T. (Internal linkage,
// not inline: a per-ISA object must define no shared symbol, test isa_objects_share_no_code.)
constexpr double kWinogradG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
constexpr double kWinogradG4[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
// The filters packed together: U = G g G^T in double for the 3x3 filters of up to
// kWinogradFilterLanes output channels (filter r at w + r * filter_stride, rows of them), value xi of
// filter r into u[xi * kWinogradFilterLanes + r]. The same operations in the same order as one
// filter at a time (winograd_filter_transform; no contraction: ISO C++ mode), so the same bits.
constexpr int kWinogradFilterLanes = 16;
using WinogradFilterFn = void (*)(const float* w, int64_t filter_stride, int rows, double* u);

struct WinogradTransforms {
  const char* isa;
  int lanes;  // vector width in floats: nr must be a multiple
  WinogradInputFn input_f2x2, input_f4x4;
  WinogradOutputFn output_f2x2, output_f4x4;
  WinogradFilterFn filter_f2x2, filter_f4x4;
};

// The transforms for an instruction set (dispatch once per plan).
const WinogradTransforms& winograd_transforms(Isa isa);

// Per-ISA definitions (winograd_transforms__<isa>.cpp).
WinogradTransforms winograd_transforms_sse2();
WinogradTransforms winograd_transforms_avx2();
WinogradTransforms winograd_transforms_avx512();

}  // namespace fastconv::detail
