// FFT convolution by overlap-save. Output tiles of oh x ow pixels are computed from input windows of
// th x tw pixels (th = oh + effective kernel height - 1): the cyclic correlation of a window with the
// kernel is the linear one on the tile, and its wrapped-around part falls outside it. Per batch of
// tiles (over images) three phases, each split over threads on independent items:
//   1. forward: each (input channel, tile) window through FFTW r2c, into the bin-blocked spectra;
//   2. products: each block of L bins, y[k][t] = sum_c w[k][c] x[c][t] for all k, c, t of a group;
//   3. inverse: each (output channel, tile) spectrum through FFTW c2r, cropped to the tile, + bias.
// The filter spectra (conjugated for correlation, scaled by 1/(th*tw)) are made once in pack_weights.
// No item is split across threads and every sum runs in one fixed order, so the bits do not depend on
// the thread count or the batch size.
#include "fft/fft_conv.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "core/phase_stats.hpp"
#include "fft/fft_kernels.hpp"
#include "fft/fftw_plans.hpp"

namespace fastconv::detail {
namespace {

// Transform lengths considered, with how fast FFTW runs them. FFTW's speed on a th x tw r2c + c2r pair
// factors well into a row term and a column term; these were fitted to timings of every pair of the
// lengths below on the development machine (FFTW 3.3.10, Zen 3), in GFLOP/s = base * row(th) * col(tw)
// at 2.5 n log2 n per transform: within 8% under FFTW_ESTIMATE, within 2% under FFTW_MEASURE. Under
// ESTIMATE some lengths get poor plans (30 and 40 as rows, 24 as columns): the choice avoids them.
// Shorter lengths serve small images; longer ones large kernels, at a flat rate.
struct LengthRate {
  int64_t n;
  double estimate_row, estimate_col, measure_row, measure_col;
};
constexpr LengthRate kMeasuredLengths[] = {
    {16, 0.87, 0.89, 1.08, 0.83},  {20, 1.22, 0.94, 1.06, 0.88},  {24, 0.85, 0.66, 0.78, 0.65},
    {28, 0.93, 0.74, 0.81, 0.66},  {30, 0.41, 0.73, 0.77, 0.74},  {32, 1.40, 0.92, 1.13, 0.85},
    {36, 0.95, 0.81, 0.85, 0.86},  {40, 0.59, 0.81, 0.94, 0.90},  {42, 0.93, 0.83, 0.79, 0.70},
    {48, 1.07, 0.80, 0.96, 0.92},  {50, 0.81, 0.82, 0.85, 0.86},  {54, 0.76, 1.00, 0.81, 0.98},
    {56, 1.04, 0.95, 0.94, 0.93},  {60, 0.70, 0.74, 0.98, 0.99},  {64, 1.50, 0.96, 1.17, 0.95},
    {70, 0.85, 0.98, 0.88, 0.92},  {72, 1.00, 1.22, 1.00, 1.17},  {80, 1.18, 1.23, 1.06, 1.17},
    {84, 1.12, 1.06, 0.99, 0.93},  {90, 0.81, 1.02, 0.92, 1.06},  {96, 0.89, 0.83, 1.10, 1.09},
    {100, 1.11, 1.17, 1.00, 1.12}, {108, 1.15, 0.91, 1.02, 1.16}, {112, 1.06, 1.12, 1.05, 1.12},
    {120, 1.09, 1.22, 1.10, 1.27}, {126, 1.00, 0.78, 0.89, 0.90}, {128, 1.47, 0.82, 1.14, 1.18},
    {140, 0.94, 1.03, 1.02, 1.04}, {144, 1.28, 1.36, 1.14, 1.32}, {160, 1.29, 1.35, 1.16, 1.29},
    {168, 1.02, 1.24, 1.02, 1.18}, {180, 1.07, 1.23, 1.11, 1.19}, {192, 1.29, 1.31, 1.19, 1.30},
    {200, 1.14, 1.32, 1.12, 1.26}, {210, 0.74, 1.14, 0.96, 1.01}, {224, 0.98, 1.14, 1.11, 1.26},
    {240, 1.31, 1.30, 1.24, 1.30}, {256, 1.28, 1.40, 1.21, 1.40},
};
constexpr int64_t kMaxLength = 4096;

// Ascending: the FFTW-friendly lengths (2^a 3^b 5^c 7^d) below 16, the measured ones, then the even
// friendly lengths above 256.
const std::vector<LengthRate>& candidate_lengths() {
  static const std::vector<LengthRate> lengths = [] {
    auto friendly = [](int64_t n) {
      for (int64_t p : {2, 3, 5, 7})
        while (n % p == 0) n /= p;
      return n == 1;
    };
    std::vector<LengthRate> v;
    for (int64_t n = 1; n < 16; ++n)
      if (friendly(n)) v.push_back({n, 0.8, 0.8, 0.8, 0.8});
    for (const LengthRate& r : kMeasuredLengths) v.push_back(r);
    for (int64_t n = 258; n <= kMaxLength; n += 2)
      if (friendly(n)) v.push_back({n, 1.2, 1.2, 1.2, 1.2});
    return v;
  }();
  return lengths;
}

// Per-thread transform buffers stay below 12 MiB; the tile choice keeps them far smaller (in L2)
// unless the kernel itself is that large.
constexpr int64_t kMaxArea = int64_t(1) << 20;
// The spectra of one batch of tiles live in the shared L3 (32 MiB here) between phases.
constexpr double kSpectraTarget = 8.0 * (1 << 20);
// Filter spectra are th*(tw/2+1)/(R*S) times the filters: beyond this the FFT declines.
constexpr double kMaxPackedBytes = double(1 << 30);

struct Tiling {
  int64_t th, tw;            // transform size
  int64_t oh, ow;            // outputs per tile
  int64_t tiles_h, tiles_w;  // tiles per image
  int64_t tiles;
  int64_t bins, nbb;         // th*(tw/2+1) complex bins, in nbb blocks of L
  int64_t zrows;             // spectra rows per group and bin block: max(Cg, Kg)
  int64_t batch, batches;    // (image, tile) pairs per batch
  // FFTW's speed on this transform size relative to its typical speed (the machine model's
  // fft_estimate_gflops or fft_measure_gflops): work() weights the transform flops with it, so that the planner's single FFT
  // rate ranks tile sizes as the measured per-length speeds do.
  double fft_speed = 1.0;
  double cached_bytes = 0;    // filter spectra above this (the machine model's) are read from memory per batch
  double resident_bytes = 0;  // filter spectra above this (half an L2) come from the L3 per batch
};

// Where the products phase reads the filter spectra from, once per batch: the bytes it waits for.
struct FilterReads {
  double dram_bytes = 0, cache_bytes = 0;
};
FilterReads filter_reads(double filter_bytes, const Tiling& t) {
  FilterReads r;
  const double per_call = double(t.batches) * filter_bytes;
  if (filter_bytes > t.cached_bytes)
    r.dram_bytes = per_call;
  else if (filter_bytes > t.resident_bytes)
    r.cache_bytes = per_call;
  return r;
}

// Byte offsets of the workspace: the batch's spectra, then one block per thread.
struct Layout {
  std::size_t z = 0;
  ThreadScratch threads;
  std::size_t real = 0, spectrum = 0, ytmp = 0;  // within a thread's block
  std::size_t total = 0;
};

Layout make_layout(const Geometry& g, const Tiling& t, int lanes, int threads) {
  Layout l;
  WorkspaceLayout shared;
  l.z = shared.add<float>(std::size_t(g.groups * t.nbb * t.zrows * t.batch * 2 * lanes));
  WorkspaceLayout thread;
  l.real = thread.add<float>(std::size_t(t.th * t.tw));
  l.spectrum = thread.add<float>(std::size_t(2 * t.bins));
  l.ytmp = thread.add<float>(std::size_t(g.Kg * t.batch * 2 * lanes));
  l.threads = ThreadScratch(thread.bytes(), shared.bytes());
  l.total = l.threads.total(threads);
  return l;
}

// Tiles of a th x tw transform, without the batch; false when the size cannot apply.
bool base_tiling(const Geometry& g, int64_t th, int64_t tw, int lanes, const MachineModel& m, Tiling& t) {
  t.cached_bytes = m.cached_bytes();
  // Filter spectra that take no more than half an L2 stay there between batches and calls (the
  // rest holds spectra and products). Not scaled by the threads, each multiplying its own bin
  // blocks: the tile sizes proposed, which name implementations, must not depend on the threads.
  t.resident_bytes = double(m.cache.l2) / 2;
  const int64_t re = g.dil_h * (g.R - 1) + 1, se = g.dil_w * (g.S - 1) + 1;
  if (th < re || tw < se || th * tw > kMaxArea) return false;
  t.th = th, t.tw = tw;
  t.oh = th - re + 1, t.ow = tw - se + 1;
  t.tiles_h = ceil_div(g.P, t.oh), t.tiles_w = ceil_div(g.Q, t.ow);
  t.tiles = t.tiles_h * t.tiles_w;
  t.bins = th * (tw / 2 + 1);
  t.nbb = ceil_div(t.bins, lanes);
  t.zrows = std::max(g.Cg, g.Kg);
  return true;
}

double filter_bytes(const Geometry& g, const Tiling& t, int lanes) {
  return double(g.groups) * double(t.nbb) * double(g.Kg) * double(g.Cg) * 2.0 * lanes * 4.0;
}

// The largest batch (of image-tile pairs) that fits the budget, up to the cache target; 0 when even
// one tile does not fit. Balanced: batches of equal size up to one.
int64_t choose_batch(const Geometry& g, Tiling& t, int lanes, const PlanContext& ctx) {
  const int64_t pairs = g.N * t.tiles;
  auto bytes_for = [&](int64_t batch) {
    Tiling b = t;
    b.batch = batch;
    return make_layout(g, b, lanes, ctx.threads).total;
  };
  if (bytes_for(1) > ctx.workspace_limit) return 0;
  const double per_tile = double(g.groups * t.nbb * t.zrows) * 2.0 * lanes * 4.0;
  const double per_tile_all = per_tile + double(ctx.threads) * double(g.Kg) * 2.0 * lanes * 4.0;
  const double spare = double(ctx.workspace_limit) - double(bytes_for(1));
  int64_t batch = std::min<double>(double(pairs), 1.0 + std::floor(spare / per_tile_all));
  batch = std::min<int64_t>(batch, std::max<int64_t>(1, int64_t(kSpectraTarget / per_tile)));
  while (batch > 1 && bytes_for(batch) > ctx.workspace_limit) --batch;  // alignment slack
  t.batches = ceil_div(pairs, batch);
  t.batch = ceil_div(pairs, t.batches);
  return t.batch;
}

// Relative seconds, for the choice of tile size only (the planner prices work() with its own rates).
// FFTW's speed on a th x tw transform relative to its typical speed in that mode.
double fft_speed(const Tiling& t, const LengthRate& rows, const LengthRate& cols, PlanMode mode) {
  double speed = mode == PlanMode::Measure ? rows.measure_row * cols.measure_col : rows.estimate_row * cols.estimate_col;
  if (double(t.th * t.tw) * 8.0 > double(1 << 20)) speed *= 0.8;  // transform buffers out of L2
  return speed;
}

double tiling_seconds(const Geometry& g, const Tiling& t, const LengthRate& rows, const LengthRate& cols, int lanes,
                      PlanMode mode, const MachineModel& m) {
  const double area = double(t.th * t.tw);
  const double fft_rate =
      (mode == PlanMode::Measure ? m.fft_measure_gflops : m.fft_estimate_gflops) * 1e9 * fft_speed(t, rows, cols, mode);
  const double transforms = double(g.N * t.tiles) * double(g.C + g.K);
  // Per transform: FFTW, plus moving the window in, the spectrum to blocks and the tile out.
  const double fft = transforms * (2.5 * area * std::log2(std::max(area, 2.0)) / fft_rate + area * 0.3e-9 + 0.2e-6);
  const double products = 8.0 * double(g.N * t.tiles) * double(g.groups * g.Kg * g.Cg) * double(t.nbb * lanes) / 50e9;
  const FilterReads reads = filter_reads(filter_bytes(g, t, lanes), t);
  return fft + products + m.waited_read_seconds(reads.dram_bytes, reads.cache_bytes);
}

std::string stride_text(const Geometry& g) {
  return g.stride_h == g.stride_w ? std::to_string(g.stride_h)
                                  : std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w);
}

std::string mib(double bytes) {
  std::ostringstream s;
  s.precision(3);
  s << bytes / double(1 << 20) << " MiB";
  return s.str();
}

class FftConv final : public ConvImpl {
 public:
  FftConv(const Geometry& g, const FftKernels& kernels, int threads, const Tiling& t)
      : g_(g), k_(kernels), t_(t), layout_(make_layout(g, t, kernels.lanes, threads)) {}

