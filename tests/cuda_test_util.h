// tests/cuda_test_util.h — helpers for the GPU-vs-CPU tests (test_conv2d.cpp, test_pool2d.cpp,
// test_activation.cpp, test_cuda_runtime.cpp):
//   - MINICNN_SKIP_WITHOUT_GPU(): GTEST_SKIP() with the reason when this build has no CUDA
//     backend or no device is visible (the message says why: no driver, no device, built without
//     CUDA),
//   - to_device / to_host: explicit copies between std::vector and DeviceBuffer on a stream.
// The GPU parts exist only in CUDA builds (MINICNN_WITH_CUDA).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/device.h"
#ifdef MINICNN_WITH_CUDA
#include "context.h"
#include "cuda_check.h"
#include "gpu_memory.h"
#endif

namespace minicnn::test {

// True when the GPU tests can run; otherwise *why says what is missing.
inline bool gpu_visible(std::string* why) {
    if (cuda_device_count() > 0) return true;
    *why = cuda_unavailable_reason();
    return false;
}

#ifdef MINICNN_WITH_CUDA
template <class T>
cuda::DeviceBuffer<T> to_device(const std::vector<T>& v, cudaStream_t stream,
                                const char* what = "test input") {
    cuda::DeviceBuffer<T> b(v.size(), what);
    b.copy_from(v.data(), v.size(), stream);
    return b;
}

// Copies the whole buffer back and waits for the stream.
template <class T>
std::vector<T> to_host(const cuda::DeviceBuffer<T>& b, cudaStream_t stream) {
    std::vector<T> v(b.size());
    b.copy_to(v.data(), v.size(), stream);
    MINICNN_CUDA_CHECK(cudaStreamSynchronize(stream));
    return v;
}
#endif

}  // namespace minicnn::test

#define MINICNN_SKIP_WITHOUT_GPU()                                                      \
    do {                                                                                \
        std::string minicnn_why_;                                                       \
        if (!::minicnn::test::gpu_visible(&minicnn_why_))                               \
            GTEST_SKIP() << "GPU test skipped, no usable CUDA device: " << minicnn_why_ \
                         << " (run tools/gpu-check.sh on a GPU machine)";               \
    } while (0)
