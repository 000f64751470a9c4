#include "conv_tester.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "core/parallel.hpp"
#include "direct/reference.hpp"

namespace fastconv::testing {

std::vector<float> make_data(std::size_t count, Data kind, uint32_t seed) {
  std::vector<float> v(count);
  std::mt19937 rng(seed);
  if (kind == Data::Random) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& x : v) x = dist(rng);
  } else {
    std::uniform_int_distribution<int> dist(-8, 8);
    for (float& x : v) x = float(dist(rng));
  }
  return v;
}

Diff diff_report(const ConvProblem& p, const std::vector<float>& y, const std::vector<double>& ref,
                 const std::vector<double>& ref_abs) {
  Diff d;
  double scale = 0, err2 = 0, ref2 = 0, worst = -1;
  std::size_t worst_i = 0, first_bad = SIZE_MAX;
  for (double a : ref_abs) scale = std::max(scale, a);
  if (scale == 0) scale = 1;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double e = std::fabs(double(y[i]) - ref[i]);
    if (!std::isfinite(y[i]) && std::isfinite(ref[i])) {
      d.finite = false;
      if (first_bad == SIZE_MAX) first_bad = i;
    }
    if (double(y[i]) != ref[i]) d.bitwise_equal = false;
    if (e > worst || std::isnan(e)) {
      worst = std::isnan(e) ? INFINITY : e;
      worst_i = i;
    }
    err2 += e * e, ref2 += ref[i] * ref[i];
  }
  d.max_error = worst / scale;
  d.relative_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  const int64_t P = p.out_height(), Q = p.out_width(), K = p.out_channels;
  auto coords = [&](std::size_t i) {
    std::ostringstream s;
    s << "[n=" << i / std::size_t(K * P * Q) << ", k=" << i / std::size_t(P * Q) % std::size_t(K)
      << ", p=" << i / std::size_t(Q) % std::size_t(P) << ", q=" << i % std::size_t(Q) << "]";
    return s.str();
  };
  std::ostringstream s;
  s << to_string(p) << ": max normwise error " << d.max_error << ", relative L2 " << d.relative_l2
    << ", worst at " << coords(worst_i) << " got " << y[worst_i] << " want " << ref[worst_i];
  if (!d.finite) s << "; first non-finite at " << coords(first_bad);
  d.text = s.str();
  return d;
}

// design.md section 8, per implementation family. An implementation this list does not know fails
// the test instead of borrowing a tolerance: a new family must state its own.
double tolerance_for(const std::string& impl) {
  const std::pair<const char*, double> known[] = {
      {"direct_", 1e-5}, {"im2col_", 1e-5}, {"winograd_f2x2_", 1e-5}, {"winograd_f4x4_", 1e-4}, {"fft_", 2e-5},
      {"winograd_1d_", 2e-5},
      {"bwd_data_depthwise_s2_", 1e-5}};  // a direct sum per element, like direct_
  for (const auto& [prefix, tolerance] : known)
    if (impl.rfind(prefix, 0) == 0) return tolerance;
  FAIL("no tolerance known for implementation '" << impl << "' (tests/conv_tester.cpp tolerance_for)");
  return 0;
}

bool exact_on_small_integers(const std::string& impl) {
  return impl.rfind("direct", 0) == 0 || impl.rfind("im2col", 0) == 0 || impl.rfind("winograd_f2x2", 0) == 0 ||
         impl.rfind("bwd_data_depthwise_s2", 0) == 0;
}

ConvTester& ConvTester::input(int64_t n, int64_t c, int64_t h, int64_t w) {
  p_.batch = n, p_.in_channels = c, p_.in_height = h, p_.in_width = w;
  return *this;
}
ConvTester& ConvTester::kernel(int64_t k, int64_t r, int64_t s) {
  p_.out_channels = k, p_.kernel_height = r, p_.kernel_width = s;
  return *this;
}
ConvTester& ConvTester::stride(int64_t sh, int64_t sw) {
  p_.stride_h = sh, p_.stride_w = sw;
  return *this;
}
ConvTester& ConvTester::pad(int64_t t, int64_t b, int64_t l, int64_t r) {
  p_.pad_top = t, p_.pad_bottom = b, p_.pad_left = l, p_.pad_right = r;
  return *this;
}
ConvTester& ConvTester::dilation(int64_t dh, int64_t dw) {
  p_.dilation_h = dh, p_.dilation_w = dw;
  return *this;
}
ConvTester& ConvTester::groups(int64_t g) {
  p_.groups = g;
  return *this;
}
ConvTester& ConvTester::problem(const ConvProblem& p) {
  p_ = p;
  return *this;
}
ConvTester& ConvTester::bias(bool b) {
  bias_ = b;
  return *this;
}
ConvTester& ConvTester::threads(int t) {
  threads_ = t;
  return *this;
}
ConvTester& ConvTester::workspace_limit(std::size_t b) {
  workspace_limit_ = b;
  return *this;
}
ConvTester& ConvTester::implementation(const std::string& prefix) {
  implementation_ = prefix;
  return *this;
}
ConvTester& ConvTester::seed(uint32_t s) {
  seed_ = s;
  return *this;
}
ConvTester& ConvTester::compare_threads(std::vector<int> counts) {
  compare_threads_ = std::move(counts);
  return *this;
}