  Algorithm algorithm() const override { return Algorithm::FFT; }
  std::string name() const override {
    return "fft_tile" + std::to_string(t_.th) + "x" + std::to_string(t_.tw) + "__" + k_.isa;
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "overlap-save: " << t_.oh << "x" << t_.ow << " output tiles through " << t_.th << "x" << t_.tw
      << " FFTW r2c/c2r transforms (" << (plans_.ready() ? (mode_ == PlanMode::Measure ? "measured" : "estimated")
                                                           : "not yet planned")
      << "), " << t_.tiles_h << "x" << t_.tiles_w << " tiles per image, " << t_.batch << " tiles per batch x "
      << t_.batches << " batches; " << t_.bins << " bins in blocks of " << k_.lanes << ", products in "
      << k_.mr << "x" << k_.nr << " complex tiles (" << k_.isa << "); spectra " << mib(double(layout_.threads.offset()))
      << ", filter spectra " << mib(filter_bytes(g_, t_, k_.lanes));
    return s.str();
  }
  std::size_t workspace_bytes() const override { return layout_.total; }
  void prepare(PlanMode mode) override {
    plans_ = FftwPlans(t_.th, t_.tw, mode);
    mode_ = mode;
  }
  std::size_t packed_weights_floats() const override {
    return std::size_t(g_.groups * t_.nbb * g_.Kg * g_.Cg * 2 * k_.lanes + g_.K);
  }

