// The tile transforms of the one-dimensional Winograd F(m, R) down the columns of an image (R x 1
// kernels; 1 x R ones run on the transposed image), on the eight points 0, +-1, +-2, +-1/2 and
// infinity: F(6,3), F(4,5) and F(2,7). One kernel set per instruction set
// (winograd_1d_kernels__<isa>.cpp), vectorised across tiles: tile (i, q) covers output rows
// [i*m, i*m + m) of column q, and the tiles of one row of them, q = 0 .. Q-1, sit side by side, so
// their inputs and outputs are plain loads and stores along the image rows.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"
#include "core/epilogue.hpp"

namespace fastconv::detail {

constexpr int kWinograd1dPoints = 8;  // alpha = m + R - 1 for every kernel height

// The finite points; the eighth is infinity.
constexpr double kWinograd1dPoint[7] = {0, 1, -1, 2, -2, 0.5, -0.5};

// B^T (the same for every R: it depends on the points only). Its rows are scaled to integers; G's
// rows carry the inverse scales (kWinograd1dRowScale).
constexpr float kWinograd1dBT[8][8] = {
    {4, 0, -21, 0, 21, 0, -4, 0},         {0, -4, -4, 17, 17, -4, -4, 0},       {0, 4, -4, -17, 17, 4, -4, 0},
    {0, 2, 1, -10, -5, 8, 4, 0},          {0, -2, 1, 10, -5, -8, 4, 0},         {0, 64, 128, -80, -160, 16, 32, 0},
    {0, -64, 128, 80, -160, -16, 32, 0}, {0, -4, 0, 21, 0, -21, 0, 4}};
// G[j][k] = point_j^k / scale_j for the finite points; the infinity row is 1/4 at k = R - 1.
constexpr double kWinograd1dRowScale[7] = {4, 18, 18, 360, 360, 45, 45};

// m for a kernel height: F(6,3), F(4,5), F(2,7).
constexpr int winograd_1d_outputs(int R) { return kWinograd1dPoints + 1 - R; }

// V = B^T d for `channels` channels of one image and the tiles [t0, t0 + tiles) (t = i*Q + q),
// written as the GEMM's B micro-panels: value xi of tile column j (tile t0 + j) and channel c at
//   v[xi * xi_stride + (j / nr) * channels * nr + c * nr + j % nr];
// d_s = x[c][i*m + s - pad_top][q], zero outside [0, H). Columns [tiles, columns) are zeros.
struct Winograd1dInputArgs {
  const float* x;  // [channels][H][Q]
  int64_t channels, H, Q, pad_top;
  int64_t m;                   // outputs per tile
  int64_t t0, tiles, columns;  // columns: a multiple of the vector width
  int64_t nr;                  // the GEMM's NR: a multiple of the vector width
  float* v;
  int64_t xi_stride;
};

// y[k][i*m + r][q] = bias[k] + (A^T M)[r] for r < m and rows inside P, M of channel k and tile
// column j at m[xi * xi_stride + k * ldm + j], then the post-ops (residual laid out as y; it may be
// y itself: each output's residual is read before the output is written).
struct Winograd1dOutputArgs {
  const float* m;
  int64_t ldm, xi_stride;
  int64_t channels;
  const float* bias;  // of the first channel
  float* y;           // the first channel's output in one image: [channels][P][Q]
  int64_t P, Q;
  int64_t t0, tiles;
  const Epilogue* epilogue = nullptr;
  const float* residual = nullptr;
};

using Winograd1dInputFn = void (*)(const Winograd1dInputArgs&);
using Winograd1dOutputFn = void (*)(const Winograd1dOutputArgs&);

struct Winograd1dKernels {
  Winograd1dInputFn input;       // B^T does not depend on R
  Winograd1dOutputFn output[3];  // R = 3, 5, 7 (m = 6, 4, 2)
};

const Winograd1dKernels& winograd_1d_kernels(Isa isa);
void fill_winograd_1d_kernels_sse2(Winograd1dKernels&);
void fill_winograd_1d_kernels_avx2(Winograd1dKernels&);
void fill_winograd_1d_kernels_avx512(Winograd1dKernels&);

}  // namespace fastconv::detail
