// The epilogue kernel for avx2.
#include "core/epilogue_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

EpilogueRowFn epilogue_row_kernel_avx2() {
  note_isa_entry(Isa::Avx2);
  return epilogue_row<xsimd::fma3<xsimd::avx2>>;
}

}  // namespace fastconv::detail
