// Dispatch of the Winograd tile transforms: one table per instruction set, picked once per plan.
#include "winograd/winograd_transforms.hpp"

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

const WinogradTransforms& winograd_transforms(Isa isa) {
  return isa_table<WinogradTransforms, winograd_transforms_sse2, winograd_transforms_avx2,
                   winograd_transforms_avx512>(isa, "winograd");
}

}  // namespace fastconv::detail
