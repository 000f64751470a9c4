// The max pool's plane kernel for AVX-512: 16 lanes (max_pool_impl.hpp).
#include "max_pool_impl.hpp"

namespace fastconv_python {

PoolPlaneFn pool_plane_avx512() { return &pool_plane<xsimd::avx512f>; }

}  // namespace fastconv_python
