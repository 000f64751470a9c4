// The direct convolution kernels, written once over the xsimd architecture. Included only by the
// per-ISA translation units (direct_kernels__<isa>.cpp), each compiled with its own flags.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <immintrin.h>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "core/epilogue_impl.hpp"
#include "core/masked_lanes_impl.hpp"
#include "direct/direct_kernels.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// A loaded vector used by several FMAs: stops GCC from folding the load into each of them (one
// load per use, half of them crossing cache lines).
template <class V>
inline V in_register(V v) {
  typename V::register_type r = v;
  if constexpr (V::size == 16)
    asm("" : "+v"(r));
  else
    asm("" : "+x"(r));
  return V(r);
}


// The even and odd elements of the 2L floats a:b.
template <class V>
__attribute__((always_inline)) inline void deinterleave(const V& a, const V& b, V& even, V& odd) {
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
    // Swap 128-bit halves to [a0..a3 | b0..b3] and [a4..a7 | b4..b7], then in-lane shuffles
    // (measured the cheapest on Zen 3).
    const __m256 lo = _mm256_permute2f128_ps(a, b, 0x20), hi = _mm256_permute2f128_ps(a, b, 0x31);
    even = V(_mm256_shuffle_ps(lo, hi, 0x88));
    odd = V(_mm256_shuffle_ps(lo, hi, 0xDD));
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

// Columns first + j*sw of a row, zeros outside it. kStride > 0 fixes the stride at compile time, so
// that the compiler turns the strided copy into vector loads and shuffles; 0 takes sw, element by
// element.
template <int kStride>
void pack_segment(const float* src, int64_t W, int64_t first, int64_t sw, int64_t wph, float* dst) {
  if constexpr (kStride > 0) sw = kStride;
  int64_t jb = first >= 0 ? 0 : (-first + sw - 1) / sw;
  int64_t je = first <= W - 1 ? (W - 1 - first) / sw + 1 : 0;
  if (je > wph) je = wph;
  if (jb > je) jb = je;
  for (int64_t j = 0; j < jb; ++j) dst[j] = 0.0f;
  for (int64_t j = jb; j < je; ++j) dst[j] = src[first + j * sw];
  for (int64_t j = je; j < wph; ++j) dst[j] = 0.0f;
}

#if defined(__AVX512F__)
// The 3 column phases of the 48 floats a:b:c (16 lanes): phase k's lane j is float 3j + k, from
// a:b while that is below 32 (lanes 0-10, 0-9 for k = 2), else from c: two permutes per phase.
inline void split3(__m512 a, __m512 b, __m512 c, __m512 (&out)[3]) {
  const __m512i ab0 = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0, 0, 0, 0, 0);
  const __m512i ab1 = _mm512_setr_epi32(1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 0, 0, 0, 0, 0);
  const __m512i ab2 = _mm512_setr_epi32(2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0, 0, 0, 0, 0, 0);
  const __m512i c0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 7, 10, 13);
  const __m512i c1 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 5, 8, 11, 14);
  const __m512i c2 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 6, 9, 12, 15);
  out[0] = _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(a, ab0, b), __mmask16(0xF800), c0, c);
  out[1] = _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(a, ab1, b), __mmask16(0xF800), c1, c);
  out[2] = _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(a, ab2, b), __mmask16(0xFC00), c2, c);
}
#endif

