#include "core/phase_stats.hpp"

namespace fastconv::detail {

PhaseStats& PhaseStats::global() {
  static PhaseStats stats;
  return stats;
}

void PhaseStats::reset() {
  for (int i = 0; i < kMaxPhases; ++i) seconds_[i].store(0.0), names_[i].store(nullptr);
}

void PhaseStats::add(int phase, const char* name, double seconds) {
  if (phase < 0 || phase >= kMaxPhases) return;
  names_[phase].store(name, std::memory_order_relaxed);
  double old = seconds_[phase].load(std::memory_order_relaxed);
  while (!seconds_[phase].compare_exchange_weak(old, old + seconds, std::memory_order_relaxed)) {
  }
}

std::vector<std::pair<std::string, double>> PhaseStats::snapshot() const {
  std::vector<std::pair<std::string, double>> out;
  for (int i = 0; i < kMaxPhases; ++i)
    if (const char* n = names_[i].load()) out.emplace_back(n, seconds_[i].load());
  return out;
}

}  // namespace fastconv::detail
