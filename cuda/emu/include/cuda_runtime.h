// cuda/emu/include/cuda_runtime.h — a CPU emulation of the parts of the CUDA runtime (and of the
// device-code dialect) that minicnn uses, for cuda/emu/run.sh. Verification only: never part of a
// build.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
    unsigned x = 0, y = 0, z = 0;
};

namespace emu {
inline thread_local uint3 threadIdx_, blockIdx_;
inline thread_local dim3 blockDim_, gridDim_;
inline float* dyn_smem = nullptr;
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline float xbuf[1024];
inline std::atomic<long> launches{0};

template <class F>
void launch(F f, dim3 grid, dim3 block, std::size_t smem = 0, void* = nullptr) {
    ++launches;
    const unsigned nt = block.x * block.y * block.z;
    std::vector<float> smem_buf(smem / sizeof(float) + 1, std::nanf(""));  // poison shared memory
    dyn_smem = smem_buf.data();
    std::barrier<> bar(nt);
    block_barrier = &bar;
    warp_barriers.clear();
    for (unsigned w = 0; w < (nt + 31) / 32; ++w)
        warp_barriers.push_back(std::make_unique<std::barrier<>>(std::min(32u, nt - 32 * w)));
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < nt; ++t) {
        ts.emplace_back([&, t] {
            threadIdx_ = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            blockDim_ = block;
            gridDim_ = grid;
            for (unsigned bz = 0; bz < grid.z; ++bz)
                for (unsigned by = 0; by < grid.y; ++by)
                    for (unsigned bx = 0; bx < grid.x; ++bx) {
                        blockIdx_ = {bx, by, bz};
                        f();
                        bar.arrive_and_wait();
                    }
        });
    }
    for (auto& t : ts) t.join();
}

inline float shfl_xor(float v, int off) {
    const unsigned t = threadIdx_.x;
    auto& b = *warp_barriers[t / 32];
    xbuf[t] = v;
    b.arrive_and_wait();
    const float r = xbuf[t ^ unsigned(off)];
    b.arrive_and_wait();
    return r;
}
}  // namespace emu

#define threadIdx (::emu::threadIdx_)
#define blockIdx (::emu::blockIdx_)
#define blockDim (::emu::blockDim_)
#define gridDim (::emu::gridDim_)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __syncthreads() (::emu::block_barrier->arrive_and_wait())
#define __shfl_xor_sync(mask, v, off) (::emu::shfl_xor((v), (off)))
using std::max;
using std::min;

typedef struct CUstream_st* cudaStream_t;
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35
};
enum cudaMemcpyKind {
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
};
#define cudaStreamNonBlocking 0x01
struct cudaDeviceProp {
    char name[256];
    int major, minor;
};

inline cudaError_t& emu_last_error() {
    static cudaError_t e = cudaSuccess;
    return e;
}
inline const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "cudaSuccess";
        case cudaErrorInvalidValue:
            return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation:
            return "cudaErrorMemoryAllocation";
        default:
            return "cudaErrorUnknown";
    }
}
inline const char* cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : "emulated error";
}
inline cudaError_t cudaGetLastError() {
    cudaError_t e = emu_last_error();
    emu_last_error() = cudaSuccess;
    return e;
}
inline cudaError_t cudaMalloc(void** p, std::size_t n) {
    *p = std::malloc(n);
    if (!*p) {
        emu_last_error() = cudaErrorMemoryAllocation;
        return cudaErrorMemoryAllocation;
    }
    std::memset(*p, 0xA5, n);  // poison: reads of unwritten memory show up
    return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
    std::free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(std::size_t* f, std::size_t* t) {
    *f = std::size_t(70) << 30;
    *t = std::size_t(80) << 30;
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, std::size_t n, cudaMemcpyKind,
                                   cudaStream_t = nullptr) {
    std::memcpy(d, s, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* d, int v, std::size_t n, cudaStream_t = nullptr) {
    std::memset(d, v, n);
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* c) {
    *c = 1;
    return cudaSuccess;
}
inline int& emu_dev() {
    static int d = 0;
    return d;
}
inline cudaError_t cudaGetDevice(int* d) {
    *d = emu_dev();
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) {
    if (d != 0) return cudaErrorInvalidValue;
    emu_dev() = d;
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
    *s = reinterpret_cast<cudaStream_t>(new int(1));
    return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete reinterpret_cast<int*>(s);
    return cudaSuccess;
}
inline cudaError_t cudaStreamGetFlags(cudaStream_t, unsigned* f) {
    *f = cudaStreamNonBlocking;
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
    std::strcpy(p->name, "Emulated GPU");
    p->major = 9;
    p->minor = 0;
    return cudaSuccess;
}
