// SGEMM microkernel for SSE2 (the portable fallback; no FMA: multiply then add): 6x8, and 7x8 for
// pixel-major products.
#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {
namespace {

constexpr auto kShort6x8 = short_kernels<xsimd::sse2, 6, 2>();
constexpr auto kShortHalf6x8 = short_kernels<xsimd::sse2, 6, 1, 2>();
constexpr auto kShort7x8 = short_kernels<xsimd::sse2, 7, 2>();
constexpr auto kShortHalf7x8 = short_kernels<xsimd::sse2, 7, 1, 2>();

}  // namespace

UkernelInfo sgemm_ukernel_sse2() {
  note_isa_entry(Isa::Sse2);
  using A = xsimd::sse2;
  UkernelInfo info{"sgemm_ukernel_6x8__sse2", 6, 8, sgemm_ukernel<A, 6, 2>, sgemm_ukernel<A, 6, 1, 2>,
                   transpose_rows_scalar};
  info.short_full = kShort6x8.data(), info.short_half = kShortHalf6x8.data();
  return info;
}

UkernelInfo sgemm_ukernel_pixels_sse2() {
  note_isa_entry(Isa::Sse2);
  using A = xsimd::sse2;
  UkernelInfo info{"sgemm_ukernel_7x8__sse2", 7, 8, sgemm_ukernel<A, 7, 2>, sgemm_ukernel<A, 7, 1, 2>,
                   transpose_rows_scalar, 0, {implicit_ukernel<A, 7, 1, 2>, implicit_ukernel<A, 7, 2>}};
  info.short_full = kShort7x8.data(), info.short_half = kShortHalf7x8.data();
  return info;
}

}  // namespace fastconv::detail
