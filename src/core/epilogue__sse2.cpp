// The epilogue kernel for sse2.
#include "core/epilogue_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

EpilogueRowFn epilogue_row_kernel_sse2() {
  note_isa_entry(Isa::Sse2);
  return epilogue_row<xsimd::sse2>;
}

}  // namespace fastconv::detail
