// The contract between the direct convolution drivers (direct_conv.cpp, portable) and the kernels
// written once over xsimd (direct_kernels_impl.hpp) and compiled per instruction set
// (direct_kernels__<isa>.cpp). Kernels read a packed row buffer: input rows with their zero padding
// written out and each row split by column phase (column mod stride_w), so that every tap of every
// stride and dilation is a plain unaligned vector load.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"
#include "core/epilogue.hpp"

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

// The general register tile: MK output channels x NV vectors of outputs, any NV vectors of a block
// of output rows (a tile may span rows). Vector v reads the buffer at in[v] + taps[t] and writes
// out[v] + i*out_k_stride for channel i:
//   acc[i][v] = (bias ? bias[i] : out) + sum over taps t of w[t*MK + i] * in[v][taps[t] .. + L)
// for channels i < mk; vectors whose bit is set in partial_mask are only lanes_partial wide. Taps
// are summed in the order given: one chain of FMAs per output, never split. The tile runs for nk
// consecutive k-blocks: w, out and bias advance by w_step, MK*out_k_stride and MK.
struct DirectTile {
  const float* const* in;  // NV pointers into the packed buffer
  const int32_t* taps;
  int64_t ntaps;
  const float* w;          // ntaps x MK, channels past mk are zero
  int64_t w_step;
  int64_t nk;
  float* const* out;       // NV pointers to the first channel
  int64_t out_k_stride;    // P*Q
  int mk;                  // valid channels, 1..MK
  unsigned partial_mask;
  int lanes_partial;
  const float* bias;       // mk values; null: accumulate onto out
  // Post-ops in registers before the store (null: none): out = act(acc + scale * r), r of output
  // out[v] + e at residual + (out[v] + e - out_base) (residual null: none).
  const EpilogueParams* post = nullptr;
  const float* residual = nullptr;
  const float* out_base = nullptr;
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
  // Post-ops in registers before the store, as DirectTile's (null: none). The residual must not be
  // the output: overlapping vectors are stored twice.
  const EpilogueParams* post = nullptr;
  const float* residual = nullptr;
  const float* out_base = nullptr;
  // dil_w: the column taps' dilation (the packed strips read it only to pick their tap order).
  // In place (the dw_in_place kernels, horizontal stride SH as well): buf, row_stride and soff unused;
  // the channel plane is read where it lies, kernel row r of output row m at input row iy0 + m*SH + r,
  // tap s of output column j at input column ix0 + j*SH + s*dil_w; rows and columns outside the
  // plane read as zeros (zero_row: W zeros, for the rows).
  const float* x = nullptr;  // the channel plane, H x W
  const float* zero_row = nullptr;
  int64_t H = 0, W = 0, iy0 = 0, ix0 = 0, dil_w = 1;
};
using DwStripFn = void (*)(const DwStrip&);

// The depthwise stencil over channel vectors (direct_depthwise_channels): L channels side by side,
// each pixel's channels one vector, in a buffer with the zero padding written out:
//   o[(p*Q + q)*L + c] = bias[c] + sum over r, s of w[(r*S + s)*L + c] * t[((p*sh + r*dh)*tw + q*sw + s*dw)*L + c]
// summed in (r, s) order, one chain of FMAs per output. No lane is idle whatever the image width.
struct DwChannels {
  const float* t;
  int64_t tw;          // buffer pixels per row
  const float* w;      // R*S vectors
  const float* bias;   // one vector
  int64_t R, S, sh, sw, dh, dw;
  int64_t P, Q;
  float* o;            // P*Q vectors
};
using DwChannelsFn = void (*)(const DwChannels&);

constexpr int kMkVariants = 4;  // MK = 1, 2, 4, 8 (as far as an instruction set goes)
constexpr int kMaxNv = 8;       // a pointer register per vector
constexpr int kDwKernels = 3;   // R = 3, 5, 7
constexpr int kMaxDwRows = 16;  // MP

struct DirectKernels {
  Isa isa;
  int lanes;                 // floats per vector
  int mk_variants;           // how many of MK = 1, 2, 4, 8 exist
  int accumulators;          // register budget of a tile: MK*NV <= accumulators
  DirectTileFn tile[kMkVariants][kMaxNv];  // [log2 MK][NV-1], null where over budget
  int dw_rows[kDwKernels];   // MP limit per R
  DwStripFn dw[kDwKernels][2][kMaxDwRows];  // [R index][SH-1][MP-1]
  DwStripFn dw_in_place[kDwKernels][2][kMaxDwRows];  // the same, reading the plane in place (null: none)
  DwChannelsFn dw_channels;
  RowPackFn pack;
};

// The kernels of an instruction set (a table built once).
const DirectKernels& direct_kernels(Isa isa);

// Per-ISA tables (direct_kernels__<isa>.cpp).
void fill_direct_kernels_sse2(DirectKernels&);
void fill_direct_kernels_avx2(DirectKernels&);
void fill_direct_kernels_avx512(DirectKernels&);

}  // namespace fastconv::detail
