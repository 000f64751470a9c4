// The epilogue kernel, written once over the xsimd architecture. Included only by the per-ISA
// translation units (epilogue__<isa>.cpp), each compiled with its own flags.
#pragma once

#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "core/clamp_impl.hpp"
#include "core/epilogue.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// Each activation as a lane-wise function of one vector. No finite input gives NaN and infinities
// saturate: exponentials overflow to inf or underflow to 0, the products x * (something that went
// to 0) are replaced by their limit far out, tanh is +-1 past where it rounds to it. NaN stays NaN
// (comparisons are written so that a NaN lane takes the x branch).
template <class V, Activation A>
inline V activation(const EpilogueParams& p, V x) {
  const V zero(0.0f);
  // The clamps one operation per bound (clamp_impl.hpp), bit for bit select(x < lo, lo, select(x > hi,
  // hi, x)).
  if constexpr (A == Activation::Relu) return clamp_lower(x, zero);
  if constexpr (A == Activation::Relu6) return clamp_lanes(x, zero, V(6.0f));
  if constexpr (A == Activation::LeakyRelu) return xsimd::select(x < zero, x * V(p.alpha), x);
  if constexpr (A == Activation::Clamp) return clamp_lanes(x, V(p.alpha), V(p.beta));
  if constexpr (A == Activation::Sigmoid) return V(1.0f) / (V(1.0f) + xsimd::exp(-x));
  if constexpr (A == Activation::Tanh) {
    // Saturated outside |x| < 9 (tanh(9) rounds to 1 in float): keeps infinities exact.
    return xsimd::select(xsimd::abs(x) >= V(9.0f), xsimd::copysign(V(1.0f), x), xsimd::tanh(x));
  }
  if constexpr (A == Activation::Silu) {
    const V s = V(1.0f) / (V(1.0f) + xsimd::exp(-x));  // 0 for x below about -88
    return xsimd::select(x < V(-100.0f), V(-0.0f), x * s);  // -inf * 0 would be NaN
  }
  if constexpr (A == Activation::Hardswish) {
    const V h = x * (x + V(3.0f)) * V(1.0f / 6.0f);
    return xsimd::select(x <= V(-3.0f), zero, xsimd::select(x >= V(3.0f), x, h));
  }
  if constexpr (A == Activation::Gelu) {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tail saturated before x^3 overflows.
    const V u = V(0.7978845608028654f) * (x + V(0.044715f) * x * x * x);
    const V t = xsimd::select(xsimd::abs(u) >= V(9.0f), xsimd::copysign(V(1.0f), u), xsimd::tanh(u));
    const V g = V(0.5f) * x * (V(1.0f) + t);
    return xsimd::select(x < V(-10.0f), V(-0.0f), xsimd::select(x > V(10.0f), x, g));
  }
  return x;
}

template <class Arch, Activation A, bool Residual>
void epilogue_row_as(const EpilogueParams& p, const float* src, float* y, const float* r, int64_t n) {  // one row
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t L = int64_t(V::size);
  const V scale(p.residual_scale);
  auto one = [&](const float* yi, const float* ri, float* out) {
    V v = V::load_unaligned(yi);
    if constexpr (Residual) v = xsimd::fma(scale, V::load_unaligned(ri), v);
    activation<V, A>(p, v).store_unaligned(out);
  };
  int64_t i = 0;
  for (; i + L <= n; i += L) one(src + i, Residual ? r + i : nullptr, y + i);
  if (i < n) {  // the tail through a whole vector on the stack: the same operations per element
    alignas(64) float ty[L] = {}, tr[L] = {};
    for (int64_t j = 0; j < n - i; ++j) ty[j] = src[i + j];
    if constexpr (Residual)
      for (int64_t j = 0; j < n - i; ++j) tr[j] = r[i + j];
    one(ty, tr, ty);
    for (int64_t j = 0; j < n - i; ++j) y[i + j] = ty[j];
  }
}

template <class Arch, Activation A>
void epilogue_row_act(const EpilogueParams& p, const float* s, int64_t lds, float* y, int64_t ldy, const float* r,
                      int64_t ldr, int64_t rows, int64_t n) {
  if (r)
    for (int64_t i = 0; i < rows; ++i) epilogue_row_as<Arch, A, true>(p, s + i * lds, y + i * ldy, r + i * ldr, n);
  else
    for (int64_t i = 0; i < rows; ++i) epilogue_row_as<Arch, A, false>(p, s + i * lds, y + i * ldy, nullptr, n);
}

template <class Arch>
void epilogue_row(const EpilogueParams& p, const float* s, int64_t lds, float* y, int64_t ldy, const float* r,
                  int64_t ldr, int64_t rows, int64_t n) {
  switch (p.activation) {
    case Activation::None: return epilogue_row_act<Arch, Activation::None>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Relu: return epilogue_row_act<Arch, Activation::Relu>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Relu6: return epilogue_row_act<Arch, Activation::Relu6>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::LeakyRelu: return epilogue_row_act<Arch, Activation::LeakyRelu>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Clamp: return epilogue_row_act<Arch, Activation::Clamp>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Silu: return epilogue_row_act<Arch, Activation::Silu>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Hardswish: return epilogue_row_act<Arch, Activation::Hardswish>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Gelu: return epilogue_row_act<Arch, Activation::Gelu>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Sigmoid: return epilogue_row_act<Arch, Activation::Sigmoid>(p, s, lds, y, ldy, r, ldr, rows, n);
    case Activation::Tanh: return epilogue_row_act<Arch, Activation::Tanh>(p, s, lds, y, ldy, r, ldr, rows, n);
  }
}

}  // namespace
}  // namespace fastconv::detail
