// cuda/conv2d.cu — direct tiled 2-D convolution on the GPU (no im2col, no cuBLAS): forward with
// bias and activation fused, backward data, backward filter. CPU twin: host/conv2d.cpp. Test:
// tests/test_conv2d.cpp. Formulas (docs/operations.md), with Apad the zero-padded input:
//
//   forward   out[n,i,j,k]  = act( sum_{a,q,c} Apad[n, i*sh+a, j*sw+q, c] * weight[a,q,c,k] +
//   bias[k] ) data      dinp[n,y,x,c] = sum_{a,q,k} weight[a,q,c,k] * dout[n,i,j,k]
//                             over (a, q) with y+ph-a = i*sh, x+pw-q = j*sw, 0 <= i < oh, 0 <= j <
//                             ow
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
//   - the input halo: the rows and columns of Apad the patch's windows read for those kernel rows
//   and
//     columns, zero outside the input. With stride s <= AR the rows are contiguous,
//     (TH-1)*s + AR of them; with s > AR only the AR rows under each output row are kept (TH*AR),
//     so a large stride never blows up the tile. Row r of the tile is input row
//     base + (r / step) * s + r % step with step = min(s, AR), and output row py reads tile row
//     py*step + a. Columns likewise.
//   - the weights weight[a0.., q0.., c0.., k0..k0+KG) (zero for k >= K).
// then every thread accumulates its PPT outputs from shared memory. Bias and activation are applied
// in the epilogue (softmax, which needs all channels of a pixel, runs as a second kernel).
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
// Backward filter is an implicit GEMM, dweight (R x K) = Apatch^T (R x P) * dout (P x K) with
// R = kh*kw*c reduction rows plus one extra row of ones for dbias, and P = n*oh*ow positions. P is
// cut into S segments (S depends only on the geometry). Pass 1: a block owns a 32 (r) x KT (k)
// tile for one segment, KT = 8, 16 or 32 by the number of output channels; it stages 64
// positions at a time of Apatch and dout in shared memory (each staging thread keeps one tile row
// and walks positions with an incremental (n, i, j) cursor: no division in the loop); each thread
// sums 2 x 2 entries over its slice of the positions, the slices are added in slice order, and the
// tile goes to workspace[s][r][k]. Pass 2: one warp per (r, k), many blocks: lane l adds segments
// l, l+32, ... in order, then a fixed shuffle tree. No atomics anywhere: every sum has a fixed
// order, so results are bit-identical run to run. Indices are 32-bit where the host has checked
// that the sizes fit (positions, one image, the filter), image bases 64-bit.
//
// Grids: blockIdx.x folds (image, tile row, tile column) (and segments for the filter), which may
// be large; blockIdx.y is the channel group, at most 65535 (checked).
#include <algorithm>
#include <cstdint>
#include <string>

#include "activation_math.cuh"
#include "cuda_check.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"
#include "nvtx_range.h"

