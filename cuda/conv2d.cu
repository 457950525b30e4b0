// cuda/conv2d.cu — direct tiled 2-D convolution on the GPU (no im2col, no cuBLAS): forward with
// bias and activation fused, backward data (backward filter: cuda/conv2d_filter.cu). CPU twin:
// host/cpu/conv2d.cpp. Test: tests/test_conv2d.cpp. Formulas (docs/operations.md), with Apad the
// zero-padded input:
//
//   forward   out[n,i,j,k]     = act( sum_{a,q,c} Apad[n, i*sh+a, j*sw+q, c] * weight[a,q,c,k]
//                                     + bias[k] )
//   data      dinp[n,y,x,c]    = sum_{a,q,k} weight[a,q,c,k] * dout[n,i,j,k]
//                                over (a, q) with y+ph-a = i*sh, x+pw-q = j*sw, 0 <= i < oh,
//                                0 <= j < ow
//   filter    dweight[a,q,c,k] = sum_{n,i,j} Apad[n, i*sh+a, j*sw+q, c] * dout[n,i,j,k]
//             dbias[k]         = sum_{n,i,j} dout[n,i,j,k]
//
// Layouts: inp/dinp (n, h, w, c), weight/dweight (kh, kw, c, k), bias (k), out/dout (n, oh, ow, k).
//
// Tiling (forward). A block of 256 threads owns a TH x TW patch of output pixels of one image, for
// a group of KG output channels. Thread t owns channel k0 + t % KG and the PPT pixels t / KG + m *
// (256 / KG), m < PPT. The reduction (a, q, c) is walked in chunks of AR kernel rows x AQ kernel
// columns x CC input channels (chosen on the host so that a chunk fits in 32 KiB of shared memory;
// for LeNet the whole 5x5 kernel and all channels are one chunk). Per chunk the block stages
//   - the input halo: the rows and columns of Apad the patch's windows read for those kernel
//     rows and columns, zero outside the input. With stride s <= AR the rows are contiguous,
//     (TH-1)*s + AR of them; with s > AR only the AR rows under each output row are kept (TH*AR),
//     so a large stride never blows up the tile. Row r of the tile is input row
//     base + (r / step) * s + r % step with step = min(s, AR), and output row py reads tile row
//     py*step + a. Columns likewise.
//   - the weights weight[a0.., q0.., c0.., k0..k0+KG) (zero for k >= K).
// then every thread accumulates its PPT outputs from shared memory. Bias and activation are applied
// in the epilogue (softmax, which needs all channels of a pixel, runs as a second kernel).
// At stride 1 with 3 or 5 kernel columns and LeNet's two tiles (14x14x8, 10x10x16) the forward
// runs conv2d_forward_strip_kernel (cuda/conv2d_strip.cu) instead: the same tile and chunks (the
// input tile staged channel-planar), but each thread owns R consecutive pixels of a row and
// slides the kernel along inputs held in registers (about 0.46 shared loads per FMA at 5 columns
// instead of 1.14; see the kernel).
// conv2d_maxpool_forward runs the kernel conv2d_forward would, with a max-pooling epilogue: the
// tile's activations go to shared memory and each pooled pixel's window is scanned there
// (window_max, cuda/pool_math.cuh), so only the pooled output and its mask are written. The tile
// must be whole, non-overlapping pooling windows (checked on the host); the accumulation is the
// same kernel with the same tile and chunks, so the result is bit for bit that of conv2d_forward +
// maxpool2d_forward.
// The tile shape is chosen per output shape on the host (the candidate whose tiles cover the fewest
// pixels beyond the output: LeNet's 28x28 by 14x14 tiles, 10x10 by one 10x10 tile); a tile need
// not fill every pixel slot of its last round. Offsets inside an image are 32-bit (checked on the
// host); image bases are 64-bit pointers.
//
// Tiling (backward data) is the same with the roles swapped: a block owns TH x TW input pixels x CG
// input channels, gathers over (a, q, k) in chunks, and stages the dout rows/columns whose windows
// cover its pixels (i in [ceil((y0+ph-a_max)/sh), floor((y0+TH-1+ph-a0)/sh)]) and the weights.
// A thread adds weight * dout only where y+ph-a is a multiple of sh (and x+pw-q of sw); rows
// outside [0, oh) are staged as zeros, so no other test is needed.
//
// At stride 1 (padding below the kernel size) backward data runs the strip kernel over dout with
// the weights rotated by 180 degrees where its tiles apply (cuda/conv2d_strip.cu);
// conv2d_backward_data_unpool runs it with an unpooling epilogue that writes, instead of dinp,
// the gradient before the max pooling that produced this convolution's input.
//
// Backward filter: cuda/conv2d_filter.cu.
//
// Grids: blockIdx.x folds (image, tile row, tile column) (and segments for the filter), which may
// be large; blockIdx.y is the channel group, at most 65535 (checked).
#include <algorithm>
#include <cstdint>
#include <string>

