// Algorithm::Direct. Each task copies the input rows it reads into a small buffer, zero padding
// written out and each row split by column phase (column mod stride_w), so that every tap of any
// stride, dilation and padding is a plain vector load; then register tiles sweep the buffer.
//  - direct_general: MK output channels x NR rows x NV vectors per tile, taps listed in a table
//    built at plan time (channel, kernel row, kernel column order). Covers every problem.
//  - direct_depthwise_RxS: one input channel per group and fewer than 4 outputs per group, R = 3, 5
//    or 7, vertical stride 1 or 2: a stencil over a strip of rows, each input vector feeding every
//    output row it reaches.
//  - direct_depthwise_channels: one output per input channel, output rows of at most half a vector:
//    L channels transposed so that each pixel's channels form one vector (no row buffer: its own
//    padded block on the stack).
// Tasks split images, groups (channels), row blocks and output-channel blocks; each output is one
// chain of FMAs in a fixed tap order, so the bits do not depend on the blocking or the threads.
#include "direct/direct_conv.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "core/prefetch.hpp"
#include "direct/direct_kernels.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {
namespace {

// The row buffer of a task: up to 64 KiB per thread from the workspace (room for a few rows of
// all channels of a stem layer), or, when the workspace limit does not allow that or the layer
// needs little, 16 KiB on the task's stack, so that Direct applies under any workspace limit.
constexpr int64_t kWorkspaceBufferFloats = 16384;
constexpr int64_t kStackBufferFloats = 4096;
// Outputs of one tile call that a residual seeds: a third of a 48 KiB L1.
constexpr int64_t kPostOpsTileBytes = 16 << 10;

// Where a task's row buffer comes from: `floats` per thread, from the workspace (kThreadScratchGap
// apart: each is rewritten for every unit of work) or the stack.
struct BufferPlan {
  int64_t cap;     // what the blocking may use
  bool workspace;  // per-thread slices of the workspace (else the stack)
  int64_t floats;  // what the blocking uses
  ThreadScratch scratch() const {
    return ThreadScratch(workspace ? std::size_t(floats) * sizeof(float) : 0, 0, kThreadScratchGap);
  }
  // The buffer of the thread in `slot`; `stack` is the task's own array of kStackBufferFloats.
  float* get(void* ws, int slot, float* stack) const { return workspace ? scratch().of<float>(ws, slot) : stack; }
};

BufferPlan buffer_capacity(const PlanContext& ctx) {
  const bool ws =
      ThreadScratch(std::size_t(kWorkspaceBufferFloats) * sizeof(float), 0, kThreadScratchGap).total(ctx.threads) <=
      ctx.workspace_limit;
  return {ws ? kWorkspaceBufferFloats : kStackBufferFloats, ws, 0};
}

// Once the blocking is known: a layer that needs no more than the stack buffer uses it.
void settle_buffer(BufferPlan& b, int64_t floats) {
  b.floats = floats;
  if (floats <= kStackBufferFloats) b.workspace = false;
}

int log2_of(int v) {
  int l = 0;
  while ((1 << l) < v) ++l;
  return l;
}

// Where a run of taps finds its input in the buffer: rows_per_c rows per channel, row_stride floats
// per row, the row made of one segment of wph floats per column phase the taps read.
struct RowLayout {
  int64_t rows_per_c = 0, wph = 0, row_stride = 0;
  std::vector<int32_t> phases;  // column phase of each segment
  std::vector<int32_t> soff;    // offset in a row of tap s0 + i
  int64_t floats_per_c() const { return rows_per_c * row_stride; }
};

// The sizes of the layout for mp output rows, nr kernel rows and ns kernel columns, nvc vectors wide,
// in wide arithmetic (sizes come from users): rows per channel, floats per column-phase segment
// (whole vectors), and how many column phases i * dil_w % stride_w the taps read (they repeat with
// period stride_w / gcd(dil_w, stride_w)). The blocking search asks this for every row block,
// without building the layout.
struct LayoutSize {
  __int128 rows, wph, phases;
  __int128 floats_per_c() const { return rows * phases * wph; }
};
LayoutSize layout_size(const Geometry& g, int64_t mp, int64_t nr, int64_t ns, int64_t nvc, int lanes) {
  LayoutSize z;
  z.rows = __int128(mp - 1) * g.stride_h + __int128(nr - 1) * g.dil_h + 1;
  z.wph = (__int128(nvc) * lanes + __int128(ns - 1) * g.dil_w / g.stride_w + lanes - 1) / lanes * lanes;
  z.phases = std::min<__int128>(ns, g.stride_w / std::gcd(g.dil_w, g.stride_w));
  return z;
}

// The layout itself (its sizes fit int64_t: the blocking search checked them with fits()).
RowLayout row_layout(const Geometry& g, int64_t mp, int64_t nr, int64_t ns, int64_t nvc, int lanes) {
  const LayoutSize z = layout_size(g, mp, nr, ns, nvc, lanes);
  RowLayout l;
  l.rows_per_c = int64_t(z.rows);
  l.wph = int64_t(z.wph);
  for (int64_t i = 0; i < ns; ++i) {
    const int32_t ph = int32_t(i * g.dil_w % g.stride_w);
    if (std::find(l.phases.begin(), l.phases.end(), ph) == l.phases.end()) l.phases.push_back(ph);
  }
  std::sort(l.phases.begin(), l.phases.end());
  l.row_stride = int64_t(l.phases.size()) * l.wph;
  for (int64_t i = 0; i < ns; ++i) {
    const int64_t d = i * g.dil_w;
    const int64_t seg = std::find(l.phases.begin(), l.phases.end(), int32_t(d % g.stride_w)) - l.phases.begin();
    l.soff.push_back(int32_t(seg * l.wph + d / g.stride_w));
  }
  return l;
}

int64_t layout_floats_per_c(const Geometry& g, int64_t mp, int64_t nr, int64_t ns, int64_t nvc, int lanes) {
  return int64_t(layout_size(g, mp, nr, ns, nvc, lanes).floats_per_c());
}

// Would a layout for `channels` channels fit a buffer of cap floats?
bool fits(const Geometry& g, int64_t cap, int64_t channels, int64_t mp, int64_t nr, int64_t ns, int64_t nvc, int lanes) {
  return __int128(channels) * layout_size(g, mp, nr, ns, nvc, lanes).floats_per_c() <= cap;
}

// ---------------------------------------------------------------------------------------------
// General kernel.

// A run of taps, contiguous in (channel, kernel row, kernel column) order: whole channels when
// they fit the buffer, else kernel rows of one channel, else kernel columns of one row.
struct TapBlock {
  int64_t c0, nc, r0, nr, s0, ns;
  int64_t rows_per_c, wph, row_stride;
  int64_t phase_begin, nphases;
  int64_t tap_begin, ntaps;
};

struct GeneralBlocking {
  int mk;                  // output channels per k-block (the last one may be narrower)
  int nv;                  // vectors per tile, taken in row-major order over the row block
  int64_t mp;              // output rows per row block, at most (sizes differ by at most one)
  int64_t nvc;             // vectors per width chunk
  int64_t chunks;          // width chunks
  int64_t row_blocks;
  int64_t kblocks, kb_per_task, ksplits;
  std::vector<TapBlock> blocks;
  std::vector<int32_t> taps, phases;
};

class DirectGeneral final : public ConvImpl {
 public:
  DirectGeneral(const Geometry& g, const DirectKernels& kern, int threads, GeneralBlocking b, BufferPlan buf)
      : g_(g), kern_(kern), threads_(threads), b_(std::move(b)), buf_(buf), T_(g.Cg * g.R * g.S) {}

  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return std::string("direct_general__") + isa_name(kern_.isa); }
  std::string describe() const override {
    std::ostringstream s;
    s << "SIMD direct, tile " << b_.mk << " channels x " << b_.nv << " vectors of "
      << kern_.lanes << ", " << b_.mp << " output rows x " << b_.nvc * kern_.lanes << " columns per packed block, "
      << b_.blocks.size() << " tap block(s) of up to " << b_.blocks.front().ntaps << " taps, "
      << grid().tasks() << " tasks, " << buf_.floats * 4 / 1024 << " KiB row buffer per thread on the "
      << (buf_.workspace ? "workspace" : "stack");
    return s.str();
  }
  std::size_t workspace_bytes() const override { return buf_.scratch().total(threads_); }
  std::size_t packed_weights_floats() const override {
    // K rounded up to the tile can overflow where K*C*R*S did not: checked (group_floats() is at most this).
    const int64_t per_group = checked_mul(round_up(g_.Kg, b_.mk), T_, "direct packed weights");
    return std::size_t(checked_add(checked_mul(g_.groups, per_group, "direct packed weights"), g_.K, "direct packed weights"));
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    for (int64_t grp = 0; grp < g_.groups; ++grp) {
      float* dst = packed + grp * group_floats();
      for (int64_t kb = 0; kb < b_.kblocks; ++kb) {
        const int64_t k0 = kb * b_.mk, mkb = block_width(kb), mkv = std::min<int64_t>(b_.mk, g_.Kg - k0);
        float* d = dst + kb * b_.mk * T_;
        for (int64_t t = 0; t < T_; ++t)
          for (int64_t i = 0; i < mkb; ++i) d[t * mkb + i] = i < mkv ? w[(grp * g_.Kg + k0 + i) * T_ + t] : 0.0f;
      }
    }
    float* b = packed + g_.groups * group_floats();
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    pool.for_each(grid().tasks(), [&](int64_t task, int slot) { run_task(task, x, packed, y, residual, workspace, slot); });
  }
  WorkCounts work() const override {
    WorkCounts w;
    // Per output row, vectors rounded up: whole chunks, then the last one's vectors.
    const int64_t chunk_lanes = b_.nvc * kern_.lanes, whole = b_.chunks - 1;
    const int64_t lanes_computed = whole * chunk_lanes + round_up(g_.Q - whole * chunk_lanes, kern_.lanes);
    // Whole k-blocks at once (a layer may have billions), then the narrower last one.
    const int64_t whole_kblocks = std::min(b_.kblocks, g_.Kg / b_.mk);
    int64_t channels_computed = whole_kblocks * b_.mk;
    for (int64_t kb = whole_kblocks; kb < b_.kblocks; ++kb) channels_computed += block_width(kb);
    w.direct_flops = 2.0 * double(g_.N * g_.groups) * double(channels_computed) * double(g_.P) *
                     double(lanes_computed) * double(T_);
    // Every task packs its rows of every tap block, per width chunk: as much as the products on a
    // 1x1 layer of few output channels (192->32 on 28x28: 0.062 ms measured, 0.037 for its FMAs).
    double packed_per_task = 0;
    for (const TapBlock& t : b_.blocks) packed_per_task += double(t.nc * t.rows_per_c * t.row_stride);
    w.pack_elements = double(grid().tasks()) * double(b_.chunks) * packed_per_task;
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(g_.K * T_));
    w.parallel_tasks = double(grid().tasks());
    return w;
  }

 private:
  // Tasks: (image and group, row block, split of the output channels).
  TaskGrid<3> grid() const { return task_grid(g_.N * g_.groups, b_.row_blocks, b_.ksplits); }
  // f(first output, columns, first channel) for every run of side-by-side vectors a tile call
  // writes, per k-block: its t.mk channels are t.out_k_stride apart.
  template <class F>
  static void for_tile_runs(const DirectTile& t, int64_t mkb, int64_t nt, int L, F&& f) {
    for (int64_t kb = 0; kb < t.nk; ++kb)
      for (int64_t v0 = 0, v1; v0 < nt; v0 = v1) {
        int64_t cols = 0;
        for (v1 = v0; v1 < nt && t.out[v1] == t.out[v0] + cols; ++v1)
          cols += (t.partial_mask >> v1) & 1u ? t.lanes_partial : L;
        f(t.out[v0] + kb * mkb * t.out_k_stride, cols, kb * mkb);
      }
  }
  // Packed width of k-block kb: MK, or for the last block the narrowest tile that holds the rest.
  int64_t block_width(int64_t kb) const {
    const int64_t rest = g_.Kg - kb * b_.mk;
    return rest >= b_.mk ? b_.mk : int64_t(1) << log2_of(int(rest));
  }
  int64_t group_floats() const {
    int64_t f = 0;
    for (int64_t kb = 0; kb < b_.kblocks; ++kb) f += block_width(kb) * T_;
    return f;
  }

  void run_task(int64_t task, const float* x, const float* packed, float* y, const float* residual, void* workspace,
                int slot) const {
    const Geometry& g = g_;
    const int L = kern_.lanes;
    alignas(64) float stack[kStackBufferFloats];
    float* const buf = buf_.get(workspace, slot, stack);
    // Post-ops on each tile after its last tap block, while it is in L1. A residual that is y itself
    // seeds the tile instead (y = scale * y + bias before the first block, which then accumulates).
    const Epilogue& e = epilogue_;
    const bool seed = residual && residual == y;
    const float seed_scale = e.params.residual_scale;
    const auto [ng, rb, ks] = grid()(task);
    const int64_t n = ng / g.groups, grp = ng % g.groups;
    const Range rows = run_of(g.P, b_.row_blocks, rb);
    const int64_t p0 = rows.begin, mpv = rows.size();
    const int64_t kb_begin = ks * b_.kb_per_task, kb_end = std::min(b_.kblocks, kb_begin + b_.kb_per_task);
    const float* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
    const float* wg = packed + grp * group_floats();
    const float* bias = packed + g.groups * group_floats() + grp * g.Kg;
    float* yg = y + (n * g.K + grp * g.Kg) * g.P * g.Q;
    for (int64_t ch = 0; ch < b_.chunks; ++ch) {
      const int64_t q0 = ch * b_.nvc * L, qc = std::min(b_.nvc * L, g.Q - q0);
      const int64_t nvq = ceil_div(qc, L);
      const int lanes_last = int(qc - (nvq - 1) * L);
      // The row block's vectors in row-major order, split into even tiles of at most NV.
      const int64_t nvec = mpv * nvq, ntiles = ceil_div(nvec, b_.nv);
      for (std::size_t bi = 0; bi < b_.blocks.size(); ++bi) {
        const TapBlock& blk = b_.blocks[bi];
        RowPack pk;
        pk.H = g.H, pk.W = g.W;
        pk.iy0 = p0 * g.stride_h - g.pad_t + blk.r0 * g.dil_h;
        pk.rows = (mpv - 1) * g.stride_h + (blk.nr - 1) * g.dil_h + 1;
        pk.ix0 = q0 * g.stride_w + blk.s0 * g.dil_w - g.pad_l;
        pk.sw = g.stride_w;
        pk.phase = b_.phases.data() + blk.phase_begin;
        pk.phases = blk.nphases, pk.wph = blk.wph, pk.row_stride = blk.row_stride;
        for (int64_t c = 0; c < blk.nc; ++c) {
          pk.x = xg + (blk.c0 + c) * g.H * g.W;
          pk.dst = buf + c * blk.rows_per_c * blk.row_stride;
          kern_.pack(pk);
        }
        // Per tile one call for the task's full-width k-blocks (and one for a narrower last one).
        const int64_t kb_full_end = std::min(kb_end, g.Kg / b_.mk);
        const float* in[kMaxNv];
        float* out[kMaxNv];
        float* out0[kMaxNv];
        DirectTile t;
        t.in = in;
        t.out = out;
        t.taps = b_.taps.data() + blk.tap_begin;
        t.ntaps = blk.ntaps;
        t.w_step = b_.mk * T_;
        t.out_k_stride = g.P * g.Q;
        t.lanes_partial = lanes_last;
        int64_t row = 0, col = 0;  // of the tile's first vector
        for (int64_t ti = 0; ti < ntiles; ++ti) {
          const int64_t nt = run_begin(nvec, ntiles, ti + 1) - run_begin(nvec, ntiles, ti);
          t.partial_mask = 0;
          for (int64_t v = 0; v < nt; ++v) {
            in[v] = buf + row * g.stride_h * blk.row_stride + col * L;
            out0[v] = yg + (p0 + row) * g.Q + q0 + col * L;
            if (col == nvq - 1) {
              if (lanes_last < L) t.partial_mask |= 1u << v;
              col = 0, ++row;
            } else {
              ++col;
            }
          }
          for (int64_t kb = kb_begin; kb < kb_end;) {
            const int64_t k0 = kb * b_.mk, mkb = block_width(kb);
            t.nk = kb < kb_full_end ? kb_full_end - kb : 1;
            // When the residual seeds the tile, fewer k-blocks per call: the outputs seeded must
            // still be in L1 when the kernel reads them.
            if (bi == 0 && seed)
              t.nk = std::min<int64_t>(t.nk, std::max<int64_t>(1, kPostOpsTileBytes / (mkb * nt * L * 8)));
            t.w = wg + kb * b_.mk * T_ + blk.tap_begin * mkb;
            t.mk = int(std::min<int64_t>(b_.mk, g.Kg - k0));
            t.bias = bi == 0 ? bias + k0 : nullptr;
            for (int64_t v = 0; v < nt; ++v) out[v] = out0[v] + k0 * g.P * g.Q;
            if (bi == 0 && seed) {
              for_tile_runs(t, mkb, nt, L, [&](float* o, int64_t cols, int64_t c0) {
                for (int64_t i = 0; i < t.mk; ++i) {
                  const float b = t.bias[c0 + i];
                  float* oi = o + i * t.out_k_stride;
                  for (int64_t j = 0; j < cols; ++j) oi[j] = seed_scale * oi[j] + b;
                }
              });
              t.bias = nullptr;
            }
            if (bi + 1 == b_.blocks.size() && residual && !seed)  // on its way while the tile computes
              for_tile_runs(t, mkb, nt, L, [&](float* o, int64_t cols, int64_t) {
                const float* ro = residual + (o - y);
                for (int64_t i = 0; i < t.mk; ++i)
                  for (int64_t j = 0; j < cols; j += 16) prefetch_l1(ro + i * t.out_k_stride + j);
              });
            // The post-ops in registers at the store of the last block (the residual, when y itself,
            // is already in the accumulation).
            const bool post = bi + 1 == b_.blocks.size() && e.active();
            t.post = post ? &e.params : nullptr;
            t.residual = post && !seed ? residual : nullptr;
            t.out_base = y;
            kern_.tile[log2_of(int(mkb))][nt - 1](t);
            kb += t.nk;
          }
        }
      }
    }
  }

  Geometry g_;
  const DirectKernels& kern_;
  int threads_;
  GeneralBlocking b_;
  BufferPlan buf_;
  int64_t T_;
};

