// FFTW planning under one lock; wisdom export and import under the same lock.
#include "fft/fftw_plans.hpp"

#include <cstdlib>
#include <string>
#include <utility>

#include "core/aligned_buffer.hpp"
#include "fft/fft_wisdom.hpp"

namespace fastconv::detail {

namespace {
// FFTW's planner is global to the process: an application planning FFTW itself would race with
// fastconv's lock, which it cannot see. fftwf_make_planner_thread_safe() puts FFTW's own lock around
// every planner call and plan destruction, whoever makes them. Called when the library is loaded,
// before any thread of the application can be inside the planner: installing the hooks while a
// plan is being made aborts (found by the concurrency test when it was called on first use).
const bool kFftwPlannerThreadSafe = (fftwf_make_planner_thread_safe(), true);
}  // namespace

std::mutex& fftw_planner_mutex() {
  (void)kFftwPlannerThreadSafe;
  static std::mutex m;  // still taken around fastconv's planning and wisdom import/export
  return m;
}

FftwPlans::FftwPlans(int64_t th, int64_t tw, PlanMode mode) {
  // FFTW_MEASURE runs transforms on the arrays it is given: plan on scratch, execute on new arrays.
  AlignedBuffer<float> real(std::size_t(th * tw));
  AlignedBuffer<float> spectrum(std::size_t(2 * th * (tw / 2 + 1)));
  real.zero(), spectrum.zero();
  const int n[2] = {int(th), int(tw)};
  const unsigned flags = (mode == PlanMode::Measure ? FFTW_MEASURE : FFTW_ESTIMATE) | FFTW_DESTROY_INPUT;
  auto* spec = reinterpret_cast<fftwf_complex*>(spectrum.data());
  {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    forward_ = fftwf_plan_many_dft_r2c(2, n, 1, real.data(), nullptr, 1, 0, spec, nullptr, 1, 0, flags);
    inverse_ = fftwf_plan_many_dft_c2r(2, n, 1, spec, nullptr, 1, 0, real.data(), nullptr, 1, 0, flags);
  }
  if (!forward_ || !inverse_) {
    destroy();
    throw Error("fft: FFTW could not plan a " + std::to_string(th) + "x" + std::to_string(tw) + " transform");
  }
}

FftwPlans::FftwPlans(FftwPlans&& o) noexcept
    : forward_(std::exchange(o.forward_, nullptr)), inverse_(std::exchange(o.inverse_, nullptr)) {}

FftwPlans& FftwPlans::operator=(FftwPlans&& o) noexcept {
  if (this != &o) {
    destroy();
    forward_ = std::exchange(o.forward_, nullptr);
    inverse_ = std::exchange(o.inverse_, nullptr);
  }
  return *this;
}

FftwPlans::~FftwPlans() { destroy(); }

void FftwPlans::destroy() {
  if (!forward_ && !inverse_) return;
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  if (forward_) fftwf_destroy_plan(forward_);
  if (inverse_) fftwf_destroy_plan(inverse_);
  forward_ = inverse_ = nullptr;
}

std::string fft_export_wisdom() {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  char* text = fftwf_export_wisdom_to_string();
  if (!text) return "";
  std::string out(text);
  std::free(text);  // FFTW 3.3 allocates it with malloc
  return out;
}

void fft_import_wisdom(const std::string& text) {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  if (!fftwf_import_wisdom_from_string(text.c_str()))
    throw Error("FFTW wisdom: rejected by FFTW (not wisdom exported by fftwf_export_wisdom)");
}

}  // namespace fastconv::detail
