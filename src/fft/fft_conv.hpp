// Algorithm::FFT: overlap-save tiles through FFTW r2c/c2r transforms, with the channel reduction
// done per frequency bin (a complex [K x C] x [C x tiles] product). Stride 1; any dilation (a dilated
// kernel is a sparse larger kernel), padding, groups and batch.
//
// Non-finite inputs: a NaN or Inf in an input channel spreads over whole tiles. Every output of
// every channel of its group in each output tile whose input window (the tile plus the kernel's
// halo) holds it becomes NaN or Inf, not only the outputs whose receptive field holds it.
//
// FFTW plans: FFTW_ESTIMATE under PlanMode::Estimate, FFTW_MEASURE under Measure, made in prepare().
// FFTW_ESTIMATE takes wisdom FFTW already has for the size (left by a Measure plan or loaded with
// fastconv's wisdom): such a plan is faster, and its bits may differ from one made before it. A plan,
// once made, gives the same bits run after run and for any thread count.
#pragma once

#include <cstdint>
#include <memory>

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_fft(const Geometry&, const PlanContext&, Proposals&);

// The FFT convolution with a th x tw transform, as propose_fft would configure it (batching under
// ctx.workspace_limit), or null when that size does not apply or does not fit. For tests and benches.
std::unique_ptr<ConvImpl> make_fft_conv(const Geometry&, const PlanContext&, int64_t th, int64_t tw);

}  // namespace fastconv::detail
