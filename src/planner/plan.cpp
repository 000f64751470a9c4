// The public Plan, PackedWeights, find_algorithms and conv2d: validation, the choice, the workspace
// pool that keeps allocation out of execute, and verbose logging.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <list>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "core/aligned_buffer.hpp"
#include "core/verbose.hpp"
#include "planner/planner.hpp"
#include "planner/solvers.hpp"
#include "planner/wisdom.hpp"

namespace fastconv {

namespace detail {

struct PackedData {
  uint64_t plan_id;
  AlignedBuffer<float> floats;
};

class PlanImpl {
 public:
  PlanImpl(const Geometry& g, const PlanOptions& options, const PlanContext& ctx, RankedImpl chosen,
           std::string why)
      : geom(g), options(options), ctx(ctx), impl(std::move(chosen.impl)), time_ms(chosen.time_ms()),
        measured(chosen.measured_ms >= 0), why(std::move(why)), pool(ctx.threads), id(next_id()) {
    if (!chosen.prepared) impl->prepare(ctx.mode);
  }

  // Scratch for one execute: reused across calls (no allocation once warm), one per concurrent call.
  AlignedBuffer<char> take_workspace() const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        AlignedBuffer<char> b = std::move(free_.back());
        free_.pop_back();
        return b;
      }
    }
    return AlignedBuffer<char>(impl->workspace_bytes());
  }
  void give_back(AlignedBuffer<char> b) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < 4) free_.push_back(std::move(b));
  }

  Geometry geom;
  PlanOptions options;
  PlanContext ctx;
  std::unique_ptr<ConvImpl> impl;
  double time_ms;
  bool measured;
  std::string why;
  ThreadPool pool;
  uint64_t id;

 private:
  static uint64_t next_id() {
    static std::atomic<uint64_t> counter{1};
    return counter++;
  }
  mutable std::mutex mutex_;
  mutable std::vector<AlignedBuffer<char>> free_;
};

}  // namespace detail

using detail::Geometry;
using detail::PlanContext;
using detail::RankedImpl;

std::string to_string(Algorithm a) {
  switch (a) {
    case Algorithm::Auto: return "auto";
    case Algorithm::Direct: return "direct";
    case Algorithm::Im2col: return "im2col";
    case Algorithm::Winograd: return "winograd";
    case Algorithm::FFT: return "fft";
  }
  return "algorithm(" + std::to_string(static_cast<int>(a)) + ")";
}

Algorithm parse_algorithm(const std::string& s) {
  for (Algorithm a : {Algorithm::Auto, Algorithm::Direct, Algorithm::Im2col, Algorithm::Winograd, Algorithm::FFT})
    if (s == to_string(a)) return a;
  throw Error("algorithm '" + s + "': expected auto, direct, im2col, winograd or fft");
}

std::string to_string(PlanMode m) { return m == PlanMode::Measure ? "measure" : "estimate"; }

PlanMode parse_plan_mode(const std::string& s) {
  if (s == "estimate") return PlanMode::Estimate;
  if (s == "measure") return PlanMode::Measure;
  throw Error("mode '" + s + "': expected estimate or measure");
}

std::string to_string(Direction d) {
  switch (d) {
    case Direction::Forward: return "forward";
    case Direction::BackwardData: return "backward-data";
    case Direction::BackwardWeights: return "backward-weights";
  }
  return "direction(" + std::to_string(static_cast<int>(d)) + ")";
}

Direction parse_direction(const std::string& s) {
  for (Direction d : {Direction::Forward, Direction::BackwardData, Direction::BackwardWeights})
    if (s == to_string(d)) return d;
  throw Error("direction '" + s + "': expected forward, backward-data or backward-weights");
}

std::string instruction_set() { return detail::isa_name(detail::best_isa()); }