#include "activation_math.cuh"
#include "conv2d_common.h"
#include "cuda_check.h"
#include "fusion_rules.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"
#include "nvtx_range.h"
#include "pool_math.cuh"

namespace minicnn::cuda {

namespace conv {

void check_dout_act(const float* dout_a, Activation act, const char* op) {
    MINICNN_REQUIRE(act != Activation::softmax && (act == Activation::linear || dout_a != nullptr),
                    op << ": the activation folded into dout must be linear, relu, tanh or sigmoid "
                          "with its forward output given, got "
                       << activation_name(act) << (dout_a ? "" : " without an output"));
}

void check_grid(std::int64_t x, std::int64_t y, const char* op) {
    MINICNN_REQUIRE(x <= 2147483647LL && y <= 65535,
                    op << ": problem too large for one launch: grid (" << x << ", " << y
                       << ") exceeds (2^31-1, 65535)");
}

ForwardTile forward_tile(const ConvGeom& g) {
    auto covered = [&](std::int64_t th, std::int64_t tw) {
        return ((g.oh + th - 1) / th) * th * ((g.ow + tw - 1) / tw) * tw;
    };
    if (g.k == 1) return {16, 16, 1};
    if (g.k <= 8)
        return covered(14, 14) < covered(8, 16) ? ForwardTile{14, 14, 8} : ForwardTile{8, 16, 8};
    return covered(10, 10) < covered(8, 8) ? ForwardTile{10, 10, 16} : ForwardTile{8, 8, 16};
}

}  // namespace conv

namespace {

using conv::check_dout_act;
using conv::check_grid;
using conv::choose_chunks;
using conv::Chunks;
using conv::forward_tile;
using conv::ForwardTile;
using conv::kSmemFloats;
using conv::kThreads;
using conv::launch_strip;
using conv::StripArgs;

__host__ __device__ inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    // b > 0
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}
__host__ __device__ inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
    return -floor_div(-a, b);
}

// ---------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------

