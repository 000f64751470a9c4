#include "gemm/macro_kernel.hpp"

#include <algorithm>

#include "core/prefetch.hpp"

namespace fastconv::detail {

namespace {
void finish_tile(const TileEpilogue& post, float* ct, int64_t offset, int64_t ldc, int64_t rows, int64_t cols) {
  if (post.residual)
    post.epilogue->apply_2d(ct, post.residual + offset, ldc, rows, cols);
  else
    post.epilogue->activate_2d(ct, ldc, rows, cols);
}
}

void gemm_macro_kernel(const SgemmKernel& kernel, int64_t m, int64_t n, int64_t kc, const float* a,
                       int64_t a_panel_stride, const float* b, int64_t b_panel_stride, float* c, int64_t ldc,
                       bool accumulate, const float* bias, const TileEpilogue* post, bool b_streams) {
  const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
  // The edge tile on the stack: kMaxSgemmTile is checked against every tile of the table when it is built.
  alignas(64) float edge[kMaxSgemmTile];
  const int64_t tiles = (m + mr - 1) / mr, panel_lines = (kc * nr + 15) / 16;
  // Activations the microkernel applies itself (TileFuse); the others run over the stored tile.
  TileFuse fuse{};
  const bool fusable = post && post->epilogue && tile_fuse_of(post->epilogue->params, fuse);
  // One MR x NR tile at (i0, j0), bringing `stream` into L2 as it runs (SgemmUkernelFn's prefetch).
  auto run_tile = [&](int64_t i0, int64_t j0, const float* stream) {
    const int64_t rows = std::min<int64_t>(mr, m - i0), cols = std::min<int64_t>(nr, n - j0);
    const float* ap = a + (i0 / mr) * a_panel_stride;
    const float* bp = b + (j0 / nr) * b_panel_stride;
    float* ct = c + i0 * ldc + j0;
    // A last panel of half_nr columns or fewer runs the half-width kernel: less work thrown away.
    const bool half = cols <= kernel.half_nr;
    const int64_t width = half ? kernel.half_nr : nr;
    if (post && post->seed_scale != 1.0f)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < cols; ++q) ct[r * ldc + q] *= post->seed_scale;
    if (post && post->residual)  // the tile's residual, on its way while the tile is computed
      for (int64_t r = 0; r < rows; ++r) {
        prefetch_l1(post->residual + (i0 + r) * ldc + j0);
        prefetch_l1(post->residual + (i0 + r) * ldc + j0 + cols - 1);
      }
    // A last panel of fewer rows runs the short kernel of its rows (A*B, then + C, then + bias:
    // the same operations per element as the full tile).
    const SgemmUkernelFn* shorts = half ? kernel.short_half : kernel.short_full;
    const SgemmUkernelFn tile_kernel = rows < mr && shorts ? shorts[rows - 1] : half ? kernel.half : kernel.full;
    if ((rows == mr || shorts) && cols == width) {
      if (fusable) {  // the post-ops in the kernel's registers
        TileFuse tf = fuse;
        if (post->residual) tf.residual = post->residual + i0 * ldc + j0;
        tile_kernel(kc, ap, bp, ct, ldc, accumulate, bias ? bias + i0 : nullptr, &tf, stream);
        return;
      }
      tile_kernel(kc, ap, bp, ct, ldc, accumulate, bias ? bias + i0 : nullptr, nullptr, stream);
      if (post && post->epilogue) finish_tile(*post, ct, i0 * ldc + j0, ldc, rows, cols);
      return;
    }
    // Same operations as the full tile: A*B, then + C, then + bias.
    tile_kernel(kc, ap, bp, edge, width, false, nullptr, nullptr, stream);
    for (int64_t r = 0; r < rows; ++r) {
      float* crow = ct + r * ldc;
      const float* erow = edge + r * width;
      for (int64_t q = 0; q < cols; ++q) {
        float v = erow[q];
        if (accumulate) v = v + crow[q];
        if (bias) v = v + bias[i0 + r];
        crow[q] = v;
      }
    }
    if (post && post->epilogue) finish_tile(*post, ct, i0 * ldc + j0, ldc, rows, cols);
  };
  if (b_streams) {  // B panel by B panel: each stays in L1 while it meets every A tile
    for (int64_t j0 = 0; j0 < n; j0 += nr) {
      const float* next = j0 + nr < n ? b + (j0 / nr + 1) * b_panel_stride : nullptr;
      for (int64_t i0 = 0, tile = 0; i0 < m; i0 += mr, ++tile)
        run_tile(i0, j0, next_panel_slice(next, panel_lines, tile, tiles, kc));
    }
    return;
  }
  // A tile row at a time: C is written MR rows at a time along the block, a few long streams, where
  // B panel by B panel wrote every row of C 128 bytes at a time (192 streams for MC rows). Where C
  // goes to memory that is what counts: 16->96 1x1 on 112x112 1.20x at batch 1 and 2.09x at batch 8,
  // 64->256 on 56x56 1.06x (1.16x at batch 8); elsewhere 0.985-1.027x (1x1, im2col, Winograd, the
  // stem). The B block is re-read from L2 for each A tile, in panels the prefetchers follow.
  // The row's first tile brings the next row's A micro-panel into L2 (a line per step of depth):
  // where A is weights that come from memory in a network (Winograd's transformed filters, a 1x1
  // layer's), the panels lie a whole panel's depth apart, too short a stream for the hardware
  // prefetchers. Toggled inside the forward, AVX-512 Xeon, 2 threads: VGG-16 0.94x the time at
  // batch 1 (its classifier's 494 MB evict the convolutions' weights every forward), ResNet-50
  // 0.97x at batch 1 and 8, MobileNetV2 0.97x; single layers with their weights cached 0.98-1.005x.
  for (int64_t i0 = 0; i0 < m; i0 += mr) {
    const float* next_a = i0 + mr < m ? a + (i0 / mr + 1) * a_panel_stride : nullptr;
    for (int64_t j0 = 0; j0 < n; j0 += nr) run_tile(i0, j0, j0 == 0 ? next_a : nullptr);
  }
}

}  // namespace fastconv::detail
