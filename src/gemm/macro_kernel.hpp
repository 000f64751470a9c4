// The loops around the microkernel over one packed block (BLIS's macro-kernel): every MR x NR tile
// of C[m x n], full tiles straight into C, partial tiles through a small buffer. This is the one
// place where partial tiles are handled.
#pragma once

#include <cstdint>

#include "core/epilogue.hpp"
#include "core/prefetch.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {

// What the macro-kernel does around each tile besides A*B, for fused post-ops:
//   seed_scale (with accumulate): C = seed_scale * C first, on the tile in L1 (a residual held in C
//     seeds the accumulation; 1: nothing to do);
//   epilogue (last depth block): once the tile is stored, C = act(C + scale * R) on it while it is in
//     L1, R at `residual` with C's leading dimension (null: the activation only).
// The columns gemm_macro_kernel computes for n with `kernel`: whole NR panels, but a last panel of
// half_nr columns or fewer runs the half-width kernel, half_nr wide. What work counts use, and how
// wide a caller must fill B (and may read C).
inline int64_t gemm_columns(int64_t n, const SgemmKernel& kernel) {
  const int nr = kernel.blocking.nr, half = kernel.half_nr;
  const int64_t tail = n % nr;
  return tail != 0 && tail <= half ? n - tail + half : (n + nr - 1) / nr * nr;
}

// A plan's post-ops as a TileFuse (its clamp bounds and residual scale, no residual yet), when they are
// a clamp activation that kernels apply in registers (activation_clamp); false otherwise.
inline bool tile_fuse_of(const EpilogueParams& p, TileFuse& fuse) {
  fuse.scale = p.residual_scale, fuse.residual = nullptr;
  return activation_clamp(p, fuse.lo, fuse.hi);
}

struct TileEpilogue {
  const Epilogue* epilogue = nullptr;
  const float* residual = nullptr;  // R's element (0, 0), at C's position
  float seed_scale = 1.0f;
};

// A weight stream's next micro-panel, brought into L2 while the `tiles` tiles of this one run: the
// kernels fetch a line per step of depth (kc lines per tile) from the pointer returned for tile `tile`
// (null once the panel's `lines` are all asked for), and the last tile first asks for whatever the
// tiles' steps cannot reach (few tiles per panel). A tile may fetch up to kc - 1 lines past the panel:
// prefetches never fault, and those lines are the panel after it. (The slices went out as a burst
// before each tile: in-loop, one per step, measured 0.85-0.92x the time of the 7x7 1x1 and 3x3 layers
// of ResNet-50's layer4, and 0.97x the whole network at batch 1, AVX-512 Xeon, 2 threads.)
inline const float* next_panel_slice(const float* next, int64_t lines, int64_t tile, int64_t tiles, int64_t kc) {
  if (!next) return nullptr;
  const int64_t first = tile * kc;
  if (tile == tiles - 1)
    for (int64_t l = first + kc; l < lines; ++l) prefetch_l2(next + 16 * l);
  return first < lines ? next + 16 * first : nullptr;
}

// C[m x n] (row-major, ldc) = (accumulate ? C : 0) + A * B (+ bias[i] on row i when not null).
// A: micro-panels of kc x MR floats, panel i at a + i*a_panel_stride.
// B: micro-panels of kc x NR floats, panel j at b + j*b_panel_stride (64-byte aligned).
// Every element is computed by the same sequence of operations whether it lies in a full tile or a
// partial one, so results do not depend on how the caller blocks m and n.
// Tiles run a row of tiles at a time (C written in a few long streams), except with
// b_streams: B comes from memory, not from a block packed into L2 (weights meeting few A tiles):
// B panel by B panel, the next one fetched into L2 (next_panel_slice) while this one meets the A tiles.
// Otherwise each row of tiles fetches the next row's A micro-panel (weights, in the convolutions).
void gemm_macro_kernel(const SgemmKernel& kernel, int64_t m, int64_t n, int64_t kc, const float* a,
                       int64_t a_panel_stride, const float* b, int64_t b_panel_stride, float* c, int64_t ldc,
                       bool accumulate, const float* bias, const TileEpilogue* post = nullptr,
                       bool b_streams = false);

}  // namespace fastconv::detail