// The SW column phases of a vector of outputs: SW loads, split by a tree of de-interleaves (stride
// 3: two permutes per phase, AVX-512 only).
template <class V, int SW>
void split_phases(const float* p, V (&out)[SW]) {
  constexpr int L = int(V::size);
  if constexpr (SW == 1) {
    out[0] = V::load_unaligned(p);
#if defined(__AVX512F__)
  } else if constexpr (SW == 3) {
    static_assert(L == 16, "stride 3 splits 16 lanes");
    __m512 r[3];
    split3(V::load_unaligned(p), V::load_unaligned(p + L), V::load_unaligned(p + 2 * L), r);
    for (int k = 0; k < 3; ++k) out[k] = V(r[k]);
#endif
  } else if constexpr (SW == 2) {
    deinterleave(V::load_unaligned(p), V::load_unaligned(p + L), out[0], out[1]);
  } else {
#if defined(__AVX2__)
    if constexpr (L == 8) {
      // 128-bit halves regrouped, then a 4x4 transpose in each lane: 12 shuffles instead of 16.
      const __m256 a = V::load_unaligned(p), b = V::load_unaligned(p + L);
      const __m256 c = V::load_unaligned(p + 2 * L), d = V::load_unaligned(p + 3 * L);
      const __m256 r0 = _mm256_permute2f128_ps(a, c, 0x20), r1 = _mm256_permute2f128_ps(a, c, 0x31);
      const __m256 r2 = _mm256_permute2f128_ps(b, d, 0x20), r3 = _mm256_permute2f128_ps(b, d, 0x31);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      out[0] = V(_mm256_shuffle_ps(t0, t2, 0x44));
      out[1] = V(_mm256_shuffle_ps(t0, t2, 0xEE));
      out[2] = V(_mm256_shuffle_ps(t1, t3, 0x44));
      out[3] = V(_mm256_shuffle_ps(t1, t3, 0xEE));
      return;
    }
#endif
    V e0, o0, e1, o1;
    deinterleave(V::load_unaligned(p), V::load_unaligned(p + L), e0, o0);
    deinterleave(V::load_unaligned(p + 2 * L), V::load_unaligned(p + 3 * L), e1, o1);
    deinterleave(e0, e1, out[0], out[2]);
    deinterleave(o0, o1, out[1], out[3]);
  }
}

// Rows into SW segments of wph floats (segment k: columns ix0 + k + SW*j, zeros outside the row).
// Every segment vector is written once, aligned; the loads of the columns that reach past an edge
// of the row are masked (the mask planned once per column, reused down the rows).
template <class V, int SW>
void pack_rows_phased(const RowPack& a) {
  constexpr int L = int(V::size);
  const int64_t wph = a.wph, W = a.W, rs = a.row_stride;
  // Rows inside the input: [i0, i1); the others are zeros.
  int64_t i0 = -a.iy0, i1 = a.H - a.iy0;
  i0 = i0 < 0 ? 0 : i0 > a.rows ? a.rows : i0;
  i1 = i1 < i0 ? i0 : i1 > a.rows ? a.rows : i1;
  const V zero(0.0f);
  for (int64_t i = 0; i < a.rows; ++i) {
    if (i == i0) i = i1;
    if (i == a.rows) break;
    for (int64_t j = 0; j < SW * wph; j += L) zero.store_aligned(a.dst + i * rs + j);
  }
  const int64_t n = i1 - i0;
  if (n == 0) return;
  const float* x0 = a.x + (a.iy0 + i0) * W + a.ix0;  // column ix0 of the first inside row
  float* d0 = a.dst + i0 * rs;
  for (int64_t j = 0; j < wph; j += L) {
    const float* s = x0 + SW * j;
    float* d = d0 + j;
    // Input columns [c, c + SW*L) relative to the row: plain loads when all inside.
    const int64_t c = a.ix0 + SW * j;
    if (c >= 0 && c + SW * L <= W) {
      for (int64_t i = 0; i < n; ++i, s += W, d += rs) {
        V ph[SW];
        split_phases<V, SW>(s, ph);
        for (int k = 0; k < SW; ++k) ph[k].store_aligned(d + k * wph);
      }
      continue;
    }
    // Lanes inside the row per load.
    auto m = [&](int t) { return RangeLoad<V>::inside_row(c + t * L, W); };
    if constexpr (SW == 1) {
      const RangeLoad<V> m0 = m(0);
      for (int64_t i = 0; i < n; ++i, s += W, d += rs) m0.load(s).store_aligned(d);
    } else if constexpr (SW == 2) {
      const RangeLoad<V> m0 = m(0), m1 = m(1);
      for (int64_t i = 0; i < n; ++i, s += W, d += rs) {
        V e, o;
        deinterleave(m0.load(s), m1.load(s + L), e, o);
        e.store_aligned(d);
        o.store_aligned(d + wph);
      }
#if defined(__AVX512F__)
    } else if constexpr (SW == 3) {
      const RangeLoad<V> m0 = m(0), m1 = m(1), m2 = m(2);
      for (int64_t i = 0; i < n; ++i, s += W, d += rs) {
        __m512 p[3];
        split3(m0.load(s), m1.load(s + L), m2.load(s + 2 * L), p);
        for (int k = 0; k < 3; ++k) V(p[k]).store_aligned(d + k * wph);
      }
#endif
    } else {
      const RangeLoad<V> m0 = m(0), m1 = m(1), m2 = m(2), m3 = m(3);
      for (int64_t i = 0; i < n; ++i, s += W, d += rs) {
        V e0, o0, e1, o1, p[4];
        deinterleave(m0.load(s), m1.load(s + L), e0, o0);
        deinterleave(m2.load(s + 2 * L), m3.load(s + 3 * L), e1, o1);
        deinterleave(e0, e1, p[0], p[2]);
        deinterleave(o0, o1, p[1], p[3]);
        for (int k = 0; k < 4; ++k) p[k].store_aligned(d + k * wph);
      }
    }
  }
}

