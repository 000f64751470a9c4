// Tuning as data: the cache blocking of each instruction set, beside its microkernel.
#include "gemm/sgemm_kernel.hpp"

#include "core/isa_dispatch.hpp"

#include <stdexcept>
#include <string>

namespace fastconv::detail {
namespace {

struct Tuning {
  Isa isa;
  UkernelInfo (*kernel)();
  GemmBlocking blocking;  // {mr, nr, mc, kc, nc}
};

// L1 32-48 KiB, L2 512 KiB-2 MiB per core, a shared L3: a KC x NR micro-panel of B fills about
// half of L1, an MC x KC block of A about a third of L2, a KC x NC block of B a few MiB of L3.
const Tuning kTuning[] = {
    {Isa::Sse2, sgemm_ukernel_sse2, {6, 8, 120, 256, 4096}},
    {Isa::Avx2, sgemm_ukernel_avx2, {6, 16, 144, 256, 4080}},
    {Isa::Avx512, sgemm_ukernel_avx512, {12, 32, 192, 256, 4096}},
};

// Pixel-major tiles: A is a block of 7-pixel panels, B the weights' panels of NR channels. Each depth
// block loads and stores every tile's accumulators (the block's pixels x channels, in L2) again: with
// AVX-512 a KC of 512, whose 96 KiB micro-panel of weights streams from L2 rather than staying in L1,
// ran 0.78-0.95x the time of KC 128 (interleaved in one process, Zen 5, 2 threads: 1x1 layers on 7x7
// and 14x14, 3x3, 1x7, 3x3/s2 and 16x16/s16 on the implicit tiles; KC 768-4608 within 3% of 512).
// MC and NC are not used: im2col_pixels blocks its pixels and channels itself.
const Tuning kPixelTuning[] = {
    {Isa::Sse2, sgemm_ukernel_pixels_sse2, {7, 8, 196, 256, 4096}},
    {Isa::Avx2, sgemm_ukernel_pixels_avx2, {7, 16, 196, 256, 4096}},
    {Isa::Avx512, sgemm_ukernel_pixels_avx512, {7, 48, 196, 512, 4096}},
};

// The implicit GEMM's pixel-major tiles (A read in place: no MC, NC).
const Tuning kImplicitTuning[] = {
    {Isa::Sse2, sgemm_ukernel_pixels_sse2, {7, 8, 196, 256, 4096}},
    {Isa::Avx2, sgemm_ukernel_avx2, {6, 16, 144, 256, 4080}},
    {Isa::Avx512, sgemm_ukernel_pixels_avx512, {7, 48, 196, 512, 4096}},
};

// Built only for an instruction set the CPU runs (core/isa_dispatch.hpp): t.kernel() is compiled for it.
template <const Tuning* Table, int I>
SgemmKernel make() {
  const Tuning& t = Table[I];
  const UkernelInfo info = t.kernel();
  if (info.mr != t.blocking.mr || info.nr != t.blocking.nr || t.blocking.mc % info.mr != 0)
    throw std::logic_error(std::string("fastconv: blocking table disagrees with ") + info.name);
  if (!info.pack_b) throw std::logic_error(std::string("fastconv: ") + info.name + " has no B packing");
  if (info.mr * info.nr > kMaxSgemmTile || info.mr > kMaxSgemmMr)  // buffers on the stack are sized by them
    throw std::logic_error(std::string("fastconv: ") + info.name + " is larger than kMaxSgemmTile or kMaxSgemmMr");
  return {info.name,
          t.isa,
          t.blocking,
          info.full,
          info.half,
          info.transpose_rows,
          info.half_nr > 0 ? info.half_nr : info.nr / 2,
          info.short_full,
          info.short_half,
          {info.implicit[0], info.implicit[1], info.implicit[2]},
          info.pack_b,
          info.transpose_fused};
}

}  // namespace

const SgemmKernel& sgemm_kernel(Isa isa) {
  return isa_table<SgemmKernel, make<kTuning, 0>, make<kTuning, 1>, make<kTuning, 2>>(isa, "sgemm");
}

const SgemmKernel& sgemm_implicit_kernel(Isa isa) {
  return isa_table<SgemmKernel, make<kImplicitTuning, 0>, make<kImplicitTuning, 1>, make<kImplicitTuning, 2>>(
      isa, "sgemm implicit");
}

const SgemmKernel& sgemm_pixel_kernel(Isa isa) {
  return isa_table<SgemmKernel, make<kPixelTuning, 0>, make<kPixelTuning, 1>, make<kPixelTuning, 2>>(isa,
                                                                                                     "sgemm pixels");
}

}  // namespace fastconv::detail