void add_block(const Geometry& g, GeneralBlocking& b, int64_t c0, int64_t nc, int64_t r0, int64_t nr, int64_t s0,
               int64_t ns, int lanes) {
  const RowLayout l = row_layout(g, b.mp, nr, ns, b.nvc, lanes);
  TapBlock t{c0, nc, r0, nr, s0, ns, l.rows_per_c, l.wph, l.row_stride, int64_t(b.phases.size()),
             int64_t(l.phases.size()), int64_t(b.taps.size()), nc * nr * ns};
  b.phases.insert(b.phases.end(), l.phases.begin(), l.phases.end());
  for (int64_t c = 0; c < nc; ++c)
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t s = 0; s < ns; ++s)
        b.taps.push_back(int32_t((c * l.rows_per_c + r * g.dil_h) * l.row_stride + l.soff[std::size_t(s)]));
  b.blocks.push_back(t);
}

// Cycles per tap of a tile of n vectors x mk channels: its FMAs, the FMA latency each accumulator
// waits (8 accumulators are just short of hiding it), its loads, loop overhead; the machine model's
// figures. Only relative sizes matter.
double tile_cycles(int64_t n, int mk, const MachineModel& m) {
  return std::max({double(n * mk) / m.fmas_per_cycle, m.fma_latency, double(n + mk) / m.loads_per_cycle}) +
         m.tap_overhead;
}

