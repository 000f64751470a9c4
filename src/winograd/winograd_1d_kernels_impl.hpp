// The one-dimensional Winograd transforms (winograd_1d_kernels.hpp), written once over the xsimd
// architecture; included only by the per-ISA translation units (winograd_1d_kernels__<isa>.cpp).
#pragma once

#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "core/clamp_impl.hpp"
#include "core/masked_lanes_impl.hpp"
#include "core/prefetch.hpp"
#include "winograd/winograd_1d_kernels.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// A run of tiles in one row of tiles: row i, columns [q, q + n), tile columns [j, j + n) of the group.
struct TileRun {
  int64_t i, q, n, j;
};
// f(run) for the runs of the tiles [t0, t0 + tiles) of a Q-wide image, in order.
template <class F>
void for_each_run(int64_t t0, int64_t tiles, int64_t Q, F&& f) {
  for (int64_t j = 0; j < tiles;) {
    const int64_t t = t0 + j, q = t % Q, n = min_i64(Q - q, tiles - j);
    f(TileRun{t / Q, q, n, j});
    j += n;
  }
}

// V = B^T d with the rows of B^T paired (the points +-p): each pair is an even and an odd sum.
template <class V>
inline void input_tile(const V (&d)[8], V (&v)[8]) {
  const V four(4.0f), five(5.0f), eight(8.0f), ten(10.0f), sixteen(16.0f), seventeen(17.0f), twentyone(21.0f),
      thirtytwo(32.0f), sixtyfour(64.0f), eighty(80.0f), onetwentyeight(128.0f), onesixty(160.0f), two(2.0f);
  v[0] = xsimd::fma(four, d[0] - d[6], twentyone * (d[4] - d[2]));
  const V e1 = xsimd::fma(seventeen, d[4], -four * (d[2] + d[6]));
  const V o1 = xsimd::fma(seventeen, d[3], -four * (d[1] + d[5]));
  v[1] = e1 + o1, v[2] = e1 - o1;
  const V e3 = xsimd::fma(four, d[6], xsimd::fnma(five, d[4], d[2]));
  const V o3 = xsimd::fma(eight, d[5], xsimd::fnma(ten, d[3], two * d[1]));
  v[3] = e3 + o3, v[4] = e3 - o3;
  const V e5 = xsimd::fma(thirtytwo, d[6], xsimd::fnma(onesixty, d[4], onetwentyeight * d[2]));
  const V o5 = xsimd::fma(sixteen, d[5], xsimd::fnma(eighty, d[3], sixtyfour * d[1]));
  v[5] = e5 + o5, v[6] = e5 - o5;
  v[7] = xsimd::fma(four, d[7] - d[1], twentyone * (d[3] - d[5]));
}

// Tiles per pass: the segment lists (and the output kernel's stage) hold this many.
constexpr int64_t kStageTiles = 128;

// The runs of a pass of tiles split at vector boundaries: segment k fills lanes [lo, hi) of its
// vector from row of tiles i, lane l at image column column + l. Segments [vector_end[v - 1],
// vector_end[v]) make vector v. They depend only on the tiles, so the kernels work them out once
// per pass, not per channel.
template <class V>
struct TileSegments {
  static constexpr int64_t L = int64_t(V::size);
  struct Segment {
    RangeLoad<V> lanes;
    int64_t i, column;
  };
  Segment at[2 * kStageTiles];  // at most one per run and vector boundary
  int vector_end[kStageTiles / L];
  int vectors;

  // The tiles [t0, t0 + tiles) of a Q-wide image, in `width` (a multiple of L) lanes.
  void build(int64_t t0, int64_t tiles, int64_t width, int64_t Q) {
    vectors = int(width / L);
    int count = 0, vector = 0;
    for_each_run(t0, tiles, Q, [&](const TileRun& run) {
      for (int64_t j = run.j; j < run.j + run.n;) {
        const int64_t u = j / L * L, end = min_i64(run.j + run.n, u + L);
        for (; vector < int(u / L); ++vector) vector_end[vector] = count;
        at[count++] = Segment{RangeLoad<V>(int(j - u), int(end - u)), run.i, run.q - run.j + u};
        j = end;
      }
    });
    for (; vector < vectors; ++vector) vector_end[vector] = count;
  }
};

