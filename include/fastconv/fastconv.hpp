// fastconv: fast 2D convolution (forward, float32, NCHW) on x86-64 CPUs.
// The public API: describe a layer with ConvProblem, let the planner pick an algorithm (Plan),
// prepare the weights once (PackedWeights), then execute as often as you like from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastconv/version.hpp"

#if defined(_WIN32)
#define FASTCONV_API
#else
#define FASTCONV_API __attribute__((visibility("default")))
#endif

namespace fastconv {

// Every bad argument throws this, with a message that names the field and its value.
struct FASTCONV_API Error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

enum class Algorithm { Auto, Direct, Im2col, Winograd, FFT };
FASTCONV_API std::string to_string(Algorithm);
FASTCONV_API Algorithm parse_algorithm(const std::string& name);  // "auto", "direct", "im2col", "winograd", "fft"

// Estimate: a cost model picks, nothing runs. Measure: every applicable candidate runs on synthetic
// data of the problem's size, interleaved: a warm-up, then samples of at least 1 ms of back-to-back
// runs, up to 9 per candidate, fewer (at least 3) past about 1 second (candidates estimated over 8x
// slower than the best are not run); the median decides, and the choice is kept as wisdom. Like FFTW's ESTIMATE / MEASURE.
enum class PlanMode { Estimate, Measure };
FASTCONV_API std::string to_string(PlanMode);
FASTCONV_API PlanMode parse_plan_mode(const std::string& name);  // "estimate", "measure"

// How the border beyond the input is filled, as PyTorch's padding_mode: zeros; reflect (mirrored
// without repeating the edge: needs padding < input size per axis); replicate (the edge repeated);
// circular (wrapped around: needs padding <= input size per axis).
enum class PadMode { Zeros, Reflect, Replicate, Circular };
FASTCONV_API std::string to_string(PadMode);
FASTCONV_API PadMode parse_pad_mode(const std::string& name);  // "zeros", "reflect", "replicate", "circular"

// One conv2d layer: input [N, C, H, W], weights [K, C/groups, R, S], output [N, K, P, Q].
struct FASTCONV_API ConvProblem {
  int64_t batch = 1, in_channels = 0, in_height = 0, in_width = 0;
  int64_t out_channels = 0, kernel_height = 0, kernel_width = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  PadMode padding_mode = PadMode::Zeros;  // what the padding holds

  // P and Q; they do not validate (a problem with an empty output gives a value <= 0).
  int64_t out_height() const;
  int64_t out_width() const;

  // Throws Error naming the first bad field (sizes < 1, negative padding, stride or dilation < 1,
  // groups not dividing C and K, an empty output, sizes whose products overflow).
  void validate() const;

  // Element counts of the tensors; they validate first.
  std::size_t input_elements() const;
  std::size_t weight_elements() const;
  std::size_t output_elements() const;

