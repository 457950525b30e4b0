// cuda/conv2d_strip.cu — the stride-1 strip kernel: LeNet's convolutions forward (with bias, the
// activation and, for conv2d_maxpool_forward, max pooling fused) and backward data, for 3- and
// 5-column kernels on the 14x14x8 and 10x10x16 tiles of forward_tile. Launched by cuda/conv2d.cu
// (conv2d_forward, conv2d_maxpool_forward, conv2d_backward_data, conv2d_backward_data_unpool)
// through conv::launch_strip; the other shapes run that file's general kernels. CPU twin:
// host/cpu/conv2d.cpp. Test: tests/test_conv2d.cpp (its fixed shapes name the strip cases).
//
// Formulas and layouts as in cuda/conv2d.cu. Tiles, chunks and staging follow that file's forward
// kernel; what differs is described at the kernel.
#include <algorithm>
#include <cstdint>

#include "activation_math.cuh"
#include "conv2d_common.h"
#include "cuda_check.h"
#include "minicnn/error.h"
#include "pool_math.cuh"

namespace minicnn::cuda::conv {

namespace {

// The stride-1 forward for kernels KW columns wide (LeNet's 5x5; also 3x3): the same tile,
// chunks and epilogue as conv2d_forward_kernel (cuda/conv2d.cu), but each thread owns a strip of
// R consecutive output pixels of one tile row (and one channel), so its inner loop slides a
// window along a row held in registers. Per (kernel row a, channel cc) a thread loads the R + KW - 1 inputs of its
// strip once and the KW weights of its channel one at a time, and does R * KW multiply-adds:
// (R + 2 KW - 1) shared loads for R * KW FMAs (16 for 35 at R = 7, KW = 5), where
// conv2d_forward_kernel loads one input per FMA. The input tile is staged channel-planar, (ccn,
// rows, COLS), so the strip's inputs are consecutive floats at offsets known at compile time.
// The block has STRIPS * KG threads (rounded up to whole warps; the extra threads only stage).
// Reduction order per output: kernel-row chunks, channel chunks, then a, cc, q.
template <int TH, int TW, int KG, int KW, int R>
struct StripShape {
    static constexpr int strips = TH * (TW / R);
    static constexpr int threads = (strips * KG + 31) / 32 * 32;
    static_assert(TW % R == 0, "strips must tile a row");
    static_assert(threads <= 1024, "too many threads for a block");
};

// With kData the kernel is a stride-1 backward data pass, written as the forward convolution of
// dout (g.c = the layer's k channels, padding kh-1-ph, kw-1-pw) with the weights rotated by 180
// degrees and transposed (g.k = the layer's c channels): dinp[y, x, c] = sum over (a, q, k) of
// dout[y + a - (kh-1-ph), x + q - (kw-1-pw), k] * weight[kh-1-a, kw-1-q, c, k]; `weight` is
// still the layer's (kh, kw, c, k) array, read rotated. inp_a / inp_act fold an activation's
// derivative into the loads of dout (load_dz); bias is null and act linear.
template <int TH, int TW, int KG, int KW, int R, bool kData>
__global__ void __launch_bounds__(StripShape<TH, TW, KG, KW, R>::threads)
    conv2d_forward_strip_kernel(float* __restrict__ out,          // (n, oh, ow, k)
                                const float* __restrict__ inp,    // (n, h, w, c)
                                const float* __restrict__ inp_a,  // (n, h, w, c) or null
                                const Activation inp_act,
                                const float* __restrict__ weight,  // (kh, kw, c, k)
                                const float* __restrict__ bias,    // (k) or null
                                const ConvGeom g, const Activation act, const int AR, const int CC,
                                const int in_tile_floats,
                                float* __restrict__ pooled,       // (n, poh, pow, k) or null
                                std::int32_t* __restrict__ mask,  // (n, poh, pow, k) or null
                                const PoolGeom pg,
                                const std::int32_t* __restrict__ unpool_mask,  // (n, oh, ow, k)
                                const float* __restrict__ unpool_pooled,       // (n, oh, ow, k)
                                const Activation unpool_act, const PoolGeom upg) {
    using S = StripShape<TH, TW, KG, KW, R>;
    constexpr int NT = S::threads;
    constexpr int COLS = TW + KW - 1;  // staged input columns (stride 1)
    constexpr int SPR = TW / R;        // strips per tile row

    extern __shared__ float smem[];
    float* in_s = smem;                  // (ccn, rows, COLS) of this chunk
    float* w_s = smem + in_tile_floats;  // (arn, KW, ccn, KG)

    const int tid = threadIdx.x;
    const int kk = tid % KG;
    const int strip = tid / KG;
    const bool computes = strip < S::strips;
    const int sy = strip / SPR, sx0 = (strip % SPR) * R;  // the strip's first pixel in the tile

    const int H = int(g.h), W = int(g.w), C = int(g.c), K = int(g.k);
    const int OH = int(g.oh), OW = int(g.ow);
    const TileOrigin to = tile_origin(TH, TW, OH, OW);
    const std::int64_t bimg = to.image;
    const int oy0 = to.y0, ox0 = to.x0;
    const float* img = inp + bimg * (std::int64_t(H) * W * C);  // (h, w, c)
    const float* aimg = inp_a ? inp_a + bimg * (std::int64_t(H) * W * C) : nullptr;
    float* oimg = out + bimg * (std::int64_t(OH) * OW * K);  // (oh, ow, k)
    const int k0 = int(blockIdx.y) * KG;

    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;

    for (int a0 = 0; a0 < g.kh; a0 += AR) {
        const int arn = min(AR, g.kh - a0);
        const int rows = TH - 1 + arn;
        for (int c0 = 0; c0 < C; c0 += CC) {
            const int ccn = min(CC, C - c0);
            __syncthreads();  // every thread is done reading the previous chunk
            // Input halo: read channel fastest (coalesced), stored channel-planar.
            const int in_count = rows * COLS * ccn;
            const int gy0 = oy0 - g.ph + a0, gx0 = ox0 - g.pw;
            for (int e = tid; e < in_count; e += NT) {
                const int cc = e % ccn;
                const int rs = e / ccn;
                const int col = rs % COLS, r = rs / COLS;
                const int gy = gy0 + r, gx = gx0 + col;
                in_s[(cc * rows + r) * COLS + col] =
                    gy >= 0 && gy < H && gx >= 0 && gx < W
                        ? load_dz(img, aimg, inp_act, (gy * W + gx) * C + c0 + cc)
                        : 0.0f;
            }
            // Weights of the chunk, output channel fastest (coalesced along k).
            const int w_count = arn * KW * ccn * KG;
            for (int e = tid; e < w_count; e += NT) {
                const int k2 = e % KG;
                int t = e / KG;
                const int cc = t % ccn;
                t /= ccn;
                const int q = t % KW, a = t / KW;
                float v = 0.0f;
                if (k0 + k2 < K) {
                    v = kData ? weight[(((g.kh - 1 - a0 - a) * KW + KW - 1 - q) * K + k0 + k2) * C +
                                       c0 + cc]
                              : weight[(((a0 + a) * KW + q) * C + c0 + cc) * K + k0 + k2];
                }
                w_s[e] = v;
            }
            __syncthreads();

            if (computes) {
                for (int a = 0; a < arn; ++a) {
                    for (int cc = 0; cc < ccn; ++cc) {
                        const float* row = in_s + (cc * rows + sy + a) * COLS + sx0;
                        float x[R + KW - 1];
#pragma unroll
                        for (int i = 0; i < R + KW - 1; ++i) x[i] = row[i];
                        const float* wp = w_s + (a * KW * ccn + cc) * KG + kk;
#pragma unroll
                        for (int q = 0; q < KW; ++q) {
                            const float wv = wp[q * ccn * KG];
#pragma unroll
                            for (int r = 0; r < R; ++r) acc[r] += x[r + q] * wv;
                        }
                    }
                }
            }
        }
    }

    const int k = k0 + kk;
    if (kData && unpool_mask != nullptr) {
        // Unpooling epilogue (conv2d_backward_data_unpool): this output is the gradient with
        // respect to the output of a max pooling upg (non-overlapping windows, checked on the
        // host) of act(z); write the gradient with respect to z instead (unpool_store).
        if (!computes || k >= K) return;
        const int oy = oy0 + sy;
        if (oy >= OH) return;
        const std::int64_t pimg = bimg * (std::int64_t(OH) * OW * K);
        float* zimg = out + bimg * (std::int64_t(upg.h) * upg.w * K);  // (h, w, k) of z
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int ox = ox0 + sx0 + r;
            if (ox >= OW) break;
            const std::int64_t o = pimg + (oy * OW + ox) * K + k;
            unpool_store(zimg, upg, oy, ox, k, acc[r], unpool_pooled[o], unpool_act,
                         unpool_mask[o]);
        }
        return;
    }
    if (pooled == nullptr) {
        if (!computes || k >= K) return;
        const int oy = oy0 + sy;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int ox = ox0 + sx0 + r;
            if (oy < OH && ox < OW)
                oimg[(oy * OW + ox) * K + k] = bias ? act_forward(acc[r] + bias[k], act) : acc[r];
        }
        return;
    }
    // Max-pooling epilogue: as conv2d_forward_kernel's.
    const float bk = k < K ? bias[k] : 0.0f;
    __syncthreads();    // every thread is done reading the last chunk
    float* a_s = smem;  // (TH * TW, KG)
    if (computes) {
#pragma unroll
        for (int r = 0; r < R; ++r)
            a_s[(sy * TW + sx0 + r) * KG + kk] = act_forward(acc[r] + bk, act);
    }
    __syncthreads();
    pool_tile<TH, TW, KG>(pooled, mask, a_s, pg, bimg, oy0, ox0, k0, K, tid, NT);
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

// The strip kernel for stride 1 and a KW-column kernel whose columns fit one chunk; false (nothing
// launched) when the chunking would split the kernel's columns.
template <int TH, int TW, int KG, int KW, int R, bool kData>
bool launch_strip(const StripArgs& s, cudaStream_t stream) {
    constexpr int COLS = TW + KW - 1;
    const ConvGeom& g = s.g;
    const Chunks ch = choose_chunks(g.kh, KW, g.c, KG, [&](int ar, int aq, std::int64_t cc) {
        return std::int64_t(TH - 1 + ar) * (TW - 1 + aq) * cc;
    });
    if (ch.aq != KW) return false;
    if (s.dry_run) return true;
    const int in_tile_floats = (TH - 1 + ch.ar) * COLS * ch.cc;
    std::size_t floats = std::size_t(in_tile_floats) + std::size_t(ch.ar) * KW * ch.cc * KG;
    if (s.pooled) floats = std::max(floats, std::size_t(TH) * TW * KG);
    const std::int64_t gx = g.n * ((g.oh + TH - 1) / TH) * ((g.ow + TW - 1) / TW);
    const std::int64_t gy = (g.k + KG - 1) / KG;
    check_grid(
        gx, gy,
        kData ? "conv2d_backward_data" : (s.pooled ? "conv2d_maxpool_forward" : "conv2d_forward"));
    conv2d_forward_strip_kernel<TH, TW, KG, KW, R, kData>
        <<<dim3(unsigned(gx), unsigned(gy)), StripShape<TH, TW, KG, KW, R>::threads,
           sizeof(float) * floats, stream>>>(s.out, s.inp, s.inp_a, s.inp_act, s.weight, s.bias, g,
                                             s.act, ch.ar, ch.cc, in_tile_floats, s.pooled, s.mask,
                                             s.pg, s.unpool_mask, s.unpool_pooled, s.unpool_act,
                                             s.upg);
    MINICNN_CUDA_CHECK_LAUNCH();
    return true;
}

template <bool kData>
bool launch_strip(const StripArgs& s, cudaStream_t stream) {
    const ConvGeom& g = s.g;
    const ForwardTile t = forward_tile(g);
    if (g.sh != 1 || g.sw != 1 || (g.kw != 3 && g.kw != 5) || (t.th != 14 && t.th != 10))
        return false;
    if (t.th == 14)
        return g.kw == 5 ? launch_strip<14, 14, 8, 5, 7, kData>(s, stream)
                         : launch_strip<14, 14, 8, 3, 7, kData>(s, stream);
    return g.kw == 5 ? launch_strip<10, 10, 16, 5, 5, kData>(s, stream)
                     : launch_strip<10, 10, 16, 3, 5, kData>(s, stream);
}

}  // namespace

bool launch_strip(const StripArgs& s, bool data, cudaStream_t stream) {
    return data ? launch_strip<true>(s, stream) : launch_strip<false>(s, stream);
}

}  // namespace minicnn::cuda::conv
