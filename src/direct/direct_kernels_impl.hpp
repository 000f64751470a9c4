// The direct convolution kernels, written once over the xsimd architecture. Included only by the
// per-ISA translation units (direct_kernels__<isa>.cpp), each compiled with its own flags.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <immintrin.h>
#include <xsimd/xsimd.hpp>

#include "direct/direct_kernels.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// Lanes [lo, hi) from p[lo..hi), zeros elsewhere; memory outside [p + lo, p + hi) is not touched.
template <class V>
V load_masked(const float* p, int lo, int hi) {
  constexpr int L = int(V::size);
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    const __mmask16 m = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
    return V(_mm512_maskz_loadu_ps(m, p));
  }
#endif
#if defined(__AVX2__)
  if constexpr (L == 8) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi), iota),
                                       _mm256_cmpgt_epi32(iota, _mm256_set1_epi32(lo - 1)));
    return V(_mm256_maskload_ps(p, m));
  }
#endif
  alignas(64) float tmp[L] = {};
  for (int l = lo; l < hi; ++l) tmp[l] = p[l];
  return V::load_aligned(tmp);
}

// The first n lanes of v to p.
template <class V>
void store_lanes(float* p, const V& v, int n) {
  constexpr int L = int(V::size);
  if (n == L) {
    v.store_unaligned(p);
    return;
  }
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (L == 8) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p, m, v);
    return;
  }
#endif
  alignas(64) float tmp[L];
  v.store_aligned(tmp);
  for (int l = 0; l < n; ++l) p[l] = tmp[l];
}

template <class V>
V load_lanes(const float* p, int n) {
  return n == int(V::size) ? V::load_unaligned(p) : load_masked<V>(p, 0, n);
}

// Lanes l of row[start + l], zeros where start + l lies outside [0, n).
template <class V>
V load_range(const float* row, int64_t start, int64_t n) {
  constexpr int L = int(V::size);
  if (start >= 0 && start + L <= n) return V::load_unaligned(row + start);
  if (start + L <= 0 || start >= n) return V(0.0f);
  const int lo = start < 0 ? int(-start) : 0;
  const int hi = n - start < L ? int(n - start) : L;
  return load_masked<V>(row + start, lo, hi);
}

// The even and odd elements of the 2L floats a:b.
template <class V>
void deinterleave(const V& a, const V& b, V& even, V& odd) {
  constexpr int L = int(V::size);
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    even = V(_mm512_permutex2var_ps(a, ie, b));
    odd = V(_mm512_permutex2var_ps(a, io, b));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (L == 8) {
    // In-lane shuffles give [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute puts the halves in order.
    even = V(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8)));
    odd = V(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8)));
    return;
  }
#endif
  if constexpr (L == 4) {
    even = V(_mm_shuffle_ps(a, b, 0x88));
    odd = V(_mm_shuffle_ps(a, b, 0xDD));
  }
}

// Rows are short: keep GCC from turning the few zero stores of an edge into calls to memset.
#pragma GCC push_options
#pragma GCC optimize("no-tree-loop-distribute-patterns")

// Any stride, element by element: columns first + j*sw, zeros outside the row.
void pack_segment_scalar(const float* src, int64_t W, int64_t first, int64_t sw, int64_t wph, float* dst) {
  int64_t jb = first >= 0 ? 0 : (-first + sw - 1) / sw;
  int64_t je = first <= W - 1 ? (W - 1 - first) / sw + 1 : 0;
  if (je > wph) je = wph;
  if (jb > je) jb = je;
  for (int64_t j = 0; j < jb; ++j) dst[j] = 0.0f;
  for (int64_t j = jb; j < je; ++j) dst[j] = src[first + j * sw];
  for (int64_t j = je; j < wph; ++j) dst[j] = 0.0f;
}

// The SW column phases of a vector of outputs: SW loads, split by a tree of de-interleaves.
template <class V, int SW>
void split_phases(const float* p, V (&out)[SW]) {
  constexpr int L = int(V::size);
  if constexpr (SW == 1) {
    out[0] = V::load_unaligned(p);
  } else if constexpr (SW == 2) {
    deinterleave(V::load_unaligned(p), V::load_unaligned(p + L), out[0], out[1]);
  } else {
    V e0, o0, e1, o1;
    deinterleave(V::load_unaligned(p), V::load_unaligned(p + L), e0, o0);
    deinterleave(V::load_unaligned(p + 2 * L), V::load_unaligned(p + 3 * L), e1, o1);
    deinterleave(e0, e1, out[0], out[2]);
    deinterleave(o0, o1, out[1], out[3]);
  }
}