ConvTester& ConvTester::post_ops(const PostOps& po) {
  post_ops_ = po;
  return *this;
}
ConvTester& ConvTester::activation(Activation a, float alpha, float beta) {
  post_ops_.activation = a, post_ops_.alpha = alpha, post_ops_.beta = beta;
  return *this;
}
ConvTester& ConvTester::residual(float scale, bool aliased) {
  post_ops_.residual = true, post_ops_.residual_scale = scale;
  aliased_ = aliased;
  return *this;
}
ConvTester& ConvTester::padding_mode(PadMode m) {
  p_.padding_mode = m;
  return *this;
}

bool exact_post_ops(const PostOps& po) {
  auto power_of_two = [](float v) {
    int e = 0;
    return v == 0 || std::fabs(std::frexp(v, &e)) == 0.5f;
  };
  if (po.residual && !power_of_two(po.residual_scale)) return false;
  switch (po.activation) {
    case Activation::None:
    case Activation::Relu:
    case Activation::Relu6: return true;
    case Activation::LeakyRelu: return power_of_two(po.alpha);
    case Activation::Clamp: return po.alpha == std::floor(po.alpha) && po.beta == std::floor(po.beta);
    default: return false;
  }
}

PlanOptions ConvTester::options(Algorithm a) const {
  PlanOptions o;
  o.post_ops = post_ops_;
  o.algorithm = a;
  o.threads = threads_;
  o.workspace_limit = workspace_limit_;
  o.implementation = implementation_;
  return o;
}

std::vector<float> ConvTester::run(const Plan& plan, const std::vector<float>& x, const std::vector<float>& w,
                                   const std::vector<float>& b, const std::vector<float>& r) const {
  // The output sits between canaries; it starts as NaN so that an element never written shows
  // (or as the residual, when the residual is the output).
  constexpr std::size_t kGuard = 67;
  const std::size_t n = p_.output_elements();
  std::vector<float> guarded(n + 2 * kGuard, std::nanf(""));
  for (std::size_t i = 0; i < kGuard; ++i) guarded[i] = guarded[kGuard + n + i] = 1234.5f;
  float* y = guarded.data() + kGuard;
  const PackedWeights packed = plan.pack_weights(w.data(), bias_ ? b.data() : nullptr);
  if (post_ops_.residual) {
    REQUIRE(r.size() == n);
    if (aliased_) {
      std::copy(r.begin(), r.end(), y);
      plan.execute(x.data(), packed, y, y);
    } else {
      plan.execute(x.data(), packed, y, r.data());
    }
  } else {
    plan.execute(x.data(), packed, y);
  }
  for (std::size_t i = 0; i < kGuard; ++i) {
    REQUIRE(guarded[i] == 1234.5f);
    REQUIRE(guarded[kGuard + n + i] == 1234.5f);
  }
  return std::vector<float>(guarded.begin() + kGuard, guarded.begin() + kGuard + std::ptrdiff_t(n));
}

