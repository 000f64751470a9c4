// Many threads at once: one Plan executed from 8 threads, conv2d over more problems than its cache
// holds, wisdom saved and loaded while others plan, FFTW planned by the application beside fastconv.
// Built on its own (fastconv_concurrency_tests) so that CI runs it under ThreadSanitizer.
#include <catch2/catch.hpp>

#include <fftw3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fastconv/fastconv.hpp"

using namespace fastconv;

namespace {

// Under ThreadSanitizer: fewer iterations (every access is checked, ~10x slower), and plans of one
// thread each. oneTBB is not instrumented, so TSan cannot see it hand work to its workers; with one
// thread a plan runs on the calling thread, and every access of fastconv's stays visible.
#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif
#else
constexpr bool kTsan = false;
#endif
constexpr int kScale = kTsan ? 1 : 8;
constexpr int kPlanThreads = kTsan ? 1 : 2;

std::vector<float> uniform_data(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

ConvProblem problem(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s, int64_t stride,
                    int64_t pad, int64_t groups = 1) {
  ConvProblem p;
  p.batch = n, p.in_channels = c, p.in_height = h, p.in_width = w;
  p.out_channels = k, p.kernel_height = r, p.kernel_width = s;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = pad;
  p.groups = groups;
  return p;
}

// Runs `body(thread)` on `threads` threads at once (released together), rethrowing the first failure.
template <class F>
void run_threads(int threads, F body) {
  std::atomic<int> ready{0};
  std::atomic<bool> failed{false};
  std::string first_error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready++;
      while (ready.load() < threads) std::this_thread::yield();
      try {
        body(t);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!failed.exchange(true)) first_error = e.what();
      }
    });
  for (auto& th : pool) th.join();
  INFO(first_error);
  REQUIRE_FALSE(failed.load());
}

}  // namespace

TEST_CASE("concurrency: one Plan executed from 8 threads is bitwise equal to serial", "[concurrency]") {
  struct Case {
    ConvProblem p;
    Algorithm algorithm;
  };
  const Case cases[] = {
      {problem(1, 8, 17, 19, 12, 3, 3, 1, 1), Algorithm::Direct},
      {problem(1, 16, 14, 15, 16, 3, 3, 1, 1, 16), Algorithm::Direct},  // depthwise
      {problem(2, 12, 13, 11, 20, 3, 3, 2, 1), Algorithm::Im2col},
      {problem(1, 16, 16, 16, 24, 3, 3, 1, 1), Algorithm::Winograd},
      {problem(1, 4, 24, 24, 6, 7, 7, 1, 3), Algorithm::FFT},
  };
  constexpr int kThreads = 8;
  for (const Case& c : cases) {
    INFO(to_string(c.p) << " " << to_string(c.algorithm));
    PlanOptions o;
    o.algorithm = c.algorithm;
    o.threads = kPlanThreads;
    const Plan plan = Plan::create(c.p, o);
    const auto w = uniform_data(c.p.weight_elements(), 1);
    const auto b = uniform_data(std::size_t(c.p.out_channels), 2);
    const PackedWeights packed = plan.pack_weights(w.data(), b.data());
    // A different input per thread; the serial answers first.
    std::vector<std::vector<float>> x, want;
    for (int t = 0; t < kThreads; ++t) {
      x.push_back(uniform_data(c.p.input_elements(), uint32_t(100 + t)));
      want.emplace_back(c.p.output_elements());
      plan.execute(x[t].data(), packed, want[t].data());
    }
    std::atomic<int> mismatches{0};
    run_threads(kThreads, [&](int t) {
      std::vector<float> y(c.p.output_elements());
      // A caller workspace on every other thread: both execute paths run at once.
      std::vector<char> ws(plan.workspace_bytes() + 64);
      for (int it = 0; it < 6 * kScale; ++it) {
        std::fill(y.begin(), y.end(), -1.0f);
        if (t % 2)
          plan.execute(x[t].data(), packed, y.data(), ws.data(), ws.size());
        else
          plan.execute(x[t].data(), packed, y.data());
        if (std::memcmp(y.data(), want[t].data(), y.size() * sizeof(float)) != 0) mismatches++;
      }
    });
    CHECK(mismatches.load() == 0);
  }
}

