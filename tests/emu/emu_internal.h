// tests/emu/emu_internal.h — what the parts of the CUDA emulator share (never included by the code
// under test): errors and checker reports, the emulated devices and their allocations with per-word
// shadow state, streams and their capture into graphs. Everything runs under g_mu.
//   state.cpp    this header's definitions
//   device.cpp   fibers, the block scheduler, the checker, the device-code entry points
//   launch.cpp   kernel launches: the launch limits, lazy loading, the launch records
//   runtime.cpp  the CUDA runtime API
//   cublas.cpp   cuBLAS
//   nccl.cpp     NCCL
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace emu {

extern std::recursive_mutex g_mu;  // every API call and every launch runs under it
using Lock = std::lock_guard<std::recursive_mutex>;

extern cudaError_t g_sticky;             // a fault: every later call fails with it
extern thread_local cudaError_t t_last;  // what cudaGetLastError returns next
extern long g_errors;                    // checker reports so far
extern std::string g_last_reports;
extern long g_launches, g_operations;
extern std::uint32_t g_launch_ids;  // 0 and 1 are "never written" and "host write"

cudaError_t set_error(cudaError_t e);
// A checker report: a bug (counted; the run fails). A note is what the real runtime answers with
// an error code that the caller sees anyway.
void report(const char* kind, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void note(const char* kind, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

int device_count();
extern thread_local int t_device;
constexpr std::size_t kSmemLimit = 48 * 1024;  // shared memory per block, without an opt-in
extern std::size_t g_used[64];
extern std::size_t g_alloc_limit;

constexpr std::size_t kDeviceMemory = std::size_t(80) << 30;  // what each emulated device holds
extern std::size_t g_device_memory;                           // set_device_memory (0: default)
// What each emulated device holds now: kDeviceMemory unless set_device_memory said otherwise.
inline std::size_t device_memory() {
    return g_device_memory ? g_device_memory : kDeviceMemory;
}
// Free memory of device d: what it holds less what is allocated (0 when that is more).
inline std::size_t device_free(int d) {
    return g_used[d] >= device_memory() ? 0 : device_memory() - g_used[d];
}
constexpr std::size_t kRedzone = 256;
// One 4-byte word of global memory. w_launch: 0 never written, 1 written by a copy or memset,
// otherwise the id of the launch that wrote it last.
struct GWord {
    std::uint32_t w_launch, w_block, w_thread, w_phase;
    std::uint32_t r_launch, r_block;  // r_block kManyBlocks: read by several blocks
};
constexpr std::uint32_t kManyBlocks = 0xFFFFFFFFu;
constexpr std::uint32_t kHostWrite = 1;
struct Alloc {
    char* raw = nullptr;  // raw .. raw + size + 2 redzones
    std::uintptr_t user = 0;
    std::size_t size = 0;
    int device = 0;
    long id = 0;
    GWord* shadow = nullptr;  // size / 4 + 1 words, mmap'ed (zero pages until touched)
    std::size_t shadow_bytes = 0;
};
inline GWord* gword(const Alloc* a, std::uintptr_t p) {
    return a->shadow + (p - a->user) / 4;
}
extern std::map<std::uintptr_t, Alloc> g_allocs;  // by user address
extern long g_alloc_ids;
extern const Alloc* g_last_alloc;

// The allocation whose user range or redzones contain p, or null.
const Alloc* find_alloc(std::uintptr_t p, bool* in_redzone);
// [p, p + n) as device memory of one allocation, or null.
const Alloc* device_range(const void* p, std::size_t n);
std::string describe_global(std::uintptr_t p);
// Marks [p, p + n) of allocation a as written by a copy / memset (or copies the state of src).
void host_write(const Alloc* a, std::uintptr_t p, std::size_t n, const Alloc* src = nullptr,
                std::uintptr_t sp = 0);

struct Graph {
    std::vector<std::function<void()>> ops;
};
struct Stream {
    int device = 0;
    unsigned flags = 0;
    bool capturing = false;
    bool invalidated = false;
    std::unique_ptr<Graph> graph;
};
struct Event {
    std::chrono::steady_clock::time_point t{};
    bool recorded = false;
};
inline Stream* as_stream(cudaStream_t s) {
    return reinterpret_cast<Stream*>(s);
}
extern std::set<Stream*> g_streams;
extern int g_captures;  // streams being captured (global mode: any of them forbids sync calls)

// An unsafe call while a capture is active: the real runtime's cudaErrorStreamCaptureUnsupported
// (global capture mode), and every capture is invalidated. False when no capture is active.
bool capture_violation(const char* what);
// Runs `op` on `stream` now, or records it into the stream's graph under capture.
cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> op);
// Runs a launch's blocks now, on the calling thread (the stream's turn has come): device.cpp.
void execute(const char* name, const char* file, int line, std::function<void()>& body, dim3 grid,
             dim3 block, std::size_t dyn, int device);

// NCCL (nccl.cpp): whether an ncclAllReduce that has not finished (a peer has not posted yet) is on
// stream s, or, with s null, on any stream of `device`; whether one reads or writes a byte of
// [begin, begin + size).
bool nccl_busy(const Stream* s, int device);
bool nccl_reads(std::uintptr_t begin, std::size_t size);

}  // namespace emu
