// The fused epilogue kernel family: y = act(y + scale * r) on a row of floats, written once over xsimd
// (epilogue_impl.hpp) and compiled per instruction set (epilogue__<isa>.cpp). Every algorithm calls
// it on the outputs it has just written (still in L1), never as a separate pass over y; the GEMM
// microkernel, the pixel-major transposes and the Winograd output transforms apply the clamp
// activations (activation_clamp) in their own registers instead, with the same bits.
#pragma once

#include <cstdint>

#include "core/cpu.hpp"
#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

struct EpilogueParams {
  Activation activation = Activation::None;
  float alpha = 0, beta = 0;  // leaky slope; clamp lo, hi
  float residual_scale = 1;
};

// y[i][j] = act(s[i][j] + scale * r[i][j]) for i < rows, j < cols, rows lds, ldy and ldr floats apart
// (r may be null: y = act(s); s and r may equal y: each vector is loaded before it is stored). The sum is one fused multiply-add, fma(scale, r, y),
// on every instruction set. Each element goes through the same vector operations wherever it lies
// (a row's tail runs through a vector on the stack), so the result does not depend on how a caller
// splits its outputs into tiles.
using EpilogueRowFn = void (*)(const EpilogueParams&, const float* s, int64_t lds, float* y, int64_t ldy,
                               const float* r, int64_t ldr, int64_t rows, int64_t cols);

EpilogueRowFn epilogue_row_kernel(Isa isa);
EpilogueRowFn epilogue_row_kernel_sse2();
EpilogueRowFn epilogue_row_kernel_avx2();
EpilogueRowFn epilogue_row_kernel_avx512();

// A plan's epilogue: its parameters and the kernel of its instruction set (resolved once per plan).
// Algorithms hold one; `residual` says whether execute passes a residual.
struct Epilogue {
  EpilogueParams params;
  bool residual = false;
  EpilogueRowFn row = nullptr;

  // The members below are defined out of line (epilogue.cpp): per-ISA kernel units call them, and an
  // inline body they failed to inline would be a weak copy compiled with that unit's flags, which the
  // linker may keep for generic code too (tests/check_isa_symbols.sh found apply_from in the AVX-512
  // Winograd unit of an -O1 build).
  bool active() const { return residual || params.activation != Activation::None; }
  // Applies to y[0, n) with the residual at r (ignored when the epilogue has none).
  void apply(float* y, const float* r, int64_t n) const;
  // rows x cols at y (leading dimension ld), the residual at r with the same leading dimension.
  void apply_2d(float* y, const float* r, int64_t ld, int64_t rows, int64_t cols) const;
  // Without the residual (it was added earlier, e.g. seeded into an accumulation).
  void activate_2d(float* y, int64_t ld, int64_t rows, int64_t cols) const;
  // From a staging buffer s (leading dimension lds) to y (ldy), the residual beside y (same ldy):
  // for outputs computed off to the side, so that a residual that is y is read before it is written.
  void apply_from(const float* s, int64_t lds, float* y, const float* r, int64_t ldy, int64_t rows, int64_t cols) const;
};

// The activations that are a clamp to [lo, hi]: none (-inf, +inf), relu (0, +inf), relu6 (0, 6), so
// that kernels may apply them in registers (clamp_lanes, core/clamp_impl.hpp: the epilogue's bits).
// False for the others.
bool activation_clamp(const EpilogueParams& p, float& lo, float& hi);

// Validates the post-ops (throws Error naming the field) and resolves the kernel.
Epilogue make_epilogue(const PostOps&, Isa isa);

// The activation in double, as the reference applies it.
double activate_reference(const EpilogueParams&, double v);

}  // namespace fastconv::detail