TEST_CASE("concurrency: conv2d from many threads over more problems than the plan cache holds", "[concurrency]") {
  clear_plan_cache();
  // 80 distinct problems (the cache holds 64): plans are evicted while other threads still run them.
  std::vector<ConvProblem> problems;
  for (int i = 0; i < 80; ++i)
    problems.push_back(problem(1, 1 + i % 5, 6 + i % 7, 7 + i / 7 % 5, 1 + i % 4, 1 + 2 * (i % 2), 1 + 2 * (i / 2 % 2),
                               1 + i / 4 % 2, i / 8 % 2));
  std::vector<std::vector<float>> x, w, want;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const ConvProblem& p = problems[i];
    x.push_back(uniform_data(p.input_elements(), uint32_t(3 * i)));
    w.push_back(uniform_data(p.weight_elements(), uint32_t(3 * i + 1)));
    want.emplace_back(p.output_elements());
    PlanOptions o;
    o.threads = 1;
    conv2d(p, x[i].data(), w[i].data(), nullptr, want[i].data(), o);
  }
  clear_plan_cache();
  std::atomic<int> mismatches{0};
  run_threads(6, [&](int t) {
    PlanOptions o;
    o.threads = 1;
    for (int it = 0; it < 2 * kScale; ++it)
      for (std::size_t j = 0; j < problems.size(); ++j) {
        const std::size_t i = (j * 7 + std::size_t(t) * 13 + std::size_t(it)) % problems.size();
        std::vector<float> y(problems[i].output_elements());
        conv2d(problems[i], x[i].data(), w[i].data(), nullptr, y.data(), o);
        if (std::memcmp(y.data(), want[i].data(), y.size() * sizeof(float)) != 0) mismatches++;
      }
  });
  CHECK(mismatches.load() == 0);
  clear_plan_cache();
}

TEST_CASE("concurrency: wisdom saved and loaded while other threads plan in Measure mode", "[concurrency]") {
  forget_wisdom();
  const std::string path = "/tmp/fastconv_concurrency_" + std::to_string(::getpid()) + ".wisdom";
  std::atomic<bool> done{false};
  std::atomic<int> saves{0};
  run_threads(4, [&](int t) {
    if (t == 0) {
      // Saver and loader: every file it loads was written whole (save renames a complete file).
      while (!done.load() || saves.load() < 3) {
        save_wisdom(path);
        load_wisdom(path);
        saves++;
      }
      return;
    }
    PlanOptions o;
    o.mode = PlanMode::Measure;
    o.threads = 1;
    for (int i = 0; i < 3 * kScale; ++i) {
      const ConvProblem p = problem(1, 2 + t, 8 + i, 9, 3, 3, 3, 1, 1);
      const Plan plan = Plan::create(p, o);
      const auto x = uniform_data(p.input_elements(), 1), w = uniform_data(p.weight_elements(), 2);
      std::vector<float> y(p.output_elements());
      plan.execute(x.data(), w.data(), nullptr, y.data());
      (void)find_algorithms(p, o);
    }
    if (t == 1) done = true;
  });
  CHECK(saves.load() >= 3);
  CHECK(wisdom_size() > 0);
  std::remove(path.c_str());
  forget_wisdom();
}

