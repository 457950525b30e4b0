// cuda/context.h — minicnn::cuda::Context: where the CUDA backend runs.
//
// A Context owns, for one device ordinal, a non-blocking stream (never the legacy default stream)
// and a cuBLAS handle bound to that stream, with a workspace of its own set on the handle
// (cublasSetWorkspace: without one, cuBLAS draws on a pool it manages itself, which a CUDA graph
// capture cannot record) and the default math mode (FP32 compute, no TF32: the dense layers' GEMMs,
// cuda/dense.cu). It is move-only; the destructor releases all three and never throws. Everything the library launches for a caller goes on context.stream(); nothing
// synchronises except synchronize() and the host copies of the functional API.
//
// Pass one to the functional API with Device{Backend::cuda, index, &ctx}; without one, each thread
// gets a default context per device (Context::thread_default).
// Host-only header: usable from .cpp files compiled by g++.
#pragma once

#include <cstddef>
#include <string>

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace minicnn::cuda {

class Context {
public:
    // Throws DeviceError when the device does not exist or the stream / handle cannot be created.
    explicit Context(int device = 0);
    ~Context();
    Context(Context&& o) noexcept;
    Context& operator=(Context&& o) noexcept;
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    int device() const { return device_; }
    cudaStream_t stream() const { return stream_; }
    cublasHandle_t cublas() const { return cublas_; }
    // The cuBLAS workspace's size: NVIDIA's recommendation for the device (32 MiB on Hopper,
    // sm_90 and later, 4 MiB before; cuBLAS guide, cublasSetWorkspace).
    std::size_t cublas_workspace_bytes() const { return workspace_bytes_; }

    // Makes this context's device current on the calling thread.
    void activate() const;
    // Waits for everything queued on the stream; throws DeviceError on a failure reported there.
    void synchronize() const;
    // "NVIDIA H100 80GB HBM3 (sm_90)".
    std::string device_name() const;

    // This thread's context for `device`, created on first use and kept until the thread exits.
    static Context& thread_default(int device);

private:
    void release() noexcept;

    int device_ = -1;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    void* workspace_ = nullptr;  // the handle's workspace (cudaMalloc: 256-byte aligned)
    std::size_t workspace_bytes_ = 0;
};

// Makes `device` current for a scope and restores the previous device afterwards.
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = -1;
};

}  // namespace minicnn::cuda
