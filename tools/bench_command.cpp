// fastconv bench: every applicable implementation and the planner's pick over a suite of layer
// shapes, timed interleaved in one process (medians), against oneDNN when asked.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "args.hpp"
#include "bench_report.hpp"
#include "commands.hpp"
#include "core/cpu.hpp"
#include "core/fma_peak.hpp"
#include "core/parallel.hpp"
#include "fastconv/fastconv.hpp"
#include "format.hpp"
#include "onednn_baseline.hpp"
#include "suite.hpp"
#include "thread_pinning.hpp"

namespace fastconv::tools {
namespace {

const char* kHelp =
    "usage: fastconv bench [--suite FILE.csv] [--threads N] [--json FILE] [--plot FILE.svg]\n"
    "                      [--baseline onednn] [--mode estimate|measure] [--runs N]\n"
    "                      [--budget SECONDS] [--filter TEXT] [--post-ops relu|relu+residual|...]\n"
    "                      [--direction forward|backward-data|backward-weights]\n"
    "\n"
    "Times every implementation that applies and the planner's pick ('auto', planned with --mode)\n"
    "on each shape of the suite (default: the built-in suite, shapes/suite.csv), interleaved in\n"
    "one process in random order; reports medians. A sample is an untimed run followed by about\n"
    "2 ms of back-to-back timed runs; --runs (default 11) samples per implementation, within\n"
    "--budget seconds per shape (default 2, at least 3 samples); an implementation 15x slower than\n"
    "the fastest in its warm-up is timed once. 'pick/best' is the picked implementation's own\n"
    "time (its runner among the others; the 'auto' runner's when it has none) over the fastest's;\n"
    "the pick's 'ms' and the ratios to oneDNN are the 'auto' runner's. --baseline onednn adds\n"
    "oneDNN on NCHW data (its reorders included, weights prepared ahead, same threads; both\n"
    "libraries' threads are then pinned one per core, so that their two thread pools do not meet\n"
    "on one core), and forward, oneDNN's compute alone on its own blocked layouts (column\n"
    "'dnn blk': no reorders).\n"
    "--direction times that direction of each shape (design section 11), against oneDNN's\n"
    "convolution_backward_data / convolution_backward_weights with the same reorders.\n"
    "--post-ops runs every implementation (and oneDNN, as its post-ops) with a fused epilogue:\n"
    "an activation (relu, gelu, clamp:0,6, ...), '+residual' adding a residual tensor of the\n"
    "output's shape (oneDNN: its sum post-op, the residual reordered into its destination first).\n"
    "--filter keeps the shapes whose name\n"
    "contains TEXT. '%peak' is of the FMA peak (all threads), measured at the start and again before\n"
    "each shape; the highest measurement counts. Progress goes to stderr, the table to stdout.\n";

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
  return 1e3 * std::chrono::duration<double>(clock_type::now() - t0).count();
}

void fill_random(std::vector<float>& v, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : v) x = dist(rng);
}

struct Runner {
  BenchEntry entry;
  std::function<void()> run;
};

}  // namespace