namespace {

const Algorithm kAlgorithms[] = {Algorithm::Direct, Algorithm::Im2col, Algorithm::Winograd, Algorithm::FFT};

bool has_solver(Algorithm a, Direction d) {
  for (const auto& s : detail::all_solvers())
    if (s.algorithm == a && s.direction == d) return true;
  return false;
}

// The call that runs a plan of this direction.
const char* execute_call(Direction d) {
  return d == Direction::BackwardData ? "execute_backward_data"
                                      : d == Direction::BackwardWeights ? "execute_backward_weights" : "execute";
}

void require_direction(const detail::PlanImpl& p, Direction wanted) {
  if (p.ctx.direction != wanted)
    throw Error(std::string(execute_call(wanted)) + ": this plan computes direction=" + to_string(p.ctx.direction) +
                " (PlanOptions::direction); call " + execute_call(p.ctx.direction) +
                ", or make a plan with direction=" + to_string(wanted));
}

// " backward-data" in log lines of backward plans; nothing for the forward (its lines stay as they were).
std::string direction_tag(Direction d) { return d == Direction::Forward ? "" : " " + to_string(d); }

std::string join_declined(const detail::Ranking& r) {
  std::string out;
  for (const auto& d : r.declined) out += (out.empty() ? "" : "; ") + d.name + ": " + d.reason;
  return out;
}

std::string format_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", ms);
  return buf;
}

}  // namespace

Plan Plan::create(const ConvProblem& problem, const PlanOptions& options) {
  const Geometry g(problem);
  const PlanContext ctx = detail::make_context(options);
  const auto t0 = std::chrono::steady_clock::now();
  if (options.algorithm != Algorithm::Auto && !has_solver(options.algorithm, ctx.direction))
    throw Error("algorithm=" + to_string(options.algorithm) + " does not apply to " + to_string(problem) +
                direction_tag(ctx.direction) + ": not implemented in this version");

  const bool measure = options.mode == PlanMode::Measure;
  std::string why;
  RankedImpl chosen;
  if (measure) {
    detail::wisdom_load_from_environment();
    const std::string key = detail::wisdom_key(g, ctx, options);
    if (auto name = detail::wisdom_lookup(key)) {
      chosen.impl = detail::build_named(g, ctx, *name);
      if (chosen.impl) {
        chosen.estimate_ms = 1e3 * detail::estimate_seconds(detail::work_per_execute(*chosen.impl, ctx), ctx);
        why = "from wisdom";
      }
    }
  }
  if (!chosen.impl) {
    detail::Ranking ranking = detail::rank_candidates(g, ctx, options, measure);
    if (ranking.ranked.empty()) {
      if (options.algorithm != Algorithm::Auto)
        throw Error("algorithm=" + to_string(options.algorithm) + " does not apply to " + to_string(problem) +
                    ": " + join_declined(ranking));
      if (!options.implementation.empty())
        throw Error("implementation=" + options.implementation + " names no implementation that applies to " +
                    to_string(problem) + " within workspace_limit=" + std::to_string(options.workspace_limit) +
                    ": " + join_declined(ranking));
      throw Error("workspace_limit=" + std::to_string(options.workspace_limit) + " fits no algorithm for " +
                  to_string(problem) + ": " + join_declined(ranking));
    }
    const std::size_t n = ranking.ranked.size();
    chosen = std::move(ranking.ranked.front());
    std::ostringstream s;
    const bool timed = measure && detail::measurable(g);
    s << (timed ? "fastest measured" : measure ? "fastest estimated (tensors over 1 GiB are not timed)" : "fastest estimated")
      << " of " << n << " candidate" << (n > 1 ? "s" : "");
    if (n > 1) s << " (next: " << ranking.ranked[1].impl->name() << " " << format_ms(ranking.ranked[1].time_ms()) << " ms)";
    if (options.algorithm != Algorithm::Auto) s << ", algorithm forced to " << to_string(options.algorithm);
    why = s.str();
    if (timed) detail::wisdom_remember(detail::wisdom_key(g, ctx, options), chosen.impl->name());
  }
  auto impl = std::make_shared<const detail::PlanImpl>(g, options, ctx, std::move(chosen), why);
  if (detail::verbose_level() >= 1) {
    const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    detail::verbose_print("plan " + to_string(problem) + direction_tag(ctx.direction) + " threads=" + std::to_string(ctx.threads) + " isa=" +
                          detail::isa_name(ctx.isa) + " -> " + impl->impl->name() + " workspace=" +
                          std::to_string(impl->impl->workspace_bytes()) + " (" + why + ") in " + format_ms(ms) + " ms");
  }
  return Plan(std::move(impl));
}

const ConvProblem& Plan::problem() const { return impl_->geom.problem; }
Direction Plan::direction() const { return impl_->ctx.direction; }
Algorithm Plan::algorithm() const { return impl_->impl->algorithm(); }
std::string Plan::implementation() const { return impl_->impl->name(); }
int Plan::threads() const { return impl_->ctx.threads; }
std::size_t Plan::workspace_bytes() const { return impl_->impl->workspace_bytes(); }