// Segments are whole vectors (wph is a multiple of L). Stride 1, and strides 2 and 4 (and 3 on
// AVX-512) with every phase present, go a vector at a time; stride 3 otherwise through the
// compiler's strided copy; other strides element by element.
template <class Arch>
void pack_rows(const RowPack& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  const bool all_phases = a.phases == a.sw;
  if (a.sw == 1) return pack_rows_phased<V, 1>(a);
  if (a.sw == 2 && all_phases) return pack_rows_phased<V, 2>(a);
  if (a.sw == 4 && all_phases) return pack_rows_phased<V, 4>(a);
#if defined(__AVX512F__)
  if constexpr (L == 16)
    if (a.sw == 3 && all_phases) return pack_rows_phased<V, 3>(a);
#endif
  for (int64_t i = 0; i < a.rows; ++i) {
    float* d = a.dst + i * a.row_stride;
    const int64_t iy = a.iy0 + i;
    if (iy < 0 || iy >= a.H) {
      for (int64_t j = 0; j < a.phases * a.wph; j += L) V(0.0f).store_aligned(d + j);
      continue;
    }
    for (int64_t k = 0; k < a.phases; ++k) {
      const float* row = a.x + iy * a.W;
      const int64_t first = a.ix0 + a.phase[k];
      if (a.sw == 3)
        pack_segment<3>(row, a.W, first, a.sw, a.wph, d + k * a.wph);
      else
        pack_segment<0>(row, a.W, first, a.sw, a.wph, d + k * a.wph);
    }
  }
}

#pragma GCC pop_options

// Only the activations common in CNNs (none, relu, relu6) are inlined into every tile and strip
// shape; the others go through one out-of-line function per vector type. Inlining all ten made
// these units compile ten times longer (over 20 minutes each under ASan). Same operations, same bits.
template <class V>
__attribute__((noinline)) V activation_out_of_line(const EpilogueParams& p, V y) {
  switch (p.activation) {
    case Activation::None: return y;
    case Activation::Relu: return activation<V, Activation::Relu>(p, y);
    case Activation::Relu6: return activation<V, Activation::Relu6>(p, y);
    case Activation::LeakyRelu: return activation<V, Activation::LeakyRelu>(p, y);
    case Activation::Clamp: return activation<V, Activation::Clamp>(p, y);
    case Activation::Silu: return activation<V, Activation::Silu>(p, y);
    case Activation::Hardswish: return activation<V, Activation::Hardswish>(p, y);
    case Activation::Gelu: return activation<V, Activation::Gelu>(p, y);
    case Activation::Sigmoid: return activation<V, Activation::Sigmoid>(p, y);
    case Activation::Tanh: return activation<V, Activation::Tanh>(p, y);
  }
  return y;
}

// A: the activation inlined, or kOutOfLine for activation_out_of_line.
constexpr int kOutOfLine = -1;
template <int A, class V>
__attribute__((always_inline)) inline V tile_activation(const EpilogueParams& p, V y) {
  if constexpr (A == kOutOfLine)
    return activation_out_of_line(p, y);
  else
    return activation<V, Activation(A)>(p, y);
}