// One block: TH x TW output pixels of image n, output channels [k0, k0 + KG). See the file comment.
// TH x TW need not be a multiple of the pixel slots (14 x 14 over 32 slots: 7 pixels per thread,
// the last one on 4 of the 32 slots); offsets inside an image are 32-bit (checked on the host).
template <int TH, int TW, int KG>
__global__ void __launch_bounds__(kThreads)
    conv2d_forward_kernel(float* __restrict__ out,           // (n, oh, ow, k)
                          const float* __restrict__ inp,     // (n, h, w, c)
                          const float* __restrict__ weight,  // (kh, kw, c, k)
                          const float* __restrict__ bias,    // (k)
                          const ConvGeom g, const Activation act, const int AR, const int AQ,
                          const int CC, const int in_tile_floats,
                          float* __restrict__ pooled,       // (n, poh, pow, k) or null
                          std::int32_t* __restrict__ mask,  // (n, poh, pow, k) or null
                          const PoolGeom pg) {
    constexpr int P = TH * TW;
    constexpr int PSTEP = kThreads / KG;          // pixel slots
    constexpr int PPT = (P + PSTEP - 1) / PSTEP;  // pixels per thread (the last may be absent)
    static_assert(kThreads % KG == 0, "channel group must divide the block");

    extern __shared__ float smem[];
    float* in_s = smem;                  // (rows, cols, ccn) of this chunk
    float* w_s = smem + in_tile_floats;  // (arn, aqn, ccn, KG)

    const int tid = threadIdx.x;
    const int kk = tid % KG;
    const int pslot = tid / KG;

    const int H = int(g.h), W = int(g.w), C = int(g.c), K = int(g.k);
    const int OH = int(g.oh), OW = int(g.ow);
    const conv::TileOrigin to = conv::tile_origin(TH, TW, OH, OW);
    const std::int64_t bimg = to.image;
    const int oy0 = to.y0, ox0 = to.x0;
    const float* img = inp + bimg * (std::int64_t(H) * W * C);  // (h, w, c)
    float* oimg = out + bimg * (std::int64_t(OH) * OW * K);     // (oh, ow, k)
    const int k0 = int(blockIdx.y) * KG;

    float acc[PPT];
#pragma unroll
    for (int m = 0; m < PPT; ++m) acc[m] = 0.0f;

    for (int a0 = 0; a0 < g.kh; a0 += AR) {
        const int arn = min(AR, g.kh - a0);
        const int rstep = min(g.sh, arn);
        const int rows = (TH - 1) * rstep + arn;
        for (int q0 = 0; q0 < g.kw; q0 += AQ) {
            const int aqn = min(AQ, g.kw - q0);
            const int cstep = min(g.sw, aqn);
            const int cols = (TW - 1) * cstep + aqn;
            for (int c0 = 0; c0 < C; c0 += CC) {
                const int ccn = min(CC, C - c0);
                // Every thread is done reading the previous chunk before it is overwritten.
                __syncthreads();
                // Input halo, channel fastest (coalesced along c); zero outside the input.
                const int in_count = rows * cols * ccn;
                const int gy0 = oy0 * g.sh - g.ph + a0;
                const int gx0 = ox0 * g.sw - g.pw + q0;
                for (int e = tid; e < in_count; e += kThreads) {
                    const int cc = e % ccn;
                    const int rs = e / ccn;
                    const int s = rs % cols, r = rs / cols;
                    const int gy = gy0 + (r / rstep) * g.sh + r % rstep;
                    const int gx = gx0 + (s / cstep) * g.sw + s % cstep;
                    float v = 0.0f;
                    if (gy >= 0 && gy < H && gx >= 0 && gx < W)
                        v = img[(gy * W + gx) * C + c0 + cc];
                    in_s[e] = v;
                }
                // Weights of the chunk, output channel fastest (coalesced along k).
                const int w_count = arn * aqn * ccn * KG;
                for (int e = tid; e < w_count; e += kThreads) {
                    const int k2 = e % KG;
                    int t = e / KG;
                    const int cc = t % ccn;
                    t /= ccn;
                    const int q = t % aqn, a = t / aqn;
                    const int k = k0 + k2;
                    float v = 0.0f;
                    if (k < K) v = weight[(((a0 + a) * g.kw + q0 + q) * C + c0 + cc) * K + k];
                    w_s[e] = v;
                }
                __syncthreads();

                for (int a = 0; a < arn; ++a) {
                    for (int q = 0; q < aqn; ++q) {
                        for (int cc = 0; cc < ccn; ++cc) {
                            const float wv = w_s[((a * aqn + q) * ccn + cc) * KG + kk];
#pragma unroll
                            for (int m = 0; m < PPT; ++m) {
                                const int pix = pslot + m * PSTEP;
                                if (P % PSTEP != 0 && pix >= P) break;
                                const int py = pix / TW, px = pix % TW;
                                acc[m] +=
                                    in_s[((py * rstep + a) * cols + px * cstep + q) * ccn + cc] *
                                    wv;
                            }
                        }
                    }
                }
            }
        }
    }

    const int k = k0 + kk;
    if (pooled == nullptr) {
        if (k >= K) return;
        const float bk = bias[k];
#pragma unroll
        for (int m = 0; m < PPT; ++m) {
            const int pix = pslot + m * PSTEP;
            if (P % PSTEP != 0 && pix >= P) break;
            const int oy = oy0 + pix / TW, ox = ox0 + pix % TW;
            if (oy < OH && ox < OW) oimg[(oy * OW + ox) * K + k] = act_forward(acc[m] + bk, act);
        }
        return;
    }

    // Max-pooling epilogue (conv2d_maxpool_forward): the tile's activations go to shared memory
    // (pixel, channel), then pool_tile.
    const float bk = k < K ? bias[k] : 0.0f;
    __syncthreads();    // every thread is done reading the last chunk
    float* a_s = smem;  // (TH * TW, KG)
#pragma unroll
    for (int m = 0; m < PPT; ++m) {
        const int pix = pslot + m * PSTEP;
        if (P % PSTEP != 0 && pix >= P) break;
        a_s[pix * KG + kk] = act_forward(acc[m] + bk, act);
    }
    __syncthreads();
    pool_tile<TH, TW, KG>(pooled, mask, a_s, pg, bimg, oy0, ox0, k0, K, tid, kThreads);
}