std::string ConvTester::check(Algorithm a) const {
  const Plan plan = Plan::create(p_, options(a));
  const std::string impl = plan.implementation();
  INFO("implementation " << impl << " on " << to_string(p_) << (bias_ ? " with bias" : " without bias")
                         << ", threads " << plan.threads() << ", post-ops " << to_string(post_ops_)
                         << (aliased_ ? " (residual is the output)" : ""));
  REQUIRE(plan.algorithm() == a);
  REQUIRE(plan.workspace_bytes() <= workspace_limit_);

  for (Data kind : {Data::Random, Data::SmallInt}) {
    const auto x = make_data(p_.input_elements(), kind, seed_);
    const auto w = make_data(p_.weight_elements(), kind, seed_ + 1);
    const auto b = make_data(std::size_t(p_.out_channels), kind, seed_ + 2);
    const auto r = post_ops_.residual ? make_data(p_.output_elements(), kind, seed_ + 3) : std::vector<float>();
    std::vector<double> ref(p_.output_elements()), ref_abs(p_.output_elements());
    detail::reference_conv2d(p_, x.data(), w.data(), bias_ ? b.data() : nullptr, ref.data(), ref_abs.data());
    detail::reference_post_ops(post_ops_, r.empty() ? nullptr : r.data(), ref.data(), ref_abs.data(), ref.size());
    const auto y = run(plan, x, w, b, r);
    const Diff d = diff_report(p_, y, ref, ref_abs);
    INFO((kind == Data::Random ? "random data: " : "small-integer data: ") << d.text);
    REQUIRE(d.finite);
    if (kind == Data::Random) {
      REQUIRE(d.max_error <= tolerance_for(impl));
    } else if (exact_on_small_integers(impl) && exact_post_ops(post_ops_)) {
      REQUIRE(d.bitwise_equal);
    } else {
      REQUIRE(d.max_error <= tolerance_for(impl));
    }
    if (kind == Data::Random) {
      // The same implementation on other thread counts gives the same bits.
      for (int t : compare_threads_) {
        ConvTester other = *this;
        other.threads_ = t;
        PlanOptions o = other.options(a);
        o.implementation = impl;
        const Plan p2 = Plan::create(p_, o);
        REQUIRE(p2.implementation() == impl);
        INFO("threads " << t);
        REQUIRE(other.run(p2, x, w, b, r) == y);
      }
    }
  }
  return impl;
}

