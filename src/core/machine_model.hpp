// The machine model (design section 12): what the planner knows about the machine it plans for. The
// rates at which each kind of work runs, the caches, and the constants the algorithms' own blocking
// and tile choices price with all live here, one model per instruction set, and reach the solvers
// through the plan context. Defaults are measured per instruction set; `fastconv calibrate` fits
// the rates on this machine and the wisdom file carries them (refused on another CPU).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/cpu.hpp"

namespace fastconv::detail {

// Data cache sizes in bytes: L1d and L2 per core, L3 as reported (shared by its cores).
struct CacheSizes {
  std::size_t l1d = 0, l2 = 0, l3 = 0;
};
// This CPU's caches, read once from sysfs (sysconf as a fallback); a level it cannot read gets the
// development machine's (Zen 3: 32 KiB, 512 KiB, 32 MiB).
const CacheSizes& cpu_cache_sizes();
// Parses the sysfs size format ("48K", "2048K", "32M"); 0 when it is not one.
std::size_t parse_cache_size(const std::string& text);

// Rates on one core of the work implementations count (WorkCounts), in GFLOP/s, G elements/s and
// GB/s. Effective rates of those counts, not peaks.
struct WorkRates {
  double gemm, pack, direct, depthwise, scalar, transform, fft, complex, dram;
};
constexpr int kWorkRateCount = 9;
const char* work_rate_name(int i);  // "gemm", "pack", ... in WorkRates order
double& work_rate(WorkRates& r, int i);
double work_rate(const WorkRates& r, int i);

struct MachineModel {
  Isa isa = Isa::Sse2;
  WorkRates rates{};
  double parallel_efficiency = 0.92;      // two cores against one on large layers
  double fixed_overhead_seconds = 30e-6;  // per execute: thread wake-up, first touches
  double gemm_short_k_steps = 24;         // the microkernel's loss on a short k loop, in k steps (per ISA)
  // FFTW's typical speed on this machine (GFLOP/s at 2.5 n log2 n per real transform) under
  // ESTIMATE and MEASURE plans; the shape of its speed over lengths stays with the FFT solver.
  double fft_estimate_gflops = 10.8, fft_measure_gflops = 15.5;
  // Direct tiles, in cycles (only their ratios steer the blocking): FMAs and loads issued per
  // cycle, the FMA latency an accumulator waits, loop overhead per tap, a tile call's fixed cost.
  double fmas_per_cycle = 2, loads_per_cycle = 2, fma_latency = 4.5, tap_overhead = 1, tile_call = 60;
  // Winograd: time per transform flop over time per product flop.
  double winograd_transform_cost_ratio = 8;
  // Read rate from the last-level cache (all threads) over the memory rate (rates.dram): 1.5 on the
  // AVX-512 Xeon (47 against 30 GB/s on 2 threads), more on Zen; the lower bound errs towards less
  // data read.
  double cache_over_dram_bandwidth = 1.5;
  // Vector permutes issue on one of the two FMA ports (Intel's port 5), so a kernel that permutes
  // per FMA halves its FMA rate; AMD's cores shuffle on pipes of their own. From CPUID's vendor.
  bool permutes_share_fma_port = false;
  CacheSizes cache;
  bool calibrated = false;
  std::string calibration;  // what `fastconv calibrate` measured, in words (empty: defaults)

  // Bytes that stay in the last-level cache between two uses: half of it, and no more than the
  // 16 MiB measured to hold on the development machine (a virtual machine's share of a large
  // shared L3 is not what the CPU reports).
  double cached_bytes() const;
  // A Winograd tile group's V and M: half the L2 (the rest holds the block of U being multiplied,
  // the input rows and the output being written), at most 256 KiB.
  double winograd_group_bytes() const;
  // Seconds to read bytes a phase waits for: from memory at the dram rate, from the last-level cache
  // at cache_over_dram_bandwidth times it.
  double waited_read_seconds(double dram_bytes, double cache_bytes) const {
    return (dram_bytes + cache_bytes / cache_over_dram_bandwidth) / (rates.dram * 1e9);
  }
  std::string describe() const;  // one line: calibrated or defaults, rates, caches
};

// The per-instruction-set defaults, with this CPU's caches.
MachineModel default_machine_model(Isa isa);
// The model plans use: the calibrated one for `isa` when calibrate or a wisdom file set it, else
// the defaults. A copy: a calibration arriving meanwhile does not change a plan being made.
MachineModel machine_model(Isa isa);
// Installs a calibrated model (its isa names the slot); forget_machine_models() returns to the
// defaults. Thread-safe.
void set_machine_model(const MachineModel& model);
void forget_machine_models();
// The wisdom file's record of a calibrated model, and its parser (Error on anything malformed).
std::string machine_model_record(const MachineModel& model);
MachineModel parse_machine_model_record(const std::string& line);
// The calibrated models installed now (for save_wisdom).
std::vector<MachineModel> calibrated_machine_models();

}  // namespace fastconv::detail