// Rows into SW segments of wph floats (segment k: columns ix0 + k + SW*j). The columns are
// planned once for all rows: where every phase lies inside the row ([J0, J1)) whole vectors are
// copied, the last one overlapping the one before; the edges are zeroed first and their few inside
// elements (at most one per phase and side) written one by one.
template <class V, int SW>
void pack_rows_phased(const RowPack& a) {
  constexpr int L = int(V::size);
  const int64_t wph = a.wph, W = a.W;
  int64_t jb[SW], je[SW], J0 = 0, J1 = wph;
  for (int k = 0; k < SW; ++k) {
    const int64_t first = a.ix0 + k;
    jb[k] = first >= 0 ? 0 : (-first + SW - 1) / SW;
    je[k] = first <= W - 1 ? (W - 1 - first) / SW + 1 : 0;
    if (je[k] > wph) je[k] = wph;
    if (jb[k] > je[k]) jb[k] = je[k];
    J0 = J0 > jb[k] ? J0 : jb[k];
    J1 = J1 < je[k] ? J1 : je[k];
  }
  const bool narrow = J1 - J0 < L;
  int32_t edge[4 * SW];  // offsets in a packed row and in an input row of the edge elements
  int64_t src_edge[4 * SW];
  int nedge = 0;
  if (!narrow) {
    for (int k = 0; k < SW; ++k) {
      for (int64_t j = jb[k]; j < J0; ++j) edge[nedge] = int32_t(k * wph + j), src_edge[nedge++] = a.ix0 + k + SW * j;
      for (int64_t j = J1; j < je[k]; ++j) edge[nedge] = int32_t(k * wph + j), src_edge[nedge++] = a.ix0 + k + SW * j;
    }
  }
  const int64_t zero_right = J1 / L * L;
  const V zero(0.0f);
  for (int64_t i = 0; i < a.rows; ++i) {
    float* d = a.dst + i * a.row_stride;
    const int64_t iy = a.iy0 + i;
    if (iy < 0 || iy >= a.H) {
      for (int64_t j = 0; j < SW * wph; j += L) zero.store_unaligned(d + j);
      continue;
    }
    const float* src = a.x + iy * W;
    if (narrow) {  // masked loads a vector at a time, every column written
      for (int64_t j = 0; j < wph; j += L) {
        alignas(64) float tmp[SW * L];
        for (int t = 0; t < SW; ++t) load_range<V>(src, a.ix0 + SW * j + t * L, W).store_aligned(tmp + t * L);
        V ph[SW];
        split_phases<V, SW>(tmp, ph);
        for (int k = 0; k < SW; ++k) ph[k].store_unaligned(d + k * wph + j);
      }
      continue;
    }
    if (!a.edges_zero) {
      for (int64_t j = 0; j < J0; j += L)
        for (int k = 0; k < SW; ++k) zero.store_unaligned(d + k * wph + j);
      for (int64_t j = zero_right; j < wph; j += L)
        for (int k = 0; k < SW; ++k) zero.store_unaligned(d + k * wph + j);
    }
    const float* s0 = src + a.ix0;
    for (int64_t j = J0;; j += L) {
      if (j > J1 - L) j = J1 - L;
      V ph[SW];
      split_phases<V, SW>(s0 + SW * j, ph);
      for (int k = 0; k < SW; ++k) ph[k].store_unaligned(d + k * wph + j);
      if (j == J1 - L) break;
    }
    for (int e = 0; e < nedge; ++e) d[edge[e]] = src[src_edge[e]];
  }
}