// One block: TH x TW input pixels of image n, input channels [c0, c0 + CG). See the file comment.
// CG need not divide the block: with CG = 6, 42 pixel slots x 6 channels use 252 of the 256 threads
// (the other 4 only stage). At stride 1 a pixel's offset into the staged dout tile moves by a
// constant per kernel cell, so no division is needed; other strides test divisibility per cell.
// Offsets inside an image are 32-bit (checked on the host); image bases are 64-bit pointers.
template <int TH, int TW, int CG>
__global__ void __launch_bounds__(kThreads)
    conv2d_backward_data_kernel(float* __restrict__ dinp,          // (n, h, w, c)
                                const float* __restrict__ dout,    // (n, oh, ow, k)
                                const float* __restrict__ weight,  // (kh, kw, c, k)
                                const float* __restrict__ dout_a,  // (n, oh, ow, k) or null
                                const Activation dout_act, const ConvGeom g, const int AR,
                                const int AQ, const int KC, const int dout_tile_floats) {
    constexpr int P = TH * TW;
    constexpr int PSTEP = kThreads / CG;          // pixel slots
    constexpr int PPT = (P + PSTEP - 1) / PSTEP;  // pixels per thread (the last may be absent)

    extern __shared__ float smem[];
    float* d_s = smem;                     // (nrows, ncols, kcn) of this chunk
    float* w_s = smem + dout_tile_floats;  // (arn, aqn, kcn, CG)

    const int tid = threadIdx.x;
    const int cc = tid % CG;
    const int pslot = tid / CG;  // >= PSTEP: a thread that only stages

    const int H = int(g.h), W = int(g.w), C = int(g.c), K = int(g.k);
    const int OH = int(g.oh), OW = int(g.ow);
    const conv::TileOrigin to = conv::tile_origin(TH, TW, H, W);
    const std::int64_t bimg = to.image;
    const int y0 = to.y0, x0 = to.x0;
    const std::int64_t oimg = bimg * (std::int64_t(OH) * OW * K);  // dout / dout_a image base
    float* dimg = dinp + bimg * (std::int64_t(H) * W * C);         // (h, w, c)
    const int cbase = int(blockIdx.y) * CG;
    const bool s1 = g.sh == 1 && g.sw == 1;

    float acc[PPT];
#pragma unroll
    for (int m = 0; m < PPT; ++m) acc[m] = 0.0f;

    for (int a0 = 0; a0 < g.kh; a0 += AR) {
        const int arn = min(AR, g.kh - a0);
        // Output rows whose windows, for kernel rows [a0, a0+arn), touch input rows [y0, y0+TH).
        const int i_lo = int(ceil_div(y0 + g.ph - (a0 + arn - 1), g.sh));
        const int i_hi = int(floor_div(y0 + TH - 1 + g.ph - a0, g.sh));
        const int nrows = max(0, i_hi - i_lo + 1);
        for (int q0 = 0; q0 < g.kw; q0 += AQ) {
            const int aqn = min(AQ, g.kw - q0);
            const int j_lo = int(ceil_div(x0 + g.pw - (q0 + aqn - 1), g.sw));
            const int j_hi = int(floor_div(x0 + TW - 1 + g.pw - q0, g.sw));
            const int ncols = max(0, j_hi - j_lo + 1);
            for (int k0 = 0; k0 < K; k0 += KC) {
                const int kcn = min(KC, K - k0);
                __syncthreads();  // the previous chunk has been read by every thread
                // dout rows [i_lo, i_hi] x columns [j_lo, j_hi], channel fastest; zero outside.
                const int d_count = nrows * ncols * kcn;
                for (int e = tid; e < d_count; e += kThreads) {
                    const int k2 = e % kcn;
                    const int rs = e / kcn;
                    const int i = i_lo + rs / ncols, j = j_lo + rs % ncols;
                    float v = 0.0f;
                    if (i >= 0 && i < OH && j >= 0 && j < OW)
                        v = load_dz(dout, dout_a, dout_act, oimg + (i * OW + j) * K + k0 + k2);
                    d_s[e] = v;
                }
                // Weights (a, q, k, c) with the input channel fastest, as the threads read them.
                const int w_count = arn * aqn * kcn * CG;
                for (int e = tid; e < w_count; e += kThreads) {
                    const int c2 = e % CG;
                    int t = e / CG;
                    const int k2 = t % kcn;
                    t /= kcn;
                    const int q = t % aqn, a = t / aqn;
                    const int c = cbase + c2;
                    float v = 0.0f;
                    if (c < C) v = weight[(((a0 + a) * g.kw + q0 + q) * C + c) * K + k0 + k2];
                    w_s[e] = v;
                }
                __syncthreads();
                if (pslot >= PSTEP)
                    continue;  // staging only (no barrier is skipped: the next
                               // one is at the top of the next chunk)

                for (int a = 0; a < arn; ++a) {
                    for (int q = 0; q < aqn; ++q) {
                        // Offset into d_s of the output position each of my pixels takes from
                        // kernel cell (a0+a, q0+q), or -1 where the stride skips it.
                        int off[PPT];
#pragma unroll
                        for (int m = 0; m < PPT; ++m) {
                            const int pix = pslot + m * PSTEP;
                            const int ty_ = y0 + pix / TW + g.ph - (a0 + a);
                            const int tx_ = x0 + pix % TW + g.pw - (q0 + q);
                            if (s1) {
                                // Stride 1: every cell is taken, row ty_ and column tx_ of dout.
                                off[m] = ((ty_ - i_lo) * ncols + tx_ - j_lo) * kcn;
                            } else {
                                off[m] = -1;
                                if (ty_ % g.sh == 0 && tx_ % g.sw == 0) {
                                    // Exact divisions; i in [i_lo, i_hi] and j in [j_lo, j_hi]
                                    // by construction of the staged range.
                                    const int r = ty_ / g.sh - i_lo, s = tx_ / g.sw - j_lo;
                                    off[m] = (r * ncols + s) * kcn;
                                }
                            }
                            if (P % PSTEP != 0 && pix >= P) off[m] = -1;
                        }
                        const float* wrow = w_s + (a * aqn + q) * kcn * CG + cc;
                        for (int k2 = 0; k2 < kcn; ++k2) {
                            const float wv = wrow[k2 * CG];
#pragma unroll
                            for (int m = 0; m < PPT; ++m)
                                if (off[m] >= 0) acc[m] += d_s[off[m] + k2] * wv;
                        }
                    }
                }
            }
        }
    }

    const int c = cbase + cc;
    if (c >= C || pslot >= PSTEP) return;
#pragma unroll
    for (int m = 0; m < PPT; ++m) {
        const int pix = pslot + m * PSTEP;
        if (P % PSTEP != 0 && pix >= P) break;
        const int y = y0 + pix / TW, x = x0 + pix % TW;
        if (y < H && x < W) dimg[(y * W + x) * C + c] = acc[m];
    }
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

// pooled == nullptr: out (n, oh, ow, k); else pooled and mask through the max-pooling epilogue.
template <int TH, int TW, int KG>
void launch_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, float* pooled, std::int32_t* mask,
                    const PoolGeom& pg, cudaStream_t stream) {
    auto rows = [&](int ar) { return std::int64_t(TH - 1) * std::min(g.sh, ar) + ar; };
    auto cols = [&](int aq) { return std::int64_t(TW - 1) * std::min(g.sw, aq) + aq; };
    const Chunks ch = choose_chunks(g.kh, g.kw, g.c, KG, [&](int ar, int aq, std::int64_t cc) {
        return rows(ar) * cols(aq) * cc;
    });
    // The kernel lays out each chunk with its actual sizes; the first chunk is the largest. The
    // pooling epilogue reuses the shared memory for the tile's TH*TW*KG activations.
    const int in_tile_floats = int(rows(ch.ar) * cols(ch.aq) * ch.cc);
    std::size_t floats = std::size_t(in_tile_floats) + std::size_t(ch.ar) * ch.aq * ch.cc * KG;
    if (pooled) floats = std::max(floats, std::size_t(TH) * TW * KG);
    const std::int64_t gx = g.n * ((g.oh + TH - 1) / TH) * ((g.ow + TW - 1) / TW);
    const std::int64_t gy = (g.k + KG - 1) / KG;
    check_grid(gx, gy, pooled ? "conv2d_maxpool_forward" : "conv2d_forward");
    conv2d_forward_kernel<TH, TW, KG>
        <<<dim3(unsigned(gx), unsigned(gy)), kThreads, sizeof(float) * floats, stream>>>(
            out, inp, weight, bias, g, act, ch.ar, ch.aq, ch.cc, in_tile_floats, pooled, mask, pg);
    MINICNN_CUDA_CHECK_LAUNCH();
}

