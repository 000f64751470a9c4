// fastconv._fastconv: the thin pybind11 layer over the C++ API. NumPy arrays only (it never imports
// torch); argument forms, torch tensors and PyTorch's semantics live in the Python package.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <fastconv/fastconv.hpp>

#include "global_avg_pool.hpp"
#include "inverted_residual.hpp"
#include "max_pool.hpp"

#ifdef FASTCONV_PYTHON_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace {

#ifdef FASTCONV_PYTHON_OPENMP
// fastconv's tasks on the calling thread's OpenMP team. PyTorch runs its ops on the same libgomp:
// its workers, still spinning after torch's last op, take these tasks instead of fighting oneTBB's
// workers for the cores.
void openmp_runner(int64_t tasks, int threads, fastconv::TaskBody body, void* context) {
#pragma omp parallel num_threads(threads)
  {
    const int slot = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) body(context, t, slot);
  }
}
constexpr bool kHasOpenmp = true;
#else
constexpr fastconv::TaskRunner openmp_runner = nullptr;
constexpr bool kHasOpenmp = false;
#endif

using Shape = std::vector<int64_t>;

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Shape array_shape(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

// Large output buffers, kept for reuse once their array is gone. glibc maps every block above
// 32 MiB afresh, so a layer's output paid a page fault per 4 KiB on every call: 14.6 ms of faults
// beside 8.3 ms of convolution for MobileNetV2's 16->96 1x1 layer at batch 8 (38.5 MB), measured.
// Buffers are reused by exact size (a network asks for the same sizes every forward), 2 MiB aligned
// and advised as huge pages for their first touch; at most kMaxCachedBytes wait for reuse.
class BufferCache {
 public:
  static constexpr std::size_t kMaxCachedBytes = std::size_t(1) << 30;

  static BufferCache& instance() {
    static BufferCache* cache = new BufferCache;  // never destroyed: arrays may outlive the module's statics
    return *cache;
  }
  void* take(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    constexpr std::size_t kHuge = std::size_t(2) << 20;
    void* p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge);
    if (!p) throw std::bad_alloc();
    madvise(p, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: failure is harmless
    return p;
  }
  void give(void* p, std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kMaxCachedBytes) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  std::size_t release() {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t freed = cached_;
    for (auto& [bytes, list] : free_)
      for (void* p : list) std::free(p);
    free_.clear();
    cached_ = 0;
    return freed;
  }
  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_ = 0;
};

// An uninitialised float32 array of `shape` whose memory comes from (and goes back to) BufferCache.
py::array_t<float> cached_empty(const Shape& shape) {
  std::size_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw fastconv::Error("cached_empty: negative dimension in " + shape_string(shape));
    if (d != 0 && count > SIZE_MAX / 8 / std::size_t(d)) throw fastconv::Error("cached_empty: " + shape_string(shape) + " is too large");
    count *= std::size_t(d);
  }
  const std::size_t bytes = std::max<std::size_t>(count, 1) * sizeof(float);
  void* p = BufferCache::instance().take(bytes);
  struct Owner {
    void* p;
    std::size_t bytes;
  };
  py::capsule owner(new Owner{p, bytes}, [](void* o) {
    auto* owner = static_cast<Owner*>(o);
    BufferCache::instance().give(owner->p, owner->bytes);
    delete owner;
  });
  return py::array_t<float>(shape, static_cast<float*>(p), owner);
}

// The array's data when it is float32, C-contiguous and exactly `expected`; Error naming it otherwise.
// The Python layer converts and checks first, so these are the last guard against a misread buffer.
const float* float_data(const py::array& a, const char* name, const Shape& expected) {
  if (!py::isinstance<py::array_t<float>>(a))
    throw fastconv::Error(std::string(name) + ": expected dtype float32, got " + py::str(a.dtype()).cast<std::string>());
  if (!(a.flags() & py::array::c_style))
    throw fastconv::Error(std::string(name) + ": expected a C-contiguous array");
  if (array_shape(a) != expected)
    throw fastconv::Error(std::string(name) + ": expected shape " + shape_string(expected) + ", got " +
                          shape_string(array_shape(a)));
  return static_cast<const float*>(a.data());
}

float* writable_float_data(py::array& a, const char* name, const Shape& expected) {
  float_data(a, name, expected);
  if (!a.writeable()) throw fastconv::Error(std::string(name) + ": the array is read-only");
  return static_cast<float*>(a.mutable_data());
}

// A float32 array that is not C-contiguous, copied once into one that is (other arrays as they are:
// float_data names their faults).
py::array contiguous_input(const py::array& a) {
  if (py::isinstance<py::array_t<float>>(a) && !(a.flags() & py::array::c_style))
    return py::array_t<float, py::array::c_style>::ensure(a);
  return a;
}

Shape input_shape(const fastconv::ConvProblem& p) { return {p.batch, p.in_channels, p.in_height, p.in_width}; }
Shape weight_shape(const fastconv::ConvProblem& p) {
  return {p.out_channels, p.in_channels / p.groups, p.kernel_height, p.kernel_width};
}
Shape output_dims(const fastconv::ConvProblem& p) { return {p.batch, p.out_channels, p.out_height(), p.out_width()}; }