  void pack_weights(const float* w, const float* bias, float* packed) const override {
    require_plans();
    const Geometry& g = g_;
    const int64_t L = k_.lanes;
    AlignedBuffer<float> real(std::size_t(t_.th * t_.tw)), spectrum(std::size_t(2 * t_.bins));
    const float scale = 1.0f / float(t_.th * t_.tw);  // the inverse transform is unnormalised
    for (int64_t k = 0; k < g.K; ++k) {
      const int64_t grp = k / g.Kg, kg = k % g.Kg;
      for (int64_t c = 0; c < g.Cg; ++c) {
        // The dilated kernel as a sparse th x tw image.
        real.zero();
        const float* wk = w + (k * g.Cg + c) * g.R * g.S;
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t s = 0; s < g.S; ++s) real[std::size_t(r * g.dil_h * t_.tw + s * g.dil_w)] = wk[r * g.S + s] * scale;
        plans_.forward(real.data(), spectrum.data());
        // Correlation, not convolution: the conjugate spectrum.
        for (int64_t b = 0; b < t_.bins; ++b) spectrum[std::size_t(2 * b + 1)] = -spectrum[std::size_t(2 * b + 1)];
        k_.split(spectrum.data(), t_.bins, packed + ((grp * t_.nbb * g.Kg + kg) * g.Cg + c) * 2 * L,
                 g.Kg * g.Cg * 2 * L);
      }
    }
    float* b = packed + g.groups * t_.nbb * g.Kg * g.Cg * 2 * L;
    for (int64_t k = 0; k < g.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }

  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    require_plans();
    const int64_t pairs = g_.N * t_.tiles;
    for (int64_t first = 0; first < pairs; first += t_.batch) {
      const int64_t count = std::min(t_.batch, pairs - first);
      forward_phase(x, first, count, workspace, pool);
      products_phase(packed, count, workspace, pool);
      inverse_phase(packed, first, count, y, residual, workspace, pool);
    }
  }

