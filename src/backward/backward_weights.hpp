// Direction::BackwardWeights (dw, and db when asked, from x and dy): GEMM-based and direct.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

// dW_g [Kg x Cg*R*S] = sum over images and pixel blocks of dY_g [Kg x block] x col(X_g)^T, on the
// packed SGEMM microkernel, col(X) lowered block by block into B panels under the budget.
void propose_backward_weights_gemm(const Geometry&, const PlanContext&, Proposals&);
// The same GEMM with the pixel blocks cut into slices summed apart (threads share the reduction).
void propose_backward_weights_sliced_gemm(const Geometry&, const PlanContext&, Proposals&);
// Stride 1: dot products of dy rows with shifted windows of the zero-padded input (no lowering).
void propose_backward_weights_dot(const Geometry&, const PlanContext&, Proposals&);
// Outer products with the output channels along the vector (dy transposed, no lowering): for few
// input channels and large kernels (backward_weights_outer.cpp).
void propose_backward_weights_outer(const Geometry&, const PlanContext&, Proposals&);
// Depthwise (one input channel per group): per channel, SIMD along dy rows against shifted input rows.
void propose_backward_weights_depthwise(const Geometry&, const PlanContext&, Proposals&);
// Plain loops with lane accumulators, one task per output channel: for depthwise and tiny layers.
void propose_backward_weights_direct(const Geometry&, const PlanContext&, Proposals&);

// What every backward-weights implementation shares: no weights to pack, no forward execute.
class BackwardWeightsImpl : public ConvImpl {
 public:
  Direction direction() const override { return Direction::BackwardWeights; }
  std::size_t packed_weights_floats() const override { return 0; }
  void pack_weights(const float*, const float*, float*) const override {}
  void execute(const float*, const float*, float*, void*, const ThreadPool&, const float*) const override {
    throw Error(name() + ": a backward-weights implementation has no forward execute");
  }
};

// db[k] = sum over n, p, q of dy[n, k, p, q], summed in double in a fixed order.
void bias_gradient(const Geometry&, const float* grad_output, float* grad_bias, const ThreadPool&);

}  // namespace fastconv::detail
