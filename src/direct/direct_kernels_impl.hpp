// The direct convolution kernels, written once over the xsimd architecture. Included only by the
// per-ISA translation units (direct_kernels__<isa>.cpp), each compiled with its own flags.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <xsimd/xsimd.hpp>

#include "direct/direct_kernels.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

template <class V>
V load_lanes(const float* p, int n) {
  if (n == int(V::size)) return V::load_unaligned(p);
  alignas(64) float tmp[V::size] = {};
  for (int l = 0; l < n; ++l) tmp[l] = p[l];
  return V::load_aligned(tmp);
}

template <class V>
void store_lanes(float* p, const V& v, int n) {
  if (n == int(V::size)) {
    v.store_unaligned(p);
    return;
  }
  alignas(64) float tmp[V::size];
  v.store_aligned(tmp);
  for (int l = 0; l < n; ++l) p[l] = tmp[l];
}

// Columns ix0 + ph + j*SW for j in [0, wph): zeros left and right of the input row. SW is 1, 2 or 4
// at compile time (the compiler vectorises the strided copy) or 0 for any stride at run time.
template <int SW>
void pack_segment(const float* src, int64_t W, int64_t first, int64_t sw_rt, int64_t wph, float* dst) {
  const int64_t sw = SW ? SW : sw_rt;
  // j in [jb, je) reads inside the row: 0 <= first + j*sw < W.
  int64_t jb = first >= 0 ? 0 : (-first + sw - 1) / sw;
  int64_t je = first <= W - 1 ? (W - 1 - first) / sw + 1 : 0;
  if (je > wph) je = wph;
  if (jb > je) jb = je;
  for (int64_t j = 0; j < jb; ++j) dst[j] = 0.0f;
  const float* s = src + first;
  if (SW == 1) {
    if (je > jb) std::memcpy(dst + jb, s + jb, sizeof(float) * std::size_t(je - jb));
  } else {
    for (int64_t j = jb; j < je; ++j) dst[j] = s[j * sw];
  }
  for (int64_t j = je; j < wph; ++j) dst[j] = 0.0f;
}

void pack_rows(const RowPack& a) {
  for (int64_t i = 0; i < a.rows; ++i) {
    float* d = a.dst + i * a.row_stride;
    const int64_t iy = a.iy0 + i;
    if (iy < 0 || iy >= a.H) {
      std::memset(d, 0, sizeof(float) * std::size_t(a.phases * a.wph));
      continue;
    }
    const float* src = a.x + iy * a.W;
    for (int64_t k = 0; k < a.phases; ++k) {
      const int64_t first = a.ix0 + a.phase[k];
      float* dk = d + k * a.wph;
      switch (a.sw) {
        case 1: pack_segment<1>(src, a.W, first, 1, a.wph, dk); break;
        case 2: pack_segment<2>(src, a.W, first, 2, a.wph, dk); break;
        case 4: pack_segment<4>(src, a.W, first, 4, a.wph, dk); break;
        default: pack_segment<0>(src, a.W, first, a.sw, a.wph, dk); break;
      }
    }
  }
}

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
  for (int64_t v = 0; v < a.nvec; ++v) {
    V acc[MP];
#pragma GCC unroll 16
    for (int m = 0; m < MP; ++m) acc[m] = V(a.bias);
    const float* col = a.buf + v * L;
    for (int64_t s = 0; s < a.S; ++s)
      dw_column<Arch, R, SH, MP>(acc, col + a.soff[s], a.row_stride, a.w + s * R, std::make_integer_sequence<int, kRows>{});
    const int lanes = v == a.nvec - 1 ? a.lanes_last : L;
#pragma GCC unroll 16
    for (int m = 0; m < MP; ++m) store_lanes(a.out + m * a.ldo + v * L, acc[m], lanes);
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
  k.pack = pack_rows;
}

}  // namespace
}  // namespace fastconv::detail
