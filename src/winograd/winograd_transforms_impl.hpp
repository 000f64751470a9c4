// The Winograd tile transforms written once over the xsimd architecture, one tile per vector lane;
// only the few shuffles that turn rows of tiles into lanes are per instruction set (Blocks).
// Included only by the per-ISA translation units (winograd_transforms__<isa>.cpp), each compiled
// with its own flags; everything here has internal linkage.
#pragma once

#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "core/clamp_impl.hpp"
#include "core/masked_lanes_impl.hpp"
#include "core/prefetch.hpp"
#include "winograd/winograd_transforms.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// The 1D transforms of F(m, 3) on the points 0, +-1, +-2: B^T d (alpha values to alpha) and A^T s
// (alpha values to m). A 2D transform applies them along the rows first, then down the columns;
// every path below does the same operations in that order, so a tile's bits never depend on
// which path transformed it.
template <int M>
struct Transform1d;

template <>
struct Transform1d<2> {
  template <class T>
  static void input(const T* d, T* v) {
    v[0] = d[0] - d[2];
    v[1] = d[1] + d[2];
    v[2] = d[2] - d[1];
    v[3] = d[1] - d[3];
  }
  template <class T>
  static void output(const T* s, T* o) {
    o[0] = s[0] + s[1] + s[2];
    o[1] = s[1] - s[2] - s[3];
  }
};

template <>
struct Transform1d<4> {
  template <class T>
  static void input(const T* d, T* v) {
    const T two(2.0f), four(4.0f), five(5.0f);
    v[0] = xsimd::fma(four, d[0], xsimd::fnma(five, d[2], d[4]));
    v[1] = xsimd::fnma(four, d[1] + d[2], d[3] + d[4]);
    v[2] = xsimd::fma(four, d[1] - d[2], d[4] - d[3]);
    const T c = d[4] - d[2], e = d[3] - d[1];
    v[3] = xsimd::fma(two, e, c);
    v[4] = xsimd::fnma(two, e, c);
    v[5] = xsimd::fma(four, d[1], xsimd::fnma(five, d[3], d[5]));
  }
  template <class T>
  static void output(const T* s, T* o) {
    const T two(2.0f), four(4.0f), eight(8.0f);
    const T s12 = s[1] + s[2], d12 = s[1] - s[2], s34 = s[3] + s[4], d34 = s[3] - s[4];
    o[0] = s[0] + s12 + s34;
    o[1] = xsimd::fma(two, d34, d12);
    o[2] = xsimd::fma(four, s34, s12);
    o[3] = xsimd::fma(eight, d34, d12) + s[5];
  }
};

// The few shuffles the transforms need, per instruction set. All of them work within 128-bit
// blocks (B = lanes / 4 per vector), so one algorithm serves SSE2 (1 block), AVX2 (2) and AVX-512
// (4): a vector holds B blocks, block q of a tile vector being the tiles 4q .. 4q+3.
//   load4 / store4:   block q <-> 4 floats at p[q]
//   load2x2 / store2x2: block q <-> 2 floats at p[2q] and 2 floats at p[2q+1]
//   unpacklo, unpackhi, shuffle<imm> (two sources): as _mm_unpacklo_ps etc. in every block.
template <class Arch>
struct Blocks;

inline __m128 load2x2_128(const float* p0, const float* p1) {
  return _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(p0)),
                      reinterpret_cast<const __m64*>(p1));
}
inline void store2x2_128(__m128 v, float* p0, float* p1) {
  _mm_storel_pi(reinterpret_cast<__m64*>(p0), v);
  _mm_storeh_pi(reinterpret_cast<__m64*>(p1), v);
}

template <>
struct Blocks<xsimd::sse2> {
  using R = __m128;
  static R load4(const float* const* p) { return _mm_loadu_ps(p[0]); }
  static void store4(R v, float* const* p) { _mm_storeu_ps(p[0], v); }
  static R load2x2(const float* const* p) { return load2x2_128(p[0], p[1]); }
  static void store2x2(R v, float* const* p) { store2x2_128(v, p[0], p[1]); }
  static R unpacklo(R a, R b) { return _mm_unpacklo_ps(a, b); }
  static R unpackhi(R a, R b) { return _mm_unpackhi_ps(a, b); }
  template <int Imm>
  static R shuffle(R a, R b) { return _mm_shuffle_ps(a, b, Imm); }
};

