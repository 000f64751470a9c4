// The SGEMM microkernels (every tile remainder, every instruction set the host runs) and the
// threaded SGEMM against a naive GEMM.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "core/aligned_buffer.hpp"
#include "gemm_tester.hpp"

using namespace fastconv;
using fastconv::testing::GemmTester;

namespace {

// What CPUID and FASTCONV_MAX_ISA say the best instruction set is, worked out here without
// best_isa(), so that the test fails when best_isa() or the kernel list is wrong.
detail::Isa expected_best_isa() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("fma");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* env = std::getenv("FASTCONV_MAX_ISA");
  const std::string cap = env ? env : "";
  if (avx512 && (cap.empty() || cap == "avx512")) return detail::Isa::Avx512;
  if (avx2 && cap != "sse2" && cap != "generic") return detail::Isa::Avx2;
  return detail::Isa::Sse2;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TEST_CASE("the host's best instruction set is among the kernels tested", "[isa][gemm]") {
  const detail::Isa expected = expected_best_isa();
  INFO("expected " << detail::isa_name(expected) << ", best_isa() " << detail::isa_name(detail::best_isa()));
  CHECK(detail::best_isa() == expected);
  // Every set up to the expected one is tested, by a kernel really compiled for it (its name says so).
  for (detail::Isa isa : {detail::Isa::Sse2, detail::Isa::Avx2, detail::Isa::Avx512}) {
    if (isa > expected) continue;
    bool found = false;
    for (const auto& k : testing::runnable_kernels())
      found |= k.isa == isa && ends_with(k.name, std::string("__") + detail::isa_name(isa));
    INFO("no kernel of " << detail::isa_name(isa) << " among those tested");
    CHECK(found);
  }
  const detail::SgemmKernel& best = detail::sgemm_kernel(expected);
  CHECK(best.isa == expected);
  CHECK(ends_with(best.name, std::string("__") + detail::isa_name(expected)));
}

TEST_CASE("microkernel: every m <= MR, n <= 2*NR, k around the unroll", "[isa][gemm][ukernel]") {
  for (const auto& kernel : testing::runnable_kernels()) {
    const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
    for (int64_t m = 1; m <= mr; ++m)
      for (int64_t n = 1; n <= 2 * nr; ++n)
        for (int64_t k : {1, 2, 3, 4, 5, 8, 11, 17}) {
          const bool acc = (m + n + k) % 2 == 0, bias = (m + k) % 3 == 0;
          GemmTester(kernel).m(m).n(n).k(k).accumulate(acc).bias(bias).check_macro_kernel();
        }
  }
}

TEST_CASE("microkernel: strided output, accumulate, bias, exact on small integers", "[isa][gemm][ukernel]") {
  for (const auto& kernel : testing::runnable_kernels()) {
    const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
    for (bool acc : {false, true})
      for (bool bias : {false, true})
        for (int64_t m : {int64_t(mr), int64_t(mr - 1), int64_t(2 * mr + 1)})
          for (int64_t n : {int64_t(nr), int64_t(nr + 3), int64_t(3 * nr)}) {
            GemmTester(kernel).m(m).n(n).k(37).ldc(n + 5).accumulate(acc).bias(bias).check_macro_kernel();
            GemmTester(kernel).m(m).n(n).k(300).accumulate(acc).bias(bias).small_integers(true).check_macro_kernel();
          }
  }
}

TEST_CASE("sgemm matches a naive GEMM and threads do not change the bits", "[isa][gemm][sgemm]") {
  std::mt19937 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (const auto& kernel : testing::runnable_kernels()) {
    // Past MC (192 at most) and KC (256), then past NC (4096 at most) of every table entry.
    GemmTester(kernel).m(203).n(300).k(530).threads(2).bias(true).check_sgemm();
    INFO("NC " << kernel.blocking.nc);
    REQUIRE(kernel.blocking.nc < 4200);
    GemmTester(kernel).m(13).n(4200).k(40).threads(2).bias(true).check_sgemm();
    GemmTester(kernel).m(7).n(kernel.blocking.nc + 1).k(3).threads(1).accumulate(true).check_sgemm();
    GemmTester(kernel).m(1).n(1).k(1).check_sgemm();
    GemmTester(kernel).m(400).n(5).k(3).threads(3).accumulate(true).check_sgemm();
    for (int i = 0; i < 12; ++i)
      GemmTester(kernel)
          .m(pick(1, 150))
          .n(pick(1, 300))
          .k(pick(1, 300))
          .threads(int(pick(1, 3)))
          .accumulate(i % 2)
          .bias(i % 3 == 0)
          .small_integers(i % 4 == 1)
          .check_sgemm();
  }
}

// Post-ops on the last depth block: relu and relu6 (and none, with a residual) in the kernels'
// registers (TileFuse), the others as a pass over each stored tile; either way the bits of the plain
// macro-kernel followed by the epilogue over C, on full, short, half-width and edge tiles.
TEST_CASE("microkernel: post-ops fused in the tiles give the epilogue's bits", "[isa][gemm][ukernel][post_ops]") {
  for (const auto& kernel : testing::runnable_kernels()) {
    const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
    for (Activation act : {Activation::None, Activation::Relu, Activation::Relu6, Activation::Gelu})
      for (bool residual : {false, true}) {
        if (act == Activation::None && !residual) continue;  // no post-ops
        PostOps post;
        post.activation = act, post.residual = residual, post.residual_scale = residual ? 0.5f : 1.0f;
        for (int64_t m : {int64_t(mr), int64_t(mr - 1), int64_t(2 * mr + 1)})
          for (int64_t n : {int64_t(nr), int64_t(nr / 2), int64_t(nr + 3), int64_t(3 * nr)})
            for (int64_t k : {5, 37}) {
              INFO(kernel.name << " " << to_string(post) << " m " << m << " n " << n << " k " << k);
              GemmTester(kernel).m(m).n(n).k(k).ldc(n + 3).accumulate(k == 5).bias(m % 2 == 1).check_post_ops(post);
            }
      }
  }
}

// The implicit pixel-major kernels (ImplicitUkernelFn): A read in place through row pointers and
// tap offsets, every vector count, depths around the unroll.
TEST_CASE("implicit microkernel: rows and taps read in place, every vector count", "[isa][gemm][ukernel]") {
  int tested = 0;
  for (const detail::SgemmKernel& kernel : fastconv::testing::runnable_kernels()) {
    if (!kernel.implicit[0]) continue;
    const int mr = kernel.blocking.mr, nr = kernel.blocking.nr, lanes = kernel.half_nr;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> real(-1, 1);
    std::vector<float> image(4096);
    for (float& v : image) v = real(rng);
    for (int vectors = 1; vectors <= 3; ++vectors) {
      const detail::ImplicitUkernelFn tile = kernel.implicit[vectors - 1];
      if (vectors * lanes > nr) {
        CHECK(tile == nullptr);
        continue;
      }
      REQUIRE(tile != nullptr);
      for (int64_t k : {1, 3, 4, 5, 17, 133}) {
        INFO(kernel.name << " vectors " << vectors << " k " << k);
        // Rows anywhere in the image (repeats allowed, as a block's last tile repeats its pixel),
        // taps at any distance that stays inside it.
        std::uniform_int_distribution<int> row_at(0, 2047), tap_at(0, 2047);
        std::vector<const float*> rows(static_cast<std::size_t>(mr));
        for (auto& r : rows) r = image.data() + row_at(rng);
        rows[std::size_t(mr - 1)] = rows[std::size_t(mr - 2)];
        std::vector<int32_t> offsets(static_cast<std::size_t>(k));
        for (auto& o : offsets) o = tap_at(rng);
        detail::AlignedBuffer<float> b(std::size_t(k * nr));
        for (int64_t i = 0; i < k * nr; ++i) b.data()[i] = real(rng);
        const int64_t ldc = nr + 5;
        std::vector<float> c(std::size_t(mr * ldc));
        for (float& v : c) v = real(rng);
        const std::vector<float> c0 = c;
        // A prefetch stream (here the image) changes nothing computed.
        tile(k, rows.data(), offsets.data(), b.data(), c.data(), ldc, k % 2 ? image.data() : nullptr);
        for (int i = 0; i < mr; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const std::size_t at = std::size_t(i * ldc + j);
            if (j >= vectors * lanes) {  // past the tile's vectors: never written
              REQUIRE(c[at] == c0[at]);
              continue;
            }
            double ref = c0[at], mag = std::fabs(c0[at]);
            for (int64_t p = 0; p < k; ++p) {
              const double prod = double(rows[std::size_t(i)][offsets[std::size_t(p)]]) * b.data()[p * nr + j];
              ref += prod, mag += std::fabs(prod);
            }
            REQUIRE(std::fabs(c[at] - ref) <= 1e-6 * (mag + 1));
          }
      }
    }
    ++tested;
  }
  CHECK(tested >= 1);  // every instruction set has its pixel-major tile
}
