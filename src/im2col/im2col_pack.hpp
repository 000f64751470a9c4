// Implicit im2col: packs blocks of the lowered matrix straight from the NCHW input into the GEMM's
// B micro-panels, so the lowered matrix (C*R*S x P*Q, R*S times the input) never exists.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"
#include "core/geometry.hpp"

namespace fastconv::detail {

// The output pixels [n0, n0 + ncols) of one task, cut into runs that stay within one output row:
// what the packer walks for every row of the lowered matrix.
struct PixelRun {
  int64_t column;   // where the run starts among the block's pixels
  int64_t iy0, q0;  // first input row of the output row (p * stride_h), first output column
  int64_t length;   // output columns in the run
};
// Writes the runs of pixels [n0, n0 + ncols) to `out` (room for max_pixel_runs); returns how many.
int64_t pixel_runs(const Geometry& g, int64_t n0, int64_t ncols, PixelRun* out);
// The most runs a block of `pixels` consecutive output pixels cuts into: one per output row it meets.
inline int64_t max_pixel_runs(const Geometry& g, int64_t pixels) { return (pixels + g.Q - 1) / g.Q + 1; }

// Rows [k0, k0 + kc) (row k is kernel tap (c, r, s) = (k / RS, k / S % R, k % S) of the group) and
// the columns of `runs` (ncols pixels) into ceil(ncols/nr) micro-panels of kc x nr floats, k-major,
// panel_stride floats apart; padding and the columns past ncols are zero. x: the first input channel
// of the group in one image; line: scratch for one lowered row (ncols floats rounded up to nr,
// 64-byte aligned). One per instruction set (im2col_pack__<isa>.cpp).
using PackIm2colFn = void (*)(const Geometry& g, const float* x, int64_t k0, int64_t kc, const PixelRun* runs,
                              int64_t nruns, int64_t ncols, int nr, int64_t panel_stride, float* line, float* dst);
PackIm2colFn pack_b_im2col_for(Isa isa);
void pack_b_im2col_sse2(const Geometry&, const float*, int64_t, int64_t, const PixelRun*, int64_t, int64_t, int, int64_t,
                        float*, float*);
void pack_b_im2col_avx2(const Geometry&, const float*, int64_t, int64_t, const PixelRun*, int64_t, int64_t, int, int64_t,
                        float*, float*);
void pack_b_im2col_avx512(const Geometry&, const float*, int64_t, int64_t, const PixelRun*, int64_t, int64_t, int,
                          int64_t, float*, float*);

// Whether pack_b_im2col copies each lowered row as one contiguous run of the input plane (stride 1
// and an output as wide as the input; pack_block tests the same) rather than gathering it run by run.
inline bool flat_packing(const Geometry& g) { return g.stride_h == 1 && g.stride_w == 1 && g.Q == g.W; }

// What pack_b_im2col costs per lowered element, in flat copies: the 1x1 row copy (pointwise) a
// quarter, a flat copy (stride 1, output as wide as the input) one, the run-by-run gather three
// (strided loads into a line, then the line scattered into the panels). Priced as one, strided
// layers ranked im2col ahead of direct where it measured 1.2-1.4x slower (Xeon and Zen 5 with
// AVX-512, a Xeon capped at AVX2); three ranks them right. The work counts of every im2col solver.
inline double lowering_cost(const Geometry& g) { return g.is_pointwise() ? 0.25 : flat_packing(g) ? 1.0 : 3.0; }

// The panel stride for pack_b_im2col: kc*nr plus one cache line. It writes a row of every panel in
// turn; panels a multiple of 4 KiB apart would all fall in one L1 set and evict each other.
inline int64_t im2col_panel_stride(int64_t kc, int nr) { return kc * nr + 16; }

}  // namespace fastconv::detail
