// The results of 'fastconv bench' and their three renderings: a text table, JSON, an SVG chart.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace fastconv::tools {

struct BenchEntry {
  std::string label;      // implementation name, "auto" (the planner's pick) or "onednn"
  std::string algorithm;  // direct, im2col, winograd, fft, auto, onednn
  std::string note;       // auto: the implementation picked; onednn: its kernel
  std::size_t workspace_bytes = 0;
  double first_ms = 0;    // the warm-up run
  bool timed_once = false;  // 15x slower than the fastest warm-up: not timed again
  std::vector<double> runs_ms;
  double median_ms = 0;
};

struct BenchShape {
  std::string name, problem;
  double gflop = 0;
  std::vector<BenchEntry> entries;

  const BenchEntry* find(const std::string& label) const;
  const BenchEntry* best_of(const std::string& algorithm) const;  // fastest implementation of one algorithm
  const BenchEntry* best() const;                                  // fastest fastconv implementation
  // The planner's choice against the fastest implementation: the picked implementation's own runner
  // (timed among the others, as they were) over the fastest, or the 'auto' runner's time when the
  // pick has no runner of its own; 0 without a pick. The 'auto' runner and its named twin are the
  // same code timed twice, and on a shared host they differ by up to 25% in one run: that is the
  // bench's noise, not the planner's choice.
  double pick_over_best() const;
};

struct BenchReport {
  int threads = 1;
  std::string isa, mode;
  std::string direction = "forward";
  std::string post_ops = "none";  // the fused epilogue every run had (bench --post-ops)
  double peak_gflops = 0;  // the highest of peak_samples measurements, one before each shape
  int peak_samples = 0;
  double seconds = 0;
  std::vector<BenchShape> shapes;
};

void print_table(const BenchReport&, std::FILE* out);
void write_json(const BenchReport&, const std::string& path);
void write_svg(const BenchReport&, const std::string& path);

}  // namespace fastconv::tools
