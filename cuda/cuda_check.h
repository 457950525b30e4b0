// cuda/cuda_check.h — the checking macros of the CUDA backend.
//
// Every CUDA runtime and cuBLAS call of the library goes through one of these. A failure throws
// minicnn::DeviceError naming the file, the line, the failing expression and CUDA's own message;
// the library never calls exit(). Host-only header (cuda_runtime.h, cublas_v2.h): usable from .cpp
// files compiled by g++.
//
//   MINICNN_CUDA_CHECK(cudaMemcpyAsync(...));     // cudaError_t
//   MINICNN_CUBLAS_CHECK(cublasSgemm(...));        // cublasStatus_t
//   kernel<<<grid, block, smem, stream>>>(...);
//   MINICNN_CUDA_CHECK_LAUNCH();                   // cudaGetLastError(); with
//                                                  // MINICNN_CUDA_SYNC_CHECK also synchronises,
//                                                  // so a fault names its launch
#pragma once

#include <string>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "minicnn/error.h"

namespace minicnn::cuda::detail {

inline std::string cuda_error_message(cudaError_t err, const char* expr, const char* file,
                                      int line) {
    return std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
           ") at " + file + ":" + std::to_string(line) + " in `" + expr + "`";
}

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file,
                                          int line) {
    // Clear a non-sticky error so that it is not reported again by the next launch check.
    (void)cudaGetLastError();
    throw ::minicnn::DeviceError(cuda_error_message(err, expr, file, line));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file,
                                            int line) {
    throw ::minicnn::DeviceError(std::string("cuBLAS error ") + cublasGetStatusName(st) + " (" +
                                 cublasGetStatusString(st) + ") at " + file + ":" +
                                 std::to_string(line) + " in `" + expr + "`");
}

}  // namespace minicnn::cuda::detail

#define MINICNN_CUDA_CHECK(expr)                                                          \
    do {                                                                                  \
        const cudaError_t minicnn_cuda_err_ = (expr);                                     \
        if (minicnn_cuda_err_ != cudaSuccess)                                             \
            ::minicnn::cuda::detail::throw_cuda_error(minicnn_cuda_err_, #expr, __FILE__, \
                                                      __LINE__);                          \
    } while (0)

#define MINICNN_CUBLAS_CHECK(expr)                                                           \
    do {                                                                                     \
        const cublasStatus_t minicnn_cublas_st_ = (expr);                                    \
        if (minicnn_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                     \
            ::minicnn::cuda::detail::throw_cublas_error(minicnn_cublas_st_, #expr, __FILE__, \
                                                        __LINE__);                           \
    } while (0)

// After a kernel launch: launch errors (bad configuration, too much shared memory) are reported by
// cudaGetLastError(); faults inside the kernel only at the next synchronisation, which
// MINICNN_CUDA_SYNC_CHECK builds force right here so the error points at this launch.
#ifdef MINICNN_CUDA_SYNC_CHECK
#define MINICNN_CUDA_CHECK_LAUNCH()                  \
    do {                                             \
        MINICNN_CUDA_CHECK(cudaGetLastError());      \
        MINICNN_CUDA_CHECK(cudaDeviceSynchronize()); \
    } while (0)
#else
#define MINICNN_CUDA_CHECK_LAUNCH() MINICNN_CUDA_CHECK(cudaGetLastError())
#endif