  bool operator==(const ConvProblem& other) const;
  bool operator!=(const ConvProblem& other) const { return !(*this == other); }
};

// Canonical short name, e.g. "n1c64h56w56k64r3s3_p1" (stride, padding, dilation, groups and a
// padding mode other than zeros, e.g. "_reflect", appear only when not the default). Used in logs, test and bench names and as the wisdom key.
FASTCONV_API std::string to_string(const ConvProblem&);
// Parses the canonical name back; throws Error on anything else.
FASTCONV_API ConvProblem parse_problem(const std::string& canonical);

// Padding modes, resolved to explicit padding exactly as PyTorch does:
//   valid: no padding.
//   same:  total padding dil*(k-1) per axis, the odd pixel going to the bottom/right. Like PyTorch,
//          'same' is refused (Error) when the stride on that axis is not 1.
enum class PaddingMode { Valid, Same };
FASTCONV_API void apply_padding(ConvProblem&, PaddingMode);

struct OutputShape {
  int64_t batch, channels, height, width;
};
FASTCONV_API OutputShape output_shape(const ConvProblem&);  // validates
// K*(C/groups)*R*S (+ K with bias).
FASTCONV_API int64_t parameter_count(const ConvProblem&, bool with_bias);
// 2*N*K*P*Q*(C/groups)*R*S: multiply and add of the direct definition.
FASTCONV_API double flop_count(const ConvProblem&);

// Receptive field of a stack of layers on one axis: RF_L = RF_(L-1) + dil_L*(k_L - 1) * prod(stride_i, i < L).
struct LayerGeometry {
  int64_t kernel = 1, stride = 1, dilation = 1;
};
FASTCONV_API int64_t receptive_field(const std::vector<LayerGeometry>& layers);

// What a plan computes, always for the forward problem it was made from (x [N,C,H,W], w [K,C/g,R,S],
// y [N,K,P,Q]): the forward y; backward-data dx = dL/dx from dy = dL/dy and w (also the forward of
// a transposed convolution, whose output_padding is carried by the explicit H, W); or
// backward-weights dw = dL/dw (and db = dL/db) from x and dy.
enum class Direction { Forward, BackwardData, BackwardWeights };
FASTCONV_API std::string to_string(Direction);
FASTCONV_API Direction parse_direction(const std::string& name);  // "forward", "backward-data", "backward-weights"
// Fused epilogue: y = act(conv(x, w) + b + residual_scale * r), applied where each algorithm writes
// its output (never as a separate pass over y). r has the output's shape and may be the output
// buffer itself (in-place accumulation, like oneDNN's sum post-op).
enum class Activation { None, Relu, Relu6, LeakyRelu, Clamp, Silu, Hardswish, Gelu, Sigmoid, Tanh };
// "none", "relu", "relu6", "leaky_relu", "clamp", "silu", "hardswish", "gelu", "sigmoid", "tanh"
FASTCONV_API std::string to_string(Activation);
struct PostOps {
  Activation activation = Activation::None;
  float alpha = 0, beta = 0;  // leaky_relu: slope alpha; clamp: [alpha, beta] = [lo, hi]
  bool residual = false;      // execute takes a residual tensor (Plan::execute with `residual`)
  float residual_scale = 1;
};
// The activation part, as the CLI writes it: "relu", "leaky_relu:0.1" (slope; default 0.01),
// "clamp:0,6", "gelu" (tanh form), "none" or "". Throws Error on an unknown name or bad arguments.
FASTCONV_API PostOps parse_post_ops(const std::string& activation);
// E.g. "relu", "clamp:0,6+residual", "silu+residual*0.5", "none".
FASTCONV_API std::string to_string(const PostOps&);

struct PlanOptions {
  Algorithm algorithm = Algorithm::Auto;  // force one, or let the planner choose
  PlanMode mode = PlanMode::Estimate;
  // Bytes of scratch memory one execute may use. The default, 64 MiB, lets every algorithm run at
  // full speed on the layers of common networks; the streaming algorithms re-block to fit smaller
  // budgets, and Plan::create throws Error when nothing fits.
  std::size_t workspace_limit = kDefaultWorkspaceLimit;
  int threads = 0;  // 0: all hardware threads (oneTBB's default concurrency)
  // Restricts the choice to implementations whose name starts with this, e.g. "winograd_f2x2"
  // for the tighter error of F(2x2,3x3) over F(4x4,3x3). Empty: no restriction.
  std::string implementation;
  Direction direction = Direction::Forward;
  PostOps post_ops;  // fused epilogue (bias is always fused: it comes with the packed weights)
  // The weights change between (nearly) all executes, as in training: each execute comes with a
  // pack_weights, so the planner ranks by packing plus executing (Estimate counts the packing,
  // Measure times both). Winograd's transformed filters then lose to cheaper packings where the
  // product alone would choose them. Forward and backward-data plans.
  bool weights_change = false;

  static constexpr std::size_t kDefaultWorkspaceLimit = std::size_t(64) << 20;
};

namespace detail {
class PlanImpl;
struct PackedData;
}  // namespace detail

// Weights prepared once for one plan (transformed, packed, bias included). Cheap to copy (shared).
class FASTCONV_API PackedWeights {
 public:
  PackedWeights() = default;
  bool empty() const { return !data_; }
  std::size_t size_bytes() const;

 private:
  friend class Plan;
  std::shared_ptr<const detail::PackedData> data_;
};

// A convolution ready to run: an algorithm with its blocking chosen for one problem.
// Immutable after creation; execute may be called from many threads at once. Cheap to copy (shared).
class FASTCONV_API Plan {
 public:
  static Plan create(const ConvProblem&, const PlanOptions& = {});  // throws fastconv::Error

  const ConvProblem& problem() const;
  Direction direction() const;
  Algorithm algorithm() const;
  // The implementation's own name, e.g. "winograd_f2x2_3x3" or "im2col_gemm_6x16__avx2".
  std::string implementation() const;
  int threads() const;
  std::size_t workspace_bytes() const;  // scratch one execute needs; never above the limit
  std::string describe() const;         // algorithm, tiles, blocking, memory, and why it was chosen

  // Forward and backward-data plans: w [K, C/g, R, S]. The bias is [K] for the forward and [C]
  // for backward-data (the bias of the transposed convolution, added to dx; may be null).
  // Backward-weights plans take no weights (Error).
  PackedWeights pack_weights(const float* weight, const float* bias /* may be null */) const;
  // Forward plans only (another direction: Error).
  void execute(const float* input, const PackedWeights&, float* output) const;
  // As above, with scratch memory from the caller: at least workspace_bytes(), any alignment.
  void execute(const float* input, const PackedWeights&, float* output, void* workspace,
               std::size_t workspace_size) const;
  // With a residual r of the output's shape (plans whose post_ops.residual is set; the others refuse
  // these, and those plans refuse the overloads without one). r may be `output` itself; any other
  // overlap with output is refused.
  void execute(const float* input, const PackedWeights&, float* output, const float* residual) const;
  void execute(const float* input, const PackedWeights&, float* output, const float* residual, void* workspace,
               std::size_t workspace_size) const;
  // Packs the weights on each call (allocates); prefer pack_weights + execute in loops.
  void execute(const float* input, const float* weight, const float* bias, float* output) const;

