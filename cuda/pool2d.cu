// cuda/pool2d.cu — 2-D max and average pooling on the GPU, forward and backward. CPU twin:
// host/cpu/pool2d.cpp. Test: tests/test_pool2d.cpp. No padding (docs/operations.md).
//
//   max forward      out[n,i,j,c]  = max_{a<kh, q<kw} inp[n, i*sh+a, j*sw+q, c]
//                    mask[n,i,j,c] = a*kw + q of the FIRST maximum in row-major window order: start
//                                    from cell (0, 0), replace only on strict > (the CPU rule, so
//                                    masks compare exactly; window_max in pool_math.cuh)
//   avg forward      out = window sum in row-major order / (kh*kw)
//   backward (mask)      dinp[n,y,x,c] = sum of dout[n,i,j,c] over windows (i, j) containing (y, x)
//                                        whose mask names (y - i*sh, x - j*sw); with an activation
//                                        folded in (dout_act), dout[o] is first multiplied by
//                                        act'(dout_a[o]) as it is read (activation_math.cuh)
//   backward (all ties)  ... over windows whose maximum (recomputed from inp) equals inp[n,y,x,c]
//   backward (avg)       ... of dout[n,i,j,c] / (kh*kw) over every window containing (y, x)
//
// Layouts: inp/dinp (n, h, w, c), out/dout/mask (n, oh, ow, c).
// Threads: forward, one thread per output element; backward, one thread per input element, which
// *gathers* over the windows that contain it (i from max(0, ceil((y-kh+1)/sh)) to min(oh-1, y/sh),
// j likewise), in (i, j) order. So overlapping windows need no atomics, every element is written
// exactly once (cells no window reaches get 0), and each sum runs in the same order as the CPU's
// scatter: the pooling results are bit-identical to the CPU's.
// The channel index is the fastest-varying part of the thread index, so warps read and write
// contiguous memory. Grid-stride loops over int64 indices: any size; at most 65535*8 blocks of 256
// threads are launched and each thread takes every (grid size)-th element.
#include <algorithm>
#include <cstdint>

#include "activation_math.cuh"
#include "conv2d_common.h"
#include "cuda_check.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"
#include "nvtx_range.h"
#include "pool_math.cuh"