// The strip kernel where it applies, else conv2d_forward_kernel with the tile of forward_tile.
void launch_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, float* pooled, std::int32_t* mask,
                    const PoolGeom& pg, cudaStream_t stream) {
    const StripArgs sa{out,    inp,  nullptr, Activation::linear, weight, bias, g, act,
                       pooled, mask, pg};
    if (launch_strip(sa, false, stream)) return;
    const ForwardTile t = forward_tile(g);
    if (t.kg == 1)
        launch_forward<16, 16, 1>(out, inp, weight, bias, g, act, pooled, mask, pg, stream);
    else if (t.kg == 8 && t.th == 14)
        launch_forward<14, 14, 8>(out, inp, weight, bias, g, act, pooled, mask, pg, stream);
    else if (t.kg == 8)
        launch_forward<8, 16, 8>(out, inp, weight, bias, g, act, pooled, mask, pg, stream);
    else if (t.th == 10)
        launch_forward<10, 10, 16>(out, inp, weight, bias, g, act, pooled, mask, pg, stream);
    else
        launch_forward<8, 8, 16>(out, inp, weight, bias, g, act, pooled, mask, pg, stream);
}

// The forward kernel's offsets inside an image and into the filter are 32-bit.
void check_forward_32bit(const ConvGeom& g, const char* op) {
    MINICNN_REQUIRE(g.h * g.w * g.c < (std::int64_t(1) << 31) &&
                        g.oh * g.ow * g.k < (std::int64_t(1) << 31) &&
                        g.weight_numel() < (std::int64_t(1) << 31),
                    op << ": one image (" << g.h << "x" << g.w << "x" << g.c << " -> " << g.oh
                       << "x" << g.ow << "x" << g.k << ") or the filter is beyond 32-bit indexing");
}

