// The register-tiled SGEMM microkernel contract (BLIS style) and the per-instruction-set table of
// kernels and cache blocking. Everything around the MR x NR tile is portable driver code.
//
// Contract of SgemmKernel::full:
//   C[MR x NR] = (accumulate ? C : 0) + A * B, then + bias[i] on row i when bias is not null.
//   a: the k-major micro-panel of A, MR floats per k (a[p*MR + i] = A(i, p));
//   b: the k-major micro-panel of B, NR floats per k (b[p*NR + j] = B(p, j)), 64-byte aligned;
//   c: row-major with leading dimension ldc (any alignment); k >= 1.
// Full tiles only: partial tiles go through gemm_macro_kernel, which runs a last panel of fewer rows
// on the short kernels (short_full, short_half) and one of fewer columns through its edge path.
// SgemmKernel::half is the same contract for an MR x half_nr tile (NR/2, or one vector of a kernel
// three vectors wide) of a panel still NR wide (the last panel of a block when it holds half_nr
// columns or fewer).
#pragma once

#include <cstdint>

#include "core/cpu.hpp"

namespace fastconv::detail {

// Post-ops a microkernel applies in registers before its store, on the last depth block: y = clamp(y +
// scale * R) to [lo, hi] (activation_clamp in core/epilogue.hpp: relu, relu6 or none, the same bits
// as Epilogue's pass over the stored tile). R: the tile's residual, rows ldc apart (null: none).
struct TileFuse {
  float lo, hi, scale;
  const float* residual;
};

// prefetch (may be null): a stream the tile brings into L2 while it runs, one cache line per step of
// depth (k lines from prefetch on): the next micro-panel of weights to come from memory (B's when
// B streams, else the next row of tiles' A; gemm_macro_kernel).
using SgemmUkernelFn = void (*)(int64_t k, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                                const float* bias, const TileFuse* fuse, const float* prefetch);

// Transpose of up to 16 rows: dst[p*ldd + r] = src[r*ld + p] for r < rows (<= 16), p < k; dst's
// columns r >= rows are not written. Packs micro-panels from rows that are contiguous along the
// depth: A panels of row-major weights, and backward-weights' dy and lowered x rows (over pixels).
// In registers: 16x16 blocks on AVX-512, 8x8 on AVX2; plain loops on SSE2.
using TransposeRowsFn = void (*)(const float* src, int64_t ld, int rows, int64_t k, float* dst, int64_t ldd);
// The same transpose with post-ops on each row it writes (TileFuse; fuse.residual laid out as dst, at
// dst's element (0, 0)): the pixel-major GEMMs' accumulators into NCHW outputs with their epilogue.
using TransposeFusedFn = void (*)(const float* src, int64_t ld, int rows, int64_t k, float* dst, int64_t ldd,
                                  const TileFuse& fuse);

// Rows [0, kc) x columns [0, n) of row-major B (leading dimension ldb) into ceil(n/nr) micro-panels
// of kc x nr floats, k-major; columns past n are zero. dst holds ceil(n/nr)*nr*kc floats. Compiled per
// instruction set: SgemmKernel::pack_b.
using PackPanelsFn = void (*)(const float* b, int64_t ldb, int64_t kc, int64_t n, int nr, float* dst);

// The implicit-GEMM form of the pixel-major tile (im2col_implicit): A is not packed, its row i (an
// output pixel) is read where the input lies, A(i, p) = rows[i][offsets[p]] (tap p of pixel i), so
// the lowered matrix is never built. C[MR x NR] += A * B, B and c as in the contract above.
// prefetch as for SgemmUkernelFn.
using ImplicitUkernelFn = void (*)(int64_t k, const float* const* rows, const int32_t* offsets, const float* b,
                                   float* c, int64_t ldc, const float* prefetch);

// Cache blocking of the loops around the microkernel (BLIS: MC x KC block of A in L2, a KC x NR
// micro-panel of B in L1, a KC x NC block of B in L3).
struct GemmBlocking {
  int mr, nr;      // register tile
  int64_t mc, kc;  // rows of A per L2 block, depth per block
  int64_t nc;      // columns of B per packed block
};

struct SgemmKernel {
  const char* name;  // e.g. "sgemm_ukernel_6x16__avx2"
  Isa isa;
  GemmBlocking blocking;
  SgemmUkernelFn full;
  SgemmUkernelFn half;
  TransposeRowsFn transpose_rows;
  int half_nr;  // the columns `half` computes: NR/2, or one vector when NR is three
  // full and half for the rows of a last A panel of r < MR rows, at [r - 1] (A panels still MR
  // wide); null: the edge path computes all MR rows.
  const SgemmUkernelFn* short_full = nullptr;
  const SgemmUkernelFn* short_half = nullptr;
  // Tiles that serve im2col_implicit (sgemm_implicit_kernel) only: the implicit kernel computing
  // v + 1 vectors (of half_nr columns) of an NR-wide panel of B; null past NR. The last panel of a
  // block runs the narrowest that covers it.
  ImplicitUkernelFn implicit[3] = {};
  PackPanelsFn pack_b = nullptr;  // B's micro-panels for this kernel, packed in its vectors
  TransposeFusedFn transpose_fused = nullptr;  // null: the post-ops run as a pass after transpose_rows
};

// The largest MR x NR of the table (checked when a kernel is built): the macro-kernel's edge tile.
constexpr int kMaxSgemmTile = 7 * 64;
// The largest MR of the table (checked the same way): buffers of one A panel's rows.
constexpr int kMaxSgemmMr = 12;

// The kernel and blocking for an instruction set (tuning is data: src/gemm/sgemm_kernel.cpp).
const SgemmKernel& sgemm_kernel(Isa isa);

// The pixel-major tile: MR = 7 output pixels (broadcast) x NR output channels (vectors), for
// convolutions on small images (7x7, 14x14), whose pixels fill 7-row tiles exactly where 32-column
// panels of pixels waste up to a quarter of the FMAs (im2col/im2col_pixels.cpp).
const SgemmKernel& sgemm_pixel_kernel(Isa isa);

// The pixel-major tile of the implicit GEMM (im2col_implicit): the pixel tile with AVX-512 and
// SSE2; with AVX2, sgemm_kernel's 6x16 (the 7x16 pixel tile spills an accumulator).
const SgemmKernel& sgemm_implicit_kernel(Isa isa);

// Per-ISA definitions (sgemm_ukernel__<isa>.cpp). Each returns its kernel's function and tile.
struct UkernelInfo {
  const char* name;
  int mr, nr;
  SgemmUkernelFn full, half;
  TransposeRowsFn transpose_rows;
  int half_nr = 0;  // 0: NR/2
  ImplicitUkernelFn implicit[3] = {};  // by vectors: 1, 2, 3
  const SgemmUkernelFn* short_full = nullptr;
  const SgemmUkernelFn* short_half = nullptr;
  PackPanelsFn pack_b = nullptr;
  TransposeFusedFn transpose_fused = nullptr;
};
UkernelInfo sgemm_ukernel_sse2();
UkernelInfo sgemm_ukernel_avx2();
UkernelInfo sgemm_ukernel_avx512();
UkernelInfo sgemm_ukernel_pixels_sse2();
UkernelInfo sgemm_ukernel_pixels_avx2();
UkernelInfo sgemm_ukernel_pixels_avx512();
// The AVX-512 tile shape (12x32) compiled for AVX2: lets this library's tests run every driver path
// of the AVX-512 configuration on CPUs without AVX-512.
UkernelInfo sgemm_ukernel_12x32_avx2();

}  // namespace fastconv::detail
