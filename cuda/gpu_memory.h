// cuda/gpu_memory.h — device memory: DeviceBuffer<T>, a move-only RAII owner, and DeviceView<T>, a
// non-owning (pointer, count) pair.
//
// Copying a DeviceBuffer is deleted (a device copy is never an accident: use copy_from / copy_to);
// moving transfers ownership; the destructor frees with cudaFree and never throws. Allocation
// failure throws minicnn::DeviceError; running out of memory says how many bytes were asked for,
// for what, and how much the device had free:
//   "out of GPU memory: asked for 1073741824 bytes (1024.0 MiB) for conv2d dinp, 512.3 MiB free of
//    81559.0 MiB"
// Host-only header (no device code): usable from .cpp files compiled by g++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include <cuda_runtime.h>

#include "cuda_check.h"
#include "minicnn/error.h"

namespace minicnn::cuda {

namespace detail {

// cudaMalloc that throws DeviceError with the sizes on failure. Returns nullptr for 0 bytes.
inline void* device_malloc(std::size_t bytes, const char* what) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaSuccess) return p;
    (void)cudaGetLastError();  // an allocation failure is not sticky: clear it
    if (err == cudaErrorMemoryAllocation) {
        std::size_t free_b = 0, total_b = 0;
        const bool have_info = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
        (void)cudaGetLastError();
        char buf[256];
        const double mib = 1024.0 * 1024.0;
        if (have_info) {
            std::snprintf(buf, sizeof buf,
                          "out of GPU memory: asked for %zu bytes (%.1f MiB) for %s, %.1f MiB free "
                          "of %.1f MiB",
                          bytes, double(bytes) / mib, what, double(free_b) / mib,
                          double(total_b) / mib);
        } else {
            std::snprintf(buf, sizeof buf,
                          "out of GPU memory: asked for %zu bytes (%.1f MiB) for %s (free memory "
                          "unknown)",
                          bytes, double(bytes) / mib, what);
        }
        throw ::minicnn::DeviceError(buf);
    }
    throw ::minicnn::DeviceError(std::string("cudaMalloc of ") + std::to_string(bytes) +
                                 " bytes for " + what + " failed: " + cudaGetErrorName(err) + " (" +
                                 cudaGetErrorString(err) + ")");
}

// count * size bytes, or DeviceError when that does not fit in size_t (a wrapped product would
// allocate a few bytes while the buffer claims `count` elements).
inline std::size_t checked_bytes(std::size_t count, std::size_t size, const char* what) {
    if (size != 0 && count > SIZE_MAX / size)
        throw ::minicnn::DeviceError("out of GPU memory: asked for " + std::to_string(count) +
                                     " elements of " + std::to_string(size) + " bytes for " + what +
                                     ", more bytes than size_t holds");
    return count * size;
}

}  // namespace detail

// A non-owning view of `count` elements of device memory.
template <class T>
struct DeviceView {
    T* ptr = nullptr;
    std::size_t count = 0;

    T* data() const { return ptr; }
    std::size_t size() const { return count; }
    std::size_t bytes() const { return count * sizeof(T); }
};

template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    // `what` names the buffer in an out-of-memory message ("conv2d weight", "pool mask", ...).
    explicit DeviceBuffer(std::size_t count, const char* what = "a device buffer")
        : ptr_(static_cast<T*>(
              detail::device_malloc(detail::checked_bytes(count, sizeof(T), what), what))),
          count_(count) {}

    DeviceBuffer(const DeviceBuffer&) = delete;  // no accidental device copies
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept
        : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release_memory();
            ptr_ = std::exchange(o.ptr_, nullptr);
            count_ = std::exchange(o.count_, 0);
        }
        return *this;
    }
    ~DeviceBuffer() { release_memory(); }

    T* data() { return ptr_; }
    const T* data() const { return ptr_; }
    std::size_t size() const { return count_; }
    std::size_t bytes() const { return count_ * sizeof(T); }
    bool empty() const { return count_ == 0; }
    DeviceView<T> view() { return {ptr_, count_}; }
    DeviceView<const T> view() const { return {ptr_, count_}; }

    // Reallocates when the buffer holds fewer than `count` elements (contents are not kept).
    void ensure(std::size_t count, const char* what = "a device buffer") {
        if (count <= count_) return;
        release_memory();
        ptr_ = static_cast<T*>(
            detail::device_malloc(detail::checked_bytes(count, sizeof(T), what), what));
        count_ = count;
    }

    // Host -> device, `count` elements (<= size()), ordered on `stream`. The host memory may be
    // reused as soon as this returns for pageable memory; for pinned memory, after the stream
    // syncs.
    void copy_from(const T* host, std::size_t count, cudaStream_t stream) {
        require_fits(count, "copy_from");
        if (count == 0) return;
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
    }
    // Device -> host, `count` elements; the host data is valid after the stream synchronises.
    void copy_to(T* host, std::size_t count, cudaStream_t stream) const {
        require_fits(count, "copy_to");
        if (count == 0) return;
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(host, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
    }
    // Zero-fills the whole buffer on `stream`.
    void zero(cudaStream_t stream) {
        if (count_ == 0) return;
        MINICNN_CUDA_CHECK(cudaMemsetAsync(ptr_, 0, bytes(), stream));
    }

private:
    void require_fits(std::size_t count, const char* op) const {
        if (count > count_)
            throw ::minicnn::ArgumentError(std::string("DeviceBuffer::") + op + ": " +
                                           std::to_string(count) + " elements requested but the " +
                                           "buffer holds " + std::to_string(count_));
    }
    void release_memory() noexcept {
        // Never throws. A failure here cannot be acted on; clear it so that the next launch check
        // does not report it as its own.
        if (ptr_ != nullptr && cudaFree(ptr_) != cudaSuccess) (void)cudaGetLastError();
        ptr_ = nullptr;
        count_ = 0;
    }

    T* ptr_ = nullptr;
    std::size_t count_ = 0;
};

}  // namespace minicnn::cuda