template <int TH, int TW, int CG>
void launch_backward_data(float* dinp, const float* dout, const float* weight, const float* dout_a,
                          Activation dout_act, const ConvGeom& g, cudaStream_t stream) {
    // Most output rows a TH-row input tile can need for `ar` kernel rows: the multiples of sh in an
    // interval of TH + ar - 1 integers.
    auto rows = [&](int ar) { return std::int64_t(TH + ar - 2) / g.sh + 1; };
    auto cols = [&](int aq) { return std::int64_t(TW + aq - 2) / g.sw + 1; };
    const Chunks ch = choose_chunks(g.kh, g.kw, g.k, CG, [&](int ar, int aq, std::int64_t kc) {
        return rows(ar) * cols(aq) * kc;
    });
    const int d_tile_floats = int(rows(ch.ar) * cols(ch.aq) * ch.cc);
    const std::size_t smem =
        sizeof(float) * (std::size_t(d_tile_floats) + std::size_t(ch.ar) * ch.aq * ch.cc * CG);
    const std::int64_t gx = g.n * ((g.h + TH - 1) / TH) * ((g.w + TW - 1) / TW);
    const std::int64_t gy = (g.c + CG - 1) / CG;
    check_grid(gx, gy, "conv2d_backward_data");
    conv2d_backward_data_kernel<TH, TW, CG>
        <<<dim3(unsigned(gx), unsigned(gy)), kThreads, smem, stream>>>(
            dinp, dout, weight, dout_a, dout_act, g, ch.ar, ch.aq, ch.cc, d_tile_floats);
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, cudaStream_t stream) {
    NvtxRange range("conv2d_forward");
    check_geometry(g, "conv2d_forward");
    if (g.out_numel() == 0) return;
    check_forward_32bit(g, "conv2d_forward");
    const Activation fused = act == Activation::softmax ? Activation::linear : act;
    launch_forward(out, inp, weight, bias, g, fused, nullptr, nullptr, PoolGeom{}, stream);
    // Softmax over the channel axis of each output pixel, in place.
    if (act == Activation::softmax)
        activation_forward(out, out, g.n * g.oh * g.ow, g.k, Activation::softmax, stream);
}