GeneralBlocking general_blocking(const Geometry& g, const DirectKernels& kern, const PlanContext& ctx, int64_t cap) {
  const int threads = ctx.threads;
  const MachineModel& model = ctx.machine;
  const int L = kern.lanes;
  GeneralBlocking b;
  // Output channels per tile: the widest variant, or the narrowest that holds all of a small group.
  const int widest = 1 << (kern.mk_variants - 1);
  b.mk = g.Kg >= widest ? widest : 1 << log2_of(int(g.Kg));
  b.nv = std::min(kMaxNv, kern.accumulators / b.mk);
  b.kblocks = ceil_div(g.Kg, b.mk);
  const int64_t nvq = ceil_div(g.Q, L), T = g.Cg * g.R * g.S;

  if (fits(g, cap, 1, 1, g.R, g.S, 1, L)) {
    // Whole channels per block, the widest chunk that fits. Then the row block and the split of the
    // output channels over tasks with the shortest estimated run: per task, packing its rows and
    // its k-blocks' tiles (taps at tile_cycles, a fixed cost per tile call, extra passes over the
    // output when the channels need several blocks), and whole tasks per thread.
    b.nvc = nvq;
    while (!fits(g, cap, 1, 1, g.R, g.S, b.nvc, L)) b.nvc = ceil_div(b.nvc, 2);
    const double chunks = double(ceil_div(nvq, b.nvc));
    double best = 0;
    // Row blocks of balanced sizes (mp and mp - 1 rows).
    for (int64_t rb = ceil_div(g.P, 32); rb <= g.P; ++rb) {
      const int64_t mp = ceil_div(g.P, rb);
      // Past the first 256 block counts of one block height, more blocks only add packing: on to the
      // next height (tall images would otherwise search for billions of steps).
      if (mp > 1 && rb - ceil_div(g.P, mp) >= 256) {
        rb = (g.P - 1) / (mp - 1);
        continue;
      }
      if (!fits(g, cap, 1, mp, g.R, g.S, b.nvc, L)) continue;
      const int64_t floats_per_c = layout_floats_per_c(g, mp, g.R, g.S, b.nvc, L);
      const int64_t cb = std::min(g.Cg, cap / floats_per_c);
      const int64_t passes = ceil_div(g.Cg, cb);
      auto per_kblock = [&](int64_t m) {  // cycles of one k-block over a block of m rows
        if (m == 0) return 0.0;
        const int64_t nvec = m * b.nvc, tiles = ceil_div(nvec, b.nv), base = nvec / tiles, extra = nvec % tiles;
        const double per_tap =
            double(extra) * tile_cycles(base + 1, b.mk, model) + double(tiles - extra) * tile_cycles(base, b.mk, model);
        return chunks *
               (double(T) * per_tap + double(passes * tiles) * model.tile_call + double((2 * passes - 1) * b.mk * nvec));
      };
      const double pack = chunks * double(g.Cg) * double(floats_per_c / L);
      const int64_t big = g.P - rb * (mp - 1), small = rb - big;
      for (int64_t ks = 1; ks <= std::min<int64_t>(b.kblocks, 16); ++ks) {
        const int64_t kb_per = ceil_div(b.kblocks, ks), splits = ceil_div(b.kblocks, kb_per);
        const int64_t tasks = g.N * g.groups * rb * splits;
        const double work = double(g.N * g.groups * splits) *
                            (double(big) * (pack + double(kb_per) * per_kblock(mp)) +
                             double(small) * (pack + double(kb_per) * per_kblock(mp - 1)));
        const double t = double(ceil_div(tasks, threads)) * work / double(tasks);
        if (best == 0 || t < best) best = t, b.mp = mp, b.row_blocks = rb, b.ksplits = ks;
      }
    }
    const int64_t cb = std::min(g.Cg, cap / row_layout(g, b.mp, g.R, g.S, b.nvc, L).floats_per_c());
    for (int64_t c0 = 0; c0 < g.Cg; c0 += cb) add_block(g, b, c0, std::min(cb, g.Cg - c0), 0, g.R, 0, g.S, L);
  } else {
    // Huge or widely dilated kernels: one channel's kernel rows, or one row's columns, per block.
    b.mp = 1, b.nvc = 1, b.ksplits = 1, b.row_blocks = g.P;
    if (fits(g, cap, 1, 1, 1, g.S, 1, L)) {
      int64_t rb = 1;
      while (rb < g.R && fits(g, cap, 1, 1, rb + 1, g.S, 1, L)) ++rb;
      for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t r0 = 0; r0 < g.R; r0 += rb) add_block(g, b, c, 1, r0, std::min(rb, g.R - r0), 0, g.S, L);
    } else {
      int64_t sb = 1;
      while (sb < g.S && fits(g, cap, 1, 1, 1, sb + 1, 1, L)) ++sb;
      for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t s0 = 0; s0 < g.S; s0 += sb) add_block(g, b, c, 1, r, 1, s0, std::min(sb, g.S - s0), L);
    }
  }
  b.chunks = ceil_div(nvq, b.nvc);
  b.kb_per_task = ceil_div(b.kblocks, b.ksplits);
  b.ksplits = ceil_div(b.kblocks, b.kb_per_task);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Depthwise kernel.