// store(std::integral_constant<int, A>) with A the activation as the stores take it: none, relu and
// relu6 inlined, the others kOutOfLine.
template <class Store>
__attribute__((always_inline)) inline void with_activation(Activation a, Store&& store) {
  switch (a) {
    case Activation::None: store(std::integral_constant<int, int(Activation::None)>{}); break;
    case Activation::Relu: store(std::integral_constant<int, int(Activation::Relu)>{}); break;
    case Activation::Relu6: store(std::integral_constant<int, int(Activation::Relu6)>{}); break;
    default: store(std::integral_constant<int, kOutOfLine>{}); break;
  }
}

// MK channels x NV vectors of accumulators. Per tap: the NV input vectors and the MK weights,
// whichever is fewer, stay in registers while the other is loaded once per use; one tap offset
// serves every vector ([in[v] + offset]).
// The tile's store with the post-ops applied in registers (inlined: the accumulators stay there).
template <int A, class V, int MK, int NV, class Lanes>
__attribute__((always_inline)) inline void store_tile_post(const DirectTile& t, V (&acc)[MK][NV], float* (&out)[NV],
                                                           Lanes lanes) {
  const EpilogueParams& p = *t.post;
#pragma GCC unroll 8
  for (int i = 0; i < MK; ++i) {
    if (i >= t.mk) break;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* o = out[v] + i * t.out_k_stride;
      V y = acc[i][v];
      if (t.residual) y = xsimd::fma(V(p.residual_scale), load_lanes<V>(t.residual + (o - t.out_base), lanes(v)), y);
      store_lanes(o, tile_activation<A>(p, y), lanes(v));
    }
  }
}

template <class Arch, int MK, int NV>
void direct_tile(const DirectTile& t) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  const float* in[NV];
  float* out[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) in[v] = t.in[v], out[v] = t.out[v];
  auto lanes = [&](int v) { return (t.partial_mask >> v) & 1u ? t.lanes_partial : L; };
  const float* w = t.w;
  const float* bias = t.bias;
  for (int64_t kb = 0; kb < t.nk; ++kb) {
    V acc[MK][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MK; ++i) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        if (i >= t.mk)
          acc[i][v] = V(0.0f);
        else if (bias)
          acc[i][v] = V(bias[i]);
        else
          acc[i][v] = load_lanes<V>(out[v] + i * t.out_k_stride, lanes(v));
      }
    }
    const float* wk = w;
#pragma GCC unroll 2
    for (int64_t k = 0; k < t.ntaps; ++k, wk += MK) {
      const int64_t off = t.taps[k];
      if constexpr (MK < NV) {
        V wv[MK];
#pragma GCC unroll 8
        for (int i = 0; i < MK; ++i) wv[i] = V(wk[i]);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) {
          const V x = in_register(V::load_unaligned(in[v] + off));
#pragma GCC unroll 8
          for (int i = 0; i < MK; ++i) acc[i][v] = xsimd::fma(wv[i], x, acc[i][v]);
        }
      } else {
        V x[NV];
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) x[v] = in_register(V::load_unaligned(in[v] + off));
#pragma GCC unroll 8
        for (int i = 0; i < MK; ++i) {
          const V wi(wk[i]);
#pragma GCC unroll 16
          for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(wi, x[v], acc[i][v]);
        }
      }
    }
    if (t.post) {
      with_activation(t.post->activation, [&](auto a) __attribute__((always_inline)) {
        store_tile_post<decltype(a)::value>(t, acc, out, lanes);
      });
    } else {
#pragma GCC unroll 8
      for (int i = 0; i < MK; ++i) {
        if (i >= t.mk) break;
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) store_lanes(out[v] + i * t.out_k_stride, acc[i][v], lanes(v));
      }
    }
    w += t.w_step;
    if (bias) bias += MK;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) out[v] += MK * t.out_k_stride;
  }
}

