// The Winograd tile transforms written once over the xsimd architecture, one tile per vector lane.
// Included only by the per-ISA translation units (winograd_transforms__<isa>.cpp), each compiled
// with its own flags; everything here has internal linkage.
#pragma once

#include <cstdint>
#include <utility>
#include <xsimd/xsimd.hpp>

#include "winograd/winograd_transforms.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// The 1D transforms of F(m, 3) on the points 0, +-1, +-2: B^T d (alpha values to alpha) and A^T s
// (alpha values to m). A 2D transform applies them down the columns first, then along the rows;
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

template <class F, int... Is>
inline void static_for_impl(F&& f, std::integer_sequence<int, Is...>) {
  (f(std::integral_constant<int, Is>{}), ...);
}
// f(integral_constant<int, 0>), ..., f(integral_constant<int, N - 1>).
template <int N, class F>
inline void static_for(F&& f) {
  static_for_impl(f, std::make_integer_sequence<int, N>{});
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

template <class Arch, int M>
struct WinogradTile {
  using V = xsimd::batch<float, Arch>;
  using U = xsimd::batch<uint32_t, Arch>;
  static constexpr int L = int(V::size);
  static constexpr int A = M + 2;  // tile side (alpha)

  // Lane j of compress<I> is src[M*j + I] where src is M consecutive vectors: the element I of L
  // consecutive tiles from a contiguous input row.
  template <int I>
  struct CompressLane {
    static constexpr unsigned get(unsigned j, unsigned) { return (M * j + I) % L; }
  };
  template <int I, int K>
  struct CompressFrom {
    static constexpr bool get(unsigned j, unsigned) { return (M * j + I) / L == K; }
  };
  template <int I>
  static V compress(const V* src) {
    constexpr auto lane = xsimd::make_batch_constant<U, CompressLane<I>>();
    V r = xsimd::swizzle(src[0], lane);
    static_for<M - 1>([&](auto k) {
      constexpr auto from = xsimd::make_batch_bool_constant<V, CompressFrom<I, decltype(k)::value + 1>>();
      r = xsimd::select(from, xsimd::swizzle(src[k + 1], lane), r);
    });
    return r;
  }

  // Output vector Q of expand is columns [Q*L, Q*L + L) of the row formed by L tiles of M
  // columns each: lane p is column c = (Q*L + p) % M of tile j = (Q*L + p) / M, from o[c].
  template <int Q>
  struct ExpandLane {
    static constexpr unsigned get(unsigned p, unsigned) { return (Q * L + p) / M; }
  };
  template <int Q, int C>
  struct ExpandFrom {
    static constexpr bool get(unsigned p, unsigned) { return (Q * L + p) % M == C; }
  };
  template <int Q>
  static V expand(const V* o) {
    constexpr auto lane = xsimd::make_batch_constant<U, ExpandLane<Q>>();
    V r = xsimd::swizzle(o[0], lane);
    static_for<M - 1>([&](auto c) {
      constexpr auto from = xsimd::make_batch_bool_constant<V, ExpandFrom<Q, decltype(c)::value + 1>>();
      r = xsimd::select(from, xsimd::swizzle(o[c + 1], lane), r);
    });
    return r;
  }

  // d[r][i] of L consecutive tiles of one tile row, from the input row of each tile row r:
  // loads M*(L+1) floats from `row`.
  static void load_row(const float* row, V* d) {
    V s0[M], s1[M];
#pragma GCC unroll 8
    for (int k = 0; k < M; ++k) {
      s0[k] = V::load_unaligned(row + k * L);
      s1[k] = V::load_unaligned(row + M + k * L);
    }
    static_for<M>([&](auto i) { d[i] = compress<decltype(i)::value>(s0); });
    static_for<A - M>([&](auto i) { d[M + i] = compress<decltype(i)::value>(s1); });
  }

  // v[xr*A + xc] = (B^T d B)[xr][xc].
  static void input_2d(V (&d)[A][A], V* v) {
    V t[A][A];
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i) {
      V col[A], out[A];
#pragma GCC unroll 8
      for (int r = 0; r < A; ++r) col[r] = d[r][i];
      Transform1d<M>::input(col, out);
#pragma GCC unroll 8
      for (int r = 0; r < A; ++r) t[r][i] = out[r];
    }
#pragma GCC unroll 8
    for (int r = 0; r < A; ++r) Transform1d<M>::input(t[r], v + r * A);
  }

  // o[r][c] = (A^T s A)[r][c] + bias.
  static void output_2d(const V* s, V bias, V (&o)[M][M]) {
    V u[M][A];
#pragma GCC unroll 8
    for (int c = 0; c < A; ++c) {
      V col[A], out[M];
#pragma GCC unroll 8
      for (int r = 0; r < A; ++r) col[r] = s[r * A + c];
      Transform1d<M>::output(col, out);
#pragma GCC unroll 8
      for (int r = 0; r < M; ++r) u[r][c] = out[r];
    }
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r) {
      Transform1d<M>::output(u[r], o[r]);
#pragma GCC unroll 8
      for (int c = 0; c < M; ++c) o[r][c] = o[r][c] + bias;
    }
  }
};

