// The FFTW plans of one FFT convolution (a 2D real-to-complex and complex-to-real pair), made and
// destroyed under the library-wide lock that every FFTW planner call in fastconv takes: FFTW's
// planner is not thread-safe, only fftwf_execute_* is.
#pragma once

#include <cstdint>
#include <mutex>

#include <fftw3.h>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

// Held around every FFTW call other than fftwf_execute_* (planning, destroying, wisdom).
std::mutex& fftw_planner_mutex();

class FftwPlans {
 public:
  FftwPlans() = default;
  // Plans th x tw transforms on scratch arrays with the layout execute uses: real arrays of th*tw
  // floats, spectra of th*(tw/2+1) interleaved complex values, both 64-byte aligned.
  // FFTW_ESTIMATE under PlanMode::Estimate (deterministic, no timing); FFTW_MEASURE under Measure.
  FftwPlans(int64_t th, int64_t tw, PlanMode mode);
  FftwPlans(FftwPlans&& o) noexcept;
  FftwPlans& operator=(FftwPlans&& o) noexcept;
  FftwPlans(const FftwPlans&) = delete;
  FftwPlans& operator=(const FftwPlans&) = delete;
  ~FftwPlans();

  bool ready() const { return forward_ != nullptr; }
  // Thread-safe: FFTW's new-array execute, on 64-byte aligned arrays. inverse destroys its input.
  void forward(float* real, float* spectrum) const {
    fftwf_execute_dft_r2c(forward_, real, reinterpret_cast<fftwf_complex*>(spectrum));
  }
  void inverse(float* spectrum, float* real) const {
    fftwf_execute_dft_c2r(inverse_, reinterpret_cast<fftwf_complex*>(spectrum), real);
  }

 private:
  void destroy();
  fftwf_plan forward_ = nullptr, inverse_ = nullptr;
};

}  // namespace fastconv::detail
