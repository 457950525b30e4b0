// cuda/activation.cu — activations on the GPU, forward and backward. CPU twin: host/cpu/activation.cpp.
// Test: tests/test_activation.cpp. Data is a (rows, cols) row-major matrix; softmax normalises each
// row (the last axis), the others are elementwise. bias_activation_forward adds a bias (cols) to
// every row first, in the same kernels (the epilogue of cuda/dense.cu's cuBLAS GEMMs).
//
//   forward    linear  x             relu  x > 0 ? x : 0     tanh  tanh(x)
//              sigmoid 1 / (1 + e^-x)
//              softmax e^(x - max_row) / sum_row e^(x - max_row)
//   backward   (from dout and the forward *output* a)
//              linear  dout          relu  a > 0 ? dout : 0  tanh  dout * (1 - a^2)
//              sigmoid dout * a * (1 - a)
//              softmax a * (dout - sum_row(dout * a))
//
// Threads: elementwise kernels, one thread per element (grid-stride over an int64 index). Softmax,
// one warp per row (grid-stride over rows): each lane walks the columns lane, lane+32, ... and the
// row's max / sum / dot is combined with a fixed butterfly of warp shuffles, so the order of every
// sum is fixed and results are bit-identical run to run. Every lane has finished reading its row
// before the butterfly completes, so out may alias in (forward) and din may alias dout (backward).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cpu/activation.h"  // check_activation_args, shared with the CPU twin
#include "activation_math.cuh"
#include "cuda_check.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"
#include "nvtx_range.h"

namespace minicnn::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

// ---------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------

// One thread per element: out = act(in + bias[column]) (no add when bias is null). out may alias
// in.
__global__ void activation_forward_kernel(float* out,         // (total)
                                          const float* in,    // (total)
                                          const float* bias,  // (cols) or null
                                          std::int64_t total, std::int64_t cols, Activation act) {
    for (std::int64_t e = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += std::int64_t(gridDim.x) * blockDim.x)
        out[e] = act_forward(bias ? in[e] + bias[e % cols] : in[e], act);
}

// One thread per element. din may alias dout.
__global__ void activation_backward_kernel(float* din,         // (total)
                                           const float* dout,  // (total)
                                           const float* out,   // (total) forward output
                                           std::int64_t total, Activation act) {
    for (std::int64_t e = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += std::int64_t(gridDim.x) * blockDim.x)
        din[e] = act_backward(dout[e], out[e], act);
}

__device__ inline float warp_max(float v) {
    for (int off = kWarp / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}
__device__ inline float warp_sum(float v) {
    for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// One warp per row. The loop bound is the same for all lanes of a warp (the row index is per
// warp), so the full-mask shuffles are reached by all 32 lanes.
__global__ void softmax_forward_kernel(float* out,         // (rows, cols)
                                       const float* in,    // (rows, cols)
                                       const float* bias,  // (cols), added to each row, or null
                                       std::int64_t rows, std::int64_t cols) {
    const int lane = threadIdx.x % kWarp;
    const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x / kWarp);
    for (std::int64_t r = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; r < rows;
         r += warps) {
        const float* x = in + r * cols;  // (cols)
        float* y = out + r * cols;       // (cols)
        auto xb = [&](std::int64_t j) { return bias ? x[j] + bias[j] : x[j]; };
        float m = -INFINITY;
        for (std::int64_t j = lane; j < cols; j += kWarp) m = fmaxf(m, xb(j));
        m = warp_max(m);
        float s = 0.0f;
        for (std::int64_t j = lane; j < cols; j += kWarp) s += expf(xb(j) - m);
        s = warp_sum(s);
        for (std::int64_t j = lane; j < cols; j += kWarp) y[j] = expf(xb(j) - m) / s;
    }
}

// One warp per row: din = a * (dout - sum(dout * a)).
__global__ void softmax_backward_kernel(float* din,         // (rows, cols)
                                        const float* dout,  // (rows, cols)
                                        const float* out,   // (rows, cols) forward output
                                        std::int64_t rows, std::int64_t cols) {
    const int lane = threadIdx.x % kWarp;
    const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x / kWarp);
    for (std::int64_t r = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; r < rows;
         r += warps) {
        const float* dy = dout + r * cols;  // (cols)
        const float* a = out + r * cols;    // (cols)
        float* dx = din + r * cols;         // (cols)
        float dot = 0.0f;
        for (std::int64_t j = lane; j < cols; j += kWarp) dot += dy[j] * a[j];
        dot = warp_sum(dot);
        for (std::int64_t j = lane; j < cols; j += kWarp) dx[j] = a[j] * (dy[j] - dot);
    }
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

unsigned blocks_for(std::int64_t threads) {
    return unsigned(std::max<std::int64_t>(
        1, std::min<std::int64_t>((threads + kThreads - 1) / kThreads, 65535 * 8)));
}

}  // namespace

namespace {

void launch_forward(float* out, const float* in, const float* bias, std::int64_t rows,
                    std::int64_t cols, Activation act, cudaStream_t stream, const char* op) {
    cpu::check_activation_args(rows, cols, act, op);
    if (rows == 0 || cols == 0) return;
    if (act == Activation::softmax) {
        softmax_forward_kernel<<<blocks_for(rows * kWarp), kThreads, 0, stream>>>(out, in, bias,
                                                                                  rows, cols);
    } else {
        activation_forward_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(
            out, in, bias, rows * cols, cols, act);
    }
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void activation_forward(float* out, const float* in, std::int64_t rows, std::int64_t cols,
                        Activation act, cudaStream_t stream) {
    NvtxRange range("activation_forward");
    launch_forward(out, in, nullptr, rows, cols, act, stream, "activation_forward");
}

void activation_backward(float* din, const float* dout, const float* out, std::int64_t rows,
                         std::int64_t cols, Activation act, cudaStream_t stream) {
    NvtxRange range("activation_backward");
    cpu::check_activation_args(rows, cols, act, "activation_backward");
    if (rows == 0 || cols == 0) return;
    if (act == Activation::softmax) {
        softmax_backward_kernel<<<blocks_for(rows * kWarp), kThreads, 0, stream>>>(din, dout, out,
                                                                                   rows, cols);
    } else {
        activation_backward_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(
            din, dout, out, rows * cols, act);
    }
    MINICNN_CUDA_CHECK_LAUNCH();
}

void bias_activation_forward(float* out, const float* in, const float* bias, std::int64_t rows,
                             std::int64_t cols, Activation act, cudaStream_t stream) {
    NvtxRange range("bias_activation_forward");
    launch_forward(out, in, bias, rows, cols, act, stream, "bias_activation_forward");
}

}  // namespace minicnn::cuda