struct DepthwiseBlocking {
  int64_t mp_max;                    // output rows per strip, at most
  int64_t rows = 0, strip_count = 0;  // output rows in strips whose sizes differ by at most one
  int64_t strips_per_unit;           // all strips (one pack per channel) or one
  int64_t nvc, chunks;               // vectors per width chunk, chunks
  int64_t units, tasks;              // units: (image, channel, strips), run in `tasks` even runs
  bool in_place = false;             // the dw_in_place kernels: no row buffer, no layout
  RowLayout layout;
  int64_t strips() const { return strip_count; }
  int64_t strip_begin(int64_t i) const { return run_begin(rows, strip_count, i); }  // i <= strips()
  // The output rows of unit strip block us (strips_per_unit strips from us * strips_per_unit on).
  Range unit_rows(int64_t us) const {
    return {strip_begin(us * strips_per_unit), strip_begin((us + 1) * strips_per_unit)};
  }
};

class DirectDepthwise final : public ConvImpl {
 public:
  DirectDepthwise(const Geometry& g, const DirectKernels& kern, int threads, DepthwiseBlocking b, BufferPlan buf)
      : g_(g), kern_(kern), threads_(threads), b_(std::move(b)), buf_(buf), ridx_(int(g.R - 3) / 2) {}

  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override {
    return std::string("direct_depthwise_") + (b_.in_place ? "in_place_" : "") + std::to_string(g_.R) + "x" +
           std::to_string(g_.S) + "_s" + std::to_string(g_.stride_h) + "__" + isa_name(kern_.isa);
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "SIMD depthwise stencil, " << g_.R << " kernel rows in registers, " << b_.strips() << " strip(s) of up to "
      << b_.mp_max << " output rows x " << b_.nvc * kern_.lanes << " columns, " << g_.Kg
      << " output(s) per input channel, " << b_.tasks << " tasks, ";
    if (b_.in_place)
      s << "input read in place (no row buffer)";
    else
      s << buf_.floats * 4 / 1024 << " KiB row buffer per thread on the " << (buf_.workspace ? "workspace" : "stack");
    return s.str();
  }
  std::size_t workspace_bytes() const override { return buf_.scratch().total(threads_); }
  std::size_t packed_weights_floats() const override {
    return std::size_t(checked_add(checked_mul(g_.K, g_.R * g_.S, "depthwise packed weights"), g_.K, "depthwise packed weights"));
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const int64_t RS = g_.R * g_.S;
    for (int64_t k = 0; k < g_.K; ++k)
      for (int64_t r = 0; r < g_.R; ++r)
        for (int64_t s = 0; s < g_.S; ++s) packed[k * RS + s * g_.R + r] = w[k * RS + r * g_.S + s];
    for (int64_t k = 0; k < g_.K; ++k) packed[g_.K * RS + k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    pool.for_each(b_.tasks, [&](int64_t task, int slot) { run_task(task, x, packed, y, residual, workspace, slot); });
  }
  WorkCounts work() const override {
    WorkCounts w;
    const double lanes_computed = double(g_.P) * double(round_up(g_.Q, kern_.lanes));
    w.depthwise_flops = 2.0 * double(g_.N * g_.K) * lanes_computed * double(g_.R * g_.S);
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(g_.K * g_.R * g_.S));
    w.parallel_tasks = double(b_.tasks);
    return w;
  }

