// fastconv::calibrate: fits the machine model's rates to this machine (design section 12). Every
// implementation that applies is timed (Measure mode's interleaved medians) on a fixed set of layers
// that exercise each kind of work; one rate per kind and the fixed overhead are fitted by
// non-negative least squares on relative error, as bench/fit_cost_model.py does offline; the fitted
// model is installed only when it ranks the timed layers at least as well as the defaults do.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <numeric>
#include <sstream>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/machine_model.hpp"
#include "core/partition.hpp"
#include "planner/planner.hpp"
#include "planner/wisdom.hpp"

namespace fastconv {
namespace detail {
namespace {

// Layers of the public suite (shapes/suite.csv), ordered so that a short budget still meets every
// kind of work: GEMM (1x1, lowered 3x3), packing (strided), direct stems, depthwise, Winograd, FFT.
constexpr const char* kCalibrationLayers[] = {
    "n1c256h56w56k64r1s1",          "n1c64h56w56k64r3s3_p1",        "n1c32h112w112k32r3s3_p1_g32",
    "n1c128h56w56k128r3s3_st2_p1",  "n1c32h64w64k32r9s9_p4",        "n1c3h224w224k64r7s7_st2_p3",
    "n1c512h28w28k128r1s1",         "n1c256h14w14k256r3s3_p1",      "n1c144h56w56k144r3s3_st2_p1_g144",
    "n1c96h56w56k96r7s7_p3_g96",    "n1c1024h14w14k256r1s1",        "n1c128h28w28k128r3s3_p1",
    "n1c3h227w227k96r11s11_st4",    "n1c16h64w64k16r15s15_p7",      "n1c128h56w56k128r3s3_p1_g32",
    "n1c512h7w7k512r3s3_p1",        "n1c576h14w14k96r1s1",          "n1c17h57w57k17r3s3_p1",
    "n1c64h56w56k256r1s1",          "n1c3h32w32k8r5s5_st3",         "n1c768h17w17k192r1s7_p0x3",
};

// The kinds the fit sets, in WorkRates order (dram is measured apart; the Winograd transforms always
// come with their products, so the data cannot separate them: that rate stays).
constexpr int kFitted[] = {0, 1, 2, 3, 4, 6, 7};  // gemm pack direct depthwise scalar fft complex
constexpr int kFittedCount = sizeof kFitted / sizeof kFitted[0];
// A fitted rate stays within this factor of the default: beyond it the data did not constrain it.
constexpr double kMaxRateChange = 4;

struct Timing {
  std::string layer;
  WorkCounts work;
  double measured_ms;
};

double counts(const WorkCounts& w, int kind, const MachineModel& m) {
  switch (kind) {
    case 0: return w.gemm_flops / gemm_efficiency(w, m);
    case 1: return w.pack_elements;
    case 2: return w.direct_flops;
    case 3: return w.depthwise_flops;
    case 4: return w.scalar_flops;
    case 5: return w.transform_flops;
    case 6: return w.fft_flops;
    case 7: return w.complex_flops;
  }
  return 0;
}

// min |A x - b| over x >= 0 by projected gradient (a handful of columns: plain iteration suffices).
std::vector<double> nnls(const std::vector<std::vector<double>>& a, const std::vector<double>& b) {
  const std::size_t n = a.empty() ? 0 : a[0].size();
  double frob = 0;
  for (const auto& row : a)
    for (double v : row) frob += v * v;
  std::vector<double> x(n, 0.0), grad(n), r(a.size());
  if (frob == 0) return x;
  const double step = 1.0 / frob;
  for (int it = 0; it < 200000; ++it) {
    for (std::size_t i = 0; i < a.size(); ++i) r[i] = std::inner_product(a[i].begin(), a[i].end(), x.begin(), -b[i]);
    std::fill(grad.begin(), grad.end(), 0.0);
    for (std::size_t i = 0; i < a.size(); ++i)
      for (std::size_t j = 0; j < n; ++j) grad[j] += a[i][j] * r[i];
    double moved = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const double nx = std::max(0.0, x[j] - step * grad[j]);
      moved = std::max(moved, std::fabs(nx - x[j]));
      x[j] = nx;
    }
    if (moved < 1e-12) break;
  }
  return x;
}

// How the model ranks the timed layers: layers whose pick is within 10% of the fastest, and the
// geometric mean of pick/fastest.
struct PickQuality {
  int good = 0, layers = 0;
  double geomean = 1;
};
PickQuality pick_quality(const std::vector<Timing>& timings, PlanContext ctx, const MachineModel& m) {
  ctx.machine = m;
  PickQuality q;
  double log_sum = 0;
  for (std::size_t i = 0; i < timings.size();) {
    std::size_t j = i;
    double best = 1e300, pick = 0, pick_estimate = 1e300;
    for (; j < timings.size() && timings[j].layer == timings[i].layer; ++j) {
      best = std::min(best, timings[j].measured_ms);
      const double e = estimate_seconds(timings[j].work, ctx);
      if (e < pick_estimate) pick_estimate = e, pick = timings[j].measured_ms;
    }
    q.good += pick <= 1.1 * best;
    ++q.layers;
    log_sum += std::log(pick / best);
    i = j;
  }
  if (q.layers) q.geomean = std::exp(log_sum / q.layers);
  return q;
}

// Read bandwidth over a buffer far past the last-level share, all threads: the model's dram rate.
double measure_dram_gbps(const MachineModel& m, int threads) {
  const std::size_t floats = std::size_t(std::max(64.0 * (1 << 20), 4 * m.cached_bytes()) / sizeof(float));
  AlignedBuffer<float> buf(floats);
  const ThreadPool pool(threads);
  pool.for_each(threads, [&](int64_t t, int) {  // first touch by the thread that reads it
    const Range r = run_of(int64_t(floats), threads, t);
    std::fill(buf.data() + r.begin, buf.data() + r.end, 1.0f);
  });
  std::vector<double> samples;
  std::vector<float> sums(static_cast<std::size_t>(threads), 0.0f);
  for (int s = 0; s < 7; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.for_each(threads, [&](int64_t t, int) {
      const Range r = run_of(int64_t(floats), threads, t);
      float acc[8] = {};
      const float* p = buf.data() + r.begin;
      const int64_t n = r.size() / 8 * 8;
      for (int64_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
      sums[std::size_t(t)] = std::accumulate(acc, acc + 8, 0.0f);
    });
    samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(samples.begin(), samples.end());
  volatile float sink = std::accumulate(sums.begin(), sums.end(), 0.0f);  // the reads have a use
  (void)sink;
  return double(floats * sizeof(float)) / samples[samples.size() / 2] / 1e9;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace
}  // namespace detail

std::string describe_machine_model() {
  detail::wisdom_load_from_environment();
  const detail::Isa isa = detail::best_isa();
  return detail::machine_model(isa).describe();
}

std::string calibrate(double seconds, int threads) {
  using namespace detail;
  if (!(seconds > 0) || seconds > 86400) throw Error("calibrate: seconds=" + std::to_string(seconds) + " must be in (0, 86400]");
  PlanOptions options;
  options.threads = threads;
  PlanContext ctx = make_context(options);  // validates threads
  const MachineModel defaults = default_machine_model(ctx.isa);
  ctx.machine = defaults;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  // Passes over the layers until the budget is spent (at least one whole pass): each pass times
  // every candidate of a layer interleaved; a candidate's time is its median over the passes.
  struct TimedCandidate {
    std::string implementation;
    WorkCounts work;
    std::vector<double> ms;  // one median per pass
  };
  std::vector<std::vector<TimedCandidate>> layers_seen(std::size(kCalibrationLayers));
  for (int pass = 0; pass == 0 || elapsed() < seconds; ++pass) {
    for (std::size_t li = 0; li < std::size(kCalibrationLayers); ++li) {
      if (pass > 0 && elapsed() > seconds) break;
      const Geometry g(parse_problem(kCalibrationLayers[li]));
      Ranking r = rank_candidates(g, ctx, options, false);
      measure_candidates(r.ranked, g, ctx);
      for (const RankedImpl& c : r.ranked) {
        if (c.measured_ms <= 0) continue;
        const std::string name = c.impl->name();
        auto& seen = layers_seen[li];
        auto it = std::find_if(seen.begin(), seen.end(), [&](const TimedCandidate& k) { return k.implementation == name; });
        if (it == seen.end()) it = seen.insert(seen.end(), {name, c.impl->work(), {}});
        it->ms.push_back(c.measured_ms);
      }
    }
  }
  std::vector<Timing> timings;
  int layers = 0;
  for (std::size_t li = 0; li < layers_seen.size(); ++li) {
    for (TimedCandidate& c : layers_seen[li]) {
      std::sort(c.ms.begin(), c.ms.end());
      timings.push_back({kCalibrationLayers[li], c.work, c.ms[c.ms.size() / 2]});
    }
    layers += !layers_seen[li].empty();
  }

  // Relative error: each row divided by its measured time. Unknowns: seconds per unit of each
  // fitted kind, and the fixed overhead.
  std::vector<std::vector<double>> a;
  std::vector<double> b;
  bool used[kFittedCount] = {};
  for (const Timing& t : timings) {
    const double s = parallel_speedup(t.work.parallel_tasks, ctx.threads, defaults), sec = t.measured_ms * 1e-3;
    double known = 0;  // the kinds not fitted, at the model's rates
    for (int k = 0; k < 8; ++k)
      if (std::find(kFitted, kFitted + kFittedCount, k) == kFitted + kFittedCount)
        known += counts(t.work, k, defaults) / (work_rate(defaults.rates, k) * 1e9);
    std::vector<double> row;
    for (int i = 0; i < kFittedCount; ++i) {
      const double c = counts(t.work, kFitted[i], defaults);
      used[i] |= c > 0;
      row.push_back(c / (sec * s));
    }
    row.push_back(1.0 / sec);
    a.push_back(row);
    b.push_back(1.0 - known / s / sec);
  }
  // Columns scaled to comparable sizes, as the offline fit does.
  std::vector<double> scale(kFittedCount + 1, 1e-30);
  for (const auto& row : a)
    for (std::size_t j = 0; j < row.size(); ++j) scale[j] = std::max(scale[j], row[j]);
  for (auto& row : a)
    for (std::size_t j = 0; j < row.size(); ++j) row[j] /= scale[j];
  std::vector<double> x = nnls(a, b);
  for (std::size_t j = 0; j < x.size(); ++j) x[j] /= scale[j];

  MachineModel fitted = defaults;
  std::ostringstream report;
  report << "calibration: " << timings.size() << " timings of " << layers << " layers in " << fixed(elapsed(), 1)
         << " s, " << ctx.threads << " threads, " << isa_name(ctx.isa) << "\n";
  report << "rate (per core)   default      fitted\n";
  for (int i = 0; i < kFittedCount; ++i) {
    const int k = kFitted[i];
    const double def = work_rate(defaults.rates, k);
    std::string note;
    if (!used[i]) {
      note = "  (no timing counts it: kept)";
    } else if (x[std::size_t(i)] <= 0) {
      note = "  (unconstrained: kept)";
    } else {
      const double rate = 1.0 / x[std::size_t(i)] / 1e9;
      work_rate(fitted.rates, k) = std::clamp(rate, def / kMaxRateChange, def * kMaxRateChange);
      if (work_rate(fitted.rates, k) != rate) note = "  (clamped from " + fixed(rate, 3) + ")";
    }
    char line[160];
    std::snprintf(line, sizeof line, "%-16s %8.3f    %8.3f%s\n", work_rate_name(k), def, work_rate(fitted.rates, k),
                  note.c_str());
    report << line;
  }
  fitted.fixed_overhead_seconds = std::clamp(x.back(), 0.0, 1e-3);
  report << "fixed overhead   " << fixed(defaults.fixed_overhead_seconds * 1e6, 1) << " us   -> "
         << fixed(fitted.fixed_overhead_seconds * 1e6, 1) << " us\n";
  fitted.rates.dram = measure_dram_gbps(defaults, ctx.threads);
  report << "memory bandwidth " << fixed(defaults.rates.dram, 1) << " GB/s -> " << fixed(fitted.rates.dram, 1)
         << " GB/s (read, " << ctx.threads << " threads)\n";

  // Which model ranks the timed layers best: the defaults, the defaults with the measured bandwidth,
  // or the fitted rates with it. A fit that only adds noise is not installed.
  MachineModel with_bandwidth = defaults;
  with_bandwidth.rates.dram = fitted.rates.dram;
  const MachineModel* choices[] = {&defaults, &with_bandwidth, &fitted};
  const char* labels[] = {"the default rates", "the default rates with the measured bandwidth", "the fitted rates"};
  int best = 0;
  PickQuality quality[3];
  for (int i = 0; i < 3; ++i) {
    quality[i] = pick_quality(timings, ctx, *choices[i]);
    report << "picks within 10% of the fastest with " << labels[i] << ": " << quality[i].good << "/"
           << quality[i].layers << " (geomean pick/best " << fixed(quality[i].geomean, 3) << ")\n";
    // A change of model must pay by a margin above the timing noise: one more layer within 10%, or
    // the same layers and 1% off the geomean.
    const bool better = quality[i].good > quality[best].good ||
                        (quality[i].good == quality[best].good && quality[i].geomean < 0.99 * quality[best].geomean);
    if (better) best = i;
  }
  MachineModel chosen = *choices[best];
  chosen.calibration = "fastconv calibrate: " + std::string(labels[best]) + ", " + std::to_string(layers) +
                       " layers at " + std::to_string(ctx.threads) + " threads, picks " +
                       std::to_string(quality[best].good) + "/" + std::to_string(quality[best].layers) + " within 10%";
  set_machine_model(chosen);
  report << "installed " << labels[best] << " (save_wisdom keeps them)\n";
  return report.str();
}

}  // namespace fastconv