#if defined(__AVX2__)
inline __m256 load4_256(const float* const* p) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p[0])), _mm_loadu_ps(p[1]), 1);
}
inline void store4_256(__m256 v, float* const* p) {
  _mm_storeu_ps(p[0], _mm256_castps256_ps128(v));
  _mm_storeu_ps(p[1], _mm256_extractf128_ps(v, 1));
}
inline __m256 load2x2_256(const float* const* p) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(load2x2_128(p[0], p[1])), load2x2_128(p[2], p[3]), 1);
}
inline void store2x2_256(__m256 v, float* const* p) {
  store2x2_128(_mm256_castps256_ps128(v), p[0], p[1]);
  store2x2_128(_mm256_extractf128_ps(v, 1), p[2], p[3]);
}

template <>
struct Blocks<xsimd::fma3<xsimd::avx2>> {
  using R = __m256;
  static R load4(const float* const* p) { return load4_256(p); }
  static void store4(R v, float* const* p) { store4_256(v, p); }
  static R load2x2(const float* const* p) { return load2x2_256(p); }
  static void store2x2(R v, float* const* p) { store2x2_256(v, p); }
  static R unpacklo(R a, R b) { return _mm256_unpacklo_ps(a, b); }
  static R unpackhi(R a, R b) { return _mm256_unpackhi_ps(a, b); }
  template <int Imm>
  static R shuffle(R a, R b) { return _mm256_shuffle_ps(a, b, Imm); }
};
#endif

#if defined(__AVX512F__)
inline __m512 join_256(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}
inline __m256 half_256(__m512 v, std::integral_constant<int, 0>) { return _mm512_castps512_ps256(v); }
inline __m256 half_256(__m512 v, std::integral_constant<int, 1>) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

template <>
struct Blocks<xsimd::avx512f> {
  using R = __m512;
  static R load4(const float* const* p) { return join_256(load4_256(p), load4_256(p + 2)); }
  static void store4(R v, float* const* p) {
    store4_256(half_256(v, std::integral_constant<int, 0>{}), p);
    store4_256(half_256(v, std::integral_constant<int, 1>{}), p + 2);
  }
  static R load2x2(const float* const* p) { return join_256(load2x2_256(p), load2x2_256(p + 4)); }
  static void store2x2(R v, float* const* p) {
    store2x2_256(half_256(v, std::integral_constant<int, 0>{}), p);
    store2x2_256(half_256(v, std::integral_constant<int, 1>{}), p + 4);
  }
  static R unpacklo(R a, R b) { return _mm512_unpacklo_ps(a, b); }
  static R unpackhi(R a, R b) { return _mm512_unpackhi_ps(a, b); }
  template <int Imm>
  static R shuffle(R a, R b) { return _mm512_shuffle_ps(a, b, Imm); }
};
#endif

template <class Arch, int M>
struct WinogradTile {
  using V = xsimd::batch<float, Arch>;
  using X = Blocks<Arch>;
  static constexpr int L = int(V::size);
  static constexpr int B = L / 4;  // 128-bit blocks per vector
  static constexpr int A = M + 2;  // tile side (alpha)
  static_assert(L % 4 == 0, "vectors of whole 128-bit blocks");

  // Four vectors whose block q holds 4 consecutive values of the tiles 4q+0 .. 4q+3 (one tile per
  // vector) -> four vectors of one value each, tiles in lane order: a 4x4 transpose per block.
  static void transpose4(const V* in, V* out) {
    const V t0 = X::unpacklo(in[0], in[1]), t1 = X::unpackhi(in[0], in[1]);
    const V t2 = X::unpacklo(in[2], in[3]), t3 = X::unpackhi(in[2], in[3]);
    out[0] = X::template shuffle<0x44>(t0, t2);
    out[1] = X::template shuffle<0xEE>(t0, t2);
    out[2] = X::template shuffle<0x44>(t1, t3);
    out[3] = X::template shuffle<0xEE>(t1, t3);
  }

