// cuda/conv2d_filter.cu — the 2-D convolution's filter gradient on the GPU (the forward and
// backward data kernels are in cuda/conv2d.cu; CPU twin host/cpu/conv2d.cpp; test tests/test_conv2d.cpp):
//
//   filter    dweight[a,q,c,k] = sum_{n,i,j} Apad[n, i*sh+a, j*sw+q, c] * dout[n,i,j,k]
//             dbias[k]         = sum_{n,i,j} dout[n,i,j,k]
//
// Backward filter is an implicit GEMM, dweight (R x K) = Apatch^T (R x P) * dout (P x K) with
// R = kh*kw*c reduction rows plus one extra row of ones for dbias, and P = n*oh*ow positions. P is
// cut into S segments (S depends only on the geometry). Pass 1: a block owns a 32 (r) x KT (k)
// tile for one segment, KT = 8, 16 or 32 by the number of output channels; it stages 64
// positions at a time of Apatch and dout in shared memory (each staging thread keeps one tile row
// and walks positions with an incremental (n, i, j) cursor: no division in the loop); each thread
// sums 4 x 4 entries over its slice of the positions, the slices are added in slice order, and the
// tile goes to workspace[s][r][k]. Pass 2: one warp per (r, k), many blocks: lane l adds segments
// l, l+32, ... in order, then a fixed shuffle tree. No atomics anywhere: every sum has a fixed
// order, so results are bit-identical run to run. Indices are 32-bit where the host has checked
// that the sizes fit (positions, one image, the filter), image bases 64-bit.
#include <algorithm>
#include <cstdint>

#include "activation_math.cuh"
#include "conv2d_common.h"
#include "cuda_check.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"
#include "nvtx_range.h"

namespace minicnn::cuda {

namespace {

using conv::check_dout_act;
using conv::check_grid;
using conv::kThreads;

constexpr int kFiltRT = 32;  // reduction rows (a, q, c) per block
constexpr int kFiltPC = 64;  // positions staged per step
constexpr int kWarp = 32;

// Pass 1. Block (r tile, k tile, segment s): workspace[s][r][k] = sum over the positions p of
// segment s of Apatch[p][r] * dout[p][k]; row r == R (= kh*kw*c) is the bias row (Apatch = 1).
// The block's 32 x KT tile (KT = 8, 16 or 32: the smallest that covers k, so conv1's 6 channels
// fill 75% of it, not 19%) is split into 4 x 4 entries per thread (rows 4 tr.., channels 4 tk..):
// E = 2 * KT thread groups; the 256 / E groups of threads ("slices") take every (256/E)-th staged
// position, and the slices' sums are added in slice order at the end. Per position a thread reads
// its 4 Apatch and 4 dout values as two 16-byte shared loads (the tiles are 16-byte aligned) and
// does 16 FMAs. Staging: thread t always stages tile row t % 32 (its
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
    constexpr int KQ = KT / 4;                 // thread groups along k
    constexpr int E = (kFiltRT / 4) * KQ;      // thread groups (4 x 4 entries each)
    constexpr int PS = kThreads / E;           // position slices
    constexpr int ASTEP = kThreads / kFiltRT;  // positions between a thread's staged Apatch values
    constexpr int DSTEP = kThreads / KT;       // ... and dout values
    static_assert(kThreads % E == 0 && kFiltPC % PS == 0, "tile must split evenly");
    __shared__ __align__(16) float a_s[kFiltPC][kFiltRT];  // Apatch of the staged positions
    __shared__ __align__(16) float d_s[kFiltPC][KT];       // dout of the staged positions
    __shared__ float red_s[PS > 1 ? PS - 1 : 1][16][E];    // slices 1.. for the final sum

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

    // Compute: this thread's 4 x 4 entries (rows 4 tr.., channels 4 tk..) and position slice.
    const int grp = tid % E, slice = tid / E;
    const int tr = grp / KQ, tk = grp % KQ;
    float acc[4][4];
#pragma unroll
    for (int u = 0; u < 16; ++u) acc[u / 4][u % 4] = 0.0f;

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
#pragma unroll 4
        for (int pp = slice; pp < kFiltPC; pp += PS) {
            // 8 shared loads (two 16-byte vectors where the compiler proves the alignment) for
            // 16 FMAs.
            float x[4], d[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                x[u] = a_s[pp][4 * tr + u];
                d[u] = d_s[pp][4 * tk + u];
            }
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
                for (int v = 0; v < 4; ++v) acc[u][v] += x[u] * d[v];
        }
    }

    // The slices' sums, added in slice order by slice 0.
    if (PS > 1) {
        if (slice > 0) {
#pragma unroll
            for (int u = 0; u < 16; ++u) red_s[slice - 1][u][grp] = acc[u / 4][u % 4];
        }
        __syncthreads();
        if (slice > 0) return;
        for (int s2 = 0; s2 < PS - 1; ++s2)
#pragma unroll
            for (int u = 0; u < 16; ++u) acc[u / 4][u % 4] += red_s[s2][u][grp];
    }
    float* wseg = workspace + std::int64_t(seg) * (R + 1) * K;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
#pragma unroll
        for (int v = 0; v < 4; ++v) {
            const int rw = r0 + 4 * tr + u, kw = k0 + 4 * tk + v;
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

std::size_t conv2d_backward_filter_workspace(const ConvGeom& g) {
    check_geometry(g, "conv2d_backward_filter_workspace");
    const Segments seg = filter_segments(g);
    const std::int64_t R1 = std::int64_t(g.kh) * g.kw * g.c + 1;
    return sizeof(float) * std::size_t(seg.count * R1 * g.k);
}

void conv2d_backward_filter(float* dweight, float* dbias, const float* dout, const float* inp,
                            const ConvGeom& g, void* workspace, cudaStream_t stream,
                            const float* dout_a, Activation dout_act) {
    NvtxRange range("conv2d_backward_filter");
    check_geometry(g, "conv2d_backward_filter");
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
