#include "core/fma_peak.hpp"
#include "core/fma_peak_impl.hpp"

namespace fastconv::detail {
double fma_peak_loop_sse2(int64_t iters) { return fma_peak_loop<xsimd::sse2>(iters); }
}  // namespace fastconv::detail
