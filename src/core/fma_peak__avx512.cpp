#include "core/fma_peak.hpp"
#include "core/fma_peak_impl.hpp"

namespace fastconv::detail {
double fma_peak_loop_avx512(int64_t iters) { return fma_peak_loop<xsimd::avx512f>(iters); }
}  // namespace fastconv::detail