// One loaded input row vector (buffer row I) into every output row it reaches: output row m takes
// kernel row I - m*SH. The strips' helpers are always_inline: left to itself, GCC 12 called them out
// of line inside the larger strips, the accumulators through memory (tests/check_inlined_taps.sh).
template <int SH, int MP, int I, class V, int R, int... Rs>
__attribute__((always_inline)) inline void dw_row(V (&acc)[MP], const V (&wr)[R], const V& x,
                                                  std::integer_sequence<int, Rs...>) {
  (
      [&]() __attribute__((always_inline)) {
        constexpr int d = I - Rs;
        if constexpr (d >= 0 && d % SH == 0 && d / SH < MP) acc[d / SH] = xsimd::fma(wr[Rs], x, acc[d / SH]);
      }(),
      ...);
}

template <class Arch, int R, int SH, int MP, int... Is>
__attribute__((always_inline)) inline void dw_column(typename xsimd::batch<float, Arch> (&acc)[MP], const float* c,
                                                     int64_t rs, const float* ws, std::integer_sequence<int, Is...>) {
  using V = xsimd::batch<float, Arch>;
  V wr[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) wr[r] = V(ws[r]);
  (dw_row<SH, MP, Is>(acc, wr, in_register(V::load_unaligned(c + Is * rs)), std::make_integer_sequence<int, R>{}), ...);
}

// The strip's store with the post-ops applied in registers.
template <int A, class V, int MP>
__attribute__((always_inline)) inline void store_strip_post(const DwStrip& a, V (&acc)[MP], int64_t col, int lanes) {
  const EpilogueParams& p = *a.post;
#pragma GCC unroll 16
  for (int m = 0; m < MP; ++m) {
    float* o = a.out + m * a.ldo + col;
    V y = acc[m];
    if (a.residual) y = xsimd::fma(V(p.residual_scale), load_lanes<V>(a.residual + (o - a.out_base), lanes), y);
    store_lanes(o, tile_activation<A>(p, y), lanes);
  }
}

// The strip's MP output rows of one vector (lanes of them) at column col, post-ops applied.
template <class V, int MP>
__attribute__((always_inline)) inline void store_strip(const DwStrip& a, V (&acc)[MP], int64_t col, int lanes) {
  if (a.post) {
    with_activation(a.post->activation, [&](auto act) __attribute__((always_inline)) {
      store_strip_post<decltype(act)::value>(a, acc, col, lanes);
    });
    return;
  }
#pragma GCC unroll 16
  for (int m = 0; m < MP; ++m) store_lanes(a.out + m * a.ldo + col, acc[m], lanes);
}

// The strip vector by vector along the row: rows at least a vector wide end on a whole vector that
// overlaps the one before (same bits); narrower rows store part of one vector. taps(acc, col) adds
// every tap of the vector at column col to its MP accumulators.
template <class V, int MP, class Taps>
__attribute__((always_inline)) inline void dw_strip_vectors(const DwStrip& a, Taps&& taps) {
  constexpr int L = int(V::size);
  const int64_t nvec = (a.width + L - 1) / L;
  const int64_t last = a.width >= L ? a.width - L : 0;
  const int lanes = a.width >= L ? L : int(a.width);
  for (int64_t v = 0; v < nvec; ++v) {
    const int64_t col = v * L < last ? v * L : last;
    V acc[MP];
#pragma GCC unroll 16
    for (int m = 0; m < MP; ++m) acc[m] = V(a.bias);
    taps(acc, col);
    store_strip(a, acc, col, lanes);
  }
}

// 3x3 at stride 2 with dense columns (AVX-512, where the in-place kernels live): each row's three
// column taps together, v[s] = columns c + s + 2l of row I, tap by tap into every output row it
// reaches. Each output row takes one kernel row of input row I, so its FMAs run in (kernel row,
// column tap) order; the packed strip takes the same order, so that the two give the same bits. In
// place, the three come from one load of 33 columns (dw_strip_in_place).
// Every row of the strip: load3(i, v) gives row i's three tap vectors.
template <class V, int MP, class Load3, int... Is>
__attribute__((always_inline)) inline void dw_3x3_s2_rows(V (&acc)[MP], const V (&w)[3][3], Load3&& load3,
                                                          std::integer_sequence<int, Is...>) {
  (
      [&]() __attribute__((always_inline)) {
        V v[3];
        load3(Is, v);
        dw_row<2, MP, Is>(acc, w[0], v[0], std::make_integer_sequence<int, 3>{});
        dw_row<2, MP, Is>(acc, w[1], v[1], std::make_integer_sequence<int, 3>{});
        dw_row<2, MP, Is>(acc, w[2], v[2], std::make_integer_sequence<int, 3>{});
      }(),
      ...);
}

