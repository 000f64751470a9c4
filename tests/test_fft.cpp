// FFT convolution: the reference over the stride-1 sweep, FFT properties (linearity, impulse
// response, translation), tiles and batches, thread counts, the NaN-spreads-over-its-tile contract,
// Estimate and Measure planning, FFTW wisdom, and its declines.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "conv_tester.hpp"
#include "core/aligned_buffer.hpp"
#include "core/geometry.hpp"
#include "core/parallel.hpp"
#include "direct/reference.hpp"
#include "fft/fft_conv.hpp"
#include "fft/fft_wisdom.hpp"
#include "planner/planner.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;
using fastconv::testing::named_minimum;
using fastconv::testing::plan_error;

namespace {

bool is_stride_one(const ConvProblem& p) { return p.stride_h == 1 && p.stride_w == 1; }

// The transform size in an implementation name "fft_tile<th>x<tw>__<isa>".
std::pair<int64_t, int64_t> transform_size(const std::string& impl) {
  const auto at = impl.find("fft_tile");
  REQUIRE(at == 0);
  std::size_t used = 0;
  const int64_t th = std::stoll(impl.substr(8), &used);
  const int64_t tw = std::stoll(impl.substr(8 + used + 1));
  return {th, tw};
}

// Runs one configured FFT implementation (internal API) on the given data.
std::vector<float> run_impl(detail::ConvImpl& impl, const ConvProblem& p, int threads, const std::vector<float>& x,
                            const std::vector<float>& w, const std::vector<float>& b) {
  detail::AlignedBuffer<float> packed(impl.packed_weights_floats());
  impl.pack_weights(w.data(), b.data(), packed.data());
  detail::AlignedBuffer<char> ws(impl.workspace_bytes());
  std::vector<float> y(p.output_elements(), std::nanf(""));
  impl.execute(x.data(), packed.data(), y.data(), ws.data(), detail::ThreadPool(threads));
  return y;
}

std::unique_ptr<detail::ConvImpl> make(const ConvProblem& p, int64_t th, int64_t tw, int threads,
                                       std::size_t limit = PlanOptions::kDefaultWorkspaceLimit) {
  detail::PlanContext ctx;
  ctx.isa = detail::best_isa();
  ctx.machine = detail::machine_model(ctx.isa);
  ctx.threads = threads;
  ctx.workspace_limit = limit;
  auto impl = detail::make_fft_conv(detail::Geometry(p), ctx, th, tw);
  REQUIRE(impl);
  REQUIRE(impl->workspace_bytes() <= limit);
  impl->prepare(PlanMode::Estimate);
  return impl;
}

testing::Diff against_reference(const ConvProblem& p, const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& b, const std::vector<float>& y) {
  std::vector<double> ref(p.output_elements()), ref_abs(p.output_elements());
  detail::reference_conv2d(p, x.data(), w.data(), b.data(), ref.data(), ref_abs.data());
  return testing::diff_report(p, y, ref, ref_abs);
}

std::vector<float> run_plan(const Plan& plan, const std::vector<float>& x, const std::vector<float>& w,
                            const float* bias) {
  std::vector<float> y(plan.problem().output_elements());
  plan.execute(x.data(), plan.pack_weights(w.data(), bias), y.data());
  return y;
}

// The smallest workspace_limit under which the th x tw implementation still applies.
std::size_t minimum_workspace(const ConvProblem& p, int64_t th, int64_t tw, int threads) {
  detail::PlanContext ctx;
  ctx.isa = detail::best_isa();
  ctx.machine = detail::machine_model(ctx.isa);
  ctx.threads = threads;
  std::size_t lo = 0, hi = make(p, th, tw, threads)->workspace_bytes();
  while (lo < hi) {
    ctx.workspace_limit = lo + (hi - lo) / 2;
    if (detail::make_fft_conv(detail::Geometry(p), ctx, th, tw))
      hi = ctx.workspace_limit;
    else
      lo = ctx.workspace_limit + 1;
  }
  return lo;
}

PlanOptions fft_options(int threads = 0) {
  PlanOptions o;
  o.algorithm = Algorithm::FFT;
  o.threads = threads;
  return o;
}

}  // namespace