 private:
  void run_task(int64_t task, const float* x, const float* packed, float* y, const float* residual, void* workspace,
                int slot) const {
    const Geometry& g = g_;
    const int L = kern_.lanes;
    alignas(64) float stack[kStackBufferFloats];
    float* const buf = buf_.get(workspace, slot, stack);
    const bool post = epilogue_.active();
    // Post-ops in registers at the strip's store; a residual that is y itself goes through a staging
    // buffer instead (the strip stores overlapping vectors twice: the second would read a residual
    // already replaced).
    const bool staged = post && residual && residual == y;
    const RowLayout& l = b_.layout;
    RowPack pk;
    pk.H = g.H, pk.W = g.W;
    pk.sw = g.stride_w;
    pk.phase = l.phases.data();
    pk.phases = int64_t(l.phases.size()), pk.wph = l.wph, pk.row_stride = l.row_stride;
    pk.dst = buf;
    DwStrip a;
    if (post && !staged) a.post = &epilogue_.params, a.residual = residual, a.out_base = y;
    a.buf = buf;
    a.row_stride = l.row_stride;
    a.soff = l.soff.data();
    a.S = g.S;
    a.ldo = g.Q;
    a.dil_w = g.dil_w;  // packed too: the 3x3 stride-2 strips order their taps by it (as in place)
    if (b_.in_place) {
      // The buffer holds the zero row (W <= kStackBufferFloats, depthwise_blocking checked).
      std::fill(buf, buf + g.W, 0.0f);
      a.zero_row = buf, a.H = g.H, a.W = g.W;
    }
    const auto [u0, u1] = run_of(b_.units, b_.tasks, task);
    const int64_t unit_strips = b_.strips_per_unit, units_per_c = b_.strips() / unit_strips;
    int64_t us = u0 % units_per_c, nc = u0 / units_per_c;  // unit = (n*C + c)*units_per_c + us
    for (int64_t u = u0; u < u1; ++u) {
      const std::size_t st0 = std::size_t(us * unit_strips), st1 = st0 + std::size_t(unit_strips);
      const auto [p0, p1] = b_.unit_rows(us);
      const int64_t rows = p1 - p0;
      const int64_t c = nc % g.C;
      const bool last_of_c = us + 1 == units_per_c;
      // In place, a strip reads one vector of each of its up to 29 rows at a time, a pattern the
      // hardware prefetchers follow poorly: the next unit's rows into L1 while this unit computes
      // (Zen 5: 0.84-0.93x the time on 56x56 inputs of 144 and 576 channels, whose planes come from
      // L3; the same where they sit in L2).
      if (b_.in_place && u + 1 < u1) prefetch_unit_rows(x, last_of_c ? 0 : us + 1, last_of_c ? nc + 1 : nc);
      pk.x = x + nc * g.H * g.W;
      pk.iy0 = p0 * g.stride_h - g.pad_t;
      pk.rows = (rows - 1) * g.stride_h + g.R;
      a.x = pk.x;
      for (int64_t ch = 0; ch < b_.chunks; ++ch) {
        // The last chunk, when narrower than a vector, moves back to end at the row end.
        int64_t q0 = ch * b_.nvc * L, qc = std::min(b_.nvc * L, g.Q - q0);
        // (Not with a staged residual: the outputs it computes again already hold their post-ops.)
        if (qc < L && g.Q >= L && !staged) q0 = g.Q - L, qc = L;
        pk.ix0 = q0 * g.stride_w - g.pad_l;
        if (!b_.in_place) kern_.pack(pk);
        a.width = qc;
        a.ix0 = pk.ix0;
        for (std::size_t st = st0; st < st1; ++st) {
          const int64_t sp0 = b_.strip_begin(st), mpv = b_.strip_begin(st + 1) - sp0;
          const DwStripFn fn = (b_.in_place ? kern_.dw_in_place : kern_.dw)[ridx_][g.stride_h - 1][mpv - 1];
          a.buf = buf + (sp0 - p0) * g.stride_h * l.row_stride;
          a.iy0 = sp0 * g.stride_h - g.pad_t;
          for (int64_t j = 0; j < g.Kg; ++j) {
            const int64_t k = c * g.Kg + j;
            a.w = packed + k * g.R * g.S;
            a.bias = packed[g.K * g.R * g.S + k];
            a.out = y + ((nc / g.C * g.K + k) * g.P + sp0) * g.Q + q0;
            if (staged)
              strip_with_post_ops(fn, a, mpv, residual + (a.out - y));
            else
              fn(a);
          }
        }
      }
      if (last_of_c)
        us = 0, ++nc;
      else
        ++us;
    }
  }