TEST_CASE("concurrency: the application plans FFTW itself while fastconv plans FFT convolutions", "[concurrency]") {
  // fastconv makes FFTW's planner thread-safe for everyone (fftwf_make_planner_thread_safe): an
  // application's own planning, which never sees fastconv's lock, must not corrupt FFTW's state.
  std::atomic<bool> stop{false};
  std::atomic<int> app_plans{0};
  std::thread app([&] {
    std::vector<float> in(64 * 64);
    fftwf_complex* out = fftwf_alloc_complex(64 * 33);
    for (int i = 0; !stop.load() || i < 20; ++i) {
      const int n = 16 + 2 * (i % 24);
      fftwf_plan p = fftwf_plan_dft_r2c_2d(n, n, in.data(), out, FFTW_ESTIMATE);
      if (!p) break;  // app_plans stays short: the CHECK below fails
      fftwf_execute(p);
      fftwf_destroy_plan(p);
      app_plans++;
    }
    fftwf_free(out);
  });
  PlanOptions o;
  o.algorithm = Algorithm::FFT;
  o.threads = 1;
  for (int i = 0; i < 6 * kScale; ++i) {
    const ConvProblem p = problem(1, 2, 20 + 3 * i, 22 + 2 * i, 2, 5 + 2 * (i % 3), 5, 1, 2);
    const Plan plan = Plan::create(p, o);
    const auto x = uniform_data(p.input_elements(), uint32_t(i)), w = uniform_data(p.weight_elements(), 9);
    std::vector<float> y(p.output_elements());
    plan.execute(x.data(), w.data(), nullptr, y.data());
  }
  stop = true;
  app.join();
  CHECK(app_plans.load() >= 20);
}

namespace {

// A host pool as a framework would bring one: a thread per slot, each taking tasks from the back
// (the opposite order of oneTBB's ranges), every call counted.
std::atomic<int64_t> g_runner_calls{0}, g_runner_bad_calls{0};
std::vector<std::atomic<int>>* g_task_hits = nullptr;

void reverse_thread_runner(int64_t tasks, int threads, TaskBody body, void* context) {
  std::atomic<int64_t> next{tasks - 1};
  std::vector<std::thread> pool;
  for (int slot = 0; slot < threads; ++slot)
    pool.emplace_back([&, slot] {
      for (int64_t t; (t = next.fetch_sub(1)) >= 0;) {
        g_runner_calls++;
        if (g_task_hits && t < int64_t(g_task_hits->size())) (*g_task_hits)[std::size_t(t)]++;
        body(context, t, slot);
      }
    });
  for (auto& th : pool) th.join();
}

void broken_runner(int64_t tasks, int threads, TaskBody body, void* context) {
  for (int64_t t = 0; t < tasks; ++t) body(context, t, threads);  // a slot out of range
  g_runner_bad_calls++;
}

struct RunnerGuard {
  explicit RunnerGuard(TaskRunner r) { set_task_runner(r); }
  ~RunnerGuard() { set_task_runner(nullptr); }
};

}  // namespace