TEST_CASE("fft matches the reference over the stride-1 sweep", "[isa][fft][sweep]") {
  int applied = 0, stride_one = 0, index = 0;
  for (const ConvProblem& p : testing::foundation_sweep()) {
    INFO("sweep case " << index << ": " << to_string(p));
    ConvTester t;
    t.problem(p).bias(index % 3 != 2).seed(uint32_t(2000 + index));
    if (index % 4 == 0) t.compare_threads({1, 2, 3});
    const std::string impl = t.check_if_applicable(Algorithm::FFT);
    // Every stride-1 problem applies; every other one declines (check_if_applicable verified the reason).
    CHECK(impl.empty() != is_stride_one(p));
    applied += !impl.empty(), stride_one += is_stride_one(p);
    ++index;
  }
  CHECK(applied == stride_one);
  CHECK(stride_one > 40);
}

TEST_CASE("fft: large layers, dilation, groups and batch", "[isa][fft]") {
  using T = ConvTester;
  for (const ConvTester& t : {T().input(1, 32, 128, 128).kernel(32, 9, 9).pad(4),
                              T().input(1, 1, 300, 277).kernel(1, 31, 31).pad(15),
                              T().input(2, 6, 70, 90).kernel(10, 7, 7).pad(3).groups(2),
                              T().input(3, 4, 41, 37).kernel(5, 5, 3).pad(4, 0, 1, 3).dilation(3, 2),
                              T().input(1, 12, 33, 65).kernel(12, 7, 7).pad(3).groups(12),
                              T().input(2, 3, 64, 64).kernel(2, 15, 15).pad(7).dilation(2),
                              T().input(1, 192, 23, 21).kernel(96, 5, 5).pad(2),  // long channel sums
                              T().input(1, 7, 1, 200).kernel(9, 1, 31).pad(0, 15)}) {
    ConvTester(t).compare_threads({1, 3}).check(Algorithm::FFT);
  }
}

TEST_CASE("fft: many tiles and batches give the same bits as one", "[isa][fft]") {
  // 3 images of 61x53 with a 7x5 kernel dilated to 13x9: tiles of every shape, edge tiles cropped.
  const ConvProblem p = ConvTester().input(3, 5, 61, 53).kernel(7, 7, 5).pad(6, 5, 4, 4).dilation(2).get_problem();
  const auto x = make_data(p.input_elements(), Data::Random, 11);
  const auto w = make_data(p.weight_elements(), Data::Random, 12);
  const auto b = make_data(std::size_t(p.out_channels), Data::Random, 13);
  for (auto [th, tw] : {std::pair<int64_t, int64_t>{16, 16}, {14, 24}, {32, 10}, {72, 64}, {27, 36}}) {
    INFO("transform " << th << "x" << tw);
    auto whole = make(p, th, tw, 1);
    const auto y = run_impl(*whole, p, 1, x, w, b);
    const auto d = against_reference(p, x, w, b, y);
    INFO(d.text << "; " << whole->describe());
    REQUIRE(d.finite);
    CHECK(d.max_error <= 2e-5);
    // The smallest budget (one tile per batch), a middle one, and 2 or 3 threads: the same bits.
    const std::size_t minimum = minimum_workspace(p, th, tw, 3);
    const std::size_t full = make(p, th, tw, 3)->workspace_bytes();
    for (std::size_t limit : {minimum, minimum + (full - minimum) / 2})
      for (int threads : {2, 3}) {
        auto impl = make(p, th, tw, threads, limit);
        INFO("limit " << limit << " threads " << threads << ": " << impl->describe());
        CHECK(run_impl(*impl, p, threads, x, w, b) == y);
      }
    CHECK_THAT(make(p, th, tw, 3, minimum)->describe(), Catch::Contains(" 1 tiles per batch"));
  }
}

TEST_CASE("fft: linearity", "[isa][fft][property]") {
  const ConvProblem p = ConvTester().input(2, 4, 45, 38).kernel(3, 9, 7).pad(4, 3).get_problem();
  const Plan plan = Plan::create(p, fft_options());
  const auto x1 = make_data(p.input_elements(), Data::Random, 1);
  const auto x2 = make_data(p.input_elements(), Data::Random, 2);
  const auto w = make_data(p.weight_elements(), Data::Random, 3);
  std::vector<float> mix(x1.size());
  const float a = 0.75f, c = -1.5f;
  for (std::size_t i = 0; i < mix.size(); ++i) mix[i] = a * x1[i] + c * x2[i];
  const auto y1 = run_plan(plan, x1, w, nullptr), y2 = run_plan(plan, x2, w, nullptr);
  const auto y = run_plan(plan, mix, w, nullptr);
  // Against the scale of the sum: |a| conv(|x1|,|w|) + |c| conv(|x2|,|w|) <= 2.25 * (R*S*C) at most.
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    worst = std::max(worst, std::fabs(double(y[i]) - (double(a) * y1[i] + double(c) * y2[i])));
    scale = std::max(scale, std::fabs(double(y[i])));
  }
  INFO("worst " << worst << " scale " << scale);
  CHECK(scale > 1);
  CHECK(worst <= 4e-5 * scale);
}