// Whether a strip takes the path above: a 16-lane 3x3 kernel at stride 2 over three dense column taps.
template <class V, int R, int SH>
constexpr bool kDw3x3S2Rows = V::size == 16 && R == 3 && SH == 2;
inline bool dense_3_taps(const DwStrip& a) { return a.S == 3 && a.dil_w == 1; }

template <class V>
__attribute__((always_inline)) inline void load_tap_weights_3x3(const float* w, V (&wv)[3][3]) {
  for (int s = 0; s < 3; ++s)
    for (int r = 0; r < 3; ++r) wv[s][r] = V(w[s * 3 + r]);
}

template <class Arch, int R, int SH, int MP>
void dw_strip(const DwStrip& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int kRows = (MP - 1) * SH + R;
  if constexpr (kDw3x3S2Rows<V, R, SH>) {
    if (dense_3_taps(a)) {
      V w[3][3];
      load_tap_weights_3x3(a.w, w);
      dw_strip_vectors<V, MP>(a, [&](V(&acc)[MP], int64_t col) __attribute__((always_inline)) {
        const float* b = a.buf + col;
        dw_3x3_s2_rows<V, MP>(acc, w, [&](int i, V(&v)[3]) __attribute__((always_inline)) {
          for (int s = 0; s < 3; ++s) v[s] = in_register(V::load_unaligned(b + a.soff[s] + i * a.row_stride));
        }, std::make_integer_sequence<int, kRows>{});
      });
      return;
    }
  }
  dw_strip_vectors<V, MP>(a, [&](V(&acc)[MP], int64_t col) __attribute__((always_inline)) {
    for (int64_t s = 0; s < a.S; ++s)
      dw_column<Arch, R, SH, MP>(acc, a.buf + col + a.soff[s], a.row_stride, a.w + s * R,
                                 std::make_integer_sequence<int, kRows>{});
  });
}

// Kernel row vectors of one tap read in place: lanes l of input columns c + l*SH of each row (zeros
// outside [0, W)), into every output row they reach, rows in order (the packed strip's order).
template <class Arch, int R, int SH, int MP, int... Is>
__attribute__((always_inline)) inline void dw_column_in_place(typename xsimd::batch<float, Arch> (&acc)[MP],
                                                              const float* const* rows, int64_t c, int64_t W,
                                                              const float* ws, std::integer_sequence<int, Is...>) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  V wr[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) wr[r] = V(ws[r]);
  if constexpr (SH == 1) {
    const RangeLoad<V> m = RangeLoad<V>::inside_row(c, W);
    (dw_row<SH, MP, Is>(acc, wr, m.load(rows[Is] + c), std::make_integer_sequence<int, R>{}), ...);
  } else {
    static_assert(SH == 2, "strides 1 and 2");
    const RangeLoad<V> m0 = RangeLoad<V>::inside_row(c, W), m1 = RangeLoad<V>::inside_row(c + L, W);
    (
        [&]() __attribute__((always_inline)) {
          V even, odd;
          deinterleave(m0.load(rows[Is] + c), m1.load(rows[Is] + c + L), even, odd);
          dw_row<SH, MP, Is>(acc, wr, even, std::make_integer_sequence<int, R>{});
        }(),
        ...);
  }
}