fastconv::PlanOptions make_options(const std::string& algorithm, const std::string& mode, std::size_t workspace_limit,
                                   int threads, const std::string& implementation, const std::string& activation,
                                   bool residual, const std::string& direction = "forward",
                                   bool weights_change = false) {
  fastconv::PlanOptions o;
  o.direction = fastconv::parse_direction(direction);
  o.algorithm = fastconv::parse_algorithm(algorithm);
  o.mode = fastconv::parse_plan_mode(mode);
  o.workspace_limit = workspace_limit;
  if (threads < 0) throw fastconv::Error("threads=" + std::to_string(threads) + ": must be >= 0 (0: all)");
  o.threads = threads;
  o.implementation = implementation;
  o.post_ops = fastconv::parse_post_ops(activation);
  o.post_ops.residual = residual;
  o.weights_change = weights_change;
  return o;
}

// A plan with the problem it was made for, so execute can check shapes without asking C++ twice.
struct PyPlan {
  fastconv::Plan plan;
  Shape in, weight, out;
  bool residual;
  std::string post_ops;  // e.g. "relu+residual"
  fastconv::Direction direction = fastconv::Direction::Forward;
};

// Packed weights remember which plan packed them (the C++ refuses others, this names them first).
struct PyPacked {
  fastconv::PackedWeights packed;
  bool has_bias;
};

void require_direction(const PyPlan& p, fastconv::Direction want, const char* method) {
  if (p.direction != want)
    throw fastconv::Error(std::string(method) + ": this plan's direction is '" + fastconv::to_string(p.direction) +
                          "', expected '" + fastconv::to_string(want) + "' (Plan(..., direction=...))");
}

PyPlan make_plan(const fastconv::ConvProblem& problem, const fastconv::PlanOptions& options) {
  fastconv::Plan plan = [&] {
    py::gil_scoped_release release;  // Measure mode runs for a while
    return fastconv::Plan::create(problem, options);
  }();
  return PyPlan{plan, input_shape(problem), weight_shape(problem), output_dims(problem), options.post_ops.residual,
                fastconv::to_string(options.post_ops), options.direction};
}

// Whether [a, a + na) and [b, b + nb) share memory.
bool overlap(const float* a, int64_t na, const float* b, int64_t nb) {
  const auto ia = reinterpret_cast<std::uintptr_t>(a), ib = reinterpret_cast<std::uintptr_t>(b);
  return ia < ib + std::uintptr_t(nb) * sizeof(float) && ib < ia + std::uintptr_t(na) * sizeof(float);
}

