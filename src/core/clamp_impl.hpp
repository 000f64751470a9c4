// The clamp activations (activation_clamp in epilogue.hpp: none, relu, relu6, clamp) on a vector,
// written once: the kernels that apply them in their own registers and the epilogue kernel share it,
// so the operand order that makes it the epilogue's selects bit for bit is in one place. Included
// only by per-ISA translation units, each compiled with its own flags.
#pragma once

#include <xsimd/xsimd.hpp>

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// max(lo, min(hi, y)) = select(y < lo, lo, select(y > hi, hi, y)), NaN and -0 included: x86's max(a,
// b) is a > b ? a : b and min(a, b) is a < b ? a : b (the second operand when unordered or equal),
// which is how xsimd 8 calls them. The bounds stay in this order: max(y, lo) would turn NaN into lo.
template <class V>
inline V clamp_upper(const V& y, const V& hi) {
  return xsimd::min(hi, y);
}
template <class V>
inline V clamp_lower(const V& y, const V& lo) {
  return xsimd::max(lo, y);
}
template <class V>
inline V clamp_lanes(const V& y, const V& lo, const V& hi) {
  return clamp_lower(clamp_upper(y, hi), lo);
}

}  // namespace
}  // namespace fastconv::detail