// Per channel, each vector of tiles is loaded straight from the image rows: one masked load per
// input row and run of tiles it covers (a row of 17 tiles puts two runs in some vectors), the pieces
// ORed together (exact: the other lanes are zeros). A stage of the rows copied side by side took
// twice as long: its vectors were read back across two stores, which no store buffer forwards.
template <class Arch>
void winograd_1d_input(const Winograd1dInputArgs& args) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t L = int64_t(V::size);
  static_assert(kStageTiles % 16 == 0, "a pass holds whole vectors of every width");
  const Winograd1dInputArgs a = args;  // locals: the stores below cannot change them
  const int64_t panel = a.channels * a.nr;
  TileSegments<V> seg;
  for (int64_t p0 = 0; p0 < a.columns; p0 += kStageTiles) {
    const int64_t width = min_i64(kStageTiles, a.columns - p0), tiles = a.tiles > p0 ? min_i64(width, a.tiles - p0) : 0;
    seg.build(a.t0 + p0, tiles, width, a.Q);
    // The image rows these tiles read, [row_lo, row_hi): prefetched two channels ahead (each
    // channel's rows lie a plane apart, where the hardware prefetchers do not follow).
    const int64_t row_lo = tiles ? ((a.t0 + p0) / a.Q) * a.m - a.pad_top : 0;
    const int64_t row_hi = tiles ? ((a.t0 + p0 + tiles - 1) / a.Q) * a.m - a.pad_top + 8 : 0;
    const int64_t span_begin = (row_lo < 0 ? 0 : row_lo) * a.Q, span_end = (row_hi > a.H ? a.H : row_hi) * a.Q;
    for (int64_t c = 0; c < a.channels; ++c) {
      const float* xc = a.x + c * a.H * a.Q;
      if (c + 2 < a.channels)
        for (int64_t f = span_begin; f < span_end; f += 16) prefetch_l1(xc + 2 * a.H * a.Q + f);
      for (int vi = 0, k = 0; vi < seg.vectors; ++vi) {
        V d[8], v[8];
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) d[s] = V(0.0f);  // the padding columns: zeros, so that the products stay finite
        for (; k < seg.vector_end[vi]; ++k) {
          const auto& sg = seg.at[k];
          const int64_t row0 = sg.i * a.m - a.pad_top;
          const float* src = xc + row0 * a.Q + sg.column;
          if (row0 >= 0 && row0 + 8 <= a.H) {
#pragma GCC unroll 8
            for (int s = 0; s < 8; ++s) d[s] = d[s] | sg.lanes.load(src + s * a.Q);
          } else {  // rows above or below the image: zeros
#pragma GCC unroll 8
            for (int s = 0; s < 8; ++s)
              if (row0 + s >= 0 && row0 + s < a.H) d[s] = d[s] | sg.lanes.load(src + s * a.Q);
          }
        }
        input_tile(d, v);
        const int64_t j = p0 + int64_t(vi) * L;  // a multiple of L: inside one panel
        float* at = a.v + (j / a.nr) * panel + c * a.nr + j % a.nr;
#pragma GCC unroll 8
        for (int xi = 0; xi < 8; ++xi) v[xi].store_aligned(at + xi * a.xi_stride);
      }
    }
  }
}