// Segments are whole vectors (wph is a multiple of L). Stride 1, and strides 2 and 4 with every
// phase present, go a vector at a time; other strides element by element.
template <class Arch>
void pack_rows(const RowPack& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  const bool all_phases = a.phases == a.sw;
  if (a.sw == 1) return pack_rows_phased<V, 1>(a);
  if (a.sw == 2 && all_phases) return pack_rows_phased<V, 2>(a);
  if (a.sw == 4 && all_phases) return pack_rows_phased<V, 4>(a);
  for (int64_t i = 0; i < a.rows; ++i) {
    float* d = a.dst + i * a.row_stride;
    const int64_t iy = a.iy0 + i;
    if (iy < 0 || iy >= a.H) {
      for (int64_t j = 0; j < a.phases * a.wph; j += L) V(0.0f).store_unaligned(d + j);
      continue;
    }
    for (int64_t k = 0; k < a.phases; ++k)
      pack_segment_scalar(a.x + iy * a.W, a.W, a.ix0 + a.phase[k], a.sw, a.wph, d + k * a.wph);
  }
}

#pragma GCC pop_options

// MK channels x NR rows x NV vectors of accumulators. Per tap: the NR*NV input vectors and the MK
// weights, whichever is fewer, stay in registers while the other is loaded once per use.
template <class Arch, int MK, int NR, int NV>
void direct_tile(const DirectTile& t) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  V acc[MK][NR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MK; ++i) {
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        if (i >= t.mk)
          acc[i][r][v] = V(0.0f);
        else if (t.bias)
          acc[i][r][v] = V(t.bias[i]);
        else
          acc[i][r][v] = load_lanes<V>(t.out + i * t.out_k_stride + r * t.ldo + v * L, v == NV - 1 ? t.lanes_last : L);
      }
    }
  }
  const float* w = t.w;
  const int64_t ro = t.row_off;
  for (int64_t k = 0; k < t.ntaps; ++k, w += MK) {
    const float* p = t.buf + t.taps[k];
    if constexpr (MK < NR * NV) {
      V wv[MK];
#pragma GCC unroll 8
      for (int i = 0; i < MK; ++i) wv[i] = V(w[i]);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          const V x = V::load_unaligned(p + r * ro + v * L);
#pragma GCC unroll 8
          for (int i = 0; i < MK; ++i) acc[i][r][v] = xsimd::fma(wv[i], x, acc[i][r][v]);
        }
      }
    } else {
      V x[NR][NV];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) x[r][v] = V::load_unaligned(p + r * ro + v * L);
      }
#pragma GCC unroll 8
      for (int i = 0; i < MK; ++i) {
        const V wi(w[i]);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) acc[i][r][v] = xsimd::fma(wi, x[r][v], acc[i][r][v]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MK; ++i) {
    if (i >= t.mk) break;
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        store_lanes(t.out + i * t.out_k_stride + r * t.ldo + v * L, acc[i][r][v], v == NV - 1 ? t.lanes_last : L);
    }
  }
}

// One loaded input row vector (buffer row I) into every output row it reaches: output row m takes
// kernel row I - m*SH.
template <int SH, int MP, int I, class V, int R, int... Rs>
inline void dw_row(V (&acc)[MP], const V (&wr)[R], const V& x, std::integer_sequence<int, Rs...>) {
  (
      [&] {
        constexpr int d = I - Rs;
        if constexpr (d >= 0 && d % SH == 0 && d / SH < MP) acc[d / SH] = xsimd::fma(wr[Rs], x, acc[d / SH]);
      }(),
      ...);
}

template <class Arch, int R, int SH, int MP, int... Is>
inline void dw_column(typename xsimd::batch<float, Arch> (&acc)[MP], const float* c, int64_t rs, const float* ws,
                      std::integer_sequence<int, Is...>) {
  using V = xsimd::batch<float, Arch>;
  V wr[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) wr[r] = V(ws[r]);
  (dw_row<SH, MP, Is>(acc, wr, V::load_unaligned(c + Is * rs), std::make_integer_sequence<int, R>{}), ...);
}

