// The small interface between the planner and each algorithm (FFTW: solver -> plan -> apply;
// oneDNN: primitive descriptor init -> execute). A Solver looks at a problem and either proposes
// configured implementations (ConvImpl: blocking fixed, workspace known) or declines, in words.
// Only src/planner/solvers.cpp knows the list of solvers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu.hpp"
#include "core/epilogue.hpp"
#include "core/geometry.hpp"
#include "core/machine_model.hpp"
#include "core/parallel.hpp"
#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

// What a solver may look at besides the problem.
struct PlanContext {
  Isa isa = Isa::Sse2;
  int threads = 1;
  std::size_t workspace_limit = PlanOptions::kDefaultWorkspaceLimit;
  PlanMode mode = PlanMode::Estimate;
  Direction direction = Direction::Forward;
  Epilogue epilogue;  // the fused post-ops every implementation gets (ConvImpl::set_epilogue)
  bool weights_change = false;  // PlanOptions::weights_change: each execute packs the weights first
  MachineModel machine = default_machine_model(Isa::Sse2);  // this machine's rates and caches for `isa`
};

// The work of one execute by kind, in units the cost model (src/planner/cost_model.cpp) prices with
// the machine model's rates (src/core/machine_model.hpp). An implementation counts; only the planner
// knows the rates.
struct WorkCounts {
  double gemm_flops = 0;       // through the packed SGEMM microkernel (im2col, Winograd products)
  double gemm_m = 0;           // typical GEMM shape, for the kernel's efficiency on thin operands
  double gemm_n = 0;
  double gemm_k = 0;
  double pack_elements = 0;    // floats gathered into packed GEMM panels (im2col lowering)
  double direct_flops = 0;     // SIMD direct convolution, dense
  double depthwise_flops = 0;  // SIMD direct convolution, one channel per group
  double scalar_flops = 0;     // plain loops
  double transform_flops = 0;  // Winograd input and output transforms
  double fft_flops = 0;        // FFTW transforms (5 N log2 N per complex transform)
  double complex_flops = 0;    // frequency-domain channel products
  double dram_bytes = 0;       // bytes that stream through memory (not cache resident)
  // Bytes a phase waits for, in series with its compute (FFT's products over filter spectra read
  // once per batch): from memory, and from the last-level cache (past the L2s).
  double waited_dram_bytes = 0, waited_cache_bytes = 0;
  double parallel_tasks = 0;   // independent tasks available to threads
};

class ConvImpl {
 public:
  virtual ~ConvImpl() = default;
  virtual Algorithm algorithm() const = 0;
  // Stable, unique among all implementations: the wisdom key and the verbose and bench label,
  // e.g. "winograd_f2x2_3x3__avx2".
  virtual std::string name() const = 0;
  // Its blocking and memory, in words, for Plan::describe.
  virtual std::string describe() const = 0;
  // Scratch one execute needs, all threads included. Exact: execute uses no more.
  virtual std::size_t workspace_bytes() const = 0;
  // Slow one-time set-up (FFTW planning), done only for the chosen or measured implementation,
  // before the first pack_weights or execute. Called once, before the object is shared.
  virtual void prepare(PlanMode) {}
  virtual std::size_t packed_weights_floats() const = 0;
  // Writes packed_weights_floats() floats; bias may be null.
  virtual void pack_weights(const float* weight, const float* bias, float* packed) const = 0;
  // input [N,C,H,W] -> output [N,K,P,Q]. `workspace` is 64-byte aligned, workspace_bytes() long.
  // The epilogue (set_epilogue) is applied where the output is written; `residual` (output-shaped,
  // null unless the epilogue has one) may be `output` itself: each implementation reads a residual
  // value before it overwrites that output.
  virtual void execute(const float* input, const float* packed, float* output, void* workspace,
                       const ThreadPool& pool, const float* residual = nullptr) const = 0;
  virtual WorkCounts work() const = 0;

  // Backward implementations (src/backward) say so. A backward-data implementation runs through
  // execute above with input = dy [N,K,P,Q] and output = dx [N,C,H,W]; a backward-weights one
  // packs no weights and runs through execute_backward_weights.
  virtual Direction direction() const { return Direction::Forward; }
  virtual void execute_backward_weights(const float* /*input*/, const float* /*grad_output*/,
                                        float* /*grad_weight*/, float* /*grad_bias*/, void* /*workspace*/,
                                        const ThreadPool& /*pool*/) const {
    throw Error(name() + ": not a backward-weights implementation");
  }
  // The fused post-ops, set by the planner before the object is shared (none by default).
  virtual void set_epilogue(const Epilogue& e) { epilogue_ = e; }
  const Epilogue& epilogue() const { return epilogue_; }

 protected:
  Epilogue epilogue_;
};

// What a solver answers: implementations (fastest variant first is not required), or reasons.
class Proposals {
 public:
  void add(std::unique_ptr<ConvImpl> impl) { impls_.push_back(std::move(impl)); }
  void decline(std::string name, std::string reason) {
    declined_.push_back({std::move(name), std::move(reason)});
  }
  struct Declined {
    std::string name, reason;
  };
  std::vector<std::unique_ptr<ConvImpl>>& impls() { return impls_; }
  const std::vector<Declined>& declined() const { return declined_; }

 private:
  std::vector<std::unique_ptr<ConvImpl>> impls_;
  std::vector<Declined> declined_;
};

struct Solver {
  Algorithm algorithm;
  const char* name;
  // Proposes every variant that applies to the problem and fits ctx.workspace_limit (re-blocked
  // to fit where it can), and declines the rest with a reason.
  void (*propose)(const Geometry&, const PlanContext&, Proposals&);
  Direction direction = Direction::Forward;  // the direction its implementations compute
};

// The sum of two counts of work (shapes: the larger operand's; tasks: the larger).
WorkCounts& operator+=(WorkCounts& a, const WorkCounts& b);
WorkCounts operator*(WorkCounts a, double times);

// The workspace message every solver uses when even its smallest blocking does not fit.
std::string workspace_too_small(std::size_t needed, std::size_t limit);

}  // namespace fastconv::detail