  WorkCounts work() const override {
    const Geometry& g = g_;
    const double area = double(t_.th * t_.tw), pairs = double(g.N * t_.tiles);
    WorkCounts w;
    // A real transform of n points costs about half a complex one: 2.5 n log2 n.
    w.fft_flops = pairs * double(g.C + g.K) * 2.5 * area * std::log2(std::max(area, 2.0)) / t_.fft_speed;
    w.complex_flops = 8.0 * pairs * double(g.groups * g.Kg * g.Cg) * double(t_.nbb * k_.lanes);
    // Floats moved around the transforms: windows in, spectra split into blocks and merged back, tiles
    // out. Contiguous copies, counted at a quarter as im2col counts its contiguous packing.
    const double moved = pairs * (double(g.C) * (area + 2.0 * double(t_.bins)) +
                                  double(g.K) * (2.0 * double(t_.bins) + double(t_.oh * t_.ow)));
    w.pack_elements = 0.25 * moved;
    const FilterReads reads = filter_reads(filter_bytes(g, t_, k_.lanes), t_);
    w.dram_bytes = 4.0 * double(g.N) * double(g.input_image() + g.output_image());
    w.waited_dram_bytes = reads.dram_bytes;
    w.waited_cache_bytes = reads.cache_bytes;
    w.parallel_tasks = double(std::min({g.C * t_.batch, g.K * t_.batch, g.groups * t_.nbb}));
    return w;
  }