namespace minicnn::cuda {

namespace {

constexpr int kThreads = 256;

// ---------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------

// One thread per output element (n, i, j, c).
__global__ void maxpool2d_forward_kernel(float* __restrict__ out,          // (n, oh, ow, c)
                                         std::int32_t* __restrict__ mask,  // (n, oh, ow, c) or null
                                         const float* __restrict__ inp,    // (n, h, w, c)
                                         const PoolGeom g) {
    const std::int64_t total = g.n * g.oh * g.ow * g.c;
    for (std::int64_t o = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
         o += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t c = o % g.c;
        std::int64_t t = o / g.c;
        const std::int64_t j = t % g.ow;
        t /= g.ow;
        const std::int64_t i = t % g.oh, n = t / g.oh;
        const float* base = inp + ((n * g.h + i * g.sh) * g.w + j * g.sw) * g.c + c;  // cell (0, 0)
        float best;
        std::int32_t pos;
        window_max(base, g.w * g.c, g.c, g.kh, g.kw, best, pos);
        out[o] = best;
        if (mask != nullptr) mask[o] = pos;
    }
}

// One thread per output element.
__global__ void avgpool2d_forward_kernel(float* __restrict__ out,        // (n, oh, ow, c)
                                         const float* __restrict__ inp,  // (n, h, w, c)
                                         const PoolGeom g) {
    const std::int64_t total = g.n * g.oh * g.ow * g.c;
    const float area = float(g.kh * g.kw);
    for (std::int64_t o = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
         o += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t c = o % g.c;
        std::int64_t t = o / g.c;
        const std::int64_t j = t % g.ow;
        t /= g.ow;
        const std::int64_t i = t % g.oh, n = t / g.oh;
        const float* base = inp + ((n * g.h + i * g.sh) * g.w + j * g.sw) * g.c + c;
        float sum = 0.0f;
        for (int a = 0; a < g.kh; ++a)
            for (int q = 0; q < g.kw; ++q) sum += base[(std::int64_t(a) * g.w + q) * g.c];
        out[o] = sum / area;
    }
}

enum class PoolBackward { mask, allties, avg };

// One thread per input element (n, y, x, c): the gather described in the file comment.
template <PoolBackward kMode>
__global__ void pool2d_backward_kernel(float* __restrict__ dinp,               // (n, h, w, c)
                                       const float* __restrict__ dout,         // (n, oh, ow, c)
                                       const std::int32_t* __restrict__ mask,  // (n, oh, ow, c)
                                       const float* __restrict__ inp,          // (n, h, w, c)
                                       const float* __restrict__ dout_a,       // (n, oh, ow, c)
                                       const Activation dout_act, const PoolGeom g) {
    const std::int64_t total = g.n * g.h * g.w * g.c;
    const float area = float(g.kh * g.kw);
    for (std::int64_t e = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t c = e % g.c;
        std::int64_t t = e / g.c;
        const std::int64_t x = t % g.w;
        t /= g.w;
        const std::int64_t y = t % g.h, n = t / g.h;
        // Windows containing row y: i*sh <= y <= i*sh + kh - 1, 0 <= i < oh. y - kh + 1 may be
        // negative: clamp before dividing, so only non-negative numbers are divided.
        const std::int64_t i_lo = y >= g.kh ? (y - g.kh + g.sh) / g.sh : 0;  // ceil((y-kh+1)/sh)
        const std::int64_t i_hi = min(g.oh - 1, y / g.sh);
        const std::int64_t j_lo = x >= g.kw ? (x - g.kw + g.sw) / g.sw : 0;
        const std::int64_t j_hi = min(g.ow - 1, x / g.sw);
        const float self = kMode == PoolBackward::allties ? inp[e] : 0.0f;
        float acc = 0.0f;
        for (std::int64_t i = i_lo; i <= i_hi; ++i) {
            for (std::int64_t j = j_lo; j <= j_hi; ++j) {
                const std::int64_t o = ((n * g.oh + i) * g.ow + j) * g.c + c;
                const int a = int(y - i * g.sh), q = int(x - j * g.sw);  // position in the window
                if (kMode == PoolBackward::mask) {
                    if (mask[o] == a * g.kw + q) acc += load_dz(dout, dout_a, dout_act, o);
                } else if (kMode == PoolBackward::avg) {
                    acc += dout[o] / area;
                } else {
                    // The window's maximum, recomputed from inp (the same comparisons as forward).
                    const float* base = inp + ((n * g.h + i * g.sh) * g.w + j * g.sw) * g.c + c;
                    float best = base[0];
                    for (int aa = 0; aa < g.kh; ++aa)
                        for (int qq = 0; qq < g.kw; ++qq) {
                            const float v = base[(std::int64_t(aa) * g.w + qq) * g.c];
                            if (v > best) best = v;
                        }
                    if (self == best) acc += dout[o];
                }
            }
        }
        dinp[e] = acc;
    }
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

// Blocks for a grid-stride loop over `total` elements (capped; the loop covers the rest).
unsigned blocks_for(std::int64_t total) {
    return unsigned(std::max<std::int64_t>(
        1, std::min<std::int64_t>((total + kThreads - 1) / kThreads, 65535 * 8)));
}

}  // namespace

void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp, const PoolGeom& g,
                       cudaStream_t stream) {
    NvtxRange range("maxpool2d_forward");
    check_geometry(g, "maxpool2d_forward");
    const std::int64_t total = g.out_numel();
    if (total == 0) return;
    maxpool2d_forward_kernel<<<blocks_for(total), kThreads, 0, stream>>>(out, mask, inp, g);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g, cudaStream_t stream) {
    NvtxRange range("avgpool2d_forward");
    check_geometry(g, "avgpool2d_forward");
    const std::int64_t total = g.out_numel();
    if (total == 0) return;
    avgpool2d_forward_kernel<<<blocks_for(total), kThreads, 0, stream>>>(out, inp, g);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void maxpool2d_backward_mask(float* dinp, const float* dout, const std::int32_t* mask,
                             const PoolGeom& g, cudaStream_t stream, const float* dout_a,
                             Activation dout_act) {
    NvtxRange range("maxpool2d_backward_mask");
    check_geometry(g, "maxpool2d_backward_mask");
    conv::check_dout_act(dout_a, dout_act, "maxpool2d_backward_mask");
    const std::int64_t total = g.in_numel();
    if (total == 0) return;
    // A mask value outside [0, kh*kw) matches no cell: such a window's gradient is dropped, never
    // written out of bounds. (The functional API rejects such masks before getting here.)
    pool2d_backward_kernel<PoolBackward::mask><<<blocks_for(total), kThreads, 0, stream>>>(
        dinp, dout, mask, nullptr, dout_a, dout_act, g);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void maxpool2d_backward_allties(float* dinp, const float* dout, const float* inp, const PoolGeom& g,
                                cudaStream_t stream) {
    NvtxRange range("maxpool2d_backward_allties");
    check_geometry(g, "maxpool2d_backward_allties");
    const std::int64_t total = g.in_numel();
    if (total == 0) return;
    pool2d_backward_kernel<PoolBackward::allties><<<blocks_for(total), kThreads, 0, stream>>>(
        dinp, dout, nullptr, inp, nullptr, Activation::linear, g);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g, cudaStream_t stream) {
    NvtxRange range("avgpool2d_backward");
    check_geometry(g, "avgpool2d_backward");
    const std::int64_t total = g.in_numel();
    if (total == 0) return;
    pool2d_backward_kernel<PoolBackward::avg><<<blocks_for(total), kThreads, 0, stream>>>(
        dinp, dout, nullptr, nullptr, nullptr, Activation::linear, g);
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace minicnn::cuda