// dw_strip without the row buffer: the same taps in the same order (the same bits), each input
// vector loaded from the plane with its edge lanes masked, at stride 2 its even columns picked out.
// Saves the pack's pass over the input and its stores (at stride 2 the larger half of the time).
template <class Arch, int R, int SH, int MP>
void dw_strip_in_place(const DwStrip& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int kRows = (MP - 1) * SH + R;
  const float* rows[kRows];
  for (int i = 0; i < kRows; ++i) {
    const int64_t iy = a.iy0 + i;
    rows[i] = iy >= 0 && iy < a.H ? a.x + iy * a.W : a.zero_row;
  }
#if defined(__AVX512F__)
  if constexpr (kDw3x3S2Rows<V, R, SH>) {
    if (dense_3_taps(a)) {
      V w[3][3];
      load_tap_weights_3x3(a.w, w);
      const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
      dw_strip_vectors<V, MP>(a, [&](V(&acc)[MP], int64_t col) __attribute__((always_inline)) {
        // Columns c .. c + 32 of each row: the even ones, the odd ones, the even ones a lane on.
        const int64_t c = a.ix0 + col * 2;
        const RangeLoad<V> m0 = RangeLoad<V>::inside_row(c, a.W), m1 = RangeLoad<V>::inside_row(c + 16, a.W);
        const RangeLoad<V> m2 = RangeLoad<V>::inside_row(c + 32, a.W);
        const RangeLoad<V> m32(m2.lo, m2.hi < 1 ? m2.hi : 1);  // column c + 32 only
        dw_3x3_s2_rows<V, MP>(acc, w, [&](int i, V(&v)[3]) __attribute__((always_inline)) {
          deinterleave(m0.load(rows[i] + c), m1.load(rows[i] + c + 16), v[0], v[1]);
          v[2] = V(_mm512_permutex2var_ps(v[0], next, m32.load(rows[i] + c + 32)));
        }, std::make_integer_sequence<int, kRows>{});
      });
      return;
    }
  }
#endif
  dw_strip_vectors<V, MP>(a, [&](V(&acc)[MP], int64_t col) __attribute__((always_inline)) {
    for (int64_t s = 0; s < a.S; ++s)
      dw_column_in_place<Arch, R, SH, MP>(acc, rows, a.ix0 + col * SH + s * a.dil_w, a.W, a.w + s * R,
                                          std::make_integer_sequence<int, kRows>{});
  });
}

// N outputs of a row (q, q+1, ...) in N accumulators, the taps in (r, s) order.
template <class V, int N>
inline void dw_channel_outputs(const DwChannels& a, const float* row, const V& bias, int64_t q, float* out) {
  constexpr int64_t L = int64_t(V::size);
  V acc[N];
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) acc[i] = bias;
  for (int64_t r = 0; r < a.R; ++r)
    for (int64_t s = 0; s < a.S; ++s) {
      const V w = V::load_aligned(a.w + (r * a.S + s) * L);
      const float* in = row + (r * a.dh * a.tw + q * a.sw + s * a.dw) * L;
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) acc[i] = xsimd::fma(V::load_aligned(in + i * a.sw * L), w, acc[i]);
    }
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) acc[i].store_aligned(out + (q + i) * L);
}

// Eight outputs of a row at a time (two FMA pipes of latency 4: eight chains in flight), the
// row's last 1-7 together as well; the taps' weights reloaded from L1 for each group.
template <class Arch>
void dw_channels(const DwChannels& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t L = int64_t(V::size);
  const V bias = V::load_aligned(a.bias);
  for (int64_t p = 0; p < a.P; ++p) {
    const float* row = a.t + p * a.sh * a.tw * L;
    float* out = a.o + p * a.Q * L;
    int64_t q = 0;
    for (; q + 8 <= a.Q; q += 8) dw_channel_outputs<V, 8>(a, row, bias, q, out);
    switch (a.Q - q) {
      case 7: dw_channel_outputs<V, 7>(a, row, bias, q, out); break;
      case 6: dw_channel_outputs<V, 6>(a, row, bias, q, out); break;
      case 5: dw_channel_outputs<V, 5>(a, row, bias, q, out); break;
      case 4: dw_channel_outputs<V, 4>(a, row, bias, q, out); break;
      case 3: dw_channel_outputs<V, 3>(a, row, bias, q, out); break;
      case 2: dw_channel_outputs<V, 2>(a, row, bias, q, out); break;
      case 1: dw_channel_outputs<V, 1>(a, row, bias, q, out); break;
      default: break;
    }
  }
}

