// The epilogue kernel for avx512.
#include "core/epilogue_impl.hpp"

namespace fastconv::detail {

EpilogueRowFn epilogue_row_kernel_avx512() { return epilogue_row<xsimd::avx512f>; }

}  // namespace fastconv::detail
