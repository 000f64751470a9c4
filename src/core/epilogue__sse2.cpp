// The epilogue kernel for sse2.
#include "core/epilogue_impl.hpp"

namespace fastconv::detail {

EpilogueRowFn epilogue_row_kernel_sse2() { return epilogue_row<xsimd::sse2>; }

}  // namespace fastconv::detail
