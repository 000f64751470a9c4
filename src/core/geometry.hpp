// A validated convolution problem with its derived sizes: the form every algorithm reads.
#pragma once

#include <cstdint>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

struct Geometry {
  explicit Geometry(const ConvProblem& p);  // validates; throws Error

  ConvProblem problem;
  int64_t N, C, H, W;   // input
  int64_t K, R, S;      // output channels, kernel height and width
  int64_t P, Q;         // output height and width
  int64_t stride_h, stride_w, dil_h, dil_w;
  int64_t pad_t, pad_b, pad_l, pad_r;
  int64_t groups, Cg, Kg;  // channels per group, in and out

  int64_t input_image() const { return C * H * W; }    // floats of one input sample
  int64_t output_image() const { return K * P * Q; }   // floats of one output sample
  int64_t weights_per_group() const { return Kg * Cg * R * S; }
  bool is_depthwise() const { return groups == C && groups > 1; }
  bool is_pointwise() const {  // 1x1, stride 1, no padding: the input is already the GEMM operand
    return R == 1 && S == 1 && stride_h == 1 && stride_w == 1 && pad_t == 0 && pad_b == 0 &&
           pad_l == 0 && pad_r == 0;
  }
  // Whether any output reads any input. A dilation wider than the input lets the taps step over
  // it (a 1-wide image, taps at -1 and 2): every output is then the bias alone.
  bool reads_input() const;
};

// A layer split into phases (the residues of its dilation in the forward, of its stride in
// backward-data) runs one sub-problem per phase. Past 2^16 phases (256 on both axes) the phase table,
// its planning and the per-phase copies cost more than they save: such layers are declined.
constexpr int64_t kMaxSubproblemPhases = int64_t(1) << 16;

// The outputs o in [0, out) whose input coordinate o*stride + offset lies in [0, in), as [begin, end):
// the part of a row or column that needs no padding check.
struct Range {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};
inline Range valid_outputs(int64_t out, int64_t stride, int64_t offset, int64_t in) {
  int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t end = (in - 1 - offset) >= 0 ? (in - 1 - offset) / stride + 1 : 0;
  if (end > out) end = out;
  if (begin > end) begin = end;
  return {begin, end};
}

inline bool Geometry::reads_input() const {
  auto axis = [](int64_t out, int64_t stride, int64_t taps, int64_t dil, int64_t pad, int64_t in) {
    for (int64_t r = 0; r < taps; ++r)
      if (valid_outputs(out, stride, r * dil - pad, in).size() > 0) return true;
    return false;
  };
  return axis(P, stride_h, R, dil_h, pad_t, H) && axis(Q, stride_w, S, dil_w, pad_l, W);
}

}  // namespace fastconv::detail