TEST_CASE("fft: the impulse response is the flipped kernel", "[isa][fft][property]") {
  // One unit pixel at (h0, w0) of channel c: y[k][p][q] = w[k][c][r][s] where p + r*dh - pad = h0.
  const ConvProblem p = ConvTester().input(1, 3, 50, 47).kernel(4, 7, 5).pad(3, 2).dilation(2, 1).get_problem();
  const Plan plan = Plan::create(p, fft_options());
  const auto w = make_data(p.weight_elements(), Data::Random, 7);
  const int64_t c = 1, h0 = 23, w0 = 19, P = p.out_height(), Q = p.out_width();
  std::vector<float> x(p.input_elements(), 0.0f);
  x[std::size_t((c * p.in_height + h0) * p.in_width + w0)] = 1.0f;
  const auto y = run_plan(plan, x, w, nullptr);
  double worst = 0;
  int64_t taps = 0;
  for (int64_t k = 0; k < p.out_channels; ++k)
    for (int64_t pp = 0; pp < P; ++pp)
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t dr = h0 + p.pad_top - pp, ds = w0 + p.pad_left - q;
        float want = 0.0f;
        if (dr >= 0 && ds >= 0 && dr % p.dilation_h == 0 && ds % p.dilation_w == 0 && dr / p.dilation_h < p.kernel_height &&
            ds / p.dilation_w < p.kernel_width) {
          want = w[std::size_t(((k * p.in_channels + c) * p.kernel_height + dr / p.dilation_h) * p.kernel_width +
                               ds / p.dilation_w)];
          ++taps;
        }
        worst = std::max(worst, std::fabs(double(y[std::size_t((k * P + pp) * Q + q)]) - want));
      }
  CHECK(taps == p.out_channels * p.kernel_height * p.kernel_width);
  CHECK(worst <= 1e-6);
}

TEST_CASE("fft: translating the input translates the output away from the borders", "[isa][fft][property]") {
  const ConvProblem p = ConvTester().input(1, 3, 90, 80).kernel(2, 11, 11).pad(5).get_problem();
  const Plan plan = Plan::create(p, fft_options());
  INFO(plan.describe());
  const auto w = make_data(p.weight_elements(), Data::Random, 5);
  const auto x = make_data(p.input_elements(), Data::Random, 6);
  const int64_t H = p.in_height, W = p.in_width, dy = 13, dx = 7;  // moves content across tile borders
  std::vector<float> moved(x.size(), 0.0f);
  for (int64_t c = 0; c < p.in_channels; ++c)
    for (int64_t h = 0; h + dy < H; ++h)
      for (int64_t v = 0; v + dx < W; ++v) moved[std::size_t((c * H + h + dy) * W + v + dx)] = x[std::size_t((c * H + h) * W + v)];
  const auto y = run_plan(plan, x, w, nullptr), ym = run_plan(plan, moved, w, nullptr);
  // Outputs whose receptive field lies inside the image in both runs.
  const int64_t P = p.out_height(), Q = p.out_width(), m = 5;
  double worst = 0, scale = 0;
  for (int64_t k = 0; k < p.out_channels; ++k)
    for (int64_t pp = m; pp + dy < P - m; ++pp)
      for (int64_t q = m; q + dx < Q - m; ++q) {
        const double a = y[std::size_t((k * P + pp) * Q + q)], b = ym[std::size_t((k * P + pp + dy) * Q + q + dx)];
        worst = std::max(worst, std::fabs(a - b)), scale = std::max(scale, std::fabs(a));
      }
  INFO("worst " << worst << " scale " << scale);
  CHECK(scale > 1);
  CHECK(worst <= 2e-5 * p.in_channels * 121);
}

