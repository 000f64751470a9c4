// Per-phase time of multi-phase algorithms (Winograd: input transform, products, output transform;
// FFT: forward transforms, products, inverse transform; im2col: packing, products), for the benches.
// Off unless a bench turns it on: a disabled ScopedPhase costs one relaxed load. Times are summed
// over threads (CPU seconds), so report them as fractions of their sum.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace fastconv::detail {

constexpr int kMaxPhases = 4;

class PhaseStats {
 public:
  static PhaseStats& global();
  void enable(bool on) { enabled_.store(on, std::memory_order_relaxed); }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  void reset();
  void add(int phase, const char* name, double seconds);
  // (name, seconds) of every phase seen since the last reset, in phase order.
  std::vector<std::pair<std::string, double>> snapshot() const;

 private:
  std::atomic<bool> enabled_{false};
  std::atomic<double> seconds_[kMaxPhases] = {};
  std::atomic<const char*> names_[kMaxPhases] = {};
};

// Times its scope into phase `phase` (0..3) when PhaseStats is enabled. Use around coarse work
// (a group of tiles), not per element.
class ScopedPhase {
 public:
  ScopedPhase(int phase, const char* name) : phase_(phase), name_(name), on_(PhaseStats::global().enabled()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~ScopedPhase() {
    if (on_)
      PhaseStats::global().add(phase_, name_,
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  int phase_;
  const char* name_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace fastconv::detail