int bench_command(const std::vector<std::string>& argv) {
  Args args(argv, {"suite", "threads", "json", "plot", "baseline", "mode", "runs", "budget", "filter", "post-ops",
                   "direction"},
            {"help"});
  if (args.flag("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const auto suite = args.value("suite") ? load_suite(*args.value("suite")) : builtin_suite();
  const int threads = args.value("threads") ? int(parse_count(*args.value("threads"), "threads", 1, 4096))
                                            : detail::hardware_threads();
  const int runs = args.value("runs") ? int(parse_count(*args.value("runs"), "runs", 1, 1000)) : 11;
  const double budget_ms =
      1e3 * (args.value("budget") ? double(parse_count(*args.value("budget"), "budget", 1, 3600)) : 2.0);
  const PlanMode mode = args.value("mode") ? parse_plan_mode(*args.value("mode")) : PlanMode::Estimate;
  bool with_onednn = false;
  if (auto b = args.value("baseline")) {
    if (*b != "onednn") throw UsageError("--baseline " + *b + ": only 'onednn' is known");
    if (!onednn_available()) throw Error("--baseline onednn: this fastconv was built without oneDNN");
    with_onednn = true;
  }
  const std::string filter = args.value("filter").value_or("");
  const Direction direction = args.value("direction") ? parse_direction(*args.value("direction")) : Direction::Forward;
  PostOps post_ops;
  if (auto po = args.value("post-ops")) {
    std::string act = *po;
    const std::string suffix = "+residual";
    if (act.size() >= suffix.size() && act.compare(act.size() - suffix.size(), suffix.size(), suffix) == 0) {
      act.erase(act.size() - suffix.size());
      post_ops = parse_post_ops(act == "residual" || act.empty() ? "" : act);
      post_ops.residual = true;
    } else {
      post_ops = parse_post_ops(act == "residual" ? "" : act);
      post_ops.residual = act == "residual";
    }
  }
  // Between samples, a pause lets the previous runner's idle workers go to sleep: oneTBB's within
  // about a millisecond, OpenMP's (GOMP_SPINCOUNT) only after several on this machine.
  const int pause_ms = with_onednn ? 12 : 3;

  BenchReport report;
  report.threads = threads;
  report.isa = instruction_set();
  report.mode = to_string(mode);
  report.direction = to_string(direction);
  report.post_ops = to_string(post_ops);
  if (post_ops.activation != Activation::None || post_ops.residual)
    std::fprintf(stderr, "fastconv bench: post-ops %s\n", to_string(post_ops).c_str());
  std::fprintf(stderr, "fastconv bench: measuring the FMA peak on %d thread%s...\n", threads, threads > 1 ? "s" : "");
  report.peak_gflops = detail::measure_fma_peak_gflops(detail::best_isa(), threads);
  report.peak_samples = 1;
  std::fprintf(stderr, "fastconv bench: peak %.1f GFLOP/s (%s)\n", report.peak_gflops, report.isa.c_str());
  if (with_onednn) pin_fastconv_threads(threads);  // after the peak: its threads must not inherit the pin
  // The host's speed moves during a run (a shared machine: 250 to 350 GFLOP/s of FMA peak within
  // minutes on the AVX-512 Xeon), so the peak is measured again before every shape, briefly, and the
  // highest measurement is the one the percentages are of: a % of peak never flatters a layer timed
  // while the host ran fast.
  auto sample_peak = [&] {
    if (with_onednn) unpin_current_thread();  // the peak's threads must not inherit the main thread's pin
    report.peak_gflops = std::max(report.peak_gflops, detail::measure_fma_peak_gflops(detail::best_isa(), threads, 0.05));
    ++report.peak_samples;
    if (with_onednn) pin_current_thread(0);
  };

  const auto start = clock_type::now();
  int index = 0, selected = 0;
  for (const auto& s : suite) selected += s.name.find(filter) != std::string::npos;
  for (const SuiteShape& shape : suite) {
    if (shape.name.find(filter) == std::string::npos) continue;
    const ConvProblem& p = shape.problem;
    std::fprintf(stderr, "[%d/%d] %s (%s)\n", ++index, selected, shape.name.c_str(), to_string(p).c_str());
    sample_peak();
    BenchShape result;
    result.name = shape.name;
    result.problem = to_string(p);
    result.gflop = flop_count(p) / 1e9;

    std::vector<float> x(p.input_elements()), w(p.weight_elements()), b(std::size_t(p.out_channels)),
        y(p.output_elements()), dw(p.weight_elements()), db(std::size_t(p.out_channels)),
        res(post_ops.residual ? p.output_elements() : 0);
    fill_random(x, 1), fill_random(w, 2), fill_random(b, 3), fill_random(res, 4);
    if (direction != Direction::Forward) fill_random(y, 4);  // dy
    const float* residual = post_ops.residual ? res.data() : nullptr;
    // One run of a plan in the bench's direction (backward-data writes dx over x).
    auto runner_for = [&](std::shared_ptr<Plan> plan) -> std::function<void()> {
      if (direction == Direction::BackwardWeights)
        return [plan, &x, &y, &dw, &db] { plan->execute_backward_weights(x.data(), y.data(), dw.data(), db.data()); };
      auto packed = std::make_shared<PackedWeights>(
          plan->pack_weights(w.data(), direction == Direction::Forward ? b.data() : nullptr));
      if (direction == Direction::BackwardData)
        return [plan, packed, &x, &y] { plan->execute_backward_data(y.data(), *packed, x.data()); };
      return [plan, packed, &x, &y, residual] { plan->execute(x.data(), *packed, y.data(), residual); };
    };

    std::vector<Runner> runners;
    PlanOptions base;
    base.threads = threads;
    base.direction = direction;
    base.post_ops = post_ops;
    for (const Candidate& c : find_algorithms(p, base)) {
      if (!c.applicable) continue;
      PlanOptions o = base;
      o.algorithm = c.algorithm;
      o.implementation = c.implementation;
      auto plan = std::make_shared<Plan>(Plan::create(p, o));
      Runner r;
      r.entry.label = c.implementation;
      r.entry.algorithm = to_string(c.algorithm);
      r.entry.workspace_bytes = plan->workspace_bytes();
      r.run = runner_for(plan);
      runners.push_back(std::move(r));
    }
    {
      PlanOptions o = base;
      o.mode = mode;
      auto plan = std::make_shared<Plan>(Plan::create(p, o));
      Runner r;
      r.entry.label = "auto";
      r.entry.algorithm = "auto";
      r.entry.note = plan->implementation();
      r.entry.workspace_bytes = plan->workspace_bytes();
      r.run = runner_for(plan);
      runners.push_back(std::move(r));
    }
    if (with_onednn) {
      try {
        auto conv = std::make_shared<OnednnConv>(p, w.data(), b.data(), threads, direction, post_ops);
        Runner r;
        r.entry.label = "onednn";
        r.entry.algorithm = "onednn";
        r.entry.note = conv->implementation();
        if (direction == Direction::BackwardWeights)
          r.run = [conv, &x, &y, &dw, &db] { conv->run_backward_weights(x.data(), y.data(), dw.data(), db.data()); };
        else if (direction == Direction::BackwardData)
          r.run = [conv, &x, &y] { conv->run(y.data(), x.data()); };
        else
          r.run = [conv, &x, &y, residual] { conv->run(x.data(), y.data(), residual); };
        runners.push_back(std::move(r));
        if (direction == Direction::Forward) {  // and its compute alone, on its own layouts
          Runner blocked;
          blocked.entry.label = "onednn_blocked";
          blocked.entry.algorithm = "onednn";
          blocked.entry.note = conv->implementation();
          blocked.run = [conv, &x] { conv->run_compute_only(x.data()); };
          runners.push_back(std::move(blocked));
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "  onednn: %s\n", e.what());
      }
    }

    // Warm-up, then interleaved rounds within the budget. A sample is one untimed run (it wakes the
    // threads: the previous runner's spinning workers have had a pause to go to sleep) followed by
    // back-to-back timed runs of about 2 ms in all: the steady state a network's layers see.
    double best_first = 1e300;
    for (auto& r : runners) {
      r.run();  // first call: JIT compilation (oneDNN), page faults, lazy set-up
      const auto t0 = clock_type::now();
      r.run();
      r.entry.first_ms = ms_since(t0);
      best_first = std::min(best_first, r.entry.first_ms);
    }
    for (auto& r : runners) r.entry.timed_once = r.entry.first_ms > 15 * best_first;
    const auto shape_start = clock_type::now();
    std::mt19937 order_rng{uint32_t(index)};
    std::vector<std::size_t> order(runners.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (int round = 0; round < runs; ++round) {
      if (round >= 3 && ms_since(shape_start) > budget_ms) break;
      std::shuffle(order.begin(), order.end(), order_rng);  // nobody always runs first or after oneDNN
      for (std::size_t i : order) {
        Runner& r = runners[i];
        if (r.entry.timed_once) continue;
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));  // see pause_ms
        r.run();
        const int repeat = int(std::clamp(2.0 / std::max(r.entry.first_ms, 1e-3), 1.0, 50.0));
        const auto t0 = clock_type::now();
        for (int k = 0; k < repeat; ++k) r.run();
        r.entry.runs_ms.push_back(ms_since(t0) / repeat);
      }
    }
    for (auto& r : runners) {
      if (r.entry.runs_ms.empty()) r.entry.runs_ms.push_back(r.entry.first_ms);
      auto v = r.entry.runs_ms;
      std::sort(v.begin(), v.end());
      r.entry.median_ms = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
      result.entries.push_back(r.entry);
    }
    report.shapes.push_back(std::move(result));
  }
  report.seconds = ms_since(start) / 1e3;

  print_table(report, stdout);
  if (auto j = args.value("json")) write_json(report, *j);
  if (auto s = args.value("plot")) write_svg(report, *s);
  return 0;
}

}  // namespace fastconv::tools