  // d[i] (i < A) = element i of row r of each tile, lane j being tile j; the row of tile j starts
  // at p[j] (A floats, nothing read past them).
  static void load_row(const float* const* p, V* d) {
    if constexpr (M == 4) {
      // Block q of in[k]: columns 0-3 of tile 4q+k; of in2[h]: columns 4-5 of tiles 4q+2h, 4q+2h+1.
      V in[4], in2[2];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const float* q0[B];
        for (int q = 0; q < B; ++q) q0[q] = p[4 * q + k];
        in[k] = X::load4(q0);
      }
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const float* q1[2 * B];
        for (int q = 0; q < B; ++q)
          for (int e = 0; e < 2; ++e) q1[2 * q + e] = p[4 * q + 2 * h + e] + 4;
        in2[h] = X::load2x2(q1);
      }
      transpose4(in, d);
      d[4] = X::template shuffle<0x88>(in2[0], in2[1]);
      d[5] = X::template shuffle<0xDD>(in2[0], in2[1]);
    } else {
      // Block q of in[k]: columns 0-1 of tiles 4q+2k and 4q+2k+1, of in2[k] columns 2-3.
      V in[2], in2[2];
#pragma GCC unroll 2
      for (int k = 0; k < 2; ++k) {
        const float* q0[2 * B];
        const float* q1[2 * B];
        for (int q = 0; q < B; ++q)
          for (int e = 0; e < 2; ++e) q0[2 * q + e] = p[4 * q + 2 * k + e], q1[2 * q + e] = p[4 * q + 2 * k + e] + 2;
        in[k] = X::load2x2(q0);
        in2[k] = X::load2x2(q1);
      }
      finish_row2(in, in2, d);
    }
  }

  // As load_row for L tiles side by side: tile j's row at row + M*j.
  static void load_row_whole(const float* row, V* d) {
    if constexpr (M == 4) {
      const float* p[L];
      for (int j = 0; j < L; ++j) p[j] = row + 4 * j;
      load_row(p, d);
    } else {
      // The two tiles of a block are side by side: one 4-float load each.
      V in[2], in2[2];
#pragma GCC unroll 2
      for (int k = 0; k < 2; ++k) {
        const float* q0[B];
        const float* q1[B];
        for (int q = 0; q < B; ++q) q0[q] = row + 8 * q + 4 * k, q1[q] = q0[q] + 2;
        in[k] = X::load4(q0);
        in2[k] = X::load4(q1);
      }
      finish_row2(in, in2, d);
    }
  }

  static void finish_row2(const V* in, const V* in2, V* d) {
    d[0] = X::template shuffle<0x88>(in[0], in[1]);
    d[1] = X::template shuffle<0xDD>(in[0], in[1]);
    d[2] = X::template shuffle<0x88>(in2[0], in2[1]);
    d[3] = X::template shuffle<0xDD>(in2[0], in2[1]);
  }

  // Row r of the output of each tile (o[c], lane j = tile j) to M floats at p[j].
  static void store_row(const V* o, float* const* p) {
    if constexpr (M == 4) {
      V out[4];
      transpose4(o, out);  // block q of out[k]: the 4 values of tile 4q+k
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        float* q0[B];
        for (int q = 0; q < B; ++q) q0[q] = p[4 * q + k];
        X::store4(out[k], q0);
      }
    } else {
      // Block q of out[k]: the 2 values of tiles 4q+2k and 4q+2k+1.
      const V out[2] = {X::unpacklo(o[0], o[1]), X::unpackhi(o[0], o[1])};
#pragma GCC unroll 2
      for (int k = 0; k < 2; ++k) {
        float* q0[2 * B];
        for (int q = 0; q < B; ++q)
          for (int h = 0; h < 2; ++h) q0[2 * q + h] = p[4 * q + 2 * k + h];
        X::store2x2(out[k], q0);
      }
    }
  }

  // As store_row for L tiles side by side: tile j's row at row + M*j.
  static void store_row_whole(const V* o, float* row) {
    V out[4];
    constexpr int K = M == 4 ? 4 : 2;
    if constexpr (M == 4) {
      transpose4(o, out);
    } else {
      out[0] = X::unpacklo(o[0], o[1]), out[1] = X::unpackhi(o[0], o[1]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      float* q0[B];
      for (int q = 0; q < B; ++q) q0[q] = row + M * (4 * q + (4 / K) * k);
      X::store4(out[k], q0);
    }
  }
};

// Rows of the input (or output) that a chunk of L tiles touches, for software prefetching: the
// planes of the next channels are far apart and too many to be caught by hardware prefetchers.
struct Span {
  int64_t row, col_begin, col_end;
};
// How far ahead: 3 channels. (These prefetches first ran on 2026-12-01, GCC had deleted them: on the
// Zen 5, 2 threads, VGG-16's 64-channel 224x224 layer took 0.57x the time with 3 channels ahead, 0.66x
// with 8, 0.77x and 0.84x its 128- and 256-channel layers; the AVX2 kernels 0.79x, 0.97x, 0.94x.)
constexpr int kPrefetchChannels = 3;