namespace {

// Why conv2d_maxpool_forward cannot run these shapes in one kernel, or "" when it can.
std::string why_not_fusable(const ConvGeom& g, Activation act, const PoolGeom& pool) {
    std::string why = conv_maxpool_unfusable(g, act, pool);
    if (!why.empty()) return why;
    const ForwardTile t = forward_tile(g);
    if (t.th % pool.sh != 0 || t.tw % pool.sw != 0)
        return "the forward tile (" + std::to_string(t.th) + "x" + std::to_string(t.tw) +
               ") is not whole pooling windows";
    return "";
}

}  // namespace

bool conv2d_maxpool_fusable(const ConvGeom& g, Activation act, const PoolGeom& pool) {
    return why_not_fusable(g, act, pool).empty();
}

void conv2d_maxpool_forward(float* pooled, std::int32_t* mask, const float* inp,
                            const float* weight, const float* bias, const ConvGeom& g,
                            Activation act, const PoolGeom& pool, cudaStream_t stream) {
    NvtxRange range("conv2d_maxpool_forward");
    check_geometry(g, "conv2d_maxpool_forward");
    check_geometry(pool, "conv2d_maxpool_forward");
    const std::string why = why_not_fusable(g, act, pool);
    MINICNN_REQUIRE(why.empty(), "conv2d_maxpool_forward: cannot fuse convolution "
                                     << g.kh << "x" << g.kw << " -> " << g.oh << "x" << g.ow << "x"
                                     << g.k << " with max pooling " << pool.kh << "x" << pool.kw
                                     << " stride " << pool.sh << "x" << pool.sw << ": " << why);
    if (pool.out_numel() == 0) return;
    check_forward_32bit(g, "conv2d_maxpool_forward");
    launch_forward(nullptr, inp, weight, bias, g, act, pooled, mask, pool, stream);
}

namespace {

// The checks both backward-data launchers make: geometry, 32-bit offsets, the folded activation.
void check_backward_data(const ConvGeom& g, const float* dout_a, Activation dout_act,
                         const char* op) {
    check_geometry(g, op);
    // The kernels' offsets inside an image and into the filter are 32-bit.
    MINICNN_REQUIRE(g.h * g.w * g.c < (std::int64_t(1) << 31) &&
                        g.oh * g.ow * g.k < (std::int64_t(1) << 31) &&
                        g.weight_numel() < (std::int64_t(1) << 31) &&
                        g.h + g.ph + g.kh < (std::int64_t(1) << 31) &&
                        g.w + g.pw + g.kw < (std::int64_t(1) << 31),
                    op << ": one image (" << g.h << "x" << g.w << "x" << g.c << " -> " << g.oh
                       << "x" << g.ow << "x" << g.k << ") or the filter is beyond 32-bit indexing");
    check_dout_act(dout_a, dout_act, op);
}

// Backward data through the strip kernel: at stride 1 with padding below the kernel size, the
// forward convolution of dout with the weights rotated (conv2d_forward_strip_kernel, kData), where
// its tiles apply; false, launching nothing, elsewhere. With unpool_mask, the unpooling epilogue
// (conv2d_backward_data_unpool): out is then the gradient before the pooling upg.
bool backward_data_strip(float* out, const float* dout, const float* weight, const float* dout_a,
                         Activation dout_act, const ConvGeom& g, cudaStream_t stream,
                         const std::int32_t* unpool_mask = nullptr,
                         const float* unpool_pooled = nullptr,
                         Activation unpool_act = Activation::linear, const PoolGeom& upg = {},
                         bool dry_run = false) {
    if (g.sh != 1 || g.sw != 1 || g.ph > g.kh - 1 || g.pw > g.kw - 1) return false;
    StripArgs sa{};
    sa.dry_run = dry_run;
    sa.out = out;
    sa.inp = dout;
    sa.inp_a = dout_a;
    sa.inp_act = dout_act;
    sa.weight = weight;
    sa.unpool_mask = unpool_mask;
    sa.unpool_pooled = unpool_pooled;
    sa.unpool_act = unpool_act;
    sa.upg = upg;
    ConvGeom f = g;  // the forward convolution: dout (n, oh, ow, k) -> dinp (n, h, w, c)
    f.h = g.oh;
    f.w = g.ow;
    f.c = g.k;
    f.k = g.c;
    f.ph = g.kh - 1 - g.ph;
    f.pw = g.kw - 1 - g.pw;
    f.oh = g.h;
    f.ow = g.w;
    sa.g = f;
    sa.bias = nullptr;
    sa.act = Activation::linear;
    sa.pooled = nullptr;
    sa.mask = nullptr;
    return launch_strip(sa, true, stream);
}

}  // namespace

