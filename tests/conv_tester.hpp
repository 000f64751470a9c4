// ConvTester: one line per test case, like NNPACK's and XNNPACK's testers.
//   ConvTester().input(1, 64, 56, 56).kernel(64, 3, 3).pad(1).check(Algorithm::Winograd);
// check() runs the algorithm on random data against the double-precision reference (normwise
// error within the tolerance of design section 8), then on small-integer data, where direct,
// im2col and Winograd F(2x2,3x3) must equal the reference bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fastconv/fastconv.hpp"

namespace fastconv::testing {

enum class Data { Random, SmallInt };

// Fills a tensor: Random is uniform in [-1, 1]; SmallInt is integers in [-8, 8].
std::vector<float> make_data(std::size_t count, Data kind, uint32_t seed);

// What diff_report found; text names max error, relative L2 and the worst element's coordinates.
struct Diff {
  double max_error = 0;    // max |y - ref| / max(conv(|x|,|w|) + |b|)
  double relative_l2 = 0;  // ||y - ref|| / ||ref||
  bool bitwise_equal = true;
  bool finite = true;      // no NaN or Inf in y where the reference is finite
  std::string text;
};
Diff diff_report(const ConvProblem& p, const std::vector<float>& y, const std::vector<double>& ref,
                 const std::vector<double>& ref_abs);

// The normwise tolerance of an implementation (design section 8).
double tolerance_for(const std::string& implementation);
// For a backward-data implementation ("bwd_data_im2col(im2col_gemm_..+direct_..)"): the largest
// tolerance of the forward implementations it runs; exact when all of them are.
double backward_tolerance(const std::string& implementation);
bool backward_exact_on_small_integers(const std::string& implementation);
// Whether an implementation must match the reference exactly on small-integer data.
bool exact_on_small_integers(const std::string& implementation);

class ConvTester {
 public:
  ConvTester& input(int64_t n, int64_t c, int64_t h, int64_t w);
  ConvTester& kernel(int64_t k, int64_t r, int64_t s);
  ConvTester& stride(int64_t s) { return stride(s, s); }
  ConvTester& stride(int64_t sh, int64_t sw);
  ConvTester& pad(int64_t p) { return pad(p, p, p, p); }
  ConvTester& pad(int64_t ph, int64_t pw) { return pad(ph, ph, pw, pw); }
  ConvTester& pad(int64_t top, int64_t bottom, int64_t left, int64_t right);
  ConvTester& dilation(int64_t d) { return dilation(d, d); }
  ConvTester& dilation(int64_t dh, int64_t dw);
  ConvTester& groups(int64_t g);
  ConvTester& problem(const ConvProblem& p);
  ConvTester& bias(bool with_bias);
  ConvTester& threads(int t);
  ConvTester& workspace_limit(std::size_t bytes);
  ConvTester& implementation(const std::string& prefix);
  ConvTester& seed(uint32_t s);
  // Also run with these thread counts and require bitwise-identical output.
  ConvTester& compare_threads(std::vector<int> counts);
  // Fused post-ops: y = act(conv + b + scale * r), checked against the reference followed by the
  // post-ops in double. residual(scale, aliased): r random; aliased: r is the output buffer itself.
  ConvTester& post_ops(const PostOps& po);
  ConvTester& activation(Activation a, float alpha = 0, float beta = 0);
  ConvTester& residual(float scale = 1, bool aliased = false);
  ConvTester& padding_mode(PadMode m);

  const ConvProblem& get_problem() const { return p_; }

  // Requires the algorithm to apply; checks accuracy (and exactness where due). Returns the
  // implementation that ran.
  std::string check(Algorithm a) const;
  // As check when the algorithm applies; returns "" when it declines (and verifies that it says
  // why, through find_algorithms, and that Plan::create throws Error).
  std::string check_if_applicable(Algorithm a) const;

