// The max pool's plane kernel for AVX2: 8 lanes (max_pool_impl.hpp).
#include "max_pool_impl.hpp"

namespace fastconv_python {

PoolPlaneFn pool_plane_avx2() { return &pool_plane<xsimd::fma3<xsimd::avx2>>; }

}  // namespace fastconv_python