  // The input rows that unit (us, nc) reads (its strips' rows, inside the plane) into L1.
  void prefetch_unit_rows(const float* x, int64_t us, int64_t nc) const {
    const Geometry& g = g_;
    const auto [p0, p1] = b_.unit_rows(us);
    const int64_t iy0 = std::max<int64_t>(0, p0 * g.stride_h - g.pad_t);
    const int64_t iy1 = std::min<int64_t>(g.H, (p1 - 1) * g.stride_h - g.pad_t + g.R);
    const char* first = reinterpret_cast<const char*>(x + (nc * g.H + iy0) * g.W);
    for (int64_t off = 0; off < (iy1 - iy0) * g.W * 4; off += 64) prefetch_l1(first + off);
  }

  // The strip in pieces of kStageColumns columns into a stack buffer, each then through the
  // epilogue to y (a residual that is y is read before it is written).
  void strip_with_post_ops(DwStripFn fn, const DwStrip& a, int64_t rows, const float* residual) const {
    constexpr int64_t kStageColumns = 256;
    alignas(64) float stage[kMaxDwRows * kStageColumns];
    for (int64_t c0 = 0; c0 < a.width; c0 += kStageColumns) {
      DwStrip piece = a;
      piece.buf = a.buf + c0;
      piece.ix0 = a.ix0 + c0 * g_.stride_w;
      piece.out = stage;
      piece.ldo = kStageColumns;
      piece.width = std::min(kStageColumns, a.width - c0);
      fn(piece);
      epilogue_.apply_from(stage, kStageColumns, a.out + c0, residual ? residual + c0 : nullptr, a.ldo, rows,
                           piece.width);
    }
  }

  Geometry g_;
  const DirectKernels& kern_;
  int threads_;
  DepthwiseBlocking b_;
  BufferPlan buf_;
  int ridx_;
};