std::string Plan::describe() const {
  const auto& p = *impl_;
  std::ostringstream s;
  s << "problem " << to_string(p.geom.problem) << "\n"
    << "direction " << to_string(p.ctx.direction) << "\n"
    << "algorithm " << to_string(p.impl->algorithm()) << " (" << p.impl->name() << ")\n"
    << "blocking " << p.impl->describe() << "\n"
    << "workspace " << p.impl->workspace_bytes() << " bytes (limit " << p.options.workspace_limit << ")\n"
    << "packed weights " << p.impl->packed_weights_floats() * sizeof(float) << " bytes"
    << (p.ctx.weights_change ? " (packed for every execute: ranked with the packing)" : "") << "\n"
    << "post-ops " << to_string(p.options.post_ops) << (p.ctx.epilogue.active() ? " (fused where the output is written)" : "")
    << ", padding mode " << to_string(p.geom.problem.padding_mode) << "\n"
    << "threads " << p.ctx.threads << ", isa " << detail::isa_name(p.ctx.isa) << "\n"
    << "machine model " << p.ctx.machine.describe() << "\n"
    << (p.measured ? "measured " : "estimated ") << format_ms(p.time_ms) << " ms, "
    << (flop_count(p.geom.problem) / (p.time_ms * 1e6)) << " GFLOP/s\n"
    << "why " << p.why;
  return s.str();
}

std::size_t PackedWeights::size_bytes() const { return data_ ? data_->floats.size() * sizeof(float) : 0; }

PackedWeights Plan::pack_weights(const float* weight, const float* bias) const {
  if (impl_->ctx.direction == Direction::BackwardWeights)
    throw Error("pack_weights: a plan of direction=backward-weights takes no weights (it computes them)");
  if (!weight) throw Error("weight=null: a weight tensor is required");
  auto data = std::make_shared<detail::PackedData>();
  data->plan_id = impl_->id;
  data->floats = detail::AlignedBuffer<float>(impl_->impl->packed_weights_floats());
  impl_->impl->pack_weights(weight, bias, data->floats.data());
  PackedWeights pw;
  pw.data_ = std::move(data);
  return pw;
}

void Plan::execute(const float* input, const PackedWeights& weights, float* output, const float* residual,
                   void* workspace, std::size_t workspace_size) const {
  const auto& p = *impl_;
  require_direction(p, Direction::Forward);
  if (!input) throw Error("input=null: an input tensor is required");
  if (!output) throw Error("output=null: an output tensor is required");
  if (p.options.post_ops.residual && !residual)
    throw Error("residual=null: this plan was made with post_ops.residual and needs a residual tensor");
  if (!p.options.post_ops.residual && residual)
    throw Error("residual: this plan was made without post_ops.residual (plan with post_ops.residual = true to add one)");
  if (residual && residual != output) {
    // The residual may be the output itself (in-place accumulation), but no other overlap.
    const std::size_t n = p.geom.problem.output_elements();
    const auto r0 = reinterpret_cast<std::uintptr_t>(residual), y0 = reinterpret_cast<std::uintptr_t>(output);
    if (r0 < y0 + n * sizeof(float) && y0 < r0 + n * sizeof(float))
      throw Error("residual: overlaps the output without being the same buffer (pass output itself to accumulate in place)");
  }
  if (weights.empty()) throw Error("weights: empty PackedWeights (use Plan::pack_weights)");
  if (weights.data_->plan_id != p.id)
    throw Error("weights: packed for another plan (PackedWeights belong to the plan that packed them)");
  const std::size_t need = p.impl->workspace_bytes();
  if (need > 0 && !workspace) throw Error("workspace=null: this plan needs " + std::to_string(need) + " bytes");
  if (workspace_size < need)
    throw Error("workspace_size=" + std::to_string(workspace_size) + ": this plan needs " + std::to_string(need) + " bytes");
  // Kernels expect 64-byte aligned scratch; the caller's block may be anything. When the block is
  // too small to align, the plan's own pooled scratch stands in (said under FASTCONV_VERBOSE), and
  // goes back to the pool even when the kernel throws.
  void* aligned = workspace;
  std::size_t space = workspace_size;
  detail::AlignedBuffer<char> own;
  struct GiveBack {
    const detail::PlanImpl& p;
    detail::AlignedBuffer<char>& own;
    ~GiveBack() {
      if (own.size()) p.give_back(std::move(own));
    }
  } give_back{p, own};
  if (need > 0 && !std::align(detail::kAlignment, need, aligned, space)) {
    own = p.take_workspace();
    aligned = own.data();
    if (detail::verbose_level() >= 1)
      detail::verbose_print("execute: the caller's workspace is not 64-byte aligned with room to align (" +
                            std::to_string(workspace_size) + " bytes for " + std::to_string(need) +
                            "): using the plan's own; pass workspace_bytes() + 63 bytes to avoid it");
  }
  const auto t0 = std::chrono::steady_clock::now();
  p.impl->execute(input, weights.data_->floats.data(), output, aligned, p.pool, residual);
  if (detail::verbose_level() >= 1) {
    const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    detail::verbose_print("execute " + to_string(p.geom.problem) + " " + p.impl->name() + " workspace=" +
                          std::to_string(need) + " " + format_ms(ms) + " ms " +
                          format_ms(flop_count(p.geom.problem) / (ms * 1e6)) + " GFLOP/s");
  }
}