// Up to two spans (a chunk crosses at most one tile-row boundary when the rows are wider than the
// chunk); returns 0 when the tiles lie on more rows (small images, cached after the first touch).
inline int chunk_spans(const int64_t* row0, const int64_t* col0, int64_t lanes, int64_t width, Span* spans) {
  int n = 0;
  for (int64_t j = 0; j < lanes; ++j) {
    if (n > 0 && spans[n - 1].row == row0[j]) {
      spans[n - 1].col_end = col0[j] + width;
      continue;
    }
    if (n == 2) return 0;
    spans[n++] = {row0[j], col0[j], col0[j] + width};
  }
  return n;
}

// Prefetches rows [row, row + rows) x the columns of each span, clipped to the plane [H x W] (for
// reading or writing alike: prefetchw would need a CPU check).
inline void prefetch_spans(const float* plane, const Span* spans, int n, int rows, int64_t H, int64_t W) {
  for (int s = 0; s < n; ++s) {
    const int64_t c0 = spans[s].col_begin < 0 ? 0 : spans[s].col_begin;
    const int64_t c1 = spans[s].col_end > W ? W : spans[s].col_end;
    if (c1 <= c0) continue;
    for (int r = 0; r < rows; ++r) {
      const int64_t y = spans[s].row + r;
      if (y < 0 || y >= H) continue;
      const float* row = plane + y * W;
      for (int64_t c = c0; c < c1; c += 16) prefetch_l1(row + c);
      prefetch_l1(row + c1 - 1);
    }
  }
}

// The input side of L tiles (one vector of tiles): where each tile's rows start, and for the tiles
// not wholly inside the image (and lanes past the last tile) a zero-padded copy of their rows.
template <class Arch, int M>
struct InputChunk {
  using T = WinogradTile<Arch, M>;
  using V = typename T::V;
  static constexpr int L = T::L, A = T::A;
  struct Range {
    int64_t begin, end;
  };

  alignas(64) float border[L][A][A];
  int64_t offset[L];    // of row 0 of each tile inside the image, in its channel plane
  Range rows[L], cols[L];  // of a border tile: the part of its rows inside the image
  bool inside[L];
  bool whole;  // L tiles side by side in one tile row, all inside
  int nspans;
  Span spans[2];
  int64_t span_base;  // the spans' image, as an offset from the first image's plane

  void init(const WinogradInputArgs& a, int64_t j0) {
    const int64_t lanes = a.tiles - j0 < 0 ? 0 : min_i64(L, a.tiles - j0);
    int64_t row0[L], col0[L], image[L];
    for (int64_t j = 0; j < L; ++j) {
      inside[j] = false;
      if (j < lanes) {
        const int64_t t = a.t0 + j0 + j, ti = t % a.tiles_per_image;
        image[j] = t / a.tiles_per_image;
        row0[j] = (ti / a.tiles_w) * M - a.pad_top;
        col0[j] = (ti % a.tiles_w) * M - a.pad_left;
        inside[j] = row0[j] >= 0 && row0[j] + A <= a.H && col0[j] >= 0 && col0[j] + A <= a.W;
        offset[j] = image[j] * a.image_stride + row0[j] * a.W + col0[j];
      }
      if (inside[j]) continue;
      // Zeroed once; each channel then copies only the part inside the image.
      for (int r = 0; r < A; ++r)
        for (int i = 0; i < A; ++i) border[j][r][i] = 0.0f;
      rows[j] = {0, 0}, cols[j] = {0, 0};
      if (j < lanes) {
        rows[j] = {row0[j] < 0 ? -row0[j] : 0, min_i64(A, a.H - row0[j])};
        cols[j] = {col0[j] < 0 ? -col0[j] : 0, min_i64(A, a.W - col0[j])};
        if (rows[j].end < rows[j].begin) rows[j].end = rows[j].begin;
        if (cols[j].end < cols[j].begin) cols[j].end = cols[j].begin;
      }
    }
    const bool one_image = lanes == 0 || image[0] == image[lanes - 1];
    whole = lanes == L && one_image && row0[0] == row0[L - 1] && inside[0] && inside[L - 1];
    nspans = one_image ? chunk_spans(row0, col0, lanes, A, spans) : 0;
    span_base = lanes > 0 ? image[0] * a.image_stride : 0;
  }

