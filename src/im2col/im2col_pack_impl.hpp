// The implicit-im2col gather, compiled once per instruction set (im2col_pack__<isa>.cpp) so that the
// strided copies vectorize as wide as the CPU allows. Plain loops only: no library calls, no
// inline functions shared with generic code (tests/check_isa_symbols.sh).
#pragma once

#include <cstdint>

#include "core/geometry.hpp"
#include "im2col/im2col_pack.hpp"

// GCC turns the short copy and fill loops below into memmove and memset calls (41 in the AVX-512
// gather): a call per 7-32 floats costs more than the copy. Kept as loops, they vectorize inline.
#pragma GCC push_options
#pragma GCC optimize("no-tree-loop-distribute-patterns")

namespace fastconv::detail {
namespace {

inline void fill_zero(float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = 0.0f;
}

// One lowered row segment: n input elements `stride` apart. A constant stride lets the compiler
// vectorize (stride 2 becomes loads and shuffles).
template <int kStride>
inline void gather(float* out, const float* src, int64_t n, int64_t stride) {
  if constexpr (kStride > 0) {
    for (int64_t i = 0; i < n; ++i) out[i] = src[i * kStride];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = src[i * stride];
  }
}

// One full panel row; restrict lets the compiler copy it in vectors.
template <int NR>
inline void copy_panel_row(float* __restrict to, const float* __restrict from) {
  for (int i = 0; i < NR; ++i) to[i] = from[i];
}

// Kernel tap (c, r, s) of a lowered row, stepped from row to row: dividing it out per row costs more
// than the copy of a short row.
struct TapCursor {
  int64_t c, r, s;
  TapCursor(const Geometry& g, int64_t k) : c(k / (g.R * g.S)), r(k / g.S % g.R), s(k % g.S) {}
  void next(const Geometry& g) {
    if (++s < g.S) return;
    s = 0;
    if (++r < g.R) return;
    r = 0;
    ++c;
  }
};

// The block's lowered row k in line[0, ncols) into row k of its panels: whole panel rows copied in
// vectors, the last panel's ncols % NR columns one by one.
template <int NR>
inline void scatter_line(const float* line, int64_t ncols, int64_t panel_floats, float* dk) {
  int64_t col = 0;
  for (; col + NR <= ncols; col += NR) copy_panel_row<NR>(dk + col / NR * panel_floats, line + col);
  for (float* d = dk + col / NR * panel_floats; col < ncols; ++col) *d++ = line[col];
}

// Row by row of the lowered matrix: one kernel tap, all pixels of the block. Each output row's run
// of the block is gathered whole into a line (zeros where the tap falls in the padding), then the
// line is cut into the panels: runs are as long as the output rows, not the panels.
template <int kStride, int NR>
void pack_rows(const Geometry& g, const float* x, int64_t k0, int64_t kc, const PixelRun* runs, int64_t nruns,
               int64_t ncols, int64_t panel_floats, float* line, float* dst) {
  TapCursor tap(g, k0);
  for (int64_t k = 0; k < kc; ++k, tap.next(g)) {
    const float* xc = x + tap.c * g.H * g.W;
    const int64_t y_off = tap.r * g.dil_h - g.pad_t, x_off = tap.s * g.dil_w - g.pad_l;
    // The output columns whose input column q*stride + x_off lies in [0, W).
    const int64_t valid_lo = x_off >= 0 ? 0 : (-x_off + g.stride_w - 1) / g.stride_w;
    const int64_t valid_hi = g.W - 1 - x_off >= 0 ? (g.W - 1 - x_off) / g.stride_w + 1 : 0;
    for (int64_t i = 0; i < nruns; ++i) {
      const PixelRun& run = runs[i];
      float* d = line + run.column;
      const int64_t iy = run.iy0 + y_off, q_end = run.q0 + run.length;
      const int64_t lo = valid_lo < run.q0 ? run.q0 : valid_lo > q_end ? q_end : valid_lo;
      const int64_t hi = valid_hi < lo ? lo : valid_hi > q_end ? q_end : valid_hi;
      if (iy < 0 || iy >= g.H || hi == lo) {
        fill_zero(d, run.length);
        continue;
      }
      fill_zero(d, lo - run.q0);
      // Valid columns read the input from column lo*stride + x_off >= 0 on.
      gather<kStride>(d + (lo - run.q0), xc + iy * g.W + lo * g.stride_w + x_off, hi - lo, g.stride_w);
      fill_zero(d + (hi - run.q0), q_end - hi);
    }
    scatter_line<NR>(line, ncols, panel_floats, dst + k * NR);
  }
}

// Stride 1 and an output as wide as the input ('same' width, or a kernel one column wide): tap
// (c, r, s) of output pixel f = p*W + q reads the input plane at f + off, off = dy*W + dx with
// dy = r*dil_h - pad_t and dx = s*dil_w - pad_l, so a lowered row is one contiguous copy of the
// plane, whole panels at a time. Outside the plane, and where the input row p + dy is outside the
// image, it reads zeros; the columns that wrapped into the neighbouring row (q + dx outside [0, W))
// are zeroed afterwards, |dx| per output row.
template <int NR>
void pack_rows_flat(const Geometry& g, const float* x, int64_t k0, int64_t kc, int64_t n0, int64_t ncols,
                    int64_t panel_floats, float* dst) {
  const int64_t W = g.W, HW = g.H * g.W;
  const int64_t p_first = n0 / W, p_last = (n0 + ncols - 1) / W;
  TapCursor tap(g, k0);
  for (int64_t k = 0; k < kc; ++k, tap.next(g)) {
    const int64_t dy = tap.r * g.dil_h - g.pad_t, dx = tap.s * g.dil_w - g.pad_l, off = dy * W + dx;
    const float* xc = x + tap.c * HW;
    // Block columns [lo, hi) read inside the plane from an input row inside the image.
    int64_t lo = -dy * W > -off ? -dy * W : -off, hi = (g.H - dy) * W < HW - off ? (g.H - dy) * W : HW - off;
    lo -= n0, hi -= n0;
    lo = lo < 0 ? 0 : lo > ncols ? ncols : lo;
    hi = hi < lo ? lo : hi > ncols ? ncols : hi;
    float* dk = dst + k * NR;
    const int64_t base = n0 + off;  // block column col reads xc[base + col], for col in [lo, hi) only
    for (int64_t col = 0; col < ncols; col += NR) {
      float* d = dk + col / NR * panel_floats;
      if (col >= lo && col + NR <= hi) {
        copy_panel_row<NR>(d, xc + (base + col));
      } else {
        const int64_t n = ncols - col < NR ? ncols - col : NR;
        for (int64_t i = 0; i < n; ++i) d[i] = col + i >= lo && col + i < hi ? xc[base + col + i] : 0.0f;
      }
    }
    if (dx == 0) continue;
    // Wrapped columns: q < -dx when dx < 0, q >= W - dx when dx > 0.
    int64_t q_lo = dx < 0 ? 0 : W - dx, q_hi = dx < 0 ? -dx : W;
    q_lo = q_lo < 0 ? 0 : q_lo, q_hi = q_hi > W ? W : q_hi;
    for (int64_t p = p_first; p <= p_last; ++p)
      for (int64_t q = q_lo; q < q_hi; ++q) {
        const int64_t col = p * W + q - n0;
        if (col >= 0 && col < ncols) dk[col / NR * panel_floats + col % NR] = 0.0f;
      }
  }
}

// One packed block: one copy per lowered row where the output is as wide as the input (stride 1),
// else the rows gathered run by run, with the stride fixed at compile time where it is 1 or 2.
template <int NR>
void pack_block(const Geometry& g, const float* x, int64_t k0, int64_t kc, const PixelRun* runs, int64_t nruns,
                int64_t ncols, int64_t panel_stride, float* line, float* dst) {
  if (g.stride_h == 1 && g.stride_w == 1 && g.Q == g.W) {
    const int64_t n0 = runs[0].iy0 * g.Q + runs[0].q0;  // the block's first pixel (stride 1: iy0 = p)
    return pack_rows_flat<NR>(g, x, k0, kc, n0, ncols, panel_stride, dst);
  }
  switch (g.stride_w) {
    case 1: return pack_rows<1, NR>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
    case 2: return pack_rows<2, NR>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
    default: return pack_rows<0, NR>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
  }
}

void pack_b_im2col_impl(const Geometry& g, const float* x, int64_t k0, int64_t kc, const PixelRun* runs,
                        int64_t nruns, int64_t ncols, int nr, int64_t panel_stride, float* line, float* dst) {
  // Columns of the last panel past ncols stay zero for every row.
  if (const int64_t tail = ncols % nr; tail != 0) {
    float* last = dst + (ncols / nr) * panel_stride;
    for (int64_t k = 0; k < kc; ++k) fill_zero(last + k * nr + tail, nr - tail);
  }
  switch (nr) {
    case 7: return pack_block<7>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
    case 8: return pack_block<8>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
    case 16: return pack_block<16>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
    case 32: return pack_block<32>(g, x, k0, kc, runs, nruns, ncols, panel_stride, line, dst);
    default: __builtin_trap();  // the GEMM tiles are 8, 16 or 32 pixels wide, the pixel-major ones 7
  }
}

}  // namespace
}  // namespace fastconv::detail

#pragma GCC pop_options