  // The backward directions (design section 11), against the reference's gradients by definition,
  // on random and small-integer data; compare_threads applies. Backward-data: dy -> dx with the
  // transposed convolution's bias [C] when bias(true); backward-weights: x, dy -> dw and db.
  // Tolerances: backward-data as the forward's per algorithm (backward_tolerance); backward-weights
  // sums N*P*Q products per element (the forward sums C/g*R*S): the forward's tolerance scaled by
  // max(1, N*P*Q / 4096).
  std::string check_backward_data(Algorithm a) const;
  std::string check_backward_weights(Algorithm a) const;
  // As check_backward_*, "" when the algorithm declines (verifying that it says why).
  std::string check_backward_data_if_applicable(Algorithm a) const;
  std::string check_backward_weights_if_applicable(Algorithm a) const;
  std::vector<float> run_backward_data(const Plan& plan, const std::vector<float>& dy, const std::vector<float>& w,
                                       const std::vector<float>& b) const;
  // dw followed by db (K floats) when bias(true).
  std::vector<float> run_backward_weights(const Plan& plan, const std::vector<float>& x,
                                          const std::vector<float>& dy) const;
  PlanOptions options(Algorithm a, Direction d) const;

  // Runs a plan on the given data into a fresh output (guarded by canaries and NaN sentinels).
  // With a residual (post_ops.residual): r, passed as is or (aliased) as the output's initial value.
  std::vector<float> run(const Plan& plan, const std::vector<float>& x, const std::vector<float>& w,
                         const std::vector<float>& b, const std::vector<float>& r = {}) const;
  const PostOps& get_post_ops() const { return post_ops_; }
  bool aliased_residual() const { return aliased_; }
  PlanOptions options(Algorithm a) const;

 private:
  ConvProblem p_;
  bool bias_ = true;
  int threads_ = 0;
  std::size_t workspace_limit_ = PlanOptions::kDefaultWorkspaceLimit;
  std::string implementation_;
  uint32_t seed_ = 12345;
  std::vector<int> compare_threads_;
  PostOps post_ops_;
  bool aliased_ = false;
};

// Whether small-integer data stays exact through the post-ops (piecewise-linear activations with
// power-of-two slopes and scales, integer clamp bounds).
bool exact_post_ops(const PostOps& po);

// Whether `a` applies to `p` under `options` (some candidate of that algorithm is applicable).
bool applies(Algorithm a, const ConvProblem& p, const PlanOptions& options = {});

// Plans `p` under `options` (checking the workspace is within the limit), packs w and b, runs it
// on x: the output; the implementation's name in *implementation when asked.
std::vector<float> run_plan(const ConvProblem& p, const PlanOptions& options, const std::vector<float>& x,
                            const std::vector<float>& w, const std::vector<float>& b,
                            std::string* implementation = nullptr);

// The message of the Error that Plan::create throws for `p` under `options` ("" when it plans).
std::string plan_error(const ConvProblem& p, const PlanOptions& options);

// The byte count a refusal names after `key` ("... needs at least N bytes ..."); fails the test
// when the message does not name one.
std::size_t named_minimum(const std::string& message, const std::string& key = "needs at least ");

// The sweep of the foundation issue: batch and single sample, one channel, strides, asymmetric
// padding, dilation, groups and depthwise, non-square kernels and inputs, kernels larger than the
// input with padding, odd sizes past every SIMD width and tile remainder. Seeded, deterministic.
std::vector<ConvProblem> foundation_sweep();

// Resident-memory tests measure an execute's growth of the peak resident set (VmHWM) in bytes.
// peak_rss(true) resets the peak first (Linux: clear_refs 5) and fails the test when it cannot: the
// peak would be the whole run's.
long long peak_rss(bool reset);
// Brings up every thread of the pool of `threads` (0: the default) with work on each, so that its
// stacks, the allocator's per-thread caches and a sanitizer's per-thread state are resident before
// a test resets the peak: they are the process's memory, not the algorithm's.
void wake_thread_pool(int threads);

}  // namespace fastconv::testing