  const Tiling& tiling() const { return t_; }

 private:
  void require_plans() const {
    if (!plans_.ready()) throw std::logic_error("fastconv: FFT convolution used before prepare()");
  }

  // Splits items [0, n) into a few contiguous ranges per thread (fewer than kBalancedTasksPerThread:
  // each range also pays for its FFTW plan's setup and a pass over its thread's buffers).
  static constexpr int64_t kRangesPerThread = 4;
  template <class F>
  static void for_ranges(const ThreadPool& pool, int64_t n, F&& f) {
    const int64_t tasks = balanced_tasks(n, pool.threads(), kRangesPerThread);
    pool.for_each(tasks, [&](int64_t task, int slot) { f(run_begin(n, tasks, task), run_begin(n, tasks, task + 1), slot); });
  }

  float* z(void* ws) const { return at_offset<float>(ws, layout_.z); }
  float* thread_buffer(void* ws, int slot, std::size_t offset) const {
    return at_offset<float>(layout_.threads.of<char>(ws, slot), offset);
  }
  // Image n and top-left output of pair `pair` (image-major).
  void tile_origin(int64_t pair, int64_t& n, int64_t& p0, int64_t& q0) const {
    n = pair / t_.tiles;
    const int64_t tile = pair % t_.tiles;
    p0 = tile / t_.tiles_w * t_.oh, q0 = tile % t_.tiles_w * t_.ow;
  }

  // The th x tw input window with top-left input pixel (h0, w0), zero outside the image.
  void load_window(const float* xc, int64_t h0, int64_t w0, float* real) const {
    const int64_t jb = std::clamp<int64_t>(-w0, 0, t_.tw), je = std::clamp<int64_t>(g_.W - w0, jb, t_.tw);
    for (int64_t i = 0; i < t_.th; ++i) {
      float* row = real + i * t_.tw;
      const int64_t h = h0 + i;
      if (h < 0 || h >= g_.H || je == jb) {
        std::memset(row, 0, sizeof(float) * std::size_t(t_.tw));
        continue;
      }
      std::memset(row, 0, sizeof(float) * std::size_t(jb));
      std::memcpy(row + jb, xc + h * g_.W + w0 + jb, sizeof(float) * std::size_t(je - jb));
      std::memset(row + je, 0, sizeof(float) * std::size_t(t_.tw - je));
    }
  }

