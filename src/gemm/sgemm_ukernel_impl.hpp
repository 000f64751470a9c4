// The SGEMM microkernel, written once over the xsimd architecture. Included only by the per-ISA
// translation units (sgemm_ukernel__<isa>.cpp), each compiled with its own flags.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <utility>
#include <xsimd/xsimd.hpp>

#include "core/clamp_impl.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// Where a microkernel reads A (row i of the current step of depth): packed micro-panels MR_A rows
// wide (sgemm_ukernel), fetched a few steps ahead as they stream from L2, or the pixels' rows read in
// place at the step's tap offset (implicit_ukernel).
template <int MR_A>
struct PackedA {
  const float* a;
  void begin(int64_t) const { __builtin_prefetch(a + 16 * MR_A, 0, 3); }
  float operator()(int i) const { return a[i]; }
  void end() { a += MR_A; }
};
template <int MR>
struct ImplicitA {
  const float* const (&rows)[MR];
  const int32_t* offsets;
  int64_t o = 0;
  void begin(int64_t p) { o = offsets[p]; }
  float operator()(int i) const { return rows[i][o]; }
  void end() const {}
};

// The k steps of both microkernels: per step NV loads of B, MR broadcasts of A, MR*NV FMAs; with
// Stream also one line of the prefetch stream (a loop of each kind: a tile without a stream pays no
// test per step; the test cost the AVX2 6x16 kernel ~2%).
template <bool Stream, class Arch, int MR, int NV, int NV_B, class ReadA>
[[gnu::always_inline]] inline void fma_steps(int64_t k, ReadA a, const float* __restrict b, const float* prefetch,
                                             xsimd::batch<float, Arch> (&acc)[MR][NV]) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size), NR_B = NV_B * L;
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    a.begin(p);
    if constexpr (Stream) {
      __builtin_prefetch(prefetch, 0, 2);
      prefetch += 16;
    }
    V bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = V::load_aligned(b + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V ai(a(i));
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = xsimd::fma(ai, bv[j], acc[i][j]);
    }
    a.end();
    b += NR_B;
  }
}

// Both loops of a microkernel, chosen once per tile by whether it has a stream.
template <class Arch, int MR, int NV, int NV_B, class ReadA>
[[gnu::always_inline]] inline void run_steps(int64_t k, ReadA a, const float* b, const float* prefetch,
                                             xsimd::batch<float, Arch> (&acc)[MR][NV]) {
  if (prefetch)
    fma_steps<true, Arch, MR, NV, NV_B>(k, a, b, prefetch, acc);
  else
    fma_steps<false, Arch, MR, NV, NV_B>(k, a, b, nullptr, acc);
}

// MR rows x NV vectors of accumulators, all in registers: per k, NV loads of B, MR broadcasts of A
// and MR*NV FMAs. B micro-panels are NV_B vectors wide: NV < NV_B gives the half-width kernel for a
// last panel of few columns; A micro-panels are MR_A rows wide: MR < MR_A gives the short kernels
// for a last panel of fewer rows. Both with the same arithmetic per element.
template <class Arch, int MR, int NV, int NV_B = NV, int MR_A = MR>
void sgemm_ukernel(int64_t k, const float* __restrict a, const float* __restrict b, float* __restrict c,
                   int64_t ldc, bool accumulate, const float* __restrict bias, const TileFuse* fuse,
                   const float* prefetch) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size), NR = NV * L;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V(0.0f);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {  // both ends of each C row: it may straddle cache lines
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
  }

  run_steps<Arch, MR, NV, NV_B>(k, PackedA<MR_A>{a}, b, prefetch, acc);

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = acc[i][j] + V::load_unaligned(ci + j * L);
    }
    if (bias) {
      const V bi(bias[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = acc[i][j] + bi;
    }
  }
  // The post-ops in registers, before the one store (a pass over the stored tile cost 9% of a 64->256
  // 1x1 layer with a relu: 64 steps of depth per tile, then every row reloaded).
  if (fuse) {
    const V lo(fuse->lo), hi(fuse->hi), scale(fuse->scale);
    if (const float* r = fuse->residual) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = xsimd::fma(scale, V::load_unaligned(r + i * ldc + j * L), acc[i][j]);
    }
    // clamp_lanes a bound at a time, only the bounds that are finite (the selects took four operations
    // per vector on the FMA ports: 6% of a 64->256 1x1 layer).
    if (fuse->hi != std::numeric_limits<float>::infinity()) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = clamp_upper(acc[i][j], hi);
    }
    if (fuse->lo != -std::numeric_limits<float>::infinity()) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = clamp_lower(acc[i][j], lo);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j].store_unaligned(c + i * ldc + j * L);
}

// The short kernels of an MR x NV tile: rows 1..MR-1 of A panels MR wide (SgemmKernel::short_full,
// short_half), each computing only its rows.
template <class Arch, int MR, int NV, int NV_B, int... R>
constexpr std::array<SgemmUkernelFn, sizeof...(R)> short_kernels(std::integer_sequence<int, R...>) {
  return {sgemm_ukernel<Arch, R + 1, NV, NV_B, MR>...};
}
template <class Arch, int MR, int NV, int NV_B = NV>
constexpr std::array<SgemmUkernelFn, MR - 1> short_kernels() {
  return short_kernels<Arch, MR, NV, NV_B>(std::make_integer_sequence<int, MR - 1>());
}

