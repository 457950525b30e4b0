// cuda/pool_math.cuh — the max-pooling window scan as a device function, the one definition of the
// first-maximum rule on the GPU: cuda/pool2d.cu (max pooling) and cuda/conv2d.cu (the forward
// kernel's fused max-pooling epilogue, conv2d_maxpool_forward). CPU twin: host/pool2d.cpp.
//
//   best = the window's maximum; pos = a*kw + q of its FIRST occurrence in row-major window order:
//   start from cell (0, 0), replace only on strict > (so a NaN in cell (0, 0) stays the result,
//   and masks compare exactly with the CPU's).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace minicnn::cuda {

// Cell (a, q) of the window is base[a * row_stride + q * col_stride].
__device__ inline void window_max(const float* base, std::int64_t row_stride,
                                  std::int64_t col_stride, int kh, int kw, float& best,
                                  std::int32_t& pos) {
    best = base[0];
    pos = 0;
    for (int a = 0; a < kh; ++a) {
        for (int q = 0; q < kw; ++q) {
            const float v = base[a * row_stride + q * col_stride];
            if (v > best) {
                best = v;
                pos = a * kw + q;
            }
        }
    }
}

}  // namespace minicnn::cuda