// y rows r = 0 .. M-1 of a tile from its eight products: A^T's entries are the points' powers
// (p^r; the infinity column only in the last row), paired like B^T's.
template <class V, int M>
inline void output_tile(const V (&s)[8], const V& bias, V (&o)[M]) {
  const V s1 = s[1] + s[2], d1 = s[1] - s[2], s2 = s[3] + s[4], d2 = s[3] - s[4], s3 = s[5] + s[6],
          d3 = s[5] - s[6];
  o[0] = s[0] + s1 + s2 + s3;
#pragma GCC unroll 8
  for (int r = 1; r < M; ++r) {
    const float big = float(1 << r), small = 1.0f / float(1 << r);
    o[r] = r % 2 ? xsimd::fma(V(small), d3, xsimd::fma(V(big), d2, d1)) : xsimd::fma(V(small), s3, xsimd::fma(V(big), s2, s1));
  }
  o[M - 1] = o[M - 1] + s[7];
#pragma GCC unroll 8
  for (int r = 0; r < M; ++r) o[r] = o[r] + bias;
}

// Each vector of tiles straight to its pieces of the m image rows (masked stores per run of tiles),
// or, with post-ops other than a clamp, through a stage of m rows and the epilogue.
template <class Arch, int M>
void winograd_1d_output(const Winograd1dOutputArgs& args) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t L = int64_t(V::size);
  const Winograd1dOutputArgs a = args;
  const int64_t PQ = a.P * a.Q;
  alignas(64) float stage[M][kStageTiles];
  // Without a residual, relu and relu6 clamp the tiles in registers (activation_clamp: the epilogue's
  // bits) and the tiles go out directly.
  float lo = 0, hi = 0;
  const bool clamp = a.epilogue && !a.residual && activation_clamp(a.epilogue->params, lo, hi);
  const bool staged = a.epilogue && !clamp;
  const V vlo(lo), vhi(hi);
  TileSegments<V> seg;
  for (int64_t p0 = 0; p0 < a.tiles; p0 += kStageTiles) {
    const int64_t tiles = min_i64(kStageTiles, a.tiles - p0);
    seg.build(a.t0 + p0, tiles, (tiles + L - 1) / L * L, a.Q);
    for (int64_t k = 0; k < a.channels; ++k) {
      float* yk = a.y + k * PQ;
      const float* mk = a.m + k * a.ldm + p0;
      const V bias(a.bias[k]);
      for (int vi = 0, n = 0; vi < seg.vectors; ++vi) {
        const int64_t u = int64_t(vi) * L;
        const int lanes = int(min_i64(L, tiles - u));
        V s[8], o[M];
#pragma GCC unroll 8
        for (int xi = 0; xi < 8; ++xi) s[xi] = load_lanes<V>(mk + xi * a.xi_stride + u, lanes);
        output_tile<V, M>(s, bias, o);
        if (staged) {
#pragma GCC unroll 8
          for (int r = 0; r < M; ++r) o[r].store_aligned(stage[r] + u);
          continue;
        }
        if (clamp)
#pragma GCC unroll 8
          for (int r = 0; r < M; ++r) o[r] = clamp_lanes(o[r], vlo, vhi);
        for (; n < seg.vector_end[vi]; ++n) {
          const auto& sg = seg.at[n];
          const int64_t rows = min_i64(M, a.P - sg.i * M);
          float* dst = yk + sg.i * M * a.Q + sg.column;
#pragma GCC unroll 8
          for (int r = 0; r < M; ++r)
            if (r < rows) sg.lanes.store(dst + r * a.Q, o[r]);
        }
      }
      if (!staged) continue;
      const float* rk = a.residual ? a.residual + k * PQ : nullptr;
      for_each_run(a.t0 + p0, tiles, a.Q, [&](const TileRun& run) {
        const int64_t rows = min_i64(M, a.P - run.i * M), first = run.i * M * a.Q + run.q;
        a.epilogue->apply_from(stage[0] + run.j, kStageTiles, yk + first, rk ? rk + first : nullptr, a.Q, rows, run.n);
      });
    }
  }
}

template <class Arch>
void fill_winograd_1d(Winograd1dKernels& k) {
  k.input = winograd_1d_input<Arch>;
  k.output[0] = winograd_1d_output<Arch, 6>;
  k.output[1] = winograd_1d_output<Arch, 4>;
  k.output[2] = winograd_1d_output<Arch, 2>;
}

}  // namespace
}  // namespace fastconv::detail