int64_t element_count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The pool of a [N, C, H, W] input, or Error (`what`: the caller's name) for what the kernel does not
// take: padding past half the kernel (torch's rule), a window larger than the padded input, sizes
// beyond 2^20 (nothing below then overflows or allocates absurdly: a padded row per thread).
fastconv_python::PoolShape pool_shape(const char* what, const Shape& in, std::pair<int64_t, int64_t> kernel,
                                      std::pair<int64_t, int64_t> stride, std::pair<int64_t, int64_t> padding,
                                      bool ceil_mode = false) {
  const std::string name(what);
  if (in.size() != 4) throw fastconv::Error(name + ": expected a 4-D input, got " + std::to_string(in.size()) + "-D");
  fastconv_python::PoolShape s{in[0] * in[1], in[2], in[3], 0, 0, kernel.first, kernel.second,
                               stride.first, stride.second, padding.first, padding.second};
  constexpr int64_t kMaxWindow = int64_t(1) << 20;
  if (s.kh < 1 || s.kw < 1 || s.sh < 1 || s.sw < 1 || s.kh > kMaxWindow || s.kw > kMaxWindow ||
      s.sh > kMaxWindow || s.sw > kMaxWindow)
    throw fastconv::Error(name + ": kernel and stride must be between 1 and 2^20");
  if (s.ph < 0 || s.pw < 0 || 2 * s.ph > s.kh || 2 * s.pw > s.kw)
    throw fastconv::Error(name + ": padding must be between 0 and half the kernel");
  if (s.H + 2 * s.ph < s.kh || s.W + 2 * s.pw < s.kw)
    throw fastconv::Error(name + ": the kernel is larger than the padded input");
  // torch's sizes; with ceil_mode rounded up, but no window starts past the input and its leading padding
  const auto size = [&](int64_t n, int64_t k, int64_t st, int64_t pad) {
    const int64_t span = n + 2 * pad - k;
    int64_t out = (ceil_mode ? (span + st - 1) / st : span / st) + 1;
    if (ceil_mode && (out - 1) * st >= n + pad) --out;
    return out;
  };
  s.P = size(s.H, s.kh, s.sh, s.ph), s.Q = size(s.W, s.kw, s.sw, s.pw);
  return s;
}

// A run of forward plans executed in one call: fastconv.torch compiles the conv layers of a
// Sequential (with the residual blocks and the max pools in it) into one, so that a network pays no
// Python work and no allocation per layer (MobileNetV2 at batch 1: 52 layers, about 20 us of Python
// each around a 100 us convolution; in a network, with the interpreter's data out of the caches, a
// max pool's Python took 100-120 us around a 60-560 us pool). Each step reads one buffer, may add a
// residual from another and writes a third. Buffers ("slots") are the call's input (0), its output
// (1), or regions of an arena the chain owns, which Python lays out by liveness so that regions are
// reused. Everything about the program is
// checked when it is built: the sizes each plan reads and writes, the arena bounds, that no step
// writes over what it reads and that no slot is read after another write reused its memory; run()
// then checks only the two arrays. The arena is used by one call at a time; a call that finds it
// busy (another Python thread runs the same chain) uses a buffer of its own.
class PyChain {
 public:
  struct Step {
    std::optional<fastconv::Plan> plan;  // a convolution, or
    fastconv::PackedWeights packed;
    std::optional<fastconv_python::PoolShape> pool;  // a max pool on pool_threads, or
    std::shared_ptr<const fastconv_python::InvertedResidual> block;  // a fused inverted residual block, or
    std::optional<std::pair<int64_t, int64_t>> mean;  // a global average pool: (planes, pixels per plane)
    int pool_threads = 1;
    int in = 0, residual = -1, out = 0;  // slots; residual -1: none
  };

  PyChain(const py::list& steps, const std::vector<int64_t>& slot_offsets, int64_t arena_floats, Shape in_shape,
          Shape out_shape)
      : offsets_(slot_offsets), arena_floats_(arena_floats), in_(std::move(in_shape)), out_(std::move(out_shape)) {
    if (steps.empty()) throw fastconv::Error("Chain: no steps");
    if (arena_floats < 0) throw fastconv::Error("Chain: negative arena size");
    const int slots = int(offsets_.size());
    if (slots < 2) throw fastconv::Error("Chain: slot_offsets must list the input (0) and output (1) slots");
    sizes_.assign(slots, -1);
    sizes_[0] = element_count(in_), sizes_[1] = element_count(out_);
    for (const auto& item : steps) {
      const auto t = item.cast<py::tuple>();
      const std::string which = "Chain: step " + std::to_string(steps_.size());
      if (t.size() != 5)
        throw fastconv::Error("Chain: a step is (plan, packed, in, residual, out) or "
                              "('max_pool', (N, C, H, W, kh, kw, sh, sw, ph, pw, threads[, ceil_mode]), in, -1, out), "
                              "('global_avg_pool', (N, C, H, W, threads), in, -1, out) or "
                              "('inverted_residual', block, in, -1, out)");
      Step step{std::nullopt, {}, std::nullopt, nullptr, std::nullopt, 1, t[2].cast<int>(), t[3].cast<int>(),
                t[4].cast<int>()};
      const auto slot_ok = [&](int s) { return s >= 0 && s < slots; };
      if (!slot_ok(step.in) || !slot_ok(step.out) || (step.residual != -1 && !slot_ok(step.residual)))
        throw fastconv::Error(which + " names a slot out of range");
      if (step.out == 0) throw fastconv::Error("Chain: no step may write the input (slot 0)");
      if (py::isinstance<py::str>(t[0])) {
        const std::string kind = t[0].cast<std::string>();
        if (kind == "inverted_residual") {
          step.block = t[1].cast<std::shared_ptr<const fastconv_python::InvertedResidual>>();
          if (!step.block) throw fastconv::Error(which + ": no inverted residual block");
          if (step.residual != -1) throw fastconv::Error(which + ": an inverted residual block adds its own input");
          const auto& b = step.block->shape();
          size_slot(step.in, checked_count({b.N, b.C, b.H, b.W}, which));
          size_slot(step.out, checked_count({b.N, b.K, b.P(), b.Q()}, which));
          steps_.push_back(std::move(step));
          continue;
        }
        if (kind == "global_avg_pool") {
          const auto spec = t[1].cast<std::vector<int64_t>>();
          if (spec.size() != 5) throw fastconv::Error(which + ": a global average pool is (N, C, H, W, threads)");
          const Shape in(spec.begin(), spec.begin() + 4);
          for (int64_t d : in)
            if (d < 1) throw fastconv::Error(which + ": empty average pool input " + shape_string(in));
          if (spec[4] < 1 || spec[4] > 4096) throw fastconv::Error(which + ": pool threads must be in [1, 4096]");
          if (step.residual != -1) throw fastconv::Error(which + ": an average pool adds no residual");
          step.pool_threads = int(spec[4]);
          size_slot(step.in, checked_count(in, which));
          size_slot(step.out, checked_count({in[0], in[1]}, which));
          step.mean = std::make_pair(in[0] * in[1], in[2] * in[3]);  // both within the checked count
          steps_.push_back(std::move(step));
          continue;
        }
        if (kind != "max_pool") throw fastconv::Error(which + ": unknown kind '" + kind + "'");
        const auto spec = t[1].cast<std::vector<int64_t>>();
        if (spec.size() != 11 && spec.size() != 12)
          throw fastconv::Error(which + ": a max pool is (N, C, H, W, kh, kw, sh, sw, ph, pw, threads[, ceil_mode])");
        const Shape in(spec.begin(), spec.begin() + 4);
        for (int64_t d : in)
          if (d < 1) throw fastconv::Error(which + ": empty max pool input " + shape_string(in));
        step.pool = pool_shape("Chain: max pool", in, {spec[4], spec[5]}, {spec[6], spec[7]}, {spec[8], spec[9]},
                               spec.size() == 12 && spec[11] != 0);
        if (spec[10] < 1 || spec[10] > 4096) throw fastconv::Error(which + ": max pool threads must be in [1, 4096]");
        step.pool_threads = int(spec[10]);
        if (step.residual != -1) throw fastconv::Error(which + ": a max pool adds no residual");
        size_slot(step.in, checked_count(in, which));
        size_slot(step.out, checked_count({in[0], in[1], step.pool->P, step.pool->Q}, which));
      } else {
        const PyPlan& p = t[0].cast<const PyPlan&>();
        require_direction(p, fastconv::Direction::Forward, "Chain");
        step.plan = p.plan, step.packed = t[1].cast<const PyPacked&>().packed;
        if (p.residual != (step.residual != -1)) throw fastconv::Error(which + "'s plan and residual slot disagree");
        size_slot(step.in, element_count(p.in));
        size_slot(step.out, element_count(p.out));
        if (step.residual != -1) size_slot(step.residual, element_count(p.out));
        workspace_bytes_ = std::max(workspace_bytes_, p.plan.workspace_bytes());
      }
      steps_.push_back(std::move(step));
    }
    check_program();
  }

  void run(const py::array& input, py::array& output) {
    const float* x = float_data(input, "input", in_);
    float* y = writable_float_data(output, "out", out_);
    if (overlap(x, sizes_[0], y, sizes_[1])) throw fastconv::Error("Chain: the output overlaps the input");
    py::gil_scoped_release release;
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    float* arena = nullptr;
    if (lock.owns_lock()) {
      if (!arena_) arena_ = static_cast<float*>(BufferCache::instance().take(arena_bytes()));
      arena = arena_;
    } else {
      arena = static_cast<float*>(BufferCache::instance().take(arena_bytes()));
    }
    struct GiveBack {
      float* p;
      std::size_t bytes;
      ~GiveBack() {
        if (p) BufferCache::instance().give(p, bytes);
      }
    } temporary{lock.owns_lock() ? nullptr : arena, arena_bytes()};
    float* workspace = arena + workspace_offset();
    const auto slot = [&](int s) -> float* {
      return s == 0 ? const_cast<float*>(x) : s == 1 ? y : arena + offsets_[s];
    };
    // Per-step times for a profile of the network (off: one relaxed load per call).
    const bool profiling = profiling_.load(std::memory_order_relaxed);
    std::vector<double> seconds;
    if (profiling) seconds.reserve(steps_.size());
    for (const Step& st : steps_) {
      const auto start = profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      if (st.pool)
        fastconv_python::max_pool2d(slot(st.in), slot(st.out), *st.pool, st.pool_threads);
      else if (st.mean)
        fastconv_python::global_avg_pool(slot(st.in), slot(st.out), st.mean->first, st.mean->second, st.pool_threads);
      else if (st.block)
        st.block->run(slot(st.in), slot(st.out));
      else if (st.residual == -1)
        st.plan->execute(slot(st.in), st.packed, slot(st.out), workspace, workspace_bytes_);
      else
        st.plan->execute(slot(st.in), st.packed, slot(st.out), slot(st.residual), workspace, workspace_bytes_);
      if (profiling) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (profiling) {
      std::lock_guard<std::mutex> guard(profile_mutex_);
      step_seconds_.push_back(std::move(seconds));
    }
  }

  // Profiling: while on, every run records each step's seconds (one list per run).
  void set_profiling(bool on) {
    std::lock_guard<std::mutex> guard(profile_mutex_);
    profiling_.store(on, std::memory_order_relaxed);
    if (on) step_seconds_.clear();
  }
  std::vector<std::vector<double>> step_seconds() {
    std::lock_guard<std::mutex> guard(profile_mutex_);
    return step_seconds_;
  }

  ~PyChain() {
    if (arena_) BufferCache::instance().give(arena_, arena_bytes());
  }

  std::size_t arena_bytes() const { return workspace_offset() * sizeof(float) + workspace_bytes_ + 64; }
  std::size_t steps() const { return steps_.size(); }

 private:
  std::size_t workspace_offset() const { return (std::size_t(arena_floats_) + 15) / 16 * 16; }

  // Elements of a shape given by the caller, or Error when the count overflows.
  static int64_t checked_count(const Shape& shape, const std::string& which) {
    int64_t n = 1;
    for (int64_t d : shape)
      if (__builtin_mul_overflow(n, d, &n)) throw fastconv::Error(which + ": the step's size overflows");
    return n;
  }

  void size_slot(int s, int64_t floats) {
    if (sizes_[s] == -1) sizes_[s] = floats;
    if (sizes_[s] != floats)
      throw fastconv::Error("Chain: slot " + std::to_string(s) + " holds " + std::to_string(sizes_[s]) +
                            " floats, a step uses it as " + std::to_string(floats));
  }

  // Arena slots lie inside the arena; every slot read was written before (the input excepted) and
  // not overwritten since, through a slot sharing its memory; no step writes what it reads.
  void check_program() const {
    const int slots = int(offsets_.size());
    for (int s = 2; s < slots; ++s)
      if (sizes_[s] != -1 && (offsets_[s] < 0 || offsets_[s] > arena_floats_ - sizes_[s]))
        throw fastconv::Error("Chain: slot " + std::to_string(s) + " lies outside the arena");
    const auto share_memory = [&](int a, int b) {
      if (a == b) return true;
      if (a < 2 || b < 2) return false;  // the call's own arrays (their overlap is refused by run)
      return offsets_[a] < offsets_[b] + sizes_[b] && offsets_[b] < offsets_[a] + sizes_[a];
    };
    std::vector<int> written(slots, -1);
    for (int i = 0; i < int(steps_.size()); ++i) {
      const Step& st = steps_[i];
      for (int r : {st.in, st.residual}) {
        if (r == -1 || r == 0) continue;
        if (written[r] == -1)
          throw fastconv::Error("Chain: step " + std::to_string(i) + " reads slot " + std::to_string(r) +
                                " before any step wrote it");
        for (int j = written[r] + 1; j < i; ++j)
          if (share_memory(steps_[j].out, r))
            throw fastconv::Error("Chain: step " + std::to_string(j) + " overwrites slot " + std::to_string(r) +
                                  " before step " + std::to_string(i) + " reads it");
      }
      if (share_memory(st.out, st.in) || (st.residual != -1 && share_memory(st.out, st.residual)))
        throw fastconv::Error("Chain: step " + std::to_string(i) + " writes over what it reads");
      written[st.out] = i;
    }
    if (written[1] == -1) throw fastconv::Error("Chain: no step writes the output (slot 1)");
  }

  std::vector<Step> steps_;
  std::vector<int64_t> offsets_, sizes_;
  int64_t arena_floats_;
  Shape in_, out_;
  std::size_t workspace_bytes_ = 0;
  std::mutex mutex_;
  float* arena_ = nullptr;
  std::atomic<bool> profiling_{false};
  std::mutex profile_mutex_;
  std::vector<std::vector<double>> step_seconds_;
};

py::dict candidate_dict(const fastconv::Candidate& c) {
  py::dict d;
  d["algorithm"] = fastconv::to_string(c.algorithm);
  d["implementation"] = c.implementation;
  d["applicable"] = c.applicable;
  d["reason"] = c.reason;
  d["time_ms"] = c.time_ms;
  d["measured"] = c.measured;
  d["workspace_bytes"] = c.workspace_bytes;
  return d;
}

}  // namespace

PYBIND11_MODULE(_fastconv, m) {
  m.doc() = "fastconv's C++ core (NumPy only). Use the fastconv package, not this module.";
  py::register_exception<fastconv::Error>(m, "Error", PyExc_ValueError);

  py::class_<fastconv::ConvProblem>(m, "Problem")
      .def(py::init<>())
      .def_readwrite("batch", &fastconv::ConvProblem::batch)
      .def_readwrite("in_channels", &fastconv::ConvProblem::in_channels)
      .def_readwrite("in_height", &fastconv::ConvProblem::in_height)
      .def_readwrite("in_width", &fastconv::ConvProblem::in_width)
      .def_readwrite("out_channels", &fastconv::ConvProblem::out_channels)
      .def_readwrite("kernel_height", &fastconv::ConvProblem::kernel_height)
      .def_readwrite("kernel_width", &fastconv::ConvProblem::kernel_width)
      .def_readwrite("stride_h", &fastconv::ConvProblem::stride_h)
      .def_readwrite("stride_w", &fastconv::ConvProblem::stride_w)
      .def_readwrite("pad_top", &fastconv::ConvProblem::pad_top)
      .def_readwrite("pad_bottom", &fastconv::ConvProblem::pad_bottom)
      .def_readwrite("pad_left", &fastconv::ConvProblem::pad_left)
      .def_readwrite("pad_right", &fastconv::ConvProblem::pad_right)
      .def_readwrite("dilation_h", &fastconv::ConvProblem::dilation_h)
      .def_readwrite("dilation_w", &fastconv::ConvProblem::dilation_w)
      .def_readwrite("groups", &fastconv::ConvProblem::groups)
      .def_property(
          "padding_mode", [](const fastconv::ConvProblem& p) { return fastconv::to_string(p.padding_mode); },
          [](fastconv::ConvProblem& p, const std::string& mode) { p.padding_mode = fastconv::parse_pad_mode(mode); })
      .def("validate", &fastconv::ConvProblem::validate)
      .def_property_readonly("input_shape", [](const fastconv::ConvProblem& p) { return input_shape(p); })
      .def_property_readonly("weight_shape", [](const fastconv::ConvProblem& p) { return weight_shape(p); })
      .def_property_readonly("output_shape", [](const fastconv::ConvProblem& p) {
        p.validate();
        return output_dims(p);
      })
      .def_property_readonly("flops", [](const fastconv::ConvProblem& p) { return fastconv::flop_count(p); })
      .def("__eq__", [](const fastconv::ConvProblem& a, const fastconv::ConvProblem& b) { return a == b; })
      .def("__hash__", [](const fastconv::ConvProblem& p) { return std::hash<fastconv::ConvProblem>()(p); })
      .def("__str__", [](const fastconv::ConvProblem& p) { return fastconv::to_string(p); })
      .def("__repr__", [](const fastconv::ConvProblem& p) { return "Problem(" + fastconv::to_string(p) + ")"; })
      .def_static("parse", &fastconv::parse_problem);

  py::class_<PyPacked>(m, "PackedWeights")
      .def_property_readonly("size_bytes", [](const PyPacked& w) { return w.packed.size_bytes(); })
      .def_readonly("has_bias", &PyPacked::has_bias)
      .def("__repr__", [](const PyPacked& w) {
        return "PackedWeights(" + std::to_string(w.packed.size_bytes()) + " bytes)";
      });

  py::class_<PyPlan>(m, "Plan")
      .def(py::init([](const fastconv::ConvProblem& problem, const std::string& algorithm, const std::string& mode,
                       std::size_t workspace_limit, int threads, const std::string& implementation,
                       const std::string& activation, bool residual, const std::string& direction,
                       bool weights_change) {
             return make_plan(problem, make_options(algorithm, mode, workspace_limit, threads, implementation,
                                                    activation, residual, direction, weights_change));
           }),
           py::arg("problem"), py::arg("algorithm") = "auto", py::arg("mode") = "estimate",
           py::arg("workspace_limit") = fastconv::PlanOptions::kDefaultWorkspaceLimit, py::arg("threads") = 0,
           py::arg("implementation") = "", py::arg("activation") = "none", py::arg("residual") = false,
           py::arg("direction") = "forward", py::arg("weights_change") = false)
      .def_property_readonly("direction", [](const PyPlan& p) { return fastconv::to_string(p.direction); })
      .def_property_readonly("post_ops", [](const PyPlan& p) { return p.post_ops; })
      .def_property_readonly("problem", [](const PyPlan& p) { return p.plan.problem(); })
      .def_property_readonly("algorithm", [](const PyPlan& p) { return fastconv::to_string(p.plan.algorithm()); })
      .def_property_readonly("implementation", [](const PyPlan& p) { return p.plan.implementation(); })
      .def_property_readonly("threads", [](const PyPlan& p) { return p.plan.threads(); })
      .def_property_readonly("workspace_bytes", [](const PyPlan& p) { return p.plan.workspace_bytes(); })
      .def_readonly("input_shape", &PyPlan::in)
      .def_readonly("weight_shape", &PyPlan::weight)
      .def_readonly("output_shape", &PyPlan::out)
      .def("describe", [](const PyPlan& p) { return p.plan.describe(); })
      .def(
          "pack_weights",
          [](const PyPlan& p, const py::array& weight, const py::object& bias) {
            const float* w = float_data(weight, "weight", p.weight);
            const float* b = nullptr;
            // the forward's bias is [K]; backward-data's (the transposed convolution's) is [C]
            const int64_t bias_size = p.direction == fastconv::Direction::BackwardData ? p.in[1] : p.out[1];
            if (!bias.is_none()) b = float_data(bias.cast<py::array>(), "bias", {bias_size});
            py::gil_scoped_release release;
            return PyPacked{p.plan.pack_weights(w, b), b != nullptr};
          },
          py::arg("weight"), py::arg("bias") = py::none())
      // Writes into `output` (float32, C-contiguous, the plan's output shape); the GIL is released
      // while it computes, so many Python threads may run one plan at once.
      .def(
          "execute",
          [](const PyPlan& p, const py::array& input, const PyPacked& packed, py::array& output,
             const py::object& residual) {
            const float* x = float_data(input, "input", p.in);
            float* y = writable_float_data(output, "out", p.out);
            if (p.residual != !residual.is_none())
              throw fastconv::Error(p.residual ? "residual: this plan fuses a residual add; pass residual="
                                               : "residual: this plan was made without residual=True");
            if (residual.is_none()) {
              py::gil_scoped_release release;
              p.plan.execute(x, packed.packed, y);
            } else {
              const float* r = float_data(residual.cast<py::array>(), "residual", p.out);
              py::gil_scoped_release release;
              p.plan.execute(x, packed.packed, y, r);
            }
          },
          py::arg("input"), py::arg("packed"), py::arg("output"), py::arg("residual") = py::none())

      // Backward-data plans: dy [N, K, P, Q] -> grad_input [N, C, H, W]; backward-weights plans: x and dy
      // -> grad_weight [K, C/g, R, S] (and grad_bias [K] when given). Every argument is checked before
      // anything is written; a non-contiguous float32 input costs one copy; the GIL is released.
      .def(
          "execute_backward_data",
          [](const PyPlan& p, const py::array& grad_output, const PyPacked& packed, py::array& grad_input) {
            require_direction(p, fastconv::Direction::BackwardData, "execute_backward_data");
            const py::array dy = contiguous_input(grad_output);
            const float* dy_data = float_data(dy, "grad_output", p.out);
            float* dx = writable_float_data(grad_input, "grad_input", p.in);
            py::gil_scoped_release release;
            p.plan.execute_backward_data(dy_data, packed.packed, dx);
          },
          py::arg("grad_output"), py::arg("packed"), py::arg("grad_input"))
      .def(
          "execute_backward_weights",
          [](const PyPlan& p, const py::array& input, const py::array& grad_output, py::array& grad_weight,
             py::object grad_bias) {
            require_direction(p, fastconv::Direction::BackwardWeights, "execute_backward_weights");
            const py::array x = contiguous_input(input), dy = contiguous_input(grad_output);
            const float* x_data = float_data(x, "input", p.in);
            const float* dy_data = float_data(dy, "grad_output", p.out);
            float* dw = writable_float_data(grad_weight, "grad_weight", p.weight);
            float* db = nullptr;
            py::array bias_array;
            if (!grad_bias.is_none()) {
              bias_array = grad_bias.cast<py::array>();
              db = writable_float_data(bias_array, "grad_bias", {p.out[1]});
            }
            py::gil_scoped_release release;
            p.plan.execute_backward_weights(x_data, dy_data, dw, db);
          },
          py::arg("input"), py::arg("grad_output"), py::arg("grad_weight"), py::arg("grad_bias") = py::none());

  // fastconv.torch's fused MobileNetV2 block (a Chain step ("inverted_residual", block, in, -1, out)).
  const auto block_shape = [](const Shape& input_shape) {
    if (input_shape.size() != 4) throw fastconv::Error("InvertedResidual: input_shape is (N, C, H, W)");
    fastconv_python::InvertedResidualShape s{};
    s.N = input_shape[0], s.C = input_shape[1], s.H = input_shape[2], s.W = input_shape[3];
    return s;
  };
  py::class_<fastconv_python::InvertedResidual, std::shared_ptr<fastconv_python::InvertedResidual>>(
      m, "InvertedResidual")
      .def(py::init([block_shape](const Shape& input_shape, int64_t stride, py::object expand_w, py::object expand_b,
                                  const py::array& dw_w, const py::array& dw_b, const py::array& project_w,
                                  const py::array& project_b, const std::string& expand_activation,
                                  const std::string& dw_activation, bool residual, int threads) {
             fastconv_python::InvertedResidualShape s = block_shape(input_shape);
             s.stride = stride, s.residual = residual;
             s.expand_activation = fastconv::parse_post_ops(expand_activation);
             s.dw_activation = fastconv::parse_post_ops(dw_activation);
             const float* ew = nullptr;
             const float* eb = nullptr;
             py::array ew_array, eb_array;
             if (!expand_w.is_none()) {
               ew_array = expand_w.cast<py::array>();
               if (ew_array.ndim() != 4) throw fastconv::Error("InvertedResidual: expand_weight is (E, C, 1, 1)");
               s.E = ew_array.shape(0);
               ew = float_data(ew_array, "expand_weight", {s.E, s.C, 1, 1});
               eb_array = expand_b.cast<py::array>();
               eb = float_data(eb_array, "expand_bias", {s.E});
             }
             const int64_t Ed = s.E ? s.E : s.C;
             if (project_w.ndim() != 4) throw fastconv::Error("InvertedResidual: project_weight is (K, E, 1, 1)");
             s.K = project_w.shape(0);
             const float* dw = float_data(dw_w, "dw_weight", {Ed, 1, 3, 3});
             const float* db = float_data(dw_b, "dw_bias", {Ed});
             const float* pw = float_data(project_w, "project_weight", {s.K, Ed, 1, 1});
             const float* pb = float_data(project_b, "project_bias", {s.K});
             return std::make_shared<fastconv_python::InvertedResidual>(s, ew, eb, dw, db, pw, pb, threads);
           }),
           py::arg("input_shape"), py::arg("stride"), py::arg("expand_weight"), py::arg("expand_bias"),
           py::arg("dw_weight"), py::arg("dw_bias"), py::arg("project_weight"), py::arg("project_bias"),
           py::arg("expand_activation"), py::arg("dw_activation"), py::arg("residual"), py::arg("threads"))
      .def("run",
           [](const fastconv_python::InvertedResidual& b, const py::array& input, py::array& output) {
             const auto& s = b.shape();
             const float* x = float_data(input, "input", {s.N, s.C, s.H, s.W});
             float* y = writable_float_data(output, "out", {s.N, s.K, s.P(), s.Q()});
             if (overlap(x, s.N * s.C * s.H * s.W, y, s.N * s.K * s.P() * s.Q()))
               throw fastconv::Error("InvertedResidual: the output overlaps the input");
             py::gil_scoped_release release;
             b.run(x, y);
           },
           py::arg("input"), py::arg("output"))
      .def_static(
          "pays",
          [block_shape](const Shape& input_shape, int64_t expanded_channels, int64_t stride, int threads) {
            fastconv_python::InvertedResidualShape s = block_shape(input_shape);
            s.E = expanded_channels, s.stride = stride;
            return s.stride >= 1 && fastconv_python::InvertedResidual::pays(s, threads);
          },
          py::arg("input_shape"), py::arg("expanded_channels"), py::arg("stride"), py::arg("threads"),
          "Whether the fused block is expected to beat its three layers run one by one.")
      .def("describe", &fastconv_python::InvertedResidual::describe)
      .def_property_readonly("output_shape", [](const fastconv_python::InvertedResidual& b) {
        const auto& s = b.shape();
        return Shape{s.N, s.K, s.P(), s.Q()};
      });

  py::class_<PyChain>(m, "Chain")
      .def(py::init<const py::list&, const std::vector<int64_t>&, int64_t, Shape, Shape>(), py::arg("steps"),
           py::arg("slot_offsets"), py::arg("arena_floats"), py::arg("input_shape"), py::arg("output_shape"))
      .def("run", &PyChain::run, py::arg("input"), py::arg("output"))
      .def("set_profiling", &PyChain::set_profiling, py::arg("on"),
           "While on, each run records the seconds of every step (step_seconds: one list per run).")
      .def_property_readonly("step_seconds", &PyChain::step_seconds)
      .def_property_readonly("arena_bytes", &PyChain::arena_bytes)
      .def("__len__", &PyChain::steps);

  m.def(
      "find_algorithms",
      [](const fastconv::ConvProblem& problem, const std::string& algorithm, const std::string& mode,
         std::size_t workspace_limit, int threads, const std::string& implementation, const std::string& activation,
         bool residual) {
        const fastconv::PlanOptions o =
            make_options(algorithm, mode, workspace_limit, threads, implementation, activation, residual);
        std::vector<fastconv::Candidate> candidates;
        {
          py::gil_scoped_release release;
          candidates = fastconv::find_algorithms(problem, o);
        }
        py::list out;
        for (const auto& c : candidates) out.append(candidate_dict(c));
        return out;
      },
      py::arg("problem"), py::arg("algorithm") = "auto", py::arg("mode") = "estimate",
      py::arg("workspace_limit") = fastconv::PlanOptions::kDefaultWorkspaceLimit, py::arg("threads") = 0,
      py::arg("implementation") = "", py::arg("activation") = "none", py::arg("residual") = false);

  // fastconv.torch.MaxPool2d: input [N, C, H, W] -> output [N, C, P, Q], both float32 and C-contiguous.
  m.def(
      "max_pool2d",
      [](const py::array& input, py::array& output, std::pair<int64_t, int64_t> kernel,
         std::pair<int64_t, int64_t> stride, std::pair<int64_t, int64_t> padding, int threads, bool ceil_mode) {
        if (input.ndim() != 4) throw fastconv::Error("max_pool2d: expected a 4-D input, got " + std::to_string(input.ndim()) + "-D");
        const Shape in = array_shape(input);
        const fastconv_python::PoolShape s = pool_shape("max_pool2d", in, kernel, stride, padding, ceil_mode);
        const float* x = float_data(input, "input", in);
        float* y = writable_float_data(output, "out", {in[0], in[1], s.P, s.Q});
        if (threads < 1) throw fastconv::Error("max_pool2d: threads must be >= 1");
        if (overlap(x, element_count(in), y, s.planes * s.P * s.Q))
          throw fastconv::Error("max_pool2d: the output overlaps the input");
        py::gil_scoped_release release;
        fastconv_python::max_pool2d(x, y, s, threads);
      },
      py::arg("input"), py::arg("output"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
      py::arg("threads") = 1, py::arg("ceil_mode") = false);
  // A global average pool (AdaptiveAvgPool2d((1, 1))): input [N, C, H, W] -> output [N, C, 1, 1].
  m.def(
      "global_avg_pool2d",
      [](const py::array& input, py::array& output, int threads) {
        if (input.ndim() != 4)
          throw fastconv::Error("global_avg_pool2d: expected a 4-D input, got " + std::to_string(input.ndim()) + "-D");
        const Shape in = array_shape(input);
        for (int64_t d : in)
          if (d < 1) throw fastconv::Error("global_avg_pool2d: empty input " + shape_string(in));
        const float* x = float_data(input, "input", in);
        float* y = writable_float_data(output, "out", {in[0], in[1], 1, 1});
        if (threads < 1) throw fastconv::Error("global_avg_pool2d: threads must be >= 1");
        if (overlap(x, element_count(in), y, in[0] * in[1]))
          throw fastconv::Error("global_avg_pool2d: the output overlaps the input");
        py::gil_scoped_release release;
        fastconv_python::global_avg_pool(x, y, in[0] * in[1], in[2] * in[3], threads);
      },
      py::arg("input"), py::arg("output"), py::arg("threads") = 1);
  m.def("apply_padding", [](fastconv::ConvProblem p, const std::string& mode) {
    if (mode != "same" && mode != "valid")
      throw fastconv::Error("padding='" + mode + "': expected 'same' or 'valid'");
    fastconv::apply_padding(p, mode == "same" ? fastconv::PaddingMode::Same : fastconv::PaddingMode::Valid);
    return p;
  });
  m.def("save_wisdom", [](const std::string& path) {
    py::gil_scoped_release release;
    fastconv::save_wisdom(path);
  });
  m.def("load_wisdom", [](const std::string& path) {
    py::gil_scoped_release release;
    fastconv::load_wisdom(path);
  });
  m.def("forget_wisdom", &fastconv::forget_wisdom);
  m.def("describe_machine_model", &fastconv::describe_machine_model);
  m.def("calibrate", [](double seconds, int threads) {
    py::gil_scoped_release release;
    return fastconv::calibrate(seconds, threads);
  }, py::arg("seconds"), py::arg("threads"));
  m.def("wisdom_size", &fastconv::wisdom_size);
  m.def("clear_plan_cache", &fastconv::clear_plan_cache);
  m.def("instruction_set", &fastconv::instruction_set);
  m.attr("has_openmp") = kHasOpenmp;
  m.def("cached_empty", &cached_empty, py::arg("shape"));
  m.def("release_buffers", [] { return BufferCache::instance().release(); });
  m.def("cached_buffer_bytes", [] { return BufferCache::instance().cached_bytes(); });
  m.def("set_threading", [](const std::string& name) {
    if (name == "tbb") {
      fastconv::set_task_runner(nullptr);
    } else if (name == "openmp") {
      if (!kHasOpenmp) throw fastconv::Error("threading='openmp': this build of fastconv has no OpenMP");
      fastconv::set_task_runner(openmp_runner);
    } else {
      throw fastconv::Error("threading='" + name + "': expected 'openmp' or 'tbb'");
    }
  });
  m.def("threading", [] {
    const fastconv::TaskRunner r = fastconv::task_runner();
    return std::string(r == nullptr ? "tbb" : r == openmp_runner ? "openmp" : "host");
  });
  m.def("default_workspace_limit", [] { return fastconv::PlanOptions::kDefaultWorkspaceLimit; });
  m.attr("__version__") = fastconv::kVersion;
}