void conv2d_backward_data(float* dinp, const float* dout, const float* weight, const ConvGeom& g,
                          cudaStream_t stream, const float* dout_a, Activation dout_act) {
    NvtxRange range("conv2d_backward_data");
    check_backward_data(g, dout_a, dout_act, "conv2d_backward_data");
    if (g.in_numel() == 0) return;
    if (backward_data_strip(dinp, dout, weight, dout_a, dout_act, g, stream)) return;
    // Channel group that fits the channel count (4, 6 or 8 up to 8 channels: LeNet's 6 fill every
    // slot), then the tile shape whose tiles cover the fewest pixels beyond the input.
    auto covered = [&](std::int64_t th, std::int64_t tw) {
        return ((g.h + th - 1) / th) * th * ((g.w + tw - 1) / tw) * tw;
    };
    const bool t14 = covered(14, 14) < covered(8, 16);
    if (g.c == 1)
        launch_backward_data<16, 16, 1>(dinp, dout, weight, dout_a, dout_act, g, stream);
    else if (g.c <= 4)
        t14 ? launch_backward_data<14, 14, 4>(dinp, dout, weight, dout_a, dout_act, g, stream)
            : launch_backward_data<8, 16, 4>(dinp, dout, weight, dout_a, dout_act, g, stream);
    else if (g.c <= 6)
        t14 ? launch_backward_data<14, 14, 6>(dinp, dout, weight, dout_a, dout_act, g, stream)
            : launch_backward_data<8, 16, 6>(dinp, dout, weight, dout_a, dout_act, g, stream);
    else if (g.c <= 8)
        t14 ? launch_backward_data<14, 14, 8>(dinp, dout, weight, dout_a, dout_act, g, stream)
            : launch_backward_data<8, 16, 8>(dinp, dout, weight, dout_a, dout_act, g, stream);
    else
        launch_backward_data<8, 8, 16>(dinp, dout, weight, dout_a, dout_act, g, stream);
}

bool conv2d_backward_data_unpool_fusable(const ConvGeom& g, const PoolGeom& pool,
                                         Activation pooled_act) {
    if (!maxpool_conv_unfusable(pool, pooled_act, g).empty()) return false;
    return backward_data_strip(nullptr, nullptr, nullptr, nullptr, Activation::linear, g, nullptr,
                               nullptr, nullptr, pooled_act, pool, true);
}

bool conv2d_backward_data_unpool(float* dz_prev, const float* dout, const float* weight,
                                 const ConvGeom& g, cudaStream_t stream, const float* dout_a,
                                 Activation dout_act, const std::int32_t* mask, const float* pooled,
                                 Activation pooled_act, const PoolGeom& pool) {
    NvtxRange range("conv2d_backward_data_unpool");
    const std::string why = maxpool_conv_unfusable(pool, pooled_act, g);
    MINICNN_REQUIRE(why.empty(), "conv2d_backward_data_unpool: " << why);
    check_backward_data(g, dout_a, dout_act, "conv2d_backward_data_unpool");
    check_geometry(pool, "conv2d_backward_data_unpool");
    MINICNN_REQUIRE(mask != nullptr && pooled != nullptr,
                    "conv2d_backward_data_unpool: the pooling's mask and output are required");
    MINICNN_REQUIRE(pool.h * pool.w * pool.c < (std::int64_t(1) << 31),
                    "conv2d_backward_data_unpool: one image of the pooling's input ("
                        << pool.h << "x" << pool.w << "x" << pool.c
                        << ") is beyond 32-bit indexing");
    if (g.in_numel() == 0) return true;
    return backward_data_strip(dz_prev, dout, weight, dout_a, dout_act, g, stream, mask, pooled,
                               pooled_act, pool);
}

}  // namespace minicnn::cuda
