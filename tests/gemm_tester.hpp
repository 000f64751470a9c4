// GemmMicrokernelTester, after XNNPACK's: one line per case, swept by the tests.
//   GemmTester(kernel).m(5).n(17).k(9).ldc(20).accumulate(true).bias(true).check();
#pragma once

#include <cstdint>
#include <vector>

#include "fastconv/fastconv.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::testing {

class GemmTester {
 public:
  explicit GemmTester(const detail::SgemmKernel& k) : kernel_(k) {}
  GemmTester& m(int64_t v) { return m_ = v, *this; }
  GemmTester& n(int64_t v) { return n_ = v, *this; }
  GemmTester& k(int64_t v) { return k_ = v, *this; }
  GemmTester& ldc(int64_t v) { return ldc_ = v, *this; }
  GemmTester& accumulate(bool v) { return accumulate_ = v, *this; }
  GemmTester& bias(bool v) { return bias_ = v, *this; }
  GemmTester& small_integers(bool v) { return small_int_ = v, *this; }
  GemmTester& threads(int v) { return threads_ = v, *this; }

  // One packed block through gemm_macro_kernel, with A and C deliberately misaligned.
  void check_macro_kernel() const;
  // The whole threaded sgemm from plain row-major matrices.
  void check_sgemm() const;
  // The macro-kernel with post-ops (a residual when `residual`) on the last block: bitwise what the
  // plain macro-kernel followed by the epilogue's pass over C gives, fused in the tiles or not.
  void check_post_ops(const PostOps& post) const;

 private:
  void make(std::vector<float>& a, std::vector<float>& b, std::vector<float>& c, std::vector<float>& bias) const;
  void verify(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& c0,
              const std::vector<float>& bias, const float* c) const;

  const detail::SgemmKernel& kernel_;
  int64_t m_ = 1, n_ = 1, k_ = 1, ldc_ = 0;
  bool accumulate_ = false, bias_ = false, small_int_ = false;
  int threads_ = 1;
};

// The kernels this host can run: its best instruction set (capped by FASTCONV_MAX_ISA) and every
// lower one, plus the AVX-512 tile shape compiled for AVX2 when AVX2 runs.
std::vector<detail::SgemmKernel> runnable_kernels();

}  // namespace fastconv::testing