namespace minicnn::cuda {

namespace {

constexpr int kThreads = 256;
// Shared memory per block for the staged chunk: 32 KiB, below the 48 KiB that needs no opt-in, and
// small enough for several resident blocks per SM. A constant (not a device query) so that the
// chunking, and with it the summation order, is the same on every GPU.
constexpr int kSmemFloats = 8192;

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
                          const int CC, const int in_tile_floats) {
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
    const int tiles_w = (OW + TW - 1) / TW;
    const int tiles_h = (OH + TH - 1) / TH;
    // Once per block: which image and tile (blockIdx.x may exceed 2^31 / tiles: 64-bit image).
    const std::int64_t bimg = std::int64_t(blockIdx.x) / (std::int64_t(tiles_w) * tiles_h);
    const int bt = int(std::int64_t(blockIdx.x) - bimg * tiles_w * tiles_h);
    const int oy0 = (bt / tiles_w) * TH, ox0 = (bt % tiles_w) * TW;
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
    if (k >= K) return;
    const float bk = bias[k];
#pragma unroll
    for (int m = 0; m < PPT; ++m) {
        const int pix = pslot + m * PSTEP;
        if (P % PSTEP != 0 && pix >= P) break;
        const int oy = oy0 + pix / TW, ox = ox0 + pix % TW;
        if (oy < OH && ox < OW) oimg[(oy * OW + ox) * K + k] = act_forward(acc[m] + bk, act);
    }
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
    const int tiles_w = (W + TW - 1) / TW;
    const int tiles_h = (H + TH - 1) / TH;
    const std::int64_t bimg = std::int64_t(blockIdx.x) / (std::int64_t(tiles_w) * tiles_h);
    const int bt = int(std::int64_t(blockIdx.x) - bimg * tiles_w * tiles_h);
    const int y0 = (bt / tiles_w) * TH, x0 = (bt % tiles_w) * TW;
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

constexpr int kFiltRT = 32;  // reduction rows (a, q, c) per block
constexpr int kFiltPC = 64;  // positions staged per step
constexpr int kWarp = 32;

// Pass 1. Block (r tile, k tile, segment s): workspace[s][r][k] = sum over the positions p of
// segment s of Apatch[p][r] * dout[p][k]; row r == R (= kh*kw*c) is the bias row (Apatch = 1).
// The block's 32 x KT tile (KT = 8, 16 or 32: the smallest that covers k, so conv1's 6 channels
// fill 75% of it, not 19%) is split into 2 x 2 entries per thread: E = 8 * KT thread groups; the
// 256 / E groups of threads ("slices") take every (256/E)-th staged position, and the slices'
// sums are added in slice order at the end. Staging: thread t always stages tile row t % 32 (its
// (a, q, c) is decoded once) for positions t / 32 + 8 m, walked with an (n, i, j) cursor that is
// advanced by additions: no division or remainder after the block's first lines. Offsets inside
// an image are 32-bit (the host checks that an image's input and output fit); the image base is a
// 64-bit pointer, moved when the cursor changes image.
template <int KT>
__global__ void __launch_bounds__(kThreads) conv2d_backward_filter_partial_kernel(
    float* __restrict__ workspace,     // (S, R + 1, k)
    const float* __restrict__ dout,    // (n, oh, ow, k)
    const float* __restrict__ inp,     // (n, h, w, c)
    const float* __restrict__ dout_a,  // (n, oh, ow, k) / null
    const Activation dout_act, const ConvGeom g, const int seg_len, const int tiles_r,
    const int tiles_k) {
    constexpr int KH = KT / 2;                 // thread groups along k
    constexpr int E = (kFiltRT / 2) * KH;      // thread groups (2 x 2 entries each)
    constexpr int PS = kThreads / E;           // position slices
    constexpr int ASTEP = kThreads / kFiltRT;  // positions between a thread's staged Apatch values
    constexpr int DSTEP = kThreads / KT;       // ... and dout values
    static_assert(kThreads % E == 0 && kFiltPC % PS == 0, "tile must split evenly");
    __shared__ float a_s[kFiltPC][kFiltRT];             // Apatch of the staged positions
    __shared__ float d_s[kFiltPC][KT];                  // dout of the staged positions
    __shared__ float red_s[PS > 1 ? PS - 1 : 1][4][E];  // slices 1.. for the final sum

    const int C = int(g.c), K = int(g.k), H = int(g.h), W = int(g.w);
    const int OH = int(g.oh), OW = int(g.ow);
    const int R = g.kh * g.kw * C;
    const int P = int(g.n) * OH * OW;
    const int b = int(blockIdx.x);
    const int tr_ = b % tiles_r;
    const int tk_ = (b / tiles_r) % tiles_k;
    const int seg = b / (tiles_r * tiles_k);
    const int r0 = tr_ * kFiltRT, k0 = tk_ * KT;
    const int p_begin = seg * seg_len;
    const int p_end = min(P, p_begin + seg_len);
    const int tid = threadIdx.x;

    // Staging of Apatch: this thread's tile row and its decoding (once).
    const int rr = tid % kFiltRT;
    const int r = r0 + rr;
    const bool r_valid = r < R + 1, r_bias = r == R;
    int ca = 0, qa = 0, aa = 0;
    if (r < R) {
        ca = r % C;
        qa = (r / C) % g.kw;
        aa = r / (C * g.kw);
    }
    const int img_in = H * W * C;
    // Cursor of the position this thread stages next: p = n*oh*ow + i*ow + j.
    int ap = p_begin + tid / kFiltRT;
    const int an = ap / (OH * OW);
    int ai = (ap / OW) % OH;
    int aj = ap % OW;
    const float* aimg = inp + std::int64_t(an) * img_in;
    // Staging of dout: this thread's channel, and an index that moves by DSTEP positions.
    const int kd = tid % KT;
    const bool k_valid = k0 + kd < K;
    int dp = p_begin + tid / KT;
    std::int64_t didx = std::int64_t(dp) * K + k0 + kd;

    // Compute: this thread's 2 x 2 entries and position slice.
    const int grp = tid % E, slice = tid / E;
    const int tr = grp / KH, tk = grp % KH;
    float acc[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};

    for (int pc = p_begin; pc < p_end; pc += kFiltPC) {
        __syncthreads();  // previous step fully read
#pragma unroll
        for (int m = 0; m < kFiltPC / ASTEP; ++m) {
            float v = 0.0f;
            if (r_valid && ap < p_end) {
                if (r_bias) {
                    v = 1.0f;
                } else {
                    const int y = ai * g.sh + aa - g.ph, x = aj * g.sw + qa - g.pw;
                    if (y >= 0 && y < H && x >= 0 && x < W) v = aimg[(y * W + x) * C + ca];
                }
            }
            a_s[tid / kFiltRT + m * ASTEP][rr] = v;
            // Advance the cursor by ASTEP positions (ow may be smaller than ASTEP).
            ap += ASTEP;
            aj += ASTEP;
            while (aj >= OW) {
                aj -= OW;
                if (++ai == OH) {
                    ai = 0;
                    aimg += img_in;
                }
            }
        }
#pragma unroll
        for (int m = 0; m < kFiltPC / DSTEP; ++m) {
            d_s[tid / KT + m * DSTEP][kd] =
                (k_valid && dp < p_end) ? load_dz(dout, dout_a, dout_act, didx) : 0.0f;
            dp += DSTEP;
            didx += std::int64_t(DSTEP) * K;
        }
        __syncthreads();
#pragma unroll 8
        for (int pp = slice; pp < kFiltPC; pp += PS) {
            const float x0 = a_s[pp][tr], x1 = a_s[pp][tr + 16];
            const float d0 = d_s[pp][tk], d1 = d_s[pp][tk + KH];
            acc[0][0] += x0 * d0;
            acc[0][1] += x0 * d1;
            acc[1][0] += x1 * d0;
            acc[1][1] += x1 * d1;
        }
    }

    // The slices' sums, added in slice order by slice 0.
    if (PS > 1) {
        if (slice > 0) {
#pragma unroll
            for (int u = 0; u < 4; ++u) red_s[slice - 1][u][grp] = acc[u / 2][u % 2];
        }
        __syncthreads();
        if (slice > 0) return;
#pragma unroll
        for (int s2 = 0; s2 < PS - 1; ++s2)
#pragma unroll
            for (int u = 0; u < 4; ++u) acc[u / 2][u % 2] += red_s[s2][u][grp];
    }
    float* wseg = workspace + std::int64_t(seg) * (R + 1) * K;
#pragma unroll
    for (int u = 0; u < 2; ++u) {
#pragma unroll
        for (int v = 0; v < 2; ++v) {
            const int rw = r0 + tr + 16 * u, kw = k0 + tk + KH * v;
            if (rw < R + 1 && kw < K) wseg[rw * K + kw] = acc[u][v];
        }
    }
}

// Pass 2. One warp per (r, k) (8 per block): lane l adds the partial sums of segments l, l+32, ...
// in order, then a fixed shuffle tree adds the 32 lanes. Fixed order: bit-identical run to run.
__global__ void __launch_bounds__(kThreads)
    conv2d_backward_filter_reduce_kernel(float* __restrict__ dweight,          // (kh, kw, c, k)
                                         float* __restrict__ dbias,            // (k) or null
                                         const float* __restrict__ workspace,  // (S, R+1, k)
                                         const int RK, const int total, const int n_seg) {
    const int e = int(blockIdx.x) * (kThreads / kWarp) + int(threadIdx.x) / kWarp;
    const int lane = int(threadIdx.x) % kWarp;
    if (e >= total) return;  // the whole warp
    float sum = 0.0f;
    for (int s = lane; s < n_seg; s += kWarp) sum += workspace[std::int64_t(s) * total + e];
    for (int off = kWarp / 2; off > 0; off /= 2) sum += __shfl_down_sync(0xffffffffu, sum, off);
    if (lane != 0) return;
    if (e < RK) {
        dweight[e] = sum;
    } else if (dbias != nullptr) {
        dbias[e - RK] = sum;
    }
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

void check_geom(const ConvGeom& g, const char* op) {
    MINICNN_REQUIRE(g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0 && g.k > 0,
                    op << ": expected positive sizes, got n=" << g.n << " h=" << g.h << " w=" << g.w
                       << " c=" << g.c << " k=" << g.k);
    MINICNN_REQUIRE(
        g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0 && g.ph >= 0 && g.pw >= 0,
        op << ": expected positive kernel and stride and non-negative padding, got kernel (" << g.kh
           << ", " << g.kw << ") stride (" << g.sh << ", " << g.sw << ") padding (" << g.ph << ", "
           << g.pw << ")");
    const std::int64_t oh = (g.h + 2 * std::int64_t(g.ph) - g.kh) / g.sh + 1;
    const std::int64_t ow = (g.w + 2 * std::int64_t(g.pw) - g.kw) / g.sw + 1;
    MINICNN_REQUIRE(g.h + 2 * std::int64_t(g.ph) >= g.kh && g.w + 2 * std::int64_t(g.pw) >= g.kw &&
                        g.oh == oh && g.ow == ow,
                    op << ": output size (" << g.oh << ", " << g.ow << ") does not match input ("
                       << g.h << ", " << g.w << "), kernel (" << g.kh << ", " << g.kw
                       << "), stride (" << g.sh << ", " << g.sw << ") and padding (" << g.ph << ", "
                       << g.pw << "); expected (" << oh << ", " << ow << ")");
}

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

// Chunk sizes of the (kernel row, kernel column, channel) reduction such that
// halo(AR, AQ, CC) + AR*AQ*CC*G floats fit in kSmemFloats. `halo` gives the staged-tile floats.
struct Chunks {
    int ar, aq, cc;
};

template <class HaloFloats>
Chunks choose_chunks(int kh, int kw, std::int64_t channels, int group, HaloFloats halo) {
    auto fits = [&](int ar, int aq, std::int64_t cc) {
        return halo(ar, aq, cc) + std::int64_t(ar) * aq * cc * group <= kSmemFloats;
    };
    // Largest channel chunk with the whole kernel (at most 64 channels at a time), split evenly.
    std::int64_t cmax = 0;
    for (std::int64_t cc = std::min<std::int64_t>(channels, 64); cc >= 1; --cc)
        if (fits(kh, kw, cc)) {
            cmax = cc;
            break;
        }
    if (cmax > 0) {
        const std::int64_t chunks = (channels + cmax - 1) / cmax;
        return {kh, kw, int((channels + chunks - 1) / chunks)};
    }
    // A large kernel: one channel at a time, as many whole kernel rows as fit ...
    for (int ar = kh - 1; ar >= 1; --ar)
        if (fits(ar, kw, 1)) return {ar, kw, 1};
    // ... or, for a very wide one, part of a row. (1, 1, 1) always fits.
    for (int aq = kw - 1; aq >= 1; --aq)
        if (fits(1, aq, 1)) return {1, aq, 1};
    return {1, 1, 1};
}

template <int TH, int TW, int KG>
void launch_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, cudaStream_t stream) {
    auto rows = [&](int ar) { return std::int64_t(TH - 1) * std::min(g.sh, ar) + ar; };
    auto cols = [&](int aq) { return std::int64_t(TW - 1) * std::min(g.sw, aq) + aq; };
    const Chunks ch = choose_chunks(g.kh, g.kw, g.c, KG, [&](int ar, int aq, std::int64_t cc) {
        return rows(ar) * cols(aq) * cc;
    });
    // The kernel lays out each chunk with its actual sizes; the first chunk is the largest.
    const int in_tile_floats = int(rows(ch.ar) * cols(ch.aq) * ch.cc);
    const std::size_t smem =
        sizeof(float) * (std::size_t(in_tile_floats) + std::size_t(ch.ar) * ch.aq * ch.cc * KG);
    const std::int64_t gx = g.n * ((g.oh + TH - 1) / TH) * ((g.ow + TW - 1) / TW);
    const std::int64_t gy = (g.k + KG - 1) / KG;
    check_grid(gx, gy, "conv2d_forward");
    conv2d_forward_kernel<TH, TW, KG><<<dim3(unsigned(gx), unsigned(gy)), kThreads, smem, stream>>>(
        out, inp, weight, bias, g, act, ch.ar, ch.aq, ch.cc, in_tile_floats);
    MINICNN_CUDA_CHECK_LAUNCH();
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

// Segments of the n*oh*ow positions for the filter gradient: about 256 positions each, at most
// 1024 segments, and a workspace of at most 16 Mi floats. A function of the geometry only.
struct Segments {
    std::int64_t len, count;
};

Segments filter_segments(const ConvGeom& g) {
    const std::int64_t P = g.n * g.oh * g.ow;
    const std::int64_t R1 = std::int64_t(g.kh) * g.kw * g.c + 1;
    const std::int64_t cap = std::max<std::int64_t>(
        1, std::min<std::int64_t>(1024, (std::int64_t(16) << 20) / (R1 * g.k)));
    const std::int64_t want = std::min(cap, std::max<std::int64_t>(1, (P + 255) / 256));
    const std::int64_t len = std::max<std::int64_t>(1, (P + want - 1) / want);
    return {len, std::max<std::int64_t>(1, (P + len - 1) / len)};
}

}  // namespace

void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, cudaStream_t stream) {
    NvtxRange range("conv2d_forward");
    check_geom(g, "conv2d_forward");
    if (g.out_numel() == 0) return;
    MINICNN_REQUIRE(g.h * g.w * g.c < (std::int64_t(1) << 31) &&
                        g.oh * g.ow * g.k < (std::int64_t(1) << 31) &&
                        g.weight_numel() < (std::int64_t(1) << 31),
                    "conv2d_forward: one image (" << g.h << "x" << g.w << "x" << g.c << " -> "
                                                  << g.oh << "x" << g.ow << "x" << g.k
                                                  << ") or the filter is beyond 32-bit indexing");
    const Activation fused = act == Activation::softmax ? Activation::linear : act;
    // Tile shape per output shape: the candidate whose tiles cover the fewest pixels beyond the
    // output (LeNet: 28x28 by 14x14, 10x10 by 10x10: no waste), the larger tile on a tie.
    auto covered = [&](std::int64_t th, std::int64_t tw) {
        return ((g.oh + th - 1) / th) * th * ((g.ow + tw - 1) / tw) * tw;
    };
    if (g.k == 1) {
        launch_forward<16, 16, 1>(out, inp, weight, bias, g, fused, stream);
    } else if (g.k <= 8) {
        if (covered(14, 14) < covered(8, 16))
            launch_forward<14, 14, 8>(out, inp, weight, bias, g, fused, stream);
        else
            launch_forward<8, 16, 8>(out, inp, weight, bias, g, fused, stream);
    } else {
        if (covered(10, 10) < covered(8, 8))
            launch_forward<10, 10, 16>(out, inp, weight, bias, g, fused, stream);
        else
            launch_forward<8, 8, 16>(out, inp, weight, bias, g, fused, stream);
    }
    // Softmax over the channel axis of each output pixel, in place.
    if (act == Activation::softmax)
        activation_forward(out, out, g.n * g.oh * g.ow, g.k, Activation::softmax, stream);
}

void conv2d_backward_data(float* dinp, const float* dout, const float* weight, const ConvGeom& g,
                          cudaStream_t stream, const float* dout_a, Activation dout_act) {
    NvtxRange range("conv2d_backward_data");
    check_geom(g, "conv2d_backward_data");
    // The kernel's offsets inside an image and into the filter are 32-bit.
    MINICNN_REQUIRE(g.h * g.w * g.c < (std::int64_t(1) << 31) &&
                        g.oh * g.ow * g.k < (std::int64_t(1) << 31) &&
                        g.weight_numel() < (std::int64_t(1) << 31) &&
                        g.h + g.ph + g.kh < (std::int64_t(1) << 31) &&
                        g.w + g.pw + g.kw < (std::int64_t(1) << 31),
                    "conv2d_backward_data: one image (" << g.h << "x" << g.w << "x" << g.c << " -> "
                                                        << g.oh << "x" << g.ow << "x" << g.k
                                                        << ") or the filter is beyond 32-bit "
                                                           "indexing");
    check_dout_act(dout_a, dout_act, "conv2d_backward_data");
    if (g.in_numel() == 0) return;
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

std::size_t conv2d_backward_filter_workspace(const ConvGeom& g) {
    check_geom(g, "conv2d_backward_filter_workspace");
    const Segments seg = filter_segments(g);
    const std::int64_t R1 = std::int64_t(g.kh) * g.kw * g.c + 1;
    return sizeof(float) * std::size_t(seg.count * R1 * g.k);
}

void conv2d_backward_filter(float* dweight, float* dbias, const float* dout, const float* inp,
                            const ConvGeom& g, void* workspace, cudaStream_t stream,
                            const float* dout_a, Activation dout_act) {
    NvtxRange range("conv2d_backward_filter");
    check_geom(g, "conv2d_backward_filter");
    check_dout_act(dout_a, dout_act, "conv2d_backward_filter");
    MINICNN_REQUIRE(workspace != nullptr, "conv2d_backward_filter: workspace is null; it must hold "
                                              << conv2d_backward_filter_workspace(g)
                                              << " bytes (conv2d_backward_filter_workspace)");
    const Segments seg = filter_segments(g);
    const std::int64_t R = std::int64_t(g.kh) * g.kw * g.c;
    const std::int64_t total = (R + 1) * g.k;
    // 32-bit indices inside the kernels: positions, one image's input and output, the filter.
    MINICNN_REQUIRE(g.n * g.oh * g.ow < (std::int64_t(1) << 31) &&
                        g.h * g.w * g.c < (std::int64_t(1) << 31) &&
                        total < (std::int64_t(1) << 31),
                    "conv2d_backward_filter: sizes beyond 32-bit indexing: n*oh*ow = "
                        << g.n * g.oh * g.ow << ", h*w*c = " << g.h * g.w * g.c
                        << ", (kh*kw*c+1)*k = " << total << " (each must be < 2^31)");
    {  // with no positions (n = 0) the one segment's partial sums are zeros
        const int KT = g.k <= 8 ? 8 : g.k <= 16 ? 16 : 32;
        const std::int64_t tiles_r = (R + 1 + kFiltRT - 1) / kFiltRT, tiles_k = (g.k + KT - 1) / KT;
        const std::int64_t gx = tiles_r * tiles_k * seg.count;
        check_grid(gx, 1, "conv2d_backward_filter");
        float* ws = static_cast<float*>(workspace);
        const int sl = int(seg.len), tr = int(tiles_r), tk = int(tiles_k);
        if (KT == 8)
            conv2d_backward_filter_partial_kernel<8><<<unsigned(gx), kThreads, 0, stream>>>(
                ws, dout, inp, dout_a, dout_act, g, sl, tr, tk);
        else if (KT == 16)
            conv2d_backward_filter_partial_kernel<16><<<unsigned(gx), kThreads, 0, stream>>>(
                ws, dout, inp, dout_a, dout_act, g, sl, tr, tk);
        else
            conv2d_backward_filter_partial_kernel<32><<<unsigned(gx), kThreads, 0, stream>>>(
                ws, dout, inp, dout_a, dout_act, g, sl, tr, tk);
        MINICNN_CUDA_CHECK_LAUNCH();
    }
    const int warps = kThreads / kWarp;
    const std::int64_t blocks = (total + warps - 1) / warps;
    check_grid(blocks, 1, "conv2d_backward_filter");
    conv2d_backward_filter_reduce_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(
        dweight, dbias, static_cast<const float*>(workspace), int(R * g.k), int(total),
        int(seg.count));
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace minicnn::cuda