// sgemm_ukernel's arithmetic with A read in place (ImplicitUkernelFn): per k, one offset, MR
// broadcasts from the MR pixels' rows, NV loads of B. Always accumulates into C.
// (It prefetched the next tile's taps: two more pointers than the general registers hold, one
// reloaded through port 0, an FMA port, on every tap. Without them, interleaved on the AVX-512 Xeon,
// 2 threads: 0.95-0.98x the time on 3x3/s2 into 28x28, 7x7 and 17x17, 7x7 3x3 512 and the ViT
// patchify; the next tap lines are mostly in L1 from the previous channel panel.) The prefetch
// stream (the next weight panel's lines) takes one register more and pays for it.
template <class Arch, int MR, int NV, int NV_B = NV>
void implicit_ukernel(int64_t k, const float* const* __restrict rows, const int32_t* __restrict offsets,
                      const float* __restrict b, float* __restrict c, int64_t ldc, const float* prefetch) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  const float* r[MR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) r[i] = rows[i];
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V(0.0f);

  run_steps<Arch, MR, NV, NV_B>(k, ImplicitA<MR>{r, offsets}, b, prefetch, acc);

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) (acc[i][j] + V::load_unaligned(ci + j * L)).store_unaligned(ci + j * L);
  }
}

// SgemmKernel::pack_b in this instruction set's vectors. A panel row wider than a vector
// is whole loads and stores: left to the compiler, the generic copy ran 16-byte moves at a third of
// the speed (10 against 24-38 GB/s on the AVX-512 Xeon, 512-pixel blocks of 256 rows) and was a
// quarter of a 256->64 1x1 layer on 56x56. Plain loops, no library calls (check_isa_symbols.sh).
template <class Arch, int NR>
void pack_b_full_panels(const float* __restrict b, int64_t ldb, int64_t kc, int64_t panels, float* __restrict dst) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  for (int64_t j = 0; j < panels; ++j) {
    const float* src = b + j * NR;
    for (int64_t p = 0; p < kc; ++p, dst += NR, src += ldb) {
      if constexpr (NR % L == 0) {
        V row[NR / L];  // every load before the stores: the rows never alias, but say so
#pragma GCC unroll 8
        for (int v = 0; v < NR / L; ++v) row[v] = V::load_unaligned(src + v * L);
#pragma GCC unroll 8
        for (int v = 0; v < NR / L; ++v) row[v].store_unaligned(dst + v * L);
      } else {
#pragma GCC unroll 16
        for (int q = 0; q < NR; ++q) dst[q] = src[q];
      }
    }
  }
}

template <class Arch>
void pack_b_panels_isa(const float* b, int64_t ldb, int64_t kc, int64_t n, int nr, float* dst) {
  const int64_t full = n / nr;
  switch (nr) {
    case 7: pack_b_full_panels<Arch, 7>(b, ldb, kc, full, dst); break;  // the pixel-major tiles' 7 pixels
    case 8: pack_b_full_panels<Arch, 8>(b, ldb, kc, full, dst); break;
    case 16: pack_b_full_panels<Arch, 16>(b, ldb, kc, full, dst); break;
    case 32: pack_b_full_panels<Arch, 32>(b, ldb, kc, full, dst); break;
    case 48: pack_b_full_panels<Arch, 48>(b, ldb, kc, full, dst); break;
    default:
      for (int64_t j = 0; j < full; ++j)
        for (int64_t p = 0; p < kc; ++p)
          for (int q = 0; q < nr; ++q) dst[(j * kc + p) * nr + q] = b[p * ldb + j * nr + q];
  }
  if (const int64_t cols = n - full * nr; cols > 0) {  // (a pixel block may end in a half panel)
    float* d = dst + full * kc * nr;
    const float* src = b + full * nr;
    for (int64_t p = 0; p < kc; ++p, d += nr, src += ldb)
      for (int q = 0; q < nr; ++q) d[q] = q < cols ? src[q] : 0.0f;
  }
}

// A kernel table entry for an MR x NV tile: full, half (NV_HALF vectors of the same NV-wide panel)
// and their short kernels.
template <class Arch, int MR, int NV, int NV_HALF>
UkernelInfo tile_info(const char* name, TransposeRowsFn transpose, int half_nr = 0) {
  static constexpr auto shorts = short_kernels<Arch, MR, NV>();
  static constexpr auto half_shorts = short_kernels<Arch, MR, NV_HALF, NV>();
  UkernelInfo info{name,      MR, NV * int(xsimd::batch<float, Arch>::size), sgemm_ukernel<Arch, MR, NV>,
                   sgemm_ukernel<Arch, MR, NV_HALF, NV>, transpose, half_nr};
  info.short_full = shorts.data(), info.short_half = half_shorts.data();
  info.pack_b = pack_b_panels_isa<Arch>;
  return info;
}

// The same entry for a tile that also serves im2col_implicit: its implicit kernels of 1..NV vectors.
template <class Arch, int MR, int NV, int NV_HALF>
UkernelInfo implicit_tile_info(const char* name, TransposeRowsFn transpose, int half_nr = 0) {
  static_assert(NV <= 3, "SgemmKernel::implicit holds tiles of up to three vectors");
  UkernelInfo info = tile_info<Arch, MR, NV, NV_HALF>(name, transpose, half_nr);
  info.implicit[0] = implicit_ukernel<Arch, MR, 1, NV>;
  if constexpr (NV >= 2) info.implicit[1] = implicit_ukernel<Arch, MR, 2, NV>;
  if constexpr (NV >= 3) info.implicit[2] = implicit_ukernel<Arch, MR, 3, NV>;
  return info;
}

// The portable transpose (AVX2 and AVX-512 have their own, in sgemm_ukernel__<isa>.cpp).
[[maybe_unused]] void transpose_rows_scalar(const float* src, int64_t ld, int rows, int64_t k, float* dst, int64_t ldd) {
  for (int64_t p = 0; p < k; ++p)
    for (int r = 0; r < rows; ++r) dst[p * ldd + r] = src[r * ld + p];
}

}  // namespace
}  // namespace fastconv::detail
