// The contract between the direct convolution drivers (direct_conv.cpp, portable) and the kernels
// written once over xsimd (direct_kernels_impl.hpp) and compiled per instruction set
// (direct_kernels__<isa>.cpp). Kernels read a packed row buffer: input rows with their zero padding
// written out and each row split by column phase (column mod stride_w), so that every tap of every
// stride and dilation is a plain unaligned vector load.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"

namespace fastconv::detail {

// Packs `rows` consecutive input rows, starting at input row iy0 (rows outside [0, H) become zeros),
// into dst with row_stride floats per row. A row holds `phases` segments of wph floats (a multiple
// of the vector width); segment k holds the columns ix = ix0 + phase[k] + j*sw for j in [0, wph)
// (zeros outside [0, W)).
struct RowPack {
  const float* x;  // one channel plane, H x W
  int64_t H, W;
  int64_t iy0, rows;
  int64_t ix0, sw;
  const int32_t* phase;  // `phases` column phases, each in [0, sw)
  int64_t phases, wph, row_stride;
  float* dst;  // aligned to the vector width
};
using RowPackFn = void (*)(const RowPack&);

// The general register tile: MK output channels x NR output rows x NV vectors along the width.
// acc[i][r][v] = (bias ? bias[i] : out) + sum over taps t of w[t*MK + i] * buf[taps[t] + r*row_off + v*L]
// stored to out + i*out_k_stride + r*ldo + v*L, channels i < mk, the last vector of each row only
// `lanes_last` wide. Taps are summed in the order given: one chain per output, never split.
struct DirectTile {
  const float* buf;
  const int32_t* taps;
  int64_t ntaps;
  const float* w;        // ntaps x MK, channels past mk are zero
  int64_t row_off;       // buffer floats between the tile's output rows
  float* out;            // the tile's first channel, row and column
  int64_t out_k_stride;  // P*Q
  int64_t ldo;           // Q
  int mk;                // valid channels, 1..MK
  int lanes_last;        // valid lanes of the last vector, 1..L
  const float* bias;     // mk values; null: accumulate onto out
};
using DirectTileFn = void (*)(const DirectTile&);

// The depthwise stencil: one output channel from one input channel, MP output rows x one vector
// along the width at a time, R kernel rows (compile time, vertical stride SH, no vertical dilation),
// S kernel columns at buffer offsets soff[s]. The R weights of one kernel column stay in registers
// and every loaded input vector feeds each output row it reaches.
struct DwStrip {
  const float* buf;
  int64_t row_stride;
  const int32_t* soff;  // S offsets into a buffer row
  int64_t S;
  const float* w;  // S x R: w[s*R + r]
  float bias;
  float* out;       // first output row of the strip, first column of the chunk
  int64_t ldo;      // Q
  int64_t width;    // output columns of the chunk
};
using DwStripFn = void (*)(const DwStrip&);

constexpr int kMkVariants = 4;  // MK = 1, 2, 4, 8 (as far as an instruction set goes)
constexpr int kMaxNr = 6;
constexpr int kMaxNv = 6;
constexpr int kDwKernels = 3;   // R = 3, 5, 7
constexpr int kMaxDwRows = 16;  // MP

struct DirectKernels {
  Isa isa;
  int lanes;                 // floats per vector
  int mk_variants;           // how many of MK = 1, 2, 4, 8 exist
  int accumulators;          // register budget of a tile: MK*NR*NV <= accumulators
  DirectTileFn tile[kMkVariants][kMaxNr][kMaxNv];  // [log2 MK][NR-1][NV-1], null where over budget
  int dw_rows[kDwKernels];   // MP limit per R
  DwStripFn dw[kDwKernels][2][kMaxDwRows];  // [R index][SH-1][MP-1]
  RowPackFn pack;
};

// The kernels of an instruction set (a table built once).
const DirectKernels& direct_kernels(Isa isa);

// Per-ISA tables (direct_kernels__<isa>.cpp).
void fill_direct_kernels_sse2(DirectKernels&);
void fill_direct_kernels_avx2(DirectKernels&);
void fill_direct_kernels_avx512(DirectKernels&);

}  // namespace fastconv::detail
