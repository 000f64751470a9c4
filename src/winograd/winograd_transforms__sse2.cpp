// Winograd tile transforms for SSE2 (the portable fallback; no FMA): 4 tiles per vector.
#include "winograd/winograd_transforms_impl.hpp"

namespace fastconv::detail {

WinogradTransforms winograd_transforms_sse2() { return make_winograd_transforms<xsimd::sse2>("sse2"); }

}  // namespace fastconv::detail