namespace {

// The forward implementations inside "bwd_data_x(a+b+c)".
std::vector<std::string> inner_names(const std::string& impl) {
  std::vector<std::string> out;
  const auto open = impl.find('('), close = impl.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return {impl};
  std::string inner = impl.substr(open + 1, close - open - 1);
  std::size_t start = 0;
  while (true) {
    const auto plus = inner.find('+', start);
    // "+padded_copy" names the wrapper that pads the input, not an algorithm with a tolerance.
    if (inner.compare(start, plus - start, "padded_copy") != 0) out.push_back(inner.substr(start, plus - start));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return out;
}

// Output between canaries, NaN where never written.
struct Guarded {
  static constexpr std::size_t kGuard = 67;
  explicit Guarded(std::size_t n) : n(n), v(n + 2 * kGuard, std::nanf("")) {
    for (std::size_t i = 0; i < kGuard; ++i) v[i] = v[kGuard + n + i] = 1234.5f;
  }
  float* data() { return v.data() + kGuard; }
  std::vector<float> checked() const {
    for (std::size_t i = 0; i < kGuard; ++i) {
      REQUIRE(v[i] == 1234.5f);
      REQUIRE(v[kGuard + n + i] == 1234.5f);
    }
    return std::vector<float>(v.begin() + kGuard, v.begin() + kGuard + std::ptrdiff_t(n));
  }
  std::size_t n;
  std::vector<float> v;
};

std::size_t dy_elements(const ConvProblem& p) { return p.output_elements(); }

}  // namespace

double backward_tolerance(const std::string& impl) {
  double tol = 0;
  for (const auto& n : inner_names(impl)) tol = std::max(tol, tolerance_for(n));
  return tol;
}

bool backward_exact_on_small_integers(const std::string& impl) {
  for (const auto& n : inner_names(impl))
    if (!exact_on_small_integers(n)) return false;
  return true;
}

PlanOptions ConvTester::options(Algorithm a, Direction d) const {
  PlanOptions o = options(a);
  o.direction = d;
  return o;
}

std::vector<float> ConvTester::run_backward_data(const Plan& plan, const std::vector<float>& dy,
                                                 const std::vector<float>& w, const std::vector<float>& b) const {
  Guarded dx(p_.input_elements());
  const PackedWeights packed = plan.pack_weights(w.data(), bias_ ? b.data() : nullptr);
  plan.execute_backward_data(dy.data(), packed, dx.data());
  return dx.checked();
}

std::vector<float> ConvTester::run_backward_weights(const Plan& plan, const std::vector<float>& x,
                                                    const std::vector<float>& dy) const {
  Guarded dw(p_.weight_elements());
  Guarded db(std::size_t(p_.out_channels));
  plan.execute_backward_weights(x.data(), dy.data(), dw.data(), bias_ ? db.data() : nullptr);
  std::vector<float> out = dw.checked();
  if (bias_) {
    const auto b = db.checked();
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

std::string ConvTester::check_backward_data(Algorithm a) const {
  const Plan plan = Plan::create(p_, options(a, Direction::BackwardData));
  const std::string impl = plan.implementation();
  INFO("backward-data " << impl << " on " << to_string(p_) << (bias_ ? " with bias" : " without bias")
                        << ", threads " << plan.threads());
  REQUIRE(plan.direction() == Direction::BackwardData);
  REQUIRE(plan.algorithm() == a);
  REQUIRE(plan.workspace_bytes() <= workspace_limit_);
  for (Data kind : {Data::Random, Data::SmallInt}) {
    const auto dy = make_data(dy_elements(p_), kind, seed_);
    const auto w = make_data(p_.weight_elements(), kind, seed_ + 1);
    const auto b = make_data(std::size_t(p_.in_channels), kind, seed_ + 2);
    std::vector<double> ref(p_.input_elements()), ref_abs(p_.input_elements());
    detail::reference_backward_data(p_, dy.data(), w.data(), bias_ ? b.data() : nullptr, ref.data(), ref_abs.data());
    const auto dx = run_backward_data(plan, dy, w, b);
    const Diff d = diff_report(p_, dx, ref, ref_abs);
    INFO((kind == Data::Random ? "random data: " : "small-integer data: ") << d.text);
    REQUIRE(d.finite);
    if (kind == Data::SmallInt && backward_exact_on_small_integers(impl))
      REQUIRE(d.bitwise_equal);
    else
      REQUIRE(d.max_error <= backward_tolerance(impl));
    if (kind == Data::Random)
      for (int t : compare_threads_) {
        ConvTester other = *this;
        other.threads_ = t;
        PlanOptions o = other.options(a, Direction::BackwardData);
        o.implementation = impl;
        // FFT picks its tile per thread count (forward too): another tile is another implementation.
        if (impl.find("fft") != std::string::npos && !plan_error(p_, o).empty()) continue;
        const Plan p2 = Plan::create(p_, o);
        REQUIRE(p2.implementation() == impl);
        INFO("threads " << t);
        REQUIRE(other.run_backward_data(p2, dy, w, b) == dx);
      }
  }
  return impl;
}

std::string ConvTester::check_backward_weights(Algorithm a) const {
  const Plan plan = Plan::create(p_, options(a, Direction::BackwardWeights));
  const std::string impl = plan.implementation();
  INFO("backward-weights " << impl << " on " << to_string(p_) << (bias_ ? " with bias" : " without bias")
                           << ", threads " << plan.threads());
  REQUIRE(plan.direction() == Direction::BackwardWeights);
  REQUIRE(plan.algorithm() == a);
  REQUIRE(plan.workspace_bytes() <= workspace_limit_);
  const double length = double(p_.batch * p_.out_height() * p_.out_width());
  const double tol = 1e-5 * std::max(1.0, length / 4096.0);
  for (Data kind : {Data::Random, Data::SmallInt}) {
    const auto x = make_data(p_.input_elements(), kind, seed_);
    const auto dy = make_data(dy_elements(p_), kind, seed_ + 1);
    const std::size_t nw = p_.weight_elements(), nk = std::size_t(p_.out_channels);
    std::vector<double> ref(nw + nk), ref_abs(nw + nk);
    detail::reference_backward_weights(p_, x.data(), dy.data(), ref.data(), ref.data() + nw, ref_abs.data(),
                                       ref_abs.data() + nw);
    if (!bias_) ref.resize(nw), ref_abs.resize(nw);
    const auto dw = run_backward_weights(plan, x, dy);
    const Diff d = diff_report(p_, dw, ref, ref_abs);
    INFO((kind == Data::Random ? "random data: " : "small-integer data: ") << d.text << " (tolerance " << tol << ")");
    REQUIRE(d.finite);
    // Small integers: every partial sum is an integer below 2^24 here, so the float sums are exact.
    if (kind == Data::SmallInt && 64.0 * length < double(1 << 24))
      REQUIRE(d.bitwise_equal);
    else
      REQUIRE(d.max_error <= tol);
    if (kind == Data::Random)
      for (int t : compare_threads_) {
        ConvTester other = *this;
        other.threads_ = t;
        PlanOptions o = other.options(a, Direction::BackwardWeights);
        o.implementation = impl;
        const Plan p2 = Plan::create(p_, o);
        REQUIRE(p2.implementation() == impl);
        INFO("threads " << t);
        REQUIRE(other.run_backward_weights(p2, x, dy) == dw);
      }
  }
  return impl;
}

std::string ConvTester::check_backward_data_if_applicable(Algorithm a) const {
  if (applies(a, p_, options(a, Direction::BackwardData))) return check_backward_data(a);
  REQUIRE_THROWS_AS(Plan::create(p_, options(a, Direction::BackwardData)), Error);
  return "";
}

std::string ConvTester::check_backward_weights_if_applicable(Algorithm a) const {
  if (applies(a, p_, options(a, Direction::BackwardWeights))) return check_backward_weights(a);
  REQUIRE_THROWS_AS(Plan::create(p_, options(a, Direction::BackwardWeights)), Error);
  return "";
}

bool applies(Algorithm a, const ConvProblem& p, const PlanOptions& options) {
  PlanOptions o = options;
  o.algorithm = a;
  for (const Candidate& c : find_algorithms(p, o))
    if (c.applicable && c.algorithm == a) return true;
  return false;
}

std::vector<float> run_plan(const ConvProblem& p, const PlanOptions& options, const std::vector<float>& x,
                            const std::vector<float>& w, const std::vector<float>& b, std::string* implementation) {
  const Plan plan = Plan::create(p, options);
  REQUIRE(plan.workspace_bytes() <= options.workspace_limit);
  if (implementation) *implementation = plan.implementation();
  std::vector<float> y(p.output_elements());
  plan.execute(x.data(), plan.pack_weights(w.data(), b.data()), y.data());
  return y;
}

std::string plan_error(const ConvProblem& p, const PlanOptions& options) {
  try {
    Plan::create(p, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::size_t named_minimum(const std::string& message, const std::string& key) {
  INFO(message);
  const std::size_t at = message.find(key);
  REQUIRE(at != std::string::npos);
  return std::stoull(message.substr(at + key.size()));
}

std::string ConvTester::check_if_applicable(Algorithm a) const {
  if (applies(a, p_, options(a))) return check(a);
  // A decline names its reason and Plan::create refuses with Error.
  bool reasoned = false;
  for (const Candidate& c : find_algorithms(p_, options(a))) reasoned |= !c.applicable && !c.reason.empty();
  REQUIRE(reasoned);
  REQUIRE_THROWS_AS(Plan::create(p_, options(a)), Error);
  return "";
}

std::vector<ConvProblem> foundation_sweep() {
  std::vector<ConvProblem> out;
  auto add = [&](const ConvTester& t) { out.push_back(t.get_problem()); };
  using T = ConvTester;
  // Hand-picked cases.
  add(T().input(1, 1, 5, 5).kernel(1, 3, 3));                                   // single channel
  add(T().input(3, 3, 17, 19).kernel(5, 3, 3).pad(1));                          // batch, odd sizes
  add(T().input(1, 8, 9, 33).kernel(16, 3, 3).pad(1));
  add(T().input(2, 5, 11, 13).kernel(7, 3, 3).pad(0, 2, 1, 0));                 // asymmetric padding
  add(T().input(1, 6, 12, 10).kernel(4, 1, 7).pad(0, 3));                       // non-square kernels
  add(T().input(1, 6, 12, 10).kernel(4, 7, 1).pad(3, 0));
  add(T().input(1, 4, 9, 14).kernel(3, 3, 5).pad(1, 2));
  add(T().input(1, 2, 3, 3).kernel(3, 5, 5).pad(2));                            // kernel larger than input
  add(T().input(2, 3, 2, 2).kernel(2, 7, 7).pad(3));
  add(T().input(1, 3, 4, 6).kernel(2, 3, 3).pad(5, 0, 0, 4));                   // padding beyond the kernel
  add(T().input(1, 5, 16, 15).kernel(6, 3, 3).pad(2).dilation(2));              // dilation
  add(T().input(1, 3, 20, 21).kernel(4, 3, 3).pad(3).dilation(3, 2));
  add(T().input(2, 8, 13, 13).kernel(8, 3, 3).pad(1).groups(2));                // groups
  add(T().input(1, 12, 10, 9).kernel(8, 3, 3).pad(1).groups(4));
  add(T().input(1, 16, 15, 17).kernel(16, 3, 3).pad(1).groups(16));             // depthwise
  add(T().input(2, 7, 9, 11).kernel(14, 5, 5).pad(2).groups(7));                // channel multiplier 2
  add(T().input(1, 9, 23, 18).kernel(9, 3, 3).stride(2).pad(1).groups(9));      // depthwise stride 2
  add(T().input(1, 3, 29, 31).kernel(8, 7, 7).stride(2).pad(3));                // stem-like
  add(T().input(1, 3, 35, 35).kernel(5, 11, 11).stride(4));                     // 11x11 stride 4
  add(T().input(2, 4, 17, 16).kernel(6, 3, 3).stride(3, 2).pad(1));             // unequal strides
  add(T().input(1, 4, 19, 19).kernel(5, 3, 3).stride(2).dilation(2).pad(2));    // stride and dilation
  add(T().input(1, 17, 7, 65).kernel(33, 1, 1));                                // 1x1
  add(T().input(2, 13, 9, 9).kernel(7, 1, 1).stride(2));                        // 1x1 strided
  add(T().input(1, 5, 8, 8).kernel(9, 1, 1).pad(1));                            // 1x1 padded
  add(T().input(1, 35, 13, 11).kernel(37, 3, 3).pad(1));                        // 3x3, many channels
  add(T().input(1, 20, 6, 7).kernel(13, 3, 3));                                 // 3x3, no padding
  add(T().input(2, 3, 20, 20).kernel(4, 9, 9).pad(4));                          // large kernel
  add(T().input(1, 2, 40, 37).kernel(3, 15, 15).pad(7));
  for (int64_t w : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65})               // widths past SIMD widths
    add(T().input(1, 3, 5, w).kernel(5, 3, 3).pad(1));
  for (int64_t k : {1, 5, 6, 7, 13, 17, 33})                                     // channels past tiles
    add(T().input(1, 7, 6, 18).kernel(k, 3, 3).pad(1));

  // Seeded random cases over every parameter.
  std::mt19937 rng(2024);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  while (out.size() < 110) {
    ConvProblem p;
    const int64_t g = pick(0, 3) == 0 ? pick(2, 4) : 1;
    p.groups = g;
    p.batch = pick(1, 3);
    p.in_channels = g * pick(1, 9);
    p.out_channels = g * pick(1, 12);
    p.in_height = pick(1, 30), p.in_width = pick(1, 40);
    p.kernel_height = pick(1, 6), p.kernel_width = pick(1, 6);
    p.stride_h = pick(1, 3), p.stride_w = pick(1, 3);
    p.dilation_h = pick(0, 3) == 0 ? pick(2, 3) : 1, p.dilation_w = pick(0, 3) == 0 ? pick(2, 3) : 1;
    p.pad_top = pick(0, 3), p.pad_bottom = pick(0, 3), p.pad_left = pick(0, 3), p.pad_right = pick(0, 3);
    try {
      p.validate();
    } catch (const Error&) {
      continue;
    }
    out.push_back(p);
  }
  return out;
}

namespace {
// A field of /proc/self/status in bytes ("VmHWM:", "VmRSS:"), -1 when absent.
long long status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  long long kb = -1;
  while (status >> key) {
    if (key == field) {
      status >> kb;
      break;
    }
    std::getline(status, key);
  }
  return kb < 0 ? -1 : kb * 1024;
}
}  // namespace

long long peak_rss(bool reset) {
  if (reset) {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    INFO("writing 5 to /proc/self/clear_refs failed: the peak RSS cannot be reset here");
    REQUIRE(clear.good());
    clear.close();
    REQUIRE(!clear.fail());
    // After a reset the peak is the current resident set (allow what this function allocates).
    const long long hwm = status_bytes("VmHWM:"), rss = status_bytes("VmRSS:");
    INFO("after the reset VmHWM " << hwm << " VmRSS " << rss);
    REQUIRE(hwm >= 0);
    REQUIRE(hwm <= rss + (1 << 20));
  }
  return status_bytes("VmHWM:");
}

void wake_thread_pool(int threads) {
  const detail::ThreadPool pool(threads > 0 ? threads : detail::hardware_threads());
  // Tasks that last long enough that every worker joins in before the loop runs dry.
  pool.for_each(8 * int64_t(pool.threads()), [](int64_t, int) { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
}

}  // namespace fastconv::testing
