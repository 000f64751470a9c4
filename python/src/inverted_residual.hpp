// MobileNetV2's inverted residual block in one pass, for fastconv.torch's chains (not part of the C++
// library, like the max pool: a fusion of three convolutions that serves the networks it runs).
//
//   e = act(W_expand x + b_expand)          1x1, C -> E channels (absent when the block has none)
//   d = act(depthwise3x3_stride(e) + b_dw)  padding 1, stride 1 or 2
//   y = W_project d + b_project (+ x)       1x1, E -> K channels, the residual when stride 1, K == C
//
// Layer by layer, e and d go through memory: at batch 8 on 112x112 inputs, e is 38 MB written by the
// expansion and read back by the depthwise layer, and those layers ran at memory speed (MobileNetV2's
// first blocks took half of its time at batch 8). Here each task runs bands of output rows of one
// image through all three, e and d in per-thread buffers that stay in L2: a band's expansion computes
// only the rows the previous band has not (the two it shares are moved up), so no FLOP is repeated
// but at a task's first band. It pays only where e would not stay in the caches anyway: layer by
// layer, a block whose e fits the cores' L2s ran faster (MobileNetV2 at batch 1 on the Zen 5: its
// 28x28 and 14x14 blocks 1.3-1.6x slower fused, e of 0.6-0.9 MB; the 112x112 one, 4.8 MB, 0.79x), and so
// did 7x7 outputs (each thread's GEMMs meet all the weights for one image's 49 pixels: 1.05-1.4x).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "core/aligned_buffer.hpp"
#include "core/epilogue.hpp"

namespace fastconv::detail {
struct SgemmKernel;
struct DirectKernels;
}  // namespace fastconv::detail

namespace fastconv_python {

struct InvertedResidualShape {
  int64_t N, C, H, W;  // input, NCHW
  int64_t E;           // expanded channels; 0: no expansion (the depthwise layer reads x, E = C)
  int64_t stride;      // of the depthwise 3x3 (padding 1): 1 or 2
  int64_t K;           // output channels
  bool residual;       // y += x: stride 1 and K == C
  // The activations: none, relu, relu6 or clamp (fastconv::parse_post_ops), without a residual.
  fastconv::PostOps expand_activation, dw_activation;
  int64_t P() const { return (H - 1) / stride + 1; }
  int64_t Q() const { return (W - 1) / stride + 1; }
  int64_t depthwise_channels() const { return E ? E : C; }
};

class InvertedResidual {
 public:
  // Weights as torch holds them (expand K x C, depthwise E x 3 x 3, project K x E), biases never null.
  // expand_w and expand_b are ignored when shape.E is 0. Throws fastconv::Error on a bad shape or an
  // activation that is not a clamp (the ones the kernels apply in registers).
  InvertedResidual(const InvertedResidualShape& shape, const float* expand_w, const float* expand_b,
                   const float* dw_w, const float* dw_b, const float* project_w, const float* project_b,
                   int threads);
  // Whether fusing beats running the three layers one by one (see above): e larger than the L2s of
  // `threads` cores, and 64 output pixels or more.
  static bool pays(const InvertedResidualShape& shape, int threads);
  InvertedResidual(const InvertedResidual&) = delete;
  InvertedResidual& operator=(const InvertedResidual&) = delete;

  // y (N x K x P x Q) from x (N x C x H x W); y must not overlap x. Safe from several threads at once
  // (a call that finds the scratch busy allocates its own).
  void run(const float* x, float* y) const;

  const InvertedResidualShape& shape() const { return s_; }
  std::string describe() const;

 private:
  // Output rows [p_begin, p_end) of image n, band by band, in one thread's scratch.
  void run_rows(const float* x, float* y, int64_t n, int64_t p_begin, int64_t p_end, float* scratch) const;
  // d (rows x Q per channel) = the depthwise layer's output rows [p0, p0 + rows) from src_rows rows of its
  // input beginning at image row src_row0 (ld floats per channel).
  void depthwise_band(const float* src, int64_t src_row0, int64_t src_rows, int64_t ld, int64_t p0, int64_t rows,
                      float* d, float* row_buf) const;

  InvertedResidualShape s_;
  int threads_;
  const fastconv::detail::SgemmKernel* gemm_;
  const fastconv::detail::DirectKernels* direct_;
  fastconv::detail::Epilogue expand_post_, dw_post_, project_post_;  // project: the residual add or nothing
  int64_t band_rows_;      // output rows per band
  int64_t e_cap_rows_;     // rows of e a band holds
  int64_t splits_;         // tasks per image (row ranges)
  int64_t wph_, row_stride_;  // the depthwise row buffer's layout (direct_kernels' RowPack)
  int32_t phases_[2], soff_[3];
  int64_t b_pack_floats_, row_buf_floats_, e_floats_, d_floats_, slot_floats_;
  fastconv::detail::AlignedBuffer<float> expand_packed_, project_packed_, dw_packed_, biases_;
  mutable std::mutex mutex_;
  mutable fastconv::detail::AlignedBuffer<float> scratch_;
};

}  // namespace fastconv_python