  // V of channel plane xc: element xi of lane j at dst[xi * xi_stride + j].
  void transform(const float* xc, int64_t W, float* dst, int64_t xi_stride) {
    for (int j = 0; j < L; ++j) {
      if (inside[j]) continue;
      for (int64_t r = rows[j].begin; r < rows[j].end; ++r) {
        const float* src = xc + offset[j] + r * W;
        if constexpr (L >= A) {  // the row's part inside the image in one masked load, zeros around it
          store_lanes(border[j][r], load_masked<V>(src, int(cols[j].begin), int(cols[j].end)), A);
        } else {
          for (int64_t i = cols[j].begin; i < cols[j].end; ++i) border[j][r][i] = src[i];
        }
      }
    }
    // Along the rows as they are loaded, then down the columns straight into V (the rows'
    // results wait in `h`, in L1: 36 vectors do not fit in registers anyway).
    alignas(64) float h[A][A][L];
    const float* p[L];
    for (int j = 0; j < L; ++j) p[j] = inside[j] ? xc + offset[j] : border[j][0];
#pragma GCC unroll 8
    for (int r = 0; r < A; ++r) {
      V d[A], t[A];
      if (whole)
        T::load_row_whole(p[0], d);
      else
        T::load_row(p, d);
      for (int j = 0; j < L; ++j) p[j] += inside[j] ? W : A;
      Transform1d<M>::input(d, t);
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i) t[i].store_aligned(h[r][i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i) {
      V col[A], v[A];
#pragma GCC unroll 8
      for (int r = 0; r < A; ++r) col[r] = V::load_aligned(h[r][i]);
      Transform1d<M>::input(col, v);
#pragma GCC unroll 8
      for (int r = 0; r < A; ++r) v[r].store_aligned(dst + (r * A + i) * xi_stride);
    }
  }
};

// Chunks of L tiles transformed together: the chunks of one micro-panel, so that each line of V is
// written whole while it is in L1 (NR / L of them; more go round again).
constexpr int kChunksPerPass = 4;

template <class Arch, int M>
void winograd_input_transform(const WinogradInputArgs& args) {
  using C = InputChunk<Arch, M>;
  constexpr int L = C::L, A = C::A;
  const WinogradInputArgs a = args;  // locals: the stores below cannot change them
  const int64_t HW = a.H * a.W, nr = a.nr;
  C chunks[kChunksPerPass];
  for (int64_t j0 = 0; j0 < a.columns;) {
    // Within one micro-panel (nr is a multiple of L).
    const int64_t panel_end = min_i64((j0 / nr + 1) * nr, a.columns);
    const int n = int(min_i64(kChunksPerPass, (panel_end - j0) / L));
    for (int u = 0; u < n; ++u) chunks[u].init(a, j0 + u * L);
    float* out = a.v + (j0 / nr) * a.channels * nr + j0 % nr;
    for (int64_t c = 0; c < a.channels; ++c) {
      const float* xc = a.x + c * HW;
      if (c + kPrefetchChannels < a.channels)
        for (int u = 0; u < n; ++u)
          prefetch_spans(xc + kPrefetchChannels * HW + chunks[u].span_base, chunks[u].spans, chunks[u].nspans, A,
                         a.H, a.W);
      for (int u = 0; u < n; ++u) chunks[u].transform(xc, a.W, out + c * nr + u * L, a.xi_stride);
    }
    j0 += n * L;
  }
}

// The output side of L tiles: where each tile's outputs go, whether they all lie inside P x Q.
template <int L, int M>
struct OutputChunk {
  int64_t offset[L];  // of each tile's first output in its channel plane
  int64_t rows[L], cols[L];
  bool inside[L];
  bool whole;  // L whole tiles side by side in one tile row
  int64_t lanes;
  int nspans;
  Span spans[2];
  int nruns;         // runs of lanes in one tile row of one image: their outputs are side by side in y
  int run[L + 1];    // run i: lanes [run[i], run[i + 1])
  int64_t span_base;  // the spans' image, as an offset from the first image's plane

