// The epilogue kernel for avx512.
#include "core/epilogue_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

EpilogueRowFn epilogue_row_kernel_avx512() {
  note_isa_entry(Isa::Avx512);
  return epilogue_row<xsimd::avx512f>;
}

}  // namespace fastconv::detail