template <class Arch, int M>
void winograd_input_transform(const WinogradInputArgs& a) {
  using T = WinogradTile<Arch, M>;
  using V = typename T::V;
  constexpr int L = T::L, A = T::A;
  const int64_t HW = a.H * a.W, nr = a.nr;
  alignas(64) float patch[A * A * L];  // [r][i][lane]: tiles the vector path cannot load
  for (int64_t j0 = 0; j0 < a.columns; j0 += L) {
    float* out = a.v + (j0 / nr) * a.channels * nr + j0 % nr;
    const int64_t lanes = a.tiles - j0 < 0 ? 0 : min64(L, a.tiles - j0);
    int64_t row0[L], col0[L];
    for (int64_t j = 0; j < lanes; ++j) {
      const int64_t t = a.t0 + j0 + j;
      row0[j] = (t / a.tiles_w) * M - a.pad_top;
      col0[j] = (t % a.tiles_w) * M - a.pad_left;
    }
    // L tiles of one tile row, all their rows inside the image and the row loads too.
    const bool whole = lanes == L && row0[0] == row0[L - 1] && row0[0] >= 0 && row0[0] + A <= a.H && col0[0] >= 0 &&
                       col0[0] + M * (L + 1) <= a.W;
    if (!whole)
      for (int i = 0; i < A * A * L; ++i) patch[i] = 0.0f;
    for (int64_t c = 0; c < a.channels; ++c) {
      const float* xc = a.x + c * HW;
      V d[A][A];
      if (whole) {
        const float* base = xc + row0[0] * a.W + col0[0];
#pragma GCC unroll 8
        for (int r = 0; r < A; ++r) T::load_row(base + r * a.W, d[r]);
      } else {
        for (int64_t j = 0; j < lanes; ++j) {
          const int64_t r0 = row0[j], c0 = col0[j];
          if (r0 >= 0 && r0 + A <= a.H && c0 >= 0 && c0 + A <= a.W) {
            const float* src = xc + r0 * a.W + c0;
            for (int r = 0; r < A; ++r)
              for (int i = 0; i < A; ++i) patch[(r * A + i) * L + j] = src[r * a.W + i];
          } else {
            for (int r = 0; r < A; ++r)
              for (int i = 0; i < A; ++i) {
                const int64_t y = r0 + r, x = c0 + i;
                patch[(r * A + i) * L + j] = (y >= 0 && y < a.H && x >= 0 && x < a.W) ? xc[y * a.W + x] : 0.0f;
              }
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < A; ++r)
#pragma GCC unroll 8
          for (int i = 0; i < A; ++i) d[r][i] = V::load_aligned(patch + (r * A + i) * L);
      }
      V v[A * A];
      T::input_2d(d, v);
      float* dst = out + c * nr;
#pragma GCC unroll 36
      for (int xi = 0; xi < A * A; ++xi) v[xi].store_aligned(dst + xi * a.xi_stride);
    }
  }
}

template <class Arch, int M>
void winograd_output_transform(const WinogradOutputArgs& a) {
  using T = WinogradTile<Arch, M>;
  using V = typename T::V;
  constexpr int L = T::L, A = T::A;
  const int64_t PQ = a.P * a.Q;
  alignas(64) float patch[M * M * L];  // [r][c][lane]: tiles the vector path cannot store
  for (int64_t j0 = 0; j0 < a.tiles; j0 += L) {
    const int64_t lanes = min64(L, a.tiles - j0);
    int64_t row0[L], col0[L];
    for (int64_t j = 0; j < lanes; ++j) {
      const int64_t t = a.t0 + j0 + j;
      row0[j] = (t / a.tiles_w) * M;
      col0[j] = (t % a.tiles_w) * M;
    }
    // L whole tiles of one tile row.
    const bool whole = lanes == L && row0[0] == row0[L - 1] && row0[0] + M <= a.P && col0[0] + M * L <= a.Q;
    for (int64_t k = 0; k < a.channels; ++k) {
      const float* mk = a.m + k * a.ldm + j0;
      V s[A * A];
#pragma GCC unroll 36
      for (int xi = 0; xi < A * A; ++xi) s[xi] = V::load_aligned(mk + xi * a.xi_stride);
      V o[M][M];
      T::output_2d(s, V(a.bias[k]), o);
      float* yk = a.y + k * PQ;
      if (whole) {
        float* base = yk + row0[0] * a.Q + col0[0];
#pragma GCC unroll 4
        for (int r = 0; r < M; ++r)
          static_for<M>([&](auto q) { T::template expand<decltype(q)::value>(o[r]).store_unaligned(base + r * a.Q + q * L); });
      } else {
#pragma GCC unroll 4
        for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
          for (int c = 0; c < M; ++c) o[r][c].store_aligned(patch + (r * M + c) * L);
        for (int64_t j = 0; j < lanes; ++j) {
          const int64_t rows = min64(M, a.P - row0[j]), cols = min64(M, a.Q - col0[j]);
          float* dst = yk + row0[j] * a.Q + col0[j];
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) dst[r * a.Q + c] = patch[(r * M + c) * L + j];
        }
      }
    }
  }
}

template <class Arch>
WinogradTransforms make_winograd_transforms(const char* isa) {
  return {isa,
          int(xsimd::batch<float, Arch>::size),
          winograd_input_transform<Arch, 2>,
          winograd_input_transform<Arch, 4>,
          winograd_output_transform<Arch, 2>,
          winograd_output_transform<Arch, 4>};
}

}  // namespace
}  // namespace fastconv::detail