TEST_CASE("concurrency: a host task runner gives oneTBB's bits in every direction, and errors come back", "[concurrency]") {
  struct Case {
    ConvProblem p;
    Algorithm algorithm;
    Direction direction;
  };
  const Case cases[] = {
      {problem(2, 8, 17, 19, 12, 3, 3, 1, 1), Algorithm::Direct, Direction::Forward},
      {problem(1, 16, 14, 15, 16, 3, 3, 1, 1, 16), Algorithm::Direct, Direction::Forward},
      {problem(2, 12, 13, 11, 20, 3, 3, 2, 1), Algorithm::Im2col, Direction::Forward},
      {problem(1, 16, 16, 16, 24, 3, 3, 1, 1), Algorithm::Winograd, Direction::Forward},
      {problem(1, 4, 24, 24, 6, 7, 7, 1, 3), Algorithm::FFT, Direction::Forward},
      {problem(2, 12, 13, 11, 20, 3, 3, 2, 1), Algorithm::Auto, Direction::BackwardData},
      {problem(2, 12, 13, 11, 20, 3, 3, 2, 1), Algorithm::Auto, Direction::BackwardWeights},
  };
  REQUIRE(task_runner() == nullptr);
  for (const Case& c : cases) {
    INFO(to_string(c.p) << " " << to_string(c.algorithm) << " " << int(c.direction));
    PlanOptions o;
    o.algorithm = c.algorithm;
    o.direction = c.direction;
    o.threads = 3;
    const Plan plan = Plan::create(c.p, o);
    o.threads = 1;
    o.implementation = plan.implementation();  // the planner may pick another tile for one thread
    const Plan serial = Plan::create(c.p, o);
    const auto a = uniform_data(c.direction == Direction::BackwardData ? c.p.output_elements() : c.p.input_elements(), 5);
    const auto w = uniform_data(c.p.weight_elements(), 6);
    const auto dy = uniform_data(c.p.output_elements(), 7);
    const std::size_t out_size = c.direction == Direction::Forward        ? c.p.output_elements()
                                 : c.direction == Direction::BackwardData ? c.p.input_elements()
                                                                          : c.p.weight_elements();
    auto run = [&](const Plan& plan) {
      std::vector<float> out(out_size, -1.0f), db(std::size_t(c.p.out_channels), -1.0f);
      if (c.direction == Direction::Forward)
        plan.execute(a.data(), plan.pack_weights(w.data(), nullptr), out.data());
      else if (c.direction == Direction::BackwardData)
        plan.execute_backward_data(a.data(), plan.pack_weights(w.data(), nullptr), out.data());
      else
        plan.execute_backward_weights(a.data(), dy.data(), out.data(), db.data());
      out.insert(out.end(), db.begin(), db.end());
      return out;
    };
    // Results do not depend on the thread count: one thread is the reference. (oneTBB's threads
    // only outside ThreadSanitizer, which cannot see oneTBB synchronise; the runner's it sees.)
    const std::vector<float> want = run(serial);
    if (!kTsan) {
      const std::vector<float> tbb = run(plan);
      CHECK(std::memcmp(tbb.data(), want.data(), tbb.size() * sizeof(float)) == 0);
    }
    {
      RunnerGuard guard(reverse_thread_runner);
      g_runner_calls = 0;
      const std::vector<float> got = run(plan);
      CHECK(g_runner_calls.load() > 0);  // the runner did run the tasks
      CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }
  }
  // A direct plan of `threads` threads on 8 -> 16 channels, 20x20 images, with its data.
  struct DirectCase {
    ConvProblem p;
    Plan plan;
    std::vector<float> x, w, y;
    DirectCase(int64_t batch, int threads)
        : p(problem(batch, 8, 20, 20, 16, 3, 3, 1, 1)), plan(create(p, threads)), x(uniform_data(p.input_elements(), 8)),
          w(uniform_data(p.weight_elements(), 9)), y(p.output_elements()) {}
    static Plan create(const ConvProblem& p, int threads) {
      PlanOptions o;
      o.algorithm = Algorithm::Direct;
      o.threads = threads;
      return Plan::create(p, o);
    }
  };
  // Every task exactly once.
  {
    DirectCase d(3, 4);
    std::vector<std::atomic<int>> hits(4096);
    RunnerGuard guard(reverse_thread_runner);
    g_task_hits = &hits;
    g_runner_calls = 0;
    d.plan.execute(d.x.data(), d.plan.pack_weights(d.w.data(), nullptr), d.y.data());
    g_task_hits = nullptr;
    const int64_t calls = g_runner_calls.load();
    REQUIRE(calls > 1);
    REQUIRE(calls <= 4096);
    for (int64_t t = 0; t < 4096; ++t) CHECK(hits[std::size_t(t)].load() == (t < calls ? 1 : 0));
  }
  // A runner that breaks the contract: the caller gets the error, not a crash.
  {
    DirectCase d(1, 2);
    const PackedWeights packed = d.plan.pack_weights(d.w.data(), nullptr);
    RunnerGuard guard(broken_runner);
    CHECK_THROWS_WITH(d.plan.execute(d.x.data(), packed, d.y.data()), Catch::Contains("slot out of range"));
    CHECK(g_runner_bad_calls.load() == 1);
  }
  CHECK(task_runner() == nullptr);
}