// Depthwise over channel vectors, for narrow outputs: where the stencil above runs a 16-lane vector
// along rows of 7 columns and pays its packing and calls per channel, L channels at a time are
// transposed (the GEMM's transpose_rows) so that each pixel's channels form one vector, with the
// zero padding written out; the taps are then whole-vector FMAs, and the outputs are transposed
// back (through a stage when post-ops follow: a residual that is y is read before it is written).
// Its buffers live on the task's stack (32 KiB: the padded block and its outputs, 14x14 images with
// 16 lanes), so that, like the rest of Direct, it runs under any workspace limit with the same bits.
constexpr int64_t kChannelsStackFloats = 8192;
class DirectDepthwiseChannels final : public ConvImpl {
 public:
  DirectDepthwiseChannels(const Geometry& g, const DirectKernels& kern, TransposeRowsFn transpose, int threads)
      : g_(g), kern_(kern), transpose_(transpose), L_(kern.lanes), blocks_(ceil_div(g.C, int64_t(kern.lanes))),
        th_(g.H + g.pad_t + g.pad_b), tw_(g.W + g.pad_l + g.pad_r),
        // Fewer blocks than threads: each block's output rows split among tasks (the rows they read
        // transposed again), so that no thread idles. Outputs are computed alike whatever the split.
        splits_(std::min(g.P, ceil_div(int64_t(threads), g.N * blocks_))) {}

  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return std::string("direct_depthwise_channels__") + isa_name(kern_.isa); }
  std::string describe() const override {
    std::ostringstream s;
    s << "SIMD depthwise over channel vectors: " << L_ << " channels per vector, each block transposed into a "
      << th_ << "x" << tw_ << " padded buffer and back, " << g_.R << "x" << g_.S << " taps per output vector, "
      << grid().tasks() << " tasks, " << int64_t(stack_floats(g_, int(L_))) * 4 / 1024 << " KiB per task on the stack";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return 0; }
  std::size_t packed_weights_floats() const override {
    return std::size_t(checked_mul(blocks_ * L_, g_.R * g_.S + 1, "depthwise packed weights"));
  }
  // Per block of L channels: R*S weight vectors, then (after all blocks) the bias vectors; lanes
  // past the last channel are zero.
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const int64_t RS = g_.R * g_.S;
    std::fill(packed, packed + packed_weights_floats(), 0.0f);
    for (int64_t k = 0; k < g_.K; ++k) {
      const int64_t b = k / L_, lane = k % L_;
      for (int64_t t = 0; t < RS; ++t) packed[(b * RS + t) * L_ + lane] = w[k * RS + t];
      packed[blocks_ * RS * L_ + k] = bias ? bias[k] : 0.0f;
    }
  }
  void execute(const float* x, const float* packed, float* y, void*, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const int64_t PQ = g.P * g.Q, RS = g.R * g.S;
    const TaskGrid<3> tasks = grid();
    pool.for_each(tasks.tasks(), [&](int64_t task, int) {
      const auto [n, b, split] = tasks(task);
      const int64_t c0 = b * L_;
      const int nch = int(std::min<int64_t>(L_, g.C - c0));
      const auto [p0, p1] = run_of(g.P, splits_, split);
      // Padded rows [p0*sh, p0*sh + rows) hold every tap of output rows [p0, p1).
      const int64_t rows = (p1 - p0 - 1) * g.stride_h + (g.R - 1) * g.dil_h + 1;
      alignas(64) float stack[kChannelsStackFloats];
      float* t = stack;
      float* o = t + buffer_floats();
      std::fill(t, t + rows * tw_ * L_, 0.0f);
      const float* xb = x + (n * g.C + c0) * g.H * g.W;
      for (int64_t j = 0; j < rows; ++j)
        if (const int64_t iy = p0 * g.stride_h + j - g.pad_t; iy >= 0 && iy < g.H)
          transpose_(xb + iy * g.W, g.H * g.W, nch, g.W, t + (j * tw_ + g.pad_l) * L_, L_);
      DwChannels a;
      a.t = t, a.tw = tw_;
      a.w = packed + b * RS * L_, a.bias = packed + (blocks_ * RS + b) * L_;
      a.R = g.R, a.S = g.S, a.sh = g.stride_h, a.sw = g.stride_w, a.dh = g.dil_h, a.dw = g.dil_w;
      a.P = p1 - p0, a.Q = g.Q, a.o = o;
      kern_.dw_channels(a);
      const int64_t out_offset = (n * g.K + c0) * PQ + p0 * g.Q, count = (p1 - p0) * g.Q;
      // The stage: the padded buffer, done with (its rows x tw >= the outputs' rows x Q).
      const bool staged = epilogue_.active();
      float* to = staged ? t : y + out_offset;
      const int64_t ld = staged ? count : PQ;
      for (int64_t q0 = 0; q0 < count; q0 += 16)
        transpose_(o + q0 * L_, L_, int(std::min<int64_t>(16, count - q0)), nch, to + q0, ld);
      if (staged)
        epilogue_.apply_from(to, count, y + out_offset, residual ? residual + out_offset : nullptr, PQ, nch, count);
    });
  }
  WorkCounts work() const override {
    WorkCounts w;
    const double channels = double(g_.N * blocks_ * L_), PQ = double(g_.P * g_.Q);
    w.depthwise_flops = 2.0 * channels * PQ * double(g_.R * g_.S);
    // The buffer cleared, the input transposed in and the output out, per channel.
    w.transform_flops = channels * (double(th_ * tw_) + double(g_.H * g_.W) + PQ);
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(g_.K * g_.R * g_.S));
    w.parallel_tasks = double(grid().tasks());
    return w;
  }
  // The stack a task uses, at most: the padded block (rounded up to 16 floats), then its outputs;
  // in wide arithmetic (sizes come from users), for the proposal's check against the stack array.
  static __int128 stack_floats(const Geometry& g, int lanes) {
    return __int128(g.H + g.pad_t + g.pad_b) * (g.W + g.pad_l + g.pad_r) * lanes + 16 + __int128(g.P) * g.Q * lanes;
  }
  // The padded block of one task, where its outputs begin.
  int64_t buffer_floats() const { return round_up(th_ * tw_ * L_, int64_t(16)); }

 private:
  TaskGrid<3> grid() const { return task_grid(g_.N, blocks_, splits_); }

  Geometry g_;
  const DirectKernels& kern_;
  TransposeRowsFn transpose_;
  int64_t L_, blocks_, th_, tw_, splits_;
};