void Plan::execute(const float* input, const PackedWeights& weights, float* output, void* workspace,
                   std::size_t workspace_size) const {
  execute(input, weights, output, nullptr, workspace, workspace_size);
}

void Plan::execute(const float* input, const PackedWeights& weights, float* output, const float* residual) const {
  const auto& p = *impl_;
  require_direction(p, Direction::Forward);
  detail::AlignedBuffer<char> ws = p.take_workspace();
  struct Return {
    const detail::PlanImpl& p;
    detail::AlignedBuffer<char>& ws;
    ~Return() { p.give_back(std::move(ws)); }
  } give_back{p, ws};
  execute(input, weights, output, residual, ws.data(), ws.size());
}

void Plan::execute(const float* input, const PackedWeights& weights, float* output) const {
  execute(input, weights, output, static_cast<const float*>(nullptr));
}

void Plan::execute(const float* input, const float* weight, const float* bias, float* output) const {
  require_direction(*impl_, Direction::Forward);
  if (!input) throw Error("input=null: an input tensor is required");
  if (!output) throw Error("output=null: an output tensor is required");
  execute(input, pack_weights(weight, bias), output);
}

namespace {

// Runs one backward execute with scratch from the plan's pool, and logs it.
template <class F>
void run_backward(const detail::PlanImpl& p, F&& run) {
  detail::AlignedBuffer<char> ws = p.take_workspace();
  const auto t0 = std::chrono::steady_clock::now();
  run(static_cast<void*>(ws.data()));
  p.give_back(std::move(ws));
  if (detail::verbose_level() >= 1) {
    const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    detail::verbose_print("execute " + to_string(p.geom.problem) + direction_tag(p.ctx.direction) + " " +
                          p.impl->name() + " workspace=" + std::to_string(p.impl->workspace_bytes()) + " " +
                          format_ms(ms) + " ms " + format_ms(flop_count(p.geom.problem) / (ms * 1e6)) + " GFLOP/s");
  }
}

}  // namespace

void Plan::execute_backward_data(const float* grad_output, const PackedWeights& weights, float* grad_input) const {
  const auto& p = *impl_;
  require_direction(p, Direction::BackwardData);
  if (!grad_output) throw Error("grad_output=null: a grad_output tensor (dy) is required");
  if (!grad_input) throw Error("grad_input=null: a grad_input tensor (dx) is required");
  if (weights.empty()) throw Error("weights: empty PackedWeights (use Plan::pack_weights)");
  if (weights.data_->plan_id != p.id)
    throw Error("weights: packed for another plan (PackedWeights belong to the plan that packed them)");
  run_backward(p, [&](void* ws) { p.impl->execute(grad_output, weights.data_->floats.data(), grad_input, ws, p.pool); });
}

void Plan::execute_backward_weights(const float* input, const float* grad_output, float* grad_weight,
                                    float* grad_bias) const {
  const auto& p = *impl_;
  require_direction(p, Direction::BackwardWeights);
  if (!input) throw Error("input=null: an input tensor (x) is required");
  if (!grad_output) throw Error("grad_output=null: a grad_output tensor (dy) is required");
  if (!grad_weight) throw Error("grad_weight=null: a grad_weight tensor (dw) is required");
  run_backward(p, [&](void* ws) {
    p.impl->execute_backward_weights(input, grad_output, grad_weight, grad_bias, ws, p.pool);
  });
}

