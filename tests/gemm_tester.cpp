#include "gemm_tester.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/aligned_buffer.hpp"
#include "core/epilogue.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm.hpp"

namespace fastconv::testing {

using namespace fastconv::detail;

std::vector<SgemmKernel> runnable_kernels() {
  std::vector<SgemmKernel> out;
  for (Isa isa : {Isa::Sse2, Isa::Avx2, Isa::Avx512})
    if (isa <= best_isa()) {
      out.push_back(sgemm_kernel(isa));
      out.push_back(sgemm_pixel_kernel(isa));
    }
  if (best_isa() >= Isa::Avx2) {
    const UkernelInfo t = sgemm_ukernel_12x32_avx2();
    out.push_back({t.name, Isa::Avx2, {t.mr, t.nr, 48, 64, 96}, t.full, t.half, t.transpose_rows, t.nr / 2,
                   t.short_full, t.short_half, {}, t.pack_b});
  }
  return out;
}

void GemmTester::make(std::vector<float>& a, std::vector<float>& b, std::vector<float>& c,
                      std::vector<float>& bias) const {
  std::mt19937 rng(uint32_t(m_ * 1000003 + n_ * 1009 + k_));
  std::uniform_real_distribution<float> real(-1, 1);
  std::uniform_int_distribution<int> integer(-8, 8);
  auto gen = [&] { return small_int_ ? float(integer(rng)) : real(rng); };
  a.resize(std::size_t(m_ * k_)), b.resize(std::size_t(k_ * n_));
  c.resize(std::size_t(m_ * (ldc_ ? ldc_ : n_))), bias.resize(std::size_t(m_));
  for (auto* v : {&a, &b, &c, &bias})
    for (float& x : *v) x = gen();
}

void GemmTester::verify(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& c0,
                        const std::vector<float>& bias, const float* c) const {
  const int64_t ldc = ldc_ ? ldc_ : n_;
  for (int64_t i = 0; i < m_; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      INFO(kernel_.name << " m=" << m_ << " n=" << n_ << " k=" << k_ << " ldc=" << ldc << " accumulate=" << accumulate_
                        << " bias=" << bias_ << " at (" << i << ", " << j << ")");
      if (j >= n_) {  // the stride gap is never written
        REQUIRE(c[i * ldc + j] == c0[std::size_t(i * ldc + j)]);
        continue;
      }
      double ref = 0, mag = 0;
      for (int64_t p = 0; p < k_; ++p) {
        ref += double(a[std::size_t(i * k_ + p)]) * b[std::size_t(p * n_ + j)];
        mag += std::fabs(double(a[std::size_t(i * k_ + p)]) * b[std::size_t(p * n_ + j)]);
      }
      if (accumulate_) ref += c0[std::size_t(i * ldc + j)], mag += std::fabs(c0[std::size_t(i * ldc + j)]);
      if (bias_) ref += bias[std::size_t(i)], mag += std::fabs(bias[std::size_t(i)]);
      if (small_int_)
        REQUIRE(double(c[i * ldc + j]) == ref);
      else
        REQUIRE(std::fabs(c[i * ldc + j] - ref) <= 1e-6 * (mag + 1));
    }
  }
}

void GemmTester::check_macro_kernel() const {
  std::vector<float> a, b, c0, bias;
  make(a, b, c0, bias);
  const int mr = kernel_.blocking.mr, nr = kernel_.blocking.nr;
  // A packed one float off a 64-byte boundary (the contract allows any alignment), B aligned.
  AlignedBuffer<float> a_pack(std::size_t(packed_a_floats(m_, k_, mr)) + 1);
  AlignedBuffer<float> b_pack(std::size_t(packed_b_floats(k_, n_, nr)));
  pack_a_panels(kernel_.transpose_rows, a.data(), k_, m_, k_, mr, a_pack.data() + 1);
  kernel_.pack_b(b.data(), n_, k_, n_, nr, b_pack.data());
  std::vector<float> c(c0.size() + 1);
  std::copy(c0.begin(), c0.end(), c.begin() + 1);  // C one float off alignment
  gemm_macro_kernel(kernel_, m_, n_, k_, a_pack.data() + 1, k_ * mr, b_pack.data(), k_ * nr, c.data() + 1,
                    ldc_ ? ldc_ : n_, accumulate_, bias_ ? bias.data() : nullptr);
  verify(a, b, c0, bias, c.data() + 1);
}

