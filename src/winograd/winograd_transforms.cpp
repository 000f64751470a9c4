// Dispatch of the Winograd tile transforms: one table per instruction set, picked once per plan.
#include "winograd/winograd_transforms.hpp"

namespace fastconv::detail {

const WinogradTransforms& winograd_transforms(Isa isa) {
  static const WinogradTransforms table[] = {winograd_transforms_sse2(), winograd_transforms_avx2(),
                                             winograd_transforms_avx512()};
  return table[static_cast<int>(isa)];
}

}  // namespace fastconv::detail