  void forward_phase(const float* x, int64_t first, int64_t count, void* ws, const ThreadPool& pool) const {
    const Geometry& g = g_;
    const int64_t L = k_.lanes, ld = t_.batch * 2 * L;
    float* zs = z(ws);
    for_ranges(pool, g.C * count, [&](int64_t begin, int64_t end, int slot) {
      ScopedPhase phase(0, "forward_fft");
      float* real = thread_buffer(ws, slot, layout_.real);
      float* spectrum = thread_buffer(ws, slot, layout_.spectrum);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t c = i / count, t = i % count;
        int64_t n, p0, q0;
        tile_origin(first + t, n, p0, q0);
        load_window(x + (n * g.C + c) * g.H * g.W, p0 - g.pad_t, q0 - g.pad_l, real);
        plans_.forward(real, spectrum);
        const int64_t grp = c / g.Cg, cg = c % g.Cg;
        k_.split(spectrum, t_.bins, zs + (grp * t_.nbb * t_.zrows + cg) * ld + t * 2 * L, t_.zrows * ld);
      }
    });
  }

  void products_phase(const float* packed, int64_t count, void* ws, const ThreadPool& pool) const {
    const Geometry& g = g_;
    const int64_t L = k_.lanes, ld = t_.batch * 2 * L;
    float* zs = z(ws);
    for_ranges(pool, g.groups * t_.nbb, [&](int64_t begin, int64_t end, int slot) {
      ScopedPhase phase(1, "products");
      float* ytmp = thread_buffer(ws, slot, layout_.ytmp);
      for (int64_t i = begin; i < end; ++i) {  // i = group * nbb + bin block
        float* block = zs + i * t_.zrows * ld;
        k_.products(g.Kg, g.Cg, count, packed + i * g.Kg * g.Cg * 2 * L, block, ytmp, ld);
        // The outputs replace the inputs of this bin block, which no other item reads.
        for (int64_t k = 0; k < g.Kg; ++k)
          std::memcpy(block + k * ld, ytmp + k * ld, sizeof(float) * std::size_t(count * 2 * L));
      }
    });
  }

  void inverse_phase(const float* packed, int64_t first, int64_t count, float* y, const float* residual, void* ws,
                     const ThreadPool& pool) const {
    const Geometry& g = g_;
    const int64_t L = k_.lanes, ld = t_.batch * 2 * L;
    const float* bias = packed + g.groups * t_.nbb * g.Kg * g.Cg * 2 * L;
    const float* zs = z(ws);
    for_ranges(pool, g.K * count, [&](int64_t begin, int64_t end, int slot) {
      ScopedPhase phase(2, "inverse_fft");
      float* real = thread_buffer(ws, slot, layout_.real);
      float* spectrum = thread_buffer(ws, slot, layout_.spectrum);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t k = i / count, t = i % count;
        const int64_t grp = k / g.Kg, kg = k % g.Kg;
        k_.merge(zs + (grp * t_.nbb * t_.zrows + kg) * ld + t * 2 * L, t_.zrows * ld, t_.bins, spectrum);
        plans_.inverse(spectrum, real);
        int64_t n, p0, q0;
        tile_origin(first + t, n, p0, q0);
        const int64_t rows = std::min(t_.oh, g.P - p0), cols = std::min(t_.ow, g.Q - q0);
        const float b = bias[k];
        float* yk = y + ((n * g.K + k) * g.P + p0) * g.Q + q0;
        if (!epilogue_.active()) {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q) yk[r * g.Q + q] = real[r * t_.tw + q] + b;
        } else {
          // The bias in place, then the post-ops from the tile (in L1) to y: a residual that is y
          // is read before it is written.
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q) real[r * t_.tw + q] = real[r * t_.tw + q] + b;
          epilogue_.apply_from(real, t_.tw, yk, residual ? residual + (yk - y) : nullptr, g.Q, rows, cols);
        }
      }
    });
  }

  Geometry g_;
  const FftKernels& k_;
  Tiling t_;
  Layout layout_;
  FftwPlans plans_;
  PlanMode mode_ = PlanMode::Estimate;
};

struct Option {
  Tiling tiling;
  double seconds;           // by the rates of the plan's mode
  double estimate_seconds;  // by the FFTW_ESTIMATE rates
};

}  // namespace

std::unique_ptr<ConvImpl> make_fft_conv(const Geometry& g, const PlanContext& ctx, int64_t th, int64_t tw) {
  if (g.stride_h != 1 || g.stride_w != 1 || !g.reads_input()) return nullptr;
  const FftKernels& kernels = fft_kernels(ctx.isa);
  Tiling t;
  if (!base_tiling(g, th, tw, kernels.lanes, ctx.machine, t) || filter_bytes(g, t, kernels.lanes) > kMaxPackedBytes ||
      choose_batch(g, t, kernels.lanes, ctx) == 0)
    return nullptr;
  return std::make_unique<FftConv>(g, kernels, ctx.threads, t);
}