template <class Arch, int Accs, int MkLog, int NV>
void set_tile(DirectKernels& k) {
  constexpr int MK = 1 << MkLog;
  if constexpr (MK * NV <= Accs) k.tile[MkLog][NV - 1] = direct_tile<Arch, MK, NV>;
}

template <class Arch, int Accs, int MkLog, int... NVs>
void set_tiles(DirectKernels& k, std::integer_sequence<int, NVs...>) {
  (set_tile<Arch, Accs, MkLog, NVs + 1>(k), ...);
}

template <class Arch, int RIndex, int SH, int MaxRows, int M>
void set_dw_one(DirectKernels& k) {
  if constexpr (M <= MaxRows) {
    k.dw[RIndex][SH - 1][M - 1] = dw_strip<Arch, 3 + 2 * RIndex, SH, M>;
    // In place: AVX-512 only (with AVX2's masks in vector registers and three shuffles per stride-2
    // load it ran 1.1-1.4x the packed strip's time, the Zen 5 capped at AVX2; SSE2's range loads go
    // lane by lane), and at stride 2 only 3x3 (5x5 and 7x7 reload and permute every row for each
    // column tap: 1.07-1.35x the packed time on the Zen 5; 3x3/s2 0.87-1.0x, stride 1 within 5%).
    if constexpr (xsimd::batch<float, Arch>::size == 16 && (SH == 1 || RIndex == 0))
      k.dw_in_place[RIndex][SH - 1][M - 1] = dw_strip_in_place<Arch, 3 + 2 * RIndex, SH, M>;
  }
}

template <class Arch, int RIndex, int SH, int MaxRows, int... Ms>
void set_dw(DirectKernels& k, std::integer_sequence<int, Ms...>) {
  (set_dw_one<Arch, RIndex, SH, MaxRows, Ms + 1>(k), ...);
}

// Regs: vector registers. A tile keeps MK*NV accumulators plus its operands; the depthwise
// strip keeps MP accumulators, R weights and one input vector.
template <class Arch, int Regs, int Accs, int MkVariants>
void fill_kernels(DirectKernels& k, Isa isa) {
  k = DirectKernels{};
  k.isa = isa;
  k.lanes = int(xsimd::batch<float, Arch>::size);
  k.mk_variants = MkVariants;
  k.accumulators = Accs;
  set_tiles<Arch, Accs, 0>(k, std::make_integer_sequence<int, kMaxNv>{});
  set_tiles<Arch, Accs, 1>(k, std::make_integer_sequence<int, kMaxNv>{});
  set_tiles<Arch, Accs, 2>(k, std::make_integer_sequence<int, kMaxNv>{});
  if constexpr (MkVariants > 3) set_tiles<Arch, Accs, 3>(k, std::make_integer_sequence<int, kMaxNv>{});
  // Besides the input vector (and without FMA a temporary), a register of slack for the compiler,
  // except at R = 7 where it would leave 7 accumulators, fewer than the 8 that two FMA pipes of
  // latency 4 need.
  constexpr int kSpare = Regs == 16 && Accs == 8 ? 3 : 2;
  constexpr int kRows3 = Regs - 3 - kSpare < kMaxDwRows ? Regs - 3 - kSpare : kMaxDwRows;
  constexpr int kRows5 = Regs - 5 - kSpare < kMaxDwRows ? Regs - 5 - kSpare : kMaxDwRows;
  constexpr int kRows7 = Regs - 7 - kSpare + 1 < kMaxDwRows ? Regs - 7 - kSpare + 1 : kMaxDwRows;
  k.dw_rows[0] = kRows3, k.dw_rows[1] = kRows5, k.dw_rows[2] = kRows7;
  set_dw<Arch, 0, 1, kRows3>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 0, 2, kRows3>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 1, 1, kRows5>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 1, 2, kRows5>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 2, 1, kRows7>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  set_dw<Arch, 2, 2, kRows7>(k, std::make_integer_sequence<int, kMaxDwRows>{});
  k.pack = pack_rows<Arch>;
  k.dw_channels = dw_channels<Arch>;
}

}  // namespace
}  // namespace fastconv::detail
