// oneDNN's convolution on NCHW data, the way PyTorch runs it on CPU: the primitive picks its
// preferred (blocked) layouts, weights are reordered once ahead, and each run reorders the input in
// and the output back to NCHW. For comparison only: never a dependency of the library.
#pragma once

#include <memory>
#include <string>

#include "fastconv/fastconv.hpp"

namespace fastconv::tools {

class OnednnConv {
 public:
  // weight [K, C/groups, R, S]; bias may be null. threads: OpenMP threads oneDNN may use.
  // direction: Forward (convolution_forward), BackwardData (convolution_backward_data: weight
  // needed, bias ignored) or BackwardWeights (convolution_backward_weights: weight and bias ignored).
  // post_ops (forward only): as oneDNN post-ops (sum for the residual, then eltwise for the activation).
  OnednnConv(const ConvProblem&, const float* weight, const float* bias, int threads,
             Direction direction = Direction::Forward, const PostOps& post_ops = {});
  ~OnednnConv();
  // Forward: input x, output y. Backward-data: input dy, output dx. Reorders included; residual
  // (NCHW, the output's shape) when the post-ops have one: reordered into oneDNN's destination (or
  // copied into output) before the call, for its sum post-op.
  void run(const float* input, float* output, const float* residual = nullptr);
  // Forward only: oneDNN's compute alone, on its own (blocked) layouts, as a framework that keeps its
  // tensors in them sees it. The input is reordered in at the first call only; the output stays
  // in oneDNN's layout (never read back).
  void run_compute_only(const float* input);
  // Backward-weights: x, dy -> dw [K, C/g, R, S] and db [K]. Reorders included.
  void run_backward_weights(const float* input, const float* grad_output, float* grad_weight, float* grad_bias);
  std::string implementation() const;           // oneDNN's name for the kernel, e.g. "jit:avx2"

 private:
  struct State;
  std::unique_ptr<State> s_;
};

bool onednn_available();  // false when built without oneDNN

}  // namespace fastconv::tools