std::vector<Candidate> find_algorithms(const ConvProblem& problem, const PlanOptions& options) {
  const Geometry g(problem);
  const PlanContext ctx = detail::make_context(options);
  const bool measure = options.mode == PlanMode::Measure;
  detail::Ranking r = detail::rank_candidates(g, ctx, options, measure);
  // What was measured is wisdom: a Plan::create in Measure mode that follows reuses this choice.
  if (measure && detail::measurable(g) && !r.ranked.empty())
    detail::wisdom_remember(detail::wisdom_key(g, ctx, options), r.ranked.front().impl->name());
  std::vector<Candidate> out;
  for (const auto& c : r.ranked)
    out.push_back({c.impl->algorithm(), true, c.impl->describe(), c.time_ms(), c.measured_ms >= 0,
                   c.impl->workspace_bytes(), c.impl->name()});
  for (const auto& d : r.declined) {
    Algorithm a = Algorithm::Auto;
    for (const auto& s : detail::all_solvers())
      if (d.name.rfind(s.name, 0) == 0) a = s.algorithm;
    out.push_back({a, false, d.reason, 0.0, false, 0, d.name});
  }
  for (Algorithm a : kAlgorithms)
    if (!has_solver(a, ctx.direction) && (options.algorithm == Algorithm::Auto || options.algorithm == a))
      out.push_back({a, false, "not implemented in this version", 0.0, false, 0, to_string(a)});
  return out;
}

// conv2d's plan cache: bounded LRU keyed by problem and options.
namespace {

struct CacheKey {
  ConvProblem problem;
  Algorithm algorithm;
  PlanMode mode;
  std::size_t workspace_limit;
  int threads;
  std::string implementation;
  std::string post_ops;  // to_string(PostOps) names every field that changes the plan
  Direction direction;
  bool weights_change;
  bool operator==(const CacheKey& o) const {
    return problem == o.problem && algorithm == o.algorithm && mode == o.mode &&
           workspace_limit == o.workspace_limit && threads == o.threads && implementation == o.implementation &&
           post_ops == o.post_ops && direction == o.direction && weights_change == o.weights_change;
  }
};
struct CacheKeyHash {
  std::size_t operator()(const CacheKey& k) const {
    std::size_t h = std::hash<ConvProblem>()(k.problem);
    h = h * 31 + static_cast<std::size_t>(k.algorithm);
    h = h * 31 + static_cast<std::size_t>(k.mode);
    h = h * 31 + k.workspace_limit;
    h = h * 31 + static_cast<std::size_t>(k.threads);
    h = h * 31 + static_cast<std::size_t>(k.direction);
    h = h * 31 + static_cast<std::size_t>(k.weights_change);
    return h ^ std::hash<std::string>()(k.implementation) ^ (std::hash<std::string>()(k.post_ops) * 7);
  }
};

std::string post_ops_key(const PostOps& po) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%d/%a/%a/%d/%a", static_cast<int>(po.activation), double(po.alpha), double(po.beta),
                int(po.residual), double(po.residual_scale));
  return buf;
}

class PlanCache {
 public:
  static constexpr std::size_t kCapacity = 64;
  Plan get(const ConvProblem& problem, const PlanOptions& options) {
    CacheKey key{problem, options.algorithm, options.mode, options.workspace_limit, options.threads,
                 options.implementation, post_ops_key(options.post_ops), options.direction, options.weights_change};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = index_.find(key);
      if (it != index_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->second;
      }
    }
    Plan plan = Plan::create(problem, options);  // outside the lock: planning may be slow
    std::lock_guard<std::mutex> lock(mutex_);
    if (index_.count(key)) return index_[key]->second;
    lru_.emplace_front(key, plan);
    index_[key] = lru_.begin();
    if (lru_.size() > kCapacity) {
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return plan;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    index_.clear();
    lru_.clear();
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<CacheKey, Plan>> lru_;
  std::unordered_map<CacheKey, std::list<std::pair<CacheKey, Plan>>::iterator, CacheKeyHash> index_;
};

PlanCache& plan_cache() {
  static PlanCache cache;
  return cache;
}

}  // namespace

void conv2d(const ConvProblem& problem, const float* input, const float* weight, const float* bias,
            float* output, const PlanOptions& options) {
  problem.validate();
  if (!input) throw Error("input=null: an input tensor is required");
  if (!weight) throw Error("weight=null: a weight tensor is required");
  if (!output) throw Error("output=null: an output tensor is required");
  plan_cache().get(problem, options).execute(input, weight, bias, output);
}

void clear_plan_cache() { plan_cache().clear(); }

}  // namespace fastconv
