// Dot-product tiles: C[i][j] = sum_f a_i[f] * b_j[f] over rows that are contiguous in memory, so
// nothing is transposed or packed: backward-weights at stride 1 (rows of dy and shifted windows of
// the padded input) and the forward direct_dots (weight rows and input rows of 1x1 images). One set
// per instruction set (dot_kernels__<isa>.cpp).
#pragma once

#include <cstdint>

#include "core/cpu.hpp"

namespace fastconv::detail {

// c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + sum_{f < len} a[i][f] * b[j][f] for i < MA, j < NB,
// the sum first, then the add. len: a multiple of kDotStep; every row readable for len floats.
// The sum runs in one fixed order (lanes, then a fixed reduction), whatever the caller's blocking.
using DotTileFn = void (*)(int64_t len, const float* const* a, const float* const* b, float* c, int64_t ldc,
                           bool accumulate);
constexpr int64_t kDotStep = 32;  // floats: two AVX-512 vectors

// Depthwise taps: out[j] = sum_{i < rows} sum_{q < width} dy[i*ldy + q] * x[i*ldx + shift[j] + q] for
// j < NS, vectorised along q (one row of dy against NS shifted rows of x, the sums in registers over
// the rows). Lanes past `width` count as zero (masked), but every row must be readable up to
// round_up(width, kDepthwiseAlign) floats. Order: per vector of q, rows in order in two interleaved
// sets (even, odd rows), lanes reduced by a fixed tree, the vectors of q added in order.
using DepthwiseTapsFn = void (*)(int64_t rows, int64_t width, const float* dy, int64_t ldy, const float* x,
                                 int64_t ldx, const int64_t* shift, float* out);
constexpr int kMaxDepthwiseTaps = 4;     // NS per call: taps[NS - 1], NS in [1, 4]
constexpr int64_t kDepthwiseAlign = 16;  // floats: the widest vector

// All nine taps of a 3x3 depthwise filter over one channel of one image, in one pass over dy:
// out[r*3 + s] = sum_i sum_{q < width} dy[i*ldy + q] * x[i*ldx + tap_row[r] + shift[s] + q], where
// output row i counts for tap row r when row_begin[r] <= i < row_end[r], and lane q for tap column
// s when col_begin[s] <= q < col_end[s]; out[9] = the sum of dy (its bias gradient), on the way.
// Only those elements (and dy's first `width` of each row) are read, so x and dy are read in place
// up to the tensors' edges. Ten accumulators per vector of q (one reduction per image, not per
// kernel row); order: vectors of q in order, within one the rows in order, lanes reduced by a
// fixed tree.
struct Depthwise3x3 {
  int64_t rows, width;
  const float* dy;
  int64_t ldy;
  const float* x;  // the x row of output row 0 before tap_row (not read itself)
  int64_t ldx;
  int64_t tap_row[3], row_begin[3], row_end[3];
  int64_t shift[3], col_begin[3], col_end[3];
};
using Depthwise3x3Fn = void (*)(const Depthwise3x3&, float* out /* [10] */);

// The outer-product form, output channels along the vector: for taps t < NT and vectors v < KV,
//   acc[t][v*L + l] (+)= sum over i < rows, j < cols of dyt[i*dyt_row + j*ldt + v*L + l] * x[t][i*x_row + j]
// dyt: a block of pixels (rows x cols) with KV*L output channels each (dy transposed); x[t]: tap
// t's input value at pixel (0, 0), each pixel one float further along a row (the caller splits
// strided rows into column phases). The sum over pixels in order: rows, then columns. Taps may
// repeat (a tile's last, to fill it): their accumulators then get the same values twice.
struct OuterTile {
  int64_t rows, cols;
  const float* dyt;
  int64_t ldt, dyt_row;
  const float* const* x;  // NT pointers
  int64_t x_row;
  float* const* acc;      // NT pointers to KV*L floats
  bool accumulate;        // add to acc (else overwrite)
};
using OuterTileFn = void (*)(const OuterTile&);
struct OuterVariant {
  OuterTileFn fn;
  int kv, nt;  // vectors of output channels, taps: the accumulators in registers
};
constexpr int kOuterVariants = 3;  // widest KV first; the last has KV = 1 (any count of vectors)

// Backward-data of a depthwise convolution at stride 2 (one output channel per input channel),
// one channel: dx[h][2m + b] = bias + sum over taps (r, s) with h + pt - r = 2p and b + pl - s = 2d,
// 0 <= p < P, 0 <= m + d < Q of w[r][s] * dy[p][m + d]. Both column phases b of a row as vectors
// along m, interleaved into the row as they are stored; dy read in place (masked at its edges).
// Each dx element is one sum over the taps in order (r, then s).
struct DepthwiseS2Data {
  const float* dy;  // [P][Q]
  int64_t P, Q;
  const float* w;   // [R][S]
  int64_t R, S, pad_t, pad_l;
  float bias;
  float* dx;        // [H][W]
  int64_t H, W;
};
using DepthwiseS2DataFn = void (*)(const DepthwiseS2Data&);

struct DotKernels {
  DotTileFn tile;     // MA x NB: as many accumulators as the registers hold
  int ma, nb;
  DotTileFn tile1x4;  // MA = 1, NB = 4 (depthwise, one output channel per group)
  DotTileFn tile_x1;  // MA x 1: one row of b (direct_dots on one image)
  DepthwiseTapsFn taps[kMaxDepthwiseTaps];
  Depthwise3x3Fn taps3x3;
  OuterVariant outer[kOuterVariants];
  DepthwiseS2DataFn depthwise_s2_data;
  int lanes;          // floats per vector
};
const DotKernels& dot_kernels(Isa isa);
void fill_dot_kernels_sse2(DotKernels&);
void fill_dot_kernels_avx2(DotKernels&);
void fill_dot_kernels_avx512(DotKernels&);

}  // namespace fastconv::detail