TEST_CASE("fft: a NaN spreads over its whole tile and no further", "[isa][fft][nan]") {
  // Two groups: the NaN in group 0 must leave group 1 finite. Several tiles per image.
  const ConvProblem p = ConvTester().input(1, 4, 100, 90).kernel(6, 9, 9).pad(4).groups(2).get_problem();
  for (auto [th, tw] : {std::pair<int64_t, int64_t>{32, 32}, {24, 40}}) {
    auto impl = make(p, th, tw, 2);
    const std::string name = impl->name();
    REQUIRE(transform_size(name) == std::make_pair(th, tw));
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      auto x = make_data(p.input_elements(), Data::Random, 1);
      const auto w = make_data(p.weight_elements(), Data::Random, 2);
      const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
      const int64_t c = 1, h0 = 40, w0 = 33;  // group 0
      x[std::size_t((c * p.in_height + h0) * p.in_width + w0)] = bad;
      const auto y = run_impl(*impl, p, 2, x, w, b);
      const int64_t oh = th - 8, ow = tw - 8, P = p.out_height(), Q = p.out_width();
      int64_t spread = 0;
      for (int64_t k = 0; k < p.out_channels; ++k)
        for (int64_t pp = 0; pp < P; ++pp)
          for (int64_t q = 0; q < Q; ++q) {
            // The input window of the tile holding (pp, q) starts at its first output minus the padding.
            const int64_t hw = pp / oh * oh - p.pad_top, ww = q / ow * ow - p.pad_left;
            const bool in_window = h0 >= hw && h0 < hw + th && w0 >= ww && w0 < ww + tw;
            const bool expect_bad = k < 3 && in_window;
            const float v = y[std::size_t((k * P + pp) * Q + q)];
            INFO(name << " bad " << bad << " k " << k << " p " << pp << " q " << q << " value " << v);
            REQUIRE(std::isfinite(v) != expect_bad);
            spread += expect_bad;
          }
      // Far more outputs than the 3 x 81 whose receptive field holds the pixel.
      CHECK(spread > 3 * 81 * 2);
    }
  }
}

TEST_CASE("fft: Estimate and Measure both plan and agree within tolerance", "[isa][fft][planner]") {
  const ConvProblem p = ConvTester().input(1, 8, 70, 66).kernel(8, 9, 9).pad(4).get_problem();
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
  for (PlanMode mode : {PlanMode::Estimate, PlanMode::Measure}) {
    PlanOptions o = fft_options();
    o.mode = mode;
    const Plan plan = Plan::create(p, o);
    INFO(to_string(mode) << ": " << plan.describe());
    CHECK(plan.algorithm() == Algorithm::FFT);
    CHECK_THAT(plan.describe(), Catch::Contains(mode == PlanMode::Measure ? "(measured)" : "(estimated)"));
    const auto y = run_plan(plan, x, w, b.data());
    const auto d = against_reference(p, x, w, b, y);
    INFO(d.text);
    CHECK(d.finite);
    CHECK(d.max_error <= 2e-5);
    CHECK(run_plan(plan, x, w, b.data()) == y);  // run after run
  }
}

TEST_CASE("fft: filter spectra past the L2 are waited for, from the L3 or from memory", "[fft][planner]") {
  // As large_kernel_dense_9x9 of the suite, whose 72x72 tiles' filter spectra (21 MiB), read once
  // per batch of 4 tiles, made the products phase wait where the estimate had not priced it; here
  // 16 channels each way: 5.2 MiB, between the caches set below.
  const detail::Geometry g(ConvTester().input(1, 16, 128, 128).kernel(16, 9, 9).pad(4).get_problem());
  detail::PlanContext ctx;
  ctx.isa = detail::best_isa();
  ctx.threads = 2;
  ctx.workspace_limit = PlanOptions::kDefaultWorkspaceLimit;
  auto waited = [&](std::size_t l2, std::size_t l3) {
    ctx.machine = detail::machine_model(ctx.isa);
    ctx.machine.cache.l2 = l2, ctx.machine.cache.l3 = l3;
    auto impl = detail::make_fft_conv(g, ctx, 72, 72);
    REQUIRE(impl);
    const detail::WorkCounts w = impl->work();
    return std::make_pair(w, detail::estimate_seconds(w, ctx));
  };
  const auto [resident, t_resident] = waited(std::size_t(1) << 30, std::size_t(1) << 31);
  const auto [from_l3, t_l3] = waited(std::size_t(2) << 20, std::size_t(1) << 31);
  const auto [from_memory, t_memory] = waited(std::size_t(2) << 20, std::size_t(4) << 20);
  CHECK(resident.waited_cache_bytes == 0);
  CHECK(resident.waited_dram_bytes == 0);
  CHECK(from_l3.waited_cache_bytes > 5e6);
  CHECK(from_l3.waited_dram_bytes == 0);
  CHECK(from_memory.waited_dram_bytes == from_l3.waited_cache_bytes);
  CHECK(from_memory.waited_cache_bytes == 0);
  CHECK(t_resident < t_l3);
  CHECK(t_l3 < t_memory);
}