  void init(const WinogradOutputArgs& a, int64_t j0) {
    lanes = min_i64(L, a.tiles - j0);
    int64_t row0[L], col0[L], image[L];
    for (int64_t j = 0; j < L; ++j) {
      inside[j] = false;
      if (j >= lanes) continue;
      const int64_t t = a.t0 + j0 + j, ti = t % a.tiles_per_image;
      image[j] = t / a.tiles_per_image;
      row0[j] = (ti / a.tiles_w) * M;
      col0[j] = (ti % a.tiles_w) * M;
      offset[j] = image[j] * a.image_stride + row0[j] * a.Q + col0[j];
      rows[j] = min_i64(M, a.P - row0[j]), cols[j] = min_i64(M, a.Q - col0[j]);
      inside[j] = rows[j] == M && cols[j] == M;
    }
    const bool one_image = lanes <= 0 || image[0] == image[lanes - 1];
    whole = lanes == L && one_image && row0[0] == row0[L - 1] && inside[L - 1];
    nspans = one_image ? chunk_spans(row0, col0, lanes, M, spans) : 0;
    span_base = lanes > 0 ? image[0] * a.image_stride : 0;
    nruns = 0;
    for (int64_t j = 0; j < lanes; ++j)
      if (j == 0 || row0[j] != row0[j - 1] || image[j] != image[j - 1]) run[nruns++] = int(j);
    run[nruns] = int(lanes);
  }
};

constexpr int kOutputChunksPerPass = 16;

template <class Arch, int M>
void winograd_output_transform(const WinogradOutputArgs& args) {
  using T = WinogradTile<Arch, M>;
  using V = typename T::V;
  constexpr int L = T::L, A = T::A;
  using C = OutputChunk<L, M>;
  const WinogradOutputArgs a = args;  // locals: the stores below cannot change them
  const int64_t PQ = a.P * a.Q;
  alignas(64) float border[L][M][M];  // tiles not wholly inside P x Q: written here, then clipped
  alignas(64) float h[A][M][L];       // M transformed along its rows
  alignas(64) float stage[M][L * M];  // with post-ops: the outputs of L tiles before they go to y
  C chunks[kOutputChunksPerPass];
  // Without a residual, relu and relu6 are a clamp applied to the tiles in registers (activation_clamp:
  // the epilogue's bits), and the outputs take the plain stores; the others go through the stage.
  float lo = 0, hi = 0;
  const bool clamp = a.epilogue && !a.residual && activation_clamp(a.epilogue->params, lo, hi);
  const V vlo(lo), vhi(hi);
  // All chunks of a channel one after the other: each line of M is read whole.
  for (int64_t t0 = 0; t0 < a.tiles; t0 += L * kOutputChunksPerPass) {
    const int n = int(min_i64(kOutputChunksPerPass, (a.tiles - t0 + L - 1) / L));
    for (int u = 0; u < n; ++u) chunks[u].init(a, t0 + u * L);
    for (int64_t k = 0; k < a.channels; ++k) {
      float* yk = a.y + k * PQ;
      const float* rk = a.residual ? a.residual + k * PQ : nullptr;
      if (k + kPrefetchChannels < a.channels)
        for (int u = 0; u < n; ++u)
          prefetch_spans(yk + kPrefetchChannels * PQ + chunks[u].span_base, chunks[u].spans, chunks[u].nspans, M,
                         a.P, a.Q);
      if (rk && k + kPrefetchChannels < a.channels)  // the residual the epilogue reads, likewise ahead
        for (int u = 0; u < n; ++u)
          prefetch_spans(rk + kPrefetchChannels * PQ + chunks[u].span_base, chunks[u].spans, chunks[u].nspans, M,
                         a.P, a.Q);
      const V bias(a.bias[k]);
      for (int u = 0; u < n; ++u) {
        const C& ch = chunks[u];
        // Along the rows of M, then down the columns, plus the bias: the outputs of each tile.
        const float* mk = a.m + k * a.ldm + t0 + u * L;
#pragma GCC unroll 8
        for (int r = 0; r < A; ++r) {
          V s[A], t[M];
#pragma GCC unroll 8
          for (int i = 0; i < A; ++i) s[i] = V::load_aligned(mk + (r * A + i) * a.xi_stride);
          Transform1d<M>::output(s, t);
#pragma GCC unroll 4
          for (int c = 0; c < M; ++c) t[c].store_aligned(h[r][c]);
        }
        V o[M][M];
#pragma GCC unroll 4
        for (int c = 0; c < M; ++c) {
          V col[A], t[M];
#pragma GCC unroll 8
          for (int r = 0; r < A; ++r) col[r] = V::load_aligned(h[r][c]);
          Transform1d<M>::output(col, t);
#pragma GCC unroll 4
          for (int r = 0; r < M; ++r) o[r][c] = t[r] + bias;
        }
        if (clamp) {
#pragma GCC unroll 4
          for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
            for (int c = 0; c < M; ++c) o[r][c] = clamp_lanes(o[r][c], vlo, vhi);
        } else if (a.epilogue) {
          // Post-ops: the tiles' rows side by side on the stack (as y holds whole tiles), then to y
          // through the epilogue, run by run of tiles in one tile row, clipped to P x Q.
#pragma GCC unroll 4
          for (int r = 0; r < M; ++r) T::store_row_whole(o[r], stage[r]);
          for (int i = 0; i < ch.nruns; ++i) {
            const int j0 = ch.run[i], j1 = ch.run[i + 1];
            const int64_t cols = int64_t(j1 - 1 - j0) * M + ch.cols[j1 - 1];
            a.epilogue->apply_from(stage[0] + j0 * M, L * M, yk + ch.offset[j0],
                                   rk ? rk + ch.offset[j0] : nullptr, a.Q, ch.rows[j0], cols);
          }
          continue;
        }
        if (ch.whole) {
          float* row = yk + ch.offset[0];
#pragma GCC unroll 4
          for (int r = 0; r < M; ++r) T::store_row_whole(o[r], row + r * a.Q);
          continue;
        }
        float* p[L];
        for (int j = 0; j < L; ++j) p[j] = ch.inside[j] ? yk + ch.offset[j] : border[j][0];
#pragma GCC unroll 4
        for (int r = 0; r < M; ++r) {
          T::store_row(o[r], p);
          for (int j = 0; j < L; ++j) p[j] += ch.inside[j] ? a.Q : M;
        }
        for (int64_t j = 0; j < ch.lanes; ++j) {
          if (ch.inside[j]) continue;
          float* dst = yk + ch.offset[j];
          for (int64_t r = 0; r < ch.rows[j]; ++r)
            for (int64_t c = 0; c < ch.cols[j]; ++c) dst[r * a.Q + c] = border[j][r][c];
        }
      }
    }
  }
}

// The filter transform, filter r in lane r: plain loops over the lanes, vectorised by the compiler
// with this unit's instruction set. (Packing runs every step in training.) No multiply-add
// contraction: the bits must be those of the one-filter transform, compiled without FMA.
#if defined(__clang__)
#define FASTCONV_NO_FP_CONTRACT
#else
#define FASTCONV_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#endif
template <int A>
FASTCONV_NO_FP_CONTRACT void winograd_filter_transform_lanes(const double (&G)[A][3], const float* w,
                                                             int64_t filter_stride, int rows, double* u) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  constexpr int L = kWinogradFilterLanes;
  double g[9][L] = {}, t[A][3][L];
  for (int r = 0; r < rows; ++r)
    for (int e = 0; e < 9; ++e) g[e][r] = w[r * filter_stride + e];
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < 3; ++j)
      for (int r = 0; r < L; ++r) t[i][j][r] = G[i][0] * g[j][r] + G[i][1] * g[3 + j][r] + G[i][2] * g[6 + j][r];
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < A; ++j)
      for (int r = 0; r < L; ++r)
        u[(i * A + j) * L + r] = t[i][0][r] * G[j][0] + t[i][1][r] * G[j][1] + t[i][2][r] * G[j][2];
}
#undef FASTCONV_NO_FP_CONTRACT
void winograd_filter_f2x2(const float* w, int64_t filter_stride, int rows, double* u) {
  winograd_filter_transform_lanes(kWinogradG2, w, filter_stride, rows, u);
}
void winograd_filter_f4x4(const float* w, int64_t filter_stride, int rows, double* u) {
  winograd_filter_transform_lanes(kWinogradG4, w, filter_stride, rows, u);
}

template <class Arch>
WinogradTransforms make_winograd_transforms(const char* isa) {
  return {isa,
          int(xsimd::batch<float, Arch>::size),
          winograd_input_transform<Arch, 2>,
          winograd_input_transform<Arch, 4>,
          winograd_output_transform<Arch, 2>,
          winograd_output_transform<Arch, 4>,
          winograd_filter_f2x2,
          winograd_filter_f4x4};
}

}  // namespace
}  // namespace fastconv::detail
