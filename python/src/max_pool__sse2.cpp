// The max pool's plane kernel for SSE2: 4 lanes (max_pool_impl.hpp).
#include "max_pool_impl.hpp"

namespace fastconv_python {

PoolPlaneFn pool_plane_sse2() { return &pool_plane<xsimd::sse2>; }

}  // namespace fastconv_python