TEST_CASE("fft: plans made, run and destroyed from several threads at once", "[fft][threads]") {
  // FFTW's planner is not thread-safe: every planner call goes through one lock. The Measure plans
  // use transforms longer than any of the Estimate ones: FFTW_ESTIMATE plans use wisdom that
  // FFTW_MEASURE left for their size, which would make the bits depend on the order of events.
  const ConvProblem p = ConvTester().input(1, 3, 48, 40).kernel(4, 7, 7).pad(3).get_problem();
  const ConvProblem big = ConvTester().input(1, 2, 90, 80).kernel(3, 61, 61).pad(30).get_problem();
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const auto want = run_plan(Plan::create(p, fft_options(1)), x, w, nullptr);
  std::vector<std::vector<float>> got(6);
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < got.size(); ++i)
    pool.emplace_back([&, i] {
      for (int round = 0; round < 4; ++round) {
        PlanOptions o = fft_options(1);
        ConvProblem q = p;
        if (i % 3 == 2) o.mode = PlanMode::Measure, q = big;  // FFTW_MEASURE while others plan and run
        if (i % 3 == 1) q.in_width += 7;                      // other transform sizes too
        const Plan plan = Plan::create(q, o);
        const auto y = run_plan(plan, make_data(q.input_elements(), Data::Random, 1),
                                make_data(q.weight_elements(), Data::Random, 2), nullptr);
        if (i % 3 == 0) got[i] = y;
      }
    });
  for (auto& t : pool) t.join();
  for (std::size_t i = 0; i < got.size(); i += 3) CHECK(got[i] == want);
}

TEST_CASE("fft: FFTW wisdom exports, imports, and refuses garbage", "[fft][wisdom]") {
  // A Measure plan leaves FFTW wisdom behind.
  PlanOptions o = fft_options(1);
  o.mode = PlanMode::Measure;
  (void)Plan::create(ConvTester().input(1, 2, 40, 40).kernel(2, 7, 7).pad(3).get_problem(), o);
  const std::string wisdom = detail::fft_export_wisdom();
  CHECK_THAT(wisdom, Catch::Contains("fftw"));
  CHECK_NOTHROW(detail::fft_import_wisdom(wisdom));
  CHECK(detail::fft_export_wisdom() == wisdom);
  CHECK_THROWS_AS(detail::fft_import_wisdom("not wisdom at all"), Error);
  CHECK_THROWS_WITH(detail::fft_import_wisdom("(fftw-3.3.10 fftwf_wisdom #x0 #x0 #x0 #x0"), Catch::Contains("FFTW"));
}

TEST_CASE("fft: declines strided problems and budgets below its minimum, in words", "[fft][validation]") {
  const ConvProblem strided = ConvTester().input(1, 3, 32, 32).kernel(4, 7, 7).stride(2).pad(3).get_problem();
  bool said = false;
  for (const Candidate& c : find_algorithms(strided, fft_options()))
    if (c.algorithm == Algorithm::FFT) said |= !c.applicable && c.reason == "stride 2 (needs 1)";
  CHECK(said);
  CHECK_THROWS_WITH(Plan::create(strided, fft_options()), Catch::Contains("stride 2 (needs 1)"));
  const ConvProblem uneven = ConvTester().input(1, 3, 32, 32).kernel(4, 7, 7).stride(1, 3).get_problem();
  CHECK_THROWS_WITH(Plan::create(uneven, fft_options()), Catch::Contains("stride 1x3 (needs 1)"));

  // Dilated taps that step over a 1-wide input: every output is the bias, which the transform would
  // blur with rounding of the input's size (the fuzzer found 3e-5 where the answer is exactly 0).
  // FFT declines; the planner's pick gives the bias bit for bit.
  ConvTester over = ConvTester().input(3, 7, 24, 1).kernel(1, 9, 2).pad(0, 1, 1, 2).dilation(3);
  CHECK_THROWS_WITH(Plan::create(over.get_problem(), fft_options()), Catch::Contains("every kernel tap reads padding"));
  over.check(Algorithm::Direct);

  const ConvProblem p = ConvTester().input(1, 16, 64, 64).kernel(16, 9, 9).pad(4).get_problem();
  PlanOptions o = fft_options(2);
  o.workspace_limit = 1000;
  const std::string msg = plan_error(p, o);
  REQUIRE_THAT(msg, Catch::Contains("needs at least") && Catch::Contains("workspace_limit=1000"));
  const std::size_t minimum = named_minimum(msg);
  o.workspace_limit = minimum;
  const Plan plan = Plan::create(p, o);
  CHECK(plan.workspace_bytes() <= minimum);
  ConvTester().problem(p).threads(2).workspace_limit(minimum).check(Algorithm::FFT);
  o.workspace_limit = minimum - 1;
  CHECK_THROWS_AS(Plan::create(p, o), Error);
}
