// Measure mode: time each candidate on synthetic data of the problem's size.
// Budget: candidates run round-robin (interleaved, so that a noisy neighbour hurts all alike);
// a sample is back-to-back executes for at least 1 ms (so that a 50 us layer is not timed by one
// run's jitter); rounds continue until every candidate has 9 samples, or 1 second has passed and
// every candidate has 3. The median sample counts. A candidate whose estimate is over 8x the best
// estimate is not timed: it keeps its estimate (a model that far off would be a bug worth a test,
// not a timing). A problem whose tensors exceed 1 GiB is not timed at all (measurable()): it keeps
// its estimates.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>

#include "core/aligned_buffer.hpp"
#include "planner/planner.hpp"

namespace fastconv::detail {
namespace {

constexpr int kRounds = 9;
constexpr int kMinRounds = 3;
constexpr double kSampleSeconds = 1e-3;
// Synthetic tensors beyond this are not allocated: such a problem keeps its estimates.
constexpr double kMaxSyntheticBytes = double(1 << 30);
constexpr double kBudgetSeconds = 1.0;
constexpr double kHopelessRatio = 8.0;

void fill_random(AlignedBuffer<float>& b, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = dist(rng);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::atomic<uint64_t> measurements{0};

}  // namespace

uint64_t measurements_performed() { return measurements.load(); }

bool measurable(const Geometry& g) {
  const double floats = double(g.N) * double(g.input_image() + g.output_image()) + double(g.K * g.Cg * g.R * g.S);
  return 4.0 * floats <= kMaxSyntheticBytes;
}

void measure_candidates(std::vector<RankedImpl>& cands, const Geometry& g, const PlanContext& ctx) {
  if (!measurable(g)) return;
  ++measurements;
  double best_estimate = 1e300;
  for (const auto& c : cands) best_estimate = std::min(best_estimate, c.estimate_ms);

  // Forward: input x, output y. Backward-data: input dy, output dx. Backward-weights: x and dy in,
  // dw (in weight) and db (in bias) out.
  const bool backward_data = ctx.direction == Direction::BackwardData;
  const bool backward_weights = ctx.direction == Direction::BackwardWeights;
  AlignedBuffer<float> input(std::size_t(g.N * (backward_data ? g.output_image() : g.input_image())));
  AlignedBuffer<float> weight(std::size_t(g.K * g.Cg * g.R * g.S));
  AlignedBuffer<float> bias(std::size_t(std::max(g.K, g.C)));
  AlignedBuffer<float> output(std::size_t(g.N * (backward_data ? g.input_image() : g.output_image())));
  // A residual, when the plan has one, is the output itself: the in-place accumulation of a ResNet block.
  const float* residual = ctx.epilogue.residual ? output.data() : nullptr;
  fill_random(input, 1), fill_random(weight, 2), fill_random(bias, 3);
  output.zero();
  if (backward_weights) fill_random(output, 4);
  ThreadPool pool(ctx.threads);
  auto run = [&](const ConvImpl& impl, float* packed, void* workspace) {
    if (ctx.weights_change && !backward_weights) impl.pack_weights(weight.data(), bias.data(), packed);
    if (backward_weights)
      impl.execute_backward_weights(input.data(), output.data(), weight.data(), bias.data(), workspace, pool);
    else
      impl.execute(input.data(), packed, output.data(), workspace, pool, residual);
  };

  struct Timed {
    RankedImpl* cand;
    AlignedBuffer<float> packed;
    AlignedBuffer<char> workspace;
    std::vector<double> runs;
  };
  std::vector<Timed> timed;
  for (auto& c : cands) {
    if (c.estimate_ms > kHopelessRatio * best_estimate) continue;
    if (!c.prepared) c.impl->prepare(ctx.mode), c.prepared = true;
    Timed t{&c, AlignedBuffer<float>(c.impl->packed_weights_floats()),
            AlignedBuffer<char>(c.impl->workspace_bytes()), {}};
    c.impl->pack_weights(weight.data(), bias.data(), t.packed.data());
    run(*c.impl, t.packed.data(), t.workspace.data());  // warm-up
    timed.push_back(std::move(t));
  }
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < kRounds; ++round) {
    if (round >= kMinRounds && seconds_since(start) > kBudgetSeconds) break;
    for (auto& t : timed) {
      const auto t0 = std::chrono::steady_clock::now();
      int executes = 0;
      double elapsed = 0;
      do {
        run(*t.cand->impl, t.packed.data(), t.workspace.data());
        ++executes;
        elapsed = seconds_since(t0);
      } while (elapsed < kSampleSeconds);
      t.runs.push_back(1e3 * elapsed / executes);
    }
  }
  for (auto& t : timed) {
    std::sort(t.runs.begin(), t.runs.end());
    t.cand->measured_ms = t.runs[t.runs.size() / 2];
  }
}

}  // namespace fastconv::detail