  // Backward-data plans: dy [N, K, P, Q] -> dx [N, C, H, W] (overwritten; rows and columns no
  // output touches get zero, or the bias).
  void execute_backward_data(const float* grad_output, const PackedWeights&, float* grad_input) const;
  // Backward-weights plans: x [N, C, H, W] and dy [N, K, P, Q] -> dw [K, C/g, R, S] and, when
  // grad_bias is not null, db [K] (both overwritten). Sums over the batch and pixels run in an
  // order fixed by the problem: bitwise the same for any thread count and workspace limit.
  void execute_backward_weights(const float* input, const float* grad_output, float* grad_weight,
                                float* grad_bias /* may be null */) const;

 private:
  explicit Plan(std::shared_ptr<const detail::PlanImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const detail::PlanImpl> impl_;
};

// One-shot convolution. Reuses plans through a small, bounded, thread-safe cache keyed by problem and
// options; the weights are packed on every call (they may change between calls).
FASTCONV_API void conv2d(const ConvProblem&, const float* input, const float* weight, const float* bias,
            float* output, const PlanOptions& = {});
FASTCONV_API void clear_plan_cache();

// One row of the planner's ranking, like cuDNN's find.
struct Candidate {
  Algorithm algorithm;
  bool applicable;
  std::string reason;          // why it declined, or its implementation and blocking
  double time_ms;              // estimated or measured; 0 when not applicable
  bool measured;
  std::size_t workspace_bytes;
  std::string implementation;  // e.g. "winograd_f4x4_3x3"; empty when not applicable
};
// Every implementation, applicable ones first, fastest first.
FASTCONV_API std::vector<Candidate> find_algorithms(const ConvProblem&, const PlanOptions& = {});

// Wisdom: the choices Measure mode made, keyed by problem, threads, instruction set and library
// version, and the machine model calibrate() fitted. save writes them (and FFTW's wisdom); load
// merges a file written by save, refusing (Error) a corrupt, foreign (another CPU) or stale file
// without changing what is loaded. FASTCONV_WISDOM=path loads a file when the library is first used.
// forget_wisdom also returns the machine model to its defaults.
FASTCONV_API void save_wisdom(const std::string& path);
FASTCONV_API void load_wisdom(const std::string& path);
FASTCONV_API void forget_wisdom();
FASTCONV_API std::size_t wisdom_size();

// The machine model Estimate mode prices candidates with (design section 12), in one line: whether
// it is calibrated, its per-core rates and the CPU's caches.
FASTCONV_API std::string describe_machine_model();
// Fits the machine model to this machine: times every implementation that applies on a fixed set of
// layers for about `seconds` (at least one pass over them), fits one rate per kind of work by least
// squares and measures the memory bandwidth, with `threads` threads (0: all). The fitted rates are
// installed when they rank the timed layers at least as well as the defaults (else the defaults
// stay, with the measured bandwidth); save_wisdom keeps the model. Returns a report of what it did.
FASTCONV_API std::string calibrate(double seconds = 30, int threads = 0);

// The instruction set the kernels run with: "avx512", "avx2" or "sse2". FASTCONV_MAX_ISA caps it.
FASTCONV_API std::string instruction_set();

// Threads from the host, like oneDNN's threadpool interop. By default a plan of several threads runs
// its tasks on a oneTBB arena. A framework with its own pool (PyTorch's OpenMP team, say) installs a
// runner instead, so that the two pools do not fight over the cores: its idle workers then take
// fastconv's tasks. A runner calls body(context, task, slot) exactly once for every task in
// [0, tasks), with slot in [0, threads) and no two concurrent calls on one slot, and returns when all
// are done; it may run them in any order on any of its threads (results do not depend on it). body
// never throws. Set it before plans execute, not while they do; nullptr restores oneTBB.
using TaskBody = void (*)(void* context, int64_t task, int slot);
using TaskRunner = void (*)(int64_t tasks, int threads, TaskBody body, void* context);
FASTCONV_API void set_task_runner(TaskRunner runner);
FASTCONV_API TaskRunner task_runner();

}  // namespace fastconv

template <>
struct std::hash<fastconv::ConvProblem> {
  FASTCONV_API std::size_t operator()(const fastconv::ConvProblem&) const noexcept;
};
