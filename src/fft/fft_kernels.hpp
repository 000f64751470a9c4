// Frequency-domain kernels of the FFT convolution, per instruction set: the per-bin channel
// reduction (a small complex GEMM, vectorised across bins) and the moves between FFTW's
// interleaved spectra and the split, bin-blocked layout the products read.
//
// Bin-blocked layout: a spectrum of `bins` complex values is cut into blocks of L consecutive bins
// (L = SIMD width in floats); a block is 2L floats, L real parts then L imaginary parts. Lanes past
// `bins` in the last block are zero.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"

namespace fastconv::detail {

// One block of bins: y[k][t] = sum over c in order of w[k][c] * x[c][t], for k < kg, t < nt.
// w: kg x cg blocks, row-major (block (k, c) at w + (k*cg + c)*2L); x: block (c, t) at
// x + c*ld + t*2L; y: block (k, t) at y + k*ld + t*2L. Every block 64-byte aligned.
using FftProductsFn = void (*)(int64_t kg, int64_t cg, int64_t nt, const float* w, const float* x, float* y,
                               int64_t ld);
// Interleaved spectrum (re, im pairs) -> blocks at dst + b*dst_stride, zero past `bins`.
using FftSplitFn = void (*)(const float* spectrum, int64_t bins, float* dst, int64_t dst_stride);
// Blocks at src + b*src_stride -> interleaved spectrum of `bins` values.
using FftMergeFn = void (*)(const float* src, int64_t src_stride, int64_t bins, float* spectrum);

struct FftKernels {
  const char* isa;  // "sse2", "avx2", "avx512": the implementation name's suffix
  Isa level;
  int lanes;        // L: bins per block
  int mr, nr;       // register tile of the products: output channels x tiles
  FftProductsFn products;
  FftSplitFn split;
  FftMergeFn merge;
};

const FftKernels& fft_kernels(Isa isa);

// Per-ISA definitions (fft_kernels__<isa>.cpp).
FftKernels fft_kernels_sse2();
FftKernels fft_kernels_avx2();
FftKernels fft_kernels_avx512();

}  // namespace fastconv::detail