// The depthwise stencil applies to one input channel per group with 1 to 3 outputs each (from 4 on,
// the general tile shares each input vector among 4 channels), R = 3, 5, 7, vertical stride 1 or
// 2 without vertical dilation, and rows that fit the buffer.
bool depthwise_blocking(const Geometry& g, const DirectKernels& kern, int threads, int64_t cap, bool in_place,
                        DepthwiseBlocking& b) {
  if (g.Cg != 1 || g.Kg > 3 || (g.R != 3 && g.R != 5 && g.R != 7) || g.stride_h > 2 || g.dil_h != 1) return false;
  const int L = kern.lanes;
  const int64_t strips = ceil_div(g.P, kern.dw_rows[(g.R - 3) / 2]);
  b.mp_max = ceil_div(g.P, strips);
  b.rows = g.P, b.strip_count = strips;
  const int64_t nvq = ceil_div(g.Q, L);
  // In place where the kernels exist (the instruction sets, kernels and strides they pay for; the
  // same stride both ways) and a zero row fits the stack buffer: the whole row in one chunk, each
  // strip its own unit.
  if (in_place) {
    if (g.stride_w != g.stride_h || g.W > kStackBufferFloats || !kern.dw_in_place[(g.R - 3) / 2][g.stride_h - 1][0])
      return false;
    b.in_place = true;
    b.nvc = nvq, b.chunks = 1, b.strips_per_unit = 1;
    b.units = g.N * g.C * strips;
    b.tasks = balanced_tasks(b.units, threads, kBalancedTasksPerThread);
    return true;
  }
  b.nvc = nvq;
  while (b.nvc > 1 && !fits(g, cap, 1, b.mp_max, g.R, g.S, b.nvc, L)) b.nvc = ceil_div(b.nvc, 2);
  if (!fits(g, cap, 1, b.mp_max, g.R, g.S, b.nvc, L)) return false;
  b.chunks = ceil_div(nvq, b.nvc);
  // The whole channel in one pack when it stays in L1 (rows shared by two strips packed once).
  const bool whole = fits(g, std::min(cap, kStackBufferFloats), 1, g.P, g.R, g.S, b.nvc, L);
  b.strips_per_unit = whole ? strips : 1;
  b.layout = row_layout(g, whole ? g.P : b.mp_max, g.R, g.S, b.nvc, L);
  // A few even runs of units per thread: enough to balance, few enough that a task is not all
  // overhead on small layers.
  b.units = g.N * g.C * (strips / b.strips_per_unit);
  b.tasks = balanced_tasks(b.units, threads, kBalancedTasksPerThread);
  return true;
}

}  // namespace

void propose_direct(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const DirectKernels& kern = direct_kernels(ctx.isa);
  BufferPlan buf = buffer_capacity(ctx);
  // Channel vectors: one output per input channel, output rows that would leave half the stencil's
  // vector idle (7x7 outputs with 16 lanes: 1.6x; rows of 14, 0.8-0.9x: the stencil stays), a
  // padded block and its outputs on the stack.
  if (g.Cg == 1 && g.Kg == 1 && 2 * g.Q <= kern.lanes &&
      DirectDepthwiseChannels::stack_floats(g, kern.lanes) <= kChannelsStackFloats)
    out.add(std::make_unique<DirectDepthwiseChannels>(g, kern, sgemm_kernel(ctx.isa).transpose_rows, ctx.threads));
  // The stencil in place first: where it applies, Estimate takes it (the two count the same work),
  // Measure times both. Except at stride 2 where permutes share a port with the FMAs: in place,
  // each input vector's columns are picked apart by permutes, where the packed rows hold them apart
  // (the Xeon, 2 threads, when each column tap took its own permute: in place 1.10-1.27x the packed
  // time on 56x56 and 28x28 inputs, even on 112x112; on the Zen 5 0.87-0.92x. Since 3x3 takes its
  // three taps from three permutes per row, the Zen 5 measures 0.61-0.91x; not measured on Intel).
  const bool packed_first = g.stride_h == 2 && ctx.machine.permutes_share_fma_port;
  bool stencil = false;
  for (bool in_place : {!packed_first, packed_first}) {
    DepthwiseBlocking dw;
    if (!depthwise_blocking(g, kern, ctx.threads, buf.cap, in_place, dw)) continue;
    BufferPlan b = buf;
    settle_buffer(b, dw.in_place ? g.W : dw.layout.floats_per_c());
    out.add(std::make_unique<DirectDepthwise>(g, kern, ctx.threads, std::move(dw), b));
    stencil = true;
  }
  if (stencil) return;
  // The general kernel keeps a table of one int32 offset per tap (c, r, s) of a group, and its
  // blocking walks every tap: past 2^22 taps (16 MiB of table, 20x the largest real layer) it
  // declines rather than allocate the table and spend seconds planning.
  constexpr int64_t kMaxTaps = int64_t(1) << 22;
  if (g.Cg * g.R * g.S > kMaxTaps) {
    out.decline("direct", "in_channels/groups*kernel = " + std::to_string(g.Cg * g.R * g.S) + " taps (at most " +
                              std::to_string(kMaxTaps) + ")");
    return;
  }
  GeneralBlocking b = general_blocking(g, kern, ctx, buf.cap);
  int64_t floats = 0;
  for (const TapBlock& t : b.blocks) floats = std::max(floats, t.nc * t.rows_per_c * t.row_stride);
  settle_buffer(buf, floats);
  out.add(std::make_unique<DirectGeneral>(g, kern, ctx.threads, std::move(b), buf));
}

}  // namespace fastconv::detail
