#include "core/fma_peak.hpp"
#include "core/fma_peak_impl.hpp"

namespace fastconv::detail {
double fma_peak_loop_avx2(int64_t iters) { return fma_peak_loop<xsimd::fma3<xsimd::avx2>>(iters); }
}  // namespace fastconv::detail