void propose_fft(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (g.stride_h != 1 || g.stride_w != 1) {
    out.decline("fft", "stride " + stride_text(g) + " (needs 1)");
    return;
  }
  // Every output is the bias: a transform would only add its rounding (relative to the input's
  // magnitude) where the exact answer has none.
  if (!g.reads_input()) {
    out.decline("fft", "every kernel tap reads padding (the dilated taps step over the input)");
    return;
  }
  const FftKernels& kernels = fft_kernels(ctx.isa);
  const int lanes = kernels.lanes;
  const int64_t re = g.dil_h * (g.R - 1) + 1, se = g.dil_w * (g.S - 1) + 1;
  const auto& lengths = candidate_lengths();
  // No transform longer than the shortest one that covers the whole padded image.
  auto covering = [&](int64_t need) {
    for (const LengthRate& l : lengths)
      if (l.n >= need) return l.n;
    return kMaxLength;
  };
  const int64_t h_max = covering(g.P + re - 1), w_max = covering(g.Q + se - 1);

  std::vector<Option> options;
  std::size_t min_workspace = SIZE_MAX;
  double min_filter_bytes = 1e300;
  bool any_size = false;
  for (const LengthRate& rows : lengths) {
    if (rows.n < re) continue;
    if (rows.n > h_max) break;
    for (const LengthRate& cols : lengths) {
      if (cols.n < se) continue;
      if (cols.n > w_max) break;
      Tiling t;
      if (!base_tiling(g, rows.n, cols.n, lanes, ctx.machine, t)) continue;
      any_size = true;
      const double fb = filter_bytes(g, t, lanes);
      min_filter_bytes = std::min(min_filter_bytes, fb);
      if (fb > kMaxPackedBytes) continue;
      if (choose_batch(g, t, lanes, ctx) == 0) {
        t.batch = 1;
        min_workspace = std::min(min_workspace, make_layout(g, t, lanes, ctx.threads).total);
        continue;
      }
      t.fft_speed = fft_speed(t, rows, cols, ctx.mode);
      options.push_back({t, tiling_seconds(g, t, rows, cols, lanes, ctx.mode, ctx.machine),
                         tiling_seconds(g, t, rows, cols, lanes, PlanMode::Estimate, ctx.machine)});
    }
  }
  if (options.empty()) {
    if (!any_size)
      out.decline("fft", "effective kernel " + std::to_string(re) + "x" + std::to_string(se) +
                             " needs transforms above " + std::to_string(kMaxArea) + " points");
    else if (min_workspace != SIZE_MAX)
      out.decline("fft", workspace_too_small(min_workspace, ctx.workspace_limit));
    else
      out.decline("fft", "filter spectra would take " + mib(min_filter_bytes) + " (over " + mib(kMaxPackedBytes) + ")");
    return;
  }
  // The three cheapest tile sizes by the model above, as distinct candidates: the planner ranks them.
  // Measure mode also times the three cheapest by the FFTW_ESTIMATE rates: the per-length model is
  // good to a few percent, and a size both tables like (powers of two) can win by more than that.
  auto cheapest = [&](auto seconds) {
    std::sort(options.begin(), options.end(), [&](const Option& a, const Option& b) {
      const double sa = seconds(a), sb = seconds(b);
      return sa < sb || (sa == sb && a.tiling.th * a.tiling.tw < b.tiling.th * b.tiling.tw);
    });
    std::vector<Tiling> v;
    for (std::size_t i = 0; i < std::min<std::size_t>(3, options.size()); ++i) v.push_back(options[i].tiling);
    return v;
  };
  std::vector<Tiling> chosen = cheapest([](const Option& o) { return o.seconds; });
  if (ctx.mode == PlanMode::Measure)
    for (const Tiling& t : cheapest([](const Option& o) { return o.estimate_seconds; }))
      if (std::none_of(chosen.begin(), chosen.end(), [&](const Tiling& c) { return c.th == t.th && c.tw == t.tw; }))
        chosen.push_back(t);
  for (const Tiling& t : chosen) out.add(std::make_unique<FftConv>(g, kernels, ctx.threads, t));
}

}  // namespace fastconv::detail
