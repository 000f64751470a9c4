// The max pool's plane kernel for AVX-512: 16 lanes (max_pool_impl.hpp).
#include "max_pool_impl.hpp"

namespace fastconv_python {

PoolPlaneFn pool_plane_avx512() { return &pool_plane<16>; }

}  // namespace fastconv_python
