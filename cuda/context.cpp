// cuda/context.cpp — Context (stream + cuBLAS handle and its workspace per device) and DeviceGuard.
#include "context.h"

#include <map>
#include <memory>
#include <utility>

#include "cuda_check.h"
#include "gpu_memory.h"
#include "minicnn/error.h"

namespace minicnn::cuda {

Context::Context(int device) : device_(device) {
    int count = 0;
    MINICNN_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
        throw DeviceError("CUDA device " + std::to_string(device) + " requested but " +
                          std::to_string(count) + " visible");
    DeviceGuard guard(device);
    try {
        MINICNN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        MINICNN_CUBLAS_CHECK(cublasCreate(&cublas_));
        // cublasSetStream resets the workspace to cuBLAS's own pool: the workspace comes after.
        MINICNN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
        cudaDeviceProp prop{};
        MINICNN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        workspace_bytes_ = std::size_t(prop.major >= 9 ? 32 : 4) << 20;
        workspace_ = detail::device_malloc(workspace_bytes_, "the cuBLAS workspace");
        MINICNN_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_));
        // FP32 compute, no TF32 (cublasSgemm's default, made explicit).
        MINICNN_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
    } catch (...) {
        release();
        throw;
    }
}

Context::~Context() {
    release();
}

Context::Context(Context&& o) noexcept
    : device_(std::exchange(o.device_, -1)),
      stream_(std::exchange(o.stream_, nullptr)),
      cublas_(std::exchange(o.cublas_, nullptr)),
      workspace_(std::exchange(o.workspace_, nullptr)),
      workspace_bytes_(std::exchange(o.workspace_bytes_, 0)) {}

Context& Context::operator=(Context&& o) noexcept {
    if (this != &o) {
        release();
        device_ = std::exchange(o.device_, -1);
        stream_ = std::exchange(o.stream_, nullptr);
        cublas_ = std::exchange(o.cublas_, nullptr);
        workspace_ = std::exchange(o.workspace_, nullptr);
        workspace_bytes_ = std::exchange(o.workspace_bytes_, 0);
    }
    return *this;
}

void Context::release() noexcept {
    if (stream_ == nullptr && cublas_ == nullptr && workspace_ == nullptr) return;
    int previous = -1;
    const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                          cudaSetDevice(device_) == cudaSuccess;
    // Errors are ignored here (a destructor never throws; at process exit the runtime may already
    // be gone), and cleared so that they are not reported by someone else's next check.
    // The handle goes first: the workspace is freed only once nothing can use it.
    if (cublas_ != nullptr) (void)cublasDestroy(cublas_);
    if (workspace_ != nullptr) (void)cudaFree(workspace_);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    if (switched) (void)cudaSetDevice(previous);
    (void)cudaGetLastError();
    cublas_ = nullptr;
    workspace_ = nullptr;
    workspace_bytes_ = 0;
    stream_ = nullptr;
}

void Context::activate() const {
    MINICNN_CUDA_CHECK(cudaSetDevice(device_));
}

void Context::synchronize() const {
    MINICNN_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

std::string Context::device_name() const {
    cudaDeviceProp prop{};
    MINICNN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + ")";
}

Context& Context::thread_default(int device) {
    thread_local std::map<int, std::unique_ptr<Context>> contexts;
    auto it = contexts.find(device);
    if (it == contexts.end())
        it = contexts.emplace(device, std::make_unique<Context>(device)).first;
    return *it->second;
}

DeviceGuard::DeviceGuard(int device) {
    MINICNN_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) MINICNN_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current != previous_)
        (void)cudaSetDevice(previous_);
    (void)cudaGetLastError();
}

}  // namespace minicnn::cuda
