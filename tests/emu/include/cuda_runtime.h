// tests/emu/include/cuda_runtime.h — a CPU emulation of the CUDA runtime API and of the device-code
// dialect that minicnn uses, for tests/emu/run.sh. Verification only: never part of a real build.
//
// Device code. tests/emu/transform.py rewrites each cuda/*.cu into C++: a launch
// `k<<<grid, block, smem, stream>>>(args)` becomes ::emu::launch(...) with a closure that holds the
// arguments by value (as a real launch copies them, and as a captured graph keeps them); shared
// memory declarations become slices of the block's emulated shared memory; every kernel body opens
// with a KernelScope. The rewritten file is compiled with GCC's ThreadSanitizer instrumentation
// (-fsanitize=thread): the __tsan_read*/__tsan_write* calls that GCC emits for every load and store
// land in the emulator's checker (tests/emu/device.cpp), not in the TSan runtime, which is never
// linked. Each CUDA thread is a fiber; blocks run one after another in a shuffled order.
//
// The host API below is implemented in runtime.cpp (the device-code glue in device.cpp); errors are reported the way the real runtime
// reports them (return codes, sticky errors after a fault), so the library's own checking code is
// what runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
    unsigned x = 0, y = 0, z = 0;
};

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
typedef struct CUgraph_st* cudaGraph_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInsufficientDriver = 35,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorUnknown = 999
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02

struct cudaDeviceProp {
    char name[256];
    int major, minor;
    int multiProcessorCount;
    std::size_t totalGlobalMem;
    std::size_t sharedMemPerBlock;
    int maxThreadsPerBlock;
    int warpSize;
};

const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaMalloc(void** p, std::size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
    return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned* flags);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

// ---- the emulator's own interface (device-code glue, test hooks) ------------------------------
namespace emu {

// Marks the body of a kernel: the checker looks at memory accesses only inside it (not at the
// launch glue that copies the arguments).
struct KernelScope {
    KernelScope();
    ~KernelScope();
};

// Runs `body` as a kernel of grid x block threads on `stream` (or records it when the stream is
// being captured). `name`, `file` and `line` name the launch in reports.
void launch(const char* name, const char* file, int line, std::function<void()> body, dim3 grid,
            dim3 block, std::size_t dynamic_smem = 0, cudaStream_t stream = nullptr);

// The first statement of every kernel body (transform.py puts it there): while the launch probes
// the kernel (emu::launch, before it enqueues anything), it records the kernel's
// __launch_bounds__ (`bound`, 0 when it has none) and its instantiated signature (the compiler's
// __PRETTY_FUNCTION__), and the kernel returns at once; otherwise it returns false and the body
// runs.
bool kernel_probe(unsigned bound, const char* signature);

uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
// The block's dynamic shared memory, and the slot `id` (one per __shared__ declaration of the
// file) of its static shared memory.
void* dynamic_smem();
void* static_smem(int id, std::size_t bytes, std::size_t align);
// Warp shuffles exchange 8-byte payloads. kind: 0 xor (arg: lane mask), 1 down (arg: delta),
// 2 index (arg: source lane).
std::uint64_t shuffle_bits(int kind, unsigned mask, std::uint64_t bits, int arg, const char* file,
                           int line);
template <class T>
T shuffle(int kind, unsigned mask, T v, int arg, const char* file, int line) {
    static_assert(sizeof(T) <= 8, "shuffle of a type larger than 8 bytes");
    std::uint64_t b = 0;
    std::memcpy(&b, &v, sizeof v);
    b = shuffle_bits(kind, mask, b, arg, file, line);
    std::memcpy(&v, &b, sizeof v);
    return v;
}

// Atomic read-modify-write (accesses that are exempt from the race checks).
float atomic_add(float* p, float v);
int atomic_add(int* p, int v);
unsigned atomic_add(unsigned* p, unsigned v);
unsigned long long atomic_add(unsigned long long* p, unsigned long long v);

// ---- for tests of the emulator itself and for its gtest listener
// Number of checker reports so far, and the text of the last `max` of them.
long error_count();
const char* last_reports();
// Forgets which kernels each device has loaded, as a new process would: the gtest listener calls it
// at the start of every test, so a test that captures a kernel's first launch is caught when it
// runs after others too (the "lazy loading" report of emu::launch).
void unload_kernels();
// Makes every cudaMalloc of more than `bytes` fail (0: no limit beyond the emulated memory).
void set_allocation_limit(std::size_t bytes);
// Makes each emulated device hold `bytes` (0: the default, 80 GiB): what cudaMemGetInfo and
// cudaGetDeviceProperties report as its total, and what cudaMalloc can allocate in all. For tests
// of what does not fit; the memory already allocated stays allocated (free memory is 0 when it
// exceeds the new total).
void set_device_memory(std::size_t bytes);
// Kernel launches so far (all streams, graph replays included), and device operations enqueued
// (launches, library calls, copies, memsets) on any stream.
long launch_count();
long operation_count();
// While on, the name of every device operation enqueued on a stream (the kernel's name,
// "cublasSgemm", "cudaMemcpyAsync", "cudaMemsetAsync", "cudaGraphLaunch") is appended to a log, one
// per line; record_operations(true) clears the log. For tests that count what a step enqueues
// (CudaEngine.DeviceOperationsPerTrainingStep).
void record_operations(bool on);
const char* recorded_operations();

}  // namespace emu

// ---- the device-code dialect -------------------------------------------------------------------
#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)  // transform.py passes the bound to emu::kernel_probe
#define __syncthreads() (::emu::syncthreads(__FILE__, __LINE__))
#define __syncwarp(...) (::emu::syncwarp(0xffffffffu, __FILE__, __LINE__))
#define __shfl_xor_sync(mask, v, off, ...) \
    (::emu::shuffle(0, (mask), (v), int(off), __FILE__, __LINE__))
#define __shfl_down_sync(mask, v, d, ...) \
    (::emu::shuffle(1, (mask), (v), int(d), __FILE__, __LINE__))
#define __shfl_sync(mask, v, src, ...) \
    (::emu::shuffle(2, (mask), (v), int(src), __FILE__, __LINE__))
#define atomicAdd(p, v) (::emu::atomic_add((p), (v)))
#define __ldg(p) (*(p))
using std::max;
using std::min;
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline int __float_as_int(float f) {
    int i;
    std::memcpy(&i, &f, 4);
    return i;
}
inline float __fdividef(float a, float b) {
    return a / b;
}
inline float __expf(float x) {
    return std::exp(x);
}