template <class Arch, int R, int SH, int MP>
void dw_strip(const DwStrip& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  constexpr int kRows = (MP - 1) * SH + R;
  // Rows at least a vector wide end on a whole vector that overlaps the one before (same bits);
  // narrower rows store part of one vector.
  const int64_t nvec = (a.width + L - 1) / L;
  const int64_t last = a.width >= L ? a.width - L : 0;
  const int lanes = a.width >= L ? L : int(a.width);
  for (int64_t v = 0; v < nvec; ++v) {
    const int64_t col = v * L < last ? v * L : last;
    V acc[MP];
#pragma GCC unroll 16
    for (int m = 0; m < MP; ++m) acc[m] = V(a.bias);
    for (int64_t s = 0; s < a.S; ++s)
      dw_column<Arch, R, SH, MP>(acc, a.buf + col + a.soff[s], a.row_stride, a.w + s * R,
                                 std::make_integer_sequence<int, kRows>{});
#pragma GCC unroll 16
    for (int m = 0; m < MP; ++m) store_lanes(a.out + m * a.ldo + col, acc[m], lanes);
  }
}

template <class Arch, int Accs, int MkLog, int NR, int NV>
void set_tile(DirectKernels& k) {
  constexpr int MK = 1 << MkLog;
  if constexpr (MK * NR * NV <= Accs) k.tile[MkLog][NR - 1][NV - 1] = direct_tile<Arch, MK, NR, NV>;
}

template <class Arch, int Accs, int MkLog, int NR, int... NVs>
void set_tiles_nv(DirectKernels& k, std::integer_sequence<int, NVs...>) {
  (set_tile<Arch, Accs, MkLog, NR, NVs + 1>(k), ...);
}

template <class Arch, int Accs, int MkLog, int... NRs>
void set_tiles_nr(DirectKernels& k, std::integer_sequence<int, NRs...>) {
  (set_tiles_nv<Arch, Accs, MkLog, NRs + 1>(k, std::make_integer_sequence<int, kMaxNr>{}), ...);
}

template <class Arch, int RIndex, int SH, int MaxRows, int M>
void set_dw_one(DirectKernels& k) {
  if constexpr (M <= MaxRows) k.dw[RIndex][SH - 1][M - 1] = dw_strip<Arch, 3 + 2 * RIndex, SH, M>;
}

template <class Arch, int RIndex, int SH, int MaxRows, int... Ms>
void set_dw(DirectKernels& k, std::integer_sequence<int, Ms...>) {
  (set_dw_one<Arch, RIndex, SH, MaxRows, Ms + 1>(k), ...);
}

// Regs: vector registers. A tile keeps MK*NR*NV accumulators plus its operands; the depthwise
// strip keeps MP accumulators, R weights and one input vector (and a temporary without FMA).
template <class Arch, int Regs, int Accs, int MkVariants>
void fill_kernels(DirectKernels& k, Isa isa) {
  k = DirectKernels{};
  k.isa = isa;
  k.lanes = int(xsimd::batch<float, Arch>::size);
  k.mk_variants = MkVariants;
  k.accumulators = Accs;
  set_tiles_nr<Arch, Accs, 0>(k, std::make_integer_sequence<int, kMaxNr>{});
  set_tiles_nr<Arch, Accs, 1>(k, std::make_integer_sequence<int, kMaxNr>{});
  set_tiles_nr<Arch, Accs, 2>(k, std::make_integer_sequence<int, kMaxNr>{});
  if constexpr (MkVariants > 3) set_tiles_nr<Arch, Accs, 3>(k, std::make_integer_sequence<int, kMaxNr>{});
  constexpr int kSpare = Regs == 16 && Accs == 8 ? 2 : 1;  // SSE2: no FMA, a temporary
  constexpr int kRows3 = Regs - 3 - kSpare < kMaxDwRows ? Regs - 3 - kSpare : kMaxDwRows;
  constexpr int kRows5 = Regs - 5 - kSpare < kMaxDwRows ? Regs - 5 - kSpare : kMaxDwRows;
  constexpr int kRows7 = Regs - 7 - kSpare < kMaxDwRows ? Regs - 7 - kSpare : kMaxDwRows;
  k.dw_rows[0] = kRows3, k.dw_rows[1] = kRows5, k.dw_rows[2] = kRows7;
  set_dw<Arch, 0, 1, kRows3>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 0, 2, kRows3>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 1, 1, kRows5>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 1, 2, kRows5>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 2, 1, kRows7>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 2, 2, kRows7>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  k.pack = pack_rows<Arch>;
}

}  // namespace
}  // namespace fastconv::detail
