// Separable max pooling: the max over the kernel's width first, a row at a time into a plane of H x Q
// row maxima (SSE2 when the stride is 1 or 2: every x86-64 has it, and the pass is memory-bound),
// then the max over the kernel's height, a vector of output columns at a time. PyTorch 1.13's NCHW
// max pool is a scalar loop per output, and the strided-view formulation it replaced here cost 1.8 ms
// per ResNet-50 forward at batch 1 and 5 ms per VGG-16 one.
#include "max_pool.hpp"

#include <emmintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/parallel.hpp"
#include "core/partition.hpp"

namespace fastconv_python {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// The larger of m and v, lane by lane; a NaN in either wins (torch's pooling propagates NaN).
inline __m128 max_nan(__m128 m, __m128 v) {
  // maxps returns its second operand when either is NaN: right where v is NaN; keep m where m is.
  const __m128 m_nan = _mm_cmpunord_ps(m, m);
  return _mm_or_ps(_mm_and_ps(m_nan, m), _mm_andnot_ps(m_nan, _mm_max_ps(m, v)));
}

// t[q] = max over j < kw of row[q * sw + j] for q < n; row has `avail` readable floats.
void row_maxima(const float* row, int64_t avail, float* t, int64_t n, int64_t sw, int64_t kw) {
  int64_t q = 0;
  if (sw == 1) {
    for (; q + 4 <= n && q + kw + 3 <= avail; q += 4) {
      __m128 m = _mm_loadu_ps(row + q);
      for (int64_t j = 1; j < kw; ++j) m = max_nan(m, _mm_loadu_ps(row + q + j));
      _mm_storeu_ps(t + q, m);
    }
  } else if (sw == 2) {
    const auto evens = [&](int64_t at) {  // row[at], row[at + 2], row[at + 4], row[at + 6]
      return _mm_shuffle_ps(_mm_loadu_ps(row + at), _mm_loadu_ps(row + at + 4), _MM_SHUFFLE(2, 0, 2, 0));
    };
    for (; q + 4 <= n && 2 * q + kw + 7 <= avail; q += 4) {
      __m128 m = evens(2 * q);
      for (int64_t j = 1; j < kw; ++j) m = max_nan(m, evens(2 * q + j));
      _mm_storeu_ps(t + q, m);
    }
  }
  for (; q < n; ++q) {
    __m128 m = _mm_load_ss(row + q * sw);
    for (int64_t j = 1; j < kw; ++j) m = max_nan(m, _mm_load_ss(row + q * sw + j));
    _mm_store_ss(t + q, m);
  }
}

void pool_plane(const float* x, float* y, const PoolShape& s, float* padded, float* maxima) {
  if (s.pw == 0 && s.W == s.Q * s.sw && s.kw <= s.sw) {
    // No window crosses a row and nothing is skipped: the plane's rows are one long row.
    row_maxima(x, s.H * s.W, maxima, s.H * s.Q, s.sw, s.kw);
  } else {
    const int64_t avail = s.W + 2 * s.pw;
    for (int64_t h = 0; h < s.H; ++h) {
      std::copy(x + h * s.W, x + (h + 1) * s.W, padded + s.pw);
      row_maxima(padded, avail, maxima + h * s.Q, s.Q, s.sw, s.kw);
    }
  }
  for (int64_t p = 0; p < s.P; ++p) {
    float* out = y + p * s.Q;
    const int64_t first = std::max<int64_t>(0, s.ph - p * s.sh);  // taps above the input are padding
    const int64_t last = std::min(s.kh, s.H + s.ph - p * s.sh);   // and so are those below it
    const float* top = maxima + (p * s.sh - s.ph + first) * s.Q;
    int64_t q = 0;
    for (; q + 4 <= s.Q; q += 4) {
      __m128 m = _mm_loadu_ps(top + q);
      for (int64_t i = first + 1; i < last; ++i) m = max_nan(m, _mm_loadu_ps(top + (i - first) * s.Q + q));
      _mm_storeu_ps(out + q, m);
    }
    for (; q < s.Q; ++q) {
      __m128 m = _mm_load_ss(top + q);
      for (int64_t i = first + 1; i < last; ++i) m = max_nan(m, _mm_load_ss(top + (i - first) * s.Q + q));
      _mm_store_ss(out + q, m);
    }
  }
}

}  // namespace

void max_pool2d(const float* x, float* y, const PoolShape& s, int threads) {
  // Each thread slot: one padded input row (-inf on both sides) and the plane's row maxima, allocated
  // once per call (not per task).
  const int64_t padded_width = s.W + 2 * s.pw, maxima_floats = s.H * s.Q;
  // On fastconv's own threads, as its convolutions (oneTBB's arena of that size, or the task runner
  // fastconv.set_threading installed): between two convolutions of a network, a pool on torch's
  // OpenMP team would wake workers that then spin on the cores the next convolution needs.
  const int64_t tasks = fastconv::detail::balanced_tasks(s.planes, threads, fastconv::detail::kBalancedTasksPerThread);
  const fastconv::detail::ThreadPool pool(threads);
  std::vector<float> padded(std::size_t(pool.threads() * padded_width), kMinusInf);
  std::vector<float> maxima(std::size_t(pool.threads() * maxima_floats));
  pool.for_each(tasks, [&](int64_t task, int slot) {
    const fastconv::detail::Range planes = fastconv::detail::run_of(s.planes, tasks, task);
    for (int64_t plane = planes.begin; plane < planes.end; ++plane)
      pool_plane(x + plane * s.H * s.W, y + plane * s.P * s.Q, s, padded.data() + slot * padded_width,
                 maxima.data() + slot * maxima_floats);
  });
}

}  // namespace fastconv_python
