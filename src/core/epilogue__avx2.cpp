// The epilogue kernel for avx2.
#include "core/epilogue_impl.hpp"

namespace fastconv::detail {

EpilogueRowFn epilogue_row_kernel_avx2() { return epilogue_row<xsimd::fma3<xsimd::avx2>>; }

}  // namespace fastconv::detail