void GemmTester::check_sgemm() const {
  std::vector<float> a, b, c0, bias;
  make(a, b, c0, bias);
  std::vector<float> c = c0;
  ThreadPool pool(threads_);
  sgemm(kernel_, pool, m_, n_, k_, a.data(), k_, b.data(), n_, c.data(), ldc_ ? ldc_ : n_, accumulate_,
        bias_ ? bias.data() : nullptr);
  verify(a, b, c0, bias, c.data());
  if (threads_ != 1) {  // bitwise the same as one thread
    std::vector<float> c1 = c0;
    ThreadPool one(1);
    sgemm(kernel_, one, m_, n_, k_, a.data(), k_, b.data(), n_, c1.data(), ldc_ ? ldc_ : n_, accumulate_,
          bias_ ? bias.data() : nullptr);
    REQUIRE(c1 == c);
  }
}

void GemmTester::check_post_ops(const PostOps& post) const {
  std::vector<float> a, b, c0, bias;
  make(a, b, c0, bias);
  const int mr = kernel_.blocking.mr, nr = kernel_.blocking.nr;
  const int64_t ldc = ldc_ ? ldc_ : n_;
  AlignedBuffer<float> a_pack(std::size_t(packed_a_floats(m_, k_, mr)));
  AlignedBuffer<float> b_pack(std::size_t(packed_b_floats(k_, n_, nr)));
  pack_a_panels(kernel_.transpose_rows, a.data(), k_, m_, k_, mr, a_pack.data());
  kernel_.pack_b(b.data(), n_, k_, n_, nr, b_pack.data());
  std::vector<float> r(c0.size());
  std::mt19937 rng(uint32_t(m_ * 31 + n_ * 7 + k_));
  std::uniform_real_distribution<float> real(-4, 4);
  for (float& v : r) v = real(rng);
  // Values the clamp must pass through as the epilogue's selects do: NaN stays NaN, infinities clamp.
  for (std::size_t i = 0; i < r.size(); ++i)
    if (i % 7 == 3)
      r[i] = std::numeric_limits<float>::quiet_NaN();
    else if (i % 11 == 5)
      r[i] = std::numeric_limits<float>::infinity();
    else if (i % 13 == 6)
      r[i] = -std::numeric_limits<float>::infinity();
  const Epilogue epilogue = make_epilogue(post, kernel_.isa);
  TileEpilogue tile;
  tile.epilogue = &epilogue;
  tile.residual = post.residual ? r.data() : nullptr;
  std::vector<float> fused = c0, pass = c0;
  gemm_macro_kernel(kernel_, m_, n_, k_, a_pack.data(), k_ * mr, b_pack.data(), k_ * nr, fused.data(), ldc,
                    accumulate_, bias_ ? bias.data() : nullptr, &tile);
  gemm_macro_kernel(kernel_, m_, n_, k_, a_pack.data(), k_ * mr, b_pack.data(), k_ * nr, pass.data(), ldc,
                    accumulate_, bias_ ? bias.data() : nullptr);
  if (post.residual)
    epilogue.apply_2d(pass.data(), r.data(), ldc, m_, n_);
  else
    epilogue.activate_2d(pass.data(), ldc, m_, n_);
  for (std::size_t i = 0; i < fused.size(); ++i) REQUIRE(std::memcmp(&fused[i], &pass[i], sizeof(float)) == 0);
}

}  // namespace fastconv::testing
