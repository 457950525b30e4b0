// tests/emu/runtime.cpp — the CUDA emulator's runtime API (tests/emu/include/cuda_runtime.h):
// devices, memory, copies and memsets (which keep the checker's shadow state of device memory up to
// date), streams, stream capture into graphs and their replay, events. Errors are what the real
// runtime returns: failures as error codes, a fault in a kernel as the sticky
// cudaErrorIllegalAddress; a synchronising call or an allocation during a capture is refused with
// cudaErrorStreamCaptureUnsupported and invalidates the capture. Verification only
// (docs/emulator.md).
#include <cuda_runtime.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "emu_internal.h"

// -------------------------------------------------------------------------------------------------
// The runtime API
// -------------------------------------------------------------------------------------------------

using namespace emu;

namespace {

cudaError_t api_result(cudaError_t e) {
    return set_error(e);
}

}  // namespace

const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "cudaSuccess";
        case cudaErrorInvalidValue:
            return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation:
            return "cudaErrorMemoryAllocation";
        case cudaErrorInvalidConfiguration:
            return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevicePointer:
            return "cudaErrorInvalidDevicePointer";
        case cudaErrorInvalidDevice:
            return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle:
            return "cudaErrorInvalidResourceHandle";
        case cudaErrorNotReady:
            return "cudaErrorNotReady";
        case cudaErrorIllegalAddress:
            return "cudaErrorIllegalAddress";
        case cudaErrorLaunchFailure:
            return "cudaErrorLaunchFailure";
        case cudaErrorNotSupported:
            return "cudaErrorNotSupported";
        case cudaErrorLaunchOutOfResources:
            return "cudaErrorLaunchOutOfResources";
        case cudaErrorStreamCaptureUnsupported:
            return "cudaErrorStreamCaptureUnsupported";
        case cudaErrorStreamCaptureInvalidated:
            return "cudaErrorStreamCaptureInvalidated";
        case cudaErrorStreamCaptureUnmatched:
            return "cudaErrorStreamCaptureUnmatched";
        case cudaErrorStreamCaptureImplicit:
            return "cudaErrorStreamCaptureImplicit";
        default:
            return "cudaErrorUnknown";
    }
}
const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "no error";
        case cudaErrorMemoryAllocation:
            return "out of memory";
        case cudaErrorIllegalAddress:
            return "an illegal memory access was encountered";
        case cudaErrorInvalidConfiguration:
            return "invalid configuration argument";
        case cudaErrorLaunchOutOfResources:
            return "too many resources requested for launch";
        case cudaErrorStreamCaptureUnsupported:
            return "operation not permitted when stream is capturing";
        case cudaErrorStreamCaptureInvalidated:
            return "operation failed due to a previous error during capture";
        default:
            return "emulated error";
    }
}
cudaError_t cudaGetLastError() {
    Lock lk(g_mu);
    if (g_sticky != cudaSuccess) return g_sticky;
    const cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError() {
    Lock lk(g_mu);
    return g_sticky != cudaSuccess ? g_sticky : t_last;
}

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
    Lock lk(g_mu);
    *p = nullptr;
    if (g_sticky != cudaSuccess) return api_result(g_sticky);
    if (capture_violation("cudaMalloc")) return api_result(cudaErrorStreamCaptureUnsupported);
    if (nccl_busy(nullptr, t_device)) {
        report("nccl",
               "cudaMalloc of %zu bytes on device %d while an ncclAllReduce there has not "
               "finished (on a GPU it may wait for the collective, for ever if a peer never "
               "arrives)",
               bytes, t_device);
        return api_result(cudaErrorNotSupported);
    }
    if (bytes == 0) return cudaSuccess;
    const int d = t_device;
    if (bytes > device_free(d) || (g_alloc_limit && bytes > g_alloc_limit))
        return api_result(cudaErrorMemoryAllocation);
    Alloc a;
    a.raw =
        static_cast<char*>(std::aligned_alloc(kRedzone, (bytes + 2 * kRedzone + 255) / 256 * 256));
    if (!a.raw) return api_result(cudaErrorMemoryAllocation);
    a.shadow_bytes = (bytes / 4 + 1) * sizeof(GWord);
    void* sh = mmap(nullptr, a.shadow_bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sh == MAP_FAILED) {
        std::free(a.raw);
        return api_result(cudaErrorMemoryAllocation);
    }
    a.shadow = static_cast<GWord*>(sh);
    a.user = reinterpret_cast<std::uintptr_t>(a.raw) + kRedzone;
    a.size = bytes;
    a.device = d;
    a.id = ++g_alloc_ids;
    std::memset(a.raw + kRedzone, 0xA5, bytes);  // poison: what a fresh allocation holds is junk
    g_used[d] += bytes;
    *p = reinterpret_cast<void*>(a.user);
    g_allocs.emplace(a.user, a);
    return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
    Lock lk(g_mu);
    if (p == nullptr) return cudaSuccess;
    if (capture_violation("cudaFree")) return api_result(cudaErrorStreamCaptureUnsupported);
    auto it = g_allocs.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == g_allocs.end()) {
        report("invalid free", "cudaFree(0x%" PRIxPTR "): not the start of a live allocation",
               reinterpret_cast<std::uintptr_t>(p));
        return api_result(cudaErrorInvalidValue);
    }
    if (nccl_busy(nullptr, it->second.device)) {
        report("nccl",
               "cudaFree(0x%" PRIxPTR
               ") on device %d while an ncclAllReduce there has not "
               "finished%s (on a GPU cudaFree waits for the device, for ever if a peer never "
               "arrives)",
               reinterpret_cast<std::uintptr_t>(p), it->second.device,
               nccl_reads(it->second.user, it->second.size) ? ", which uses this memory" : "");
        return api_result(cudaErrorNotSupported);
    }
    g_used[it->second.device] -= it->second.size;
    munmap(it->second.shadow, it->second.shadow_bytes);
    std::free(it->second.raw);
    if (g_last_alloc == &it->second) g_last_alloc = nullptr;
    g_allocs.erase(it);
    return g_sticky;
}

cudaError_t cudaMemGetInfo(std::size_t* f, std::size_t* t) {
    Lock lk(g_mu);
    *t = device_memory();
    *f = device_free(t_device);
    return cudaSuccess;
}

namespace {

cudaError_t memcpy_impl(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind,
                        cudaStream_t stream, bool sync) {
    if (g_sticky != cudaSuccess) return api_result(g_sticky);
    if (n == 0) return cudaSuccess;
    const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    const Alloc* da = dst_dev ? device_range(dst, n) : nullptr;
    const Alloc* sa = src_dev ? device_range(src, n) : nullptr;
    bool rz = false;
    if ((dst_dev && !da) || (src_dev && !sa) ||
        (!dst_dev && find_alloc(reinterpret_cast<std::uintptr_t>(dst), &rz)) ||
        (!src_dev && find_alloc(reinterpret_cast<std::uintptr_t>(src), &rz))) {
        note("invalid copy",
             "cudaMemcpy%s of %zu bytes from %s to %s (kind %d): a range is not "
             "where the kind says",
             sync ? "" : "Async", n, describe_global(reinterpret_cast<std::uintptr_t>(src)).c_str(),
             describe_global(reinterpret_cast<std::uintptr_t>(dst)).c_str(), int(kind));
        return api_result(cudaErrorInvalidValue);
    }
    if (sync && capture_violation("cudaMemcpy (synchronous)"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    if (!sync && stream && g_streams.count(as_stream(stream)) && as_stream(stream)->capturing &&
        kind != cudaMemcpyDeviceToDevice) {
        capture_violation("cudaMemcpyAsync between pageable host memory and the device");
        return api_result(cudaErrorStreamCaptureUnsupported);
    }
    auto op = [=] {
        if (g_sticky != cudaSuccess) return;
        std::memmove(dst, src, n);
        if (da)
            host_write(da, reinterpret_cast<std::uintptr_t>(dst), n, sa,
                       reinterpret_cast<std::uintptr_t>(src));
    };
    if (sync) {
        ++g_operations;
        op();
        return g_sticky;
    }
    return enqueue(stream, "cudaMemcpyAsync", op);
}

cudaError_t memset_impl(void* dst, int v, std::size_t n, cudaStream_t stream, bool sync) {
    if (g_sticky != cudaSuccess) return api_result(g_sticky);
    if (n == 0) return cudaSuccess;
    const Alloc* a = device_range(dst, n);
    if (!a) {
        note("invalid memset", "cudaMemset of %zu bytes at %s", n,
             describe_global(reinterpret_cast<std::uintptr_t>(dst)).c_str());
        return api_result(cudaErrorInvalidValue);
    }
    if (sync && capture_violation("cudaMemset (synchronous)"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    auto op = [=] {
        if (g_sticky != cudaSuccess) return;
        std::memset(dst, v, n);
        host_write(a, reinterpret_cast<std::uintptr_t>(dst), n);
    };
    if (sync) {
        ++g_operations;
        op();
        return g_sticky;
    }
    return enqueue(stream, "cudaMemsetAsync", op);
}

}  // namespace

cudaError_t cudaMemcpy(void* d, const void* s, std::size_t n, cudaMemcpyKind k) {
    Lock lk(g_mu);
    return memcpy_impl(d, s, n, k, nullptr, true);
}
cudaError_t cudaMemcpyAsync(void* d, const void* s, std::size_t n, cudaMemcpyKind k,
                            cudaStream_t st) {
    Lock lk(g_mu);
    return memcpy_impl(d, s, n, k, st, false);
}
cudaError_t cudaMemset(void* d, int v, std::size_t n) {
    Lock lk(g_mu);
    return memset_impl(d, v, n, nullptr, true);
}
cudaError_t cudaMemsetAsync(void* d, int v, std::size_t n, cudaStream_t st) {
    Lock lk(g_mu);
    return memset_impl(d, v, n, st, false);
}

// Waits, without g_mu, until no unfinished ncclAllReduce is on stream s (or, with s null, on the
// current device): the peers need g_mu to call theirs. A report after 60 s (on a GPU, for ever).
static void wait_for_nccl(cudaStream_t s, const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
        {
            Lock lk(g_mu);
            if (!nccl_busy(as_stream(s), t_device)) return;
            if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) {
                report("nccl", "%s waited 60 s for an ncclAllReduce whose peers never called it",
                       what);
                return;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    wait_for_nccl(s, "cudaStreamSynchronize");
    Lock lk(g_mu);
    if (s && !g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    if (capture_violation("cudaStreamSynchronize"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    return g_sticky;
}
cudaError_t cudaDeviceSynchronize() {
    wait_for_nccl(nullptr, "cudaDeviceSynchronize");
    Lock lk(g_mu);
    if (capture_violation("cudaDeviceSynchronize"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    return g_sticky;
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
    Lock lk(g_mu);
    if (capture_violation("cudaStreamQuery")) return api_result(cudaErrorStreamCaptureUnsupported);
    if (g_sticky == cudaSuccess && s && nccl_busy(as_stream(s), 0)) return cudaErrorNotReady;
    return g_sticky;
}
cudaError_t cudaGetDeviceCount(int* c) {
    *c = device_count();
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
    *d = t_device;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= device_count()) return api_result(cudaErrorInvalidDevice);
    t_device = d;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
    if (d < 0 || d >= device_count()) return api_result(cudaErrorInvalidDevice);
    std::memset(p, 0, sizeof *p);
    std::snprintf(p->name, sizeof p->name, "Emulated GPU %d (minicnn tests/emu)", d);
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->totalGlobalMem = device_memory();
    p->sharedMemPerBlock = kSmemLimit;
    p->maxThreadsPerBlock = 1024;
    p->warpSize = 32;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
    return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
    Lock lk(g_mu);
    auto* st = new Stream;
    st->device = t_device;
    st->flags = flags;
    g_streams.insert(st);
    *s = reinterpret_cast<cudaStream_t>(st);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    Lock lk(g_mu);
    if (!g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    if (as_stream(s)->capturing) --g_captures;
    g_streams.erase(as_stream(s));
    delete as_stream(s);
    return cudaSuccess;
}
cudaError_t cudaStreamGetFlags(cudaStream_t s, unsigned* f) {
    Lock lk(g_mu);
    if (!g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    *f = as_stream(s)->flags;
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
    Lock lk(g_mu);
    if (!s || !g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    Stream* st = as_stream(s);
    if (st->capturing)
        return api_result(cudaErrorIllegalAddress == g_sticky ? g_sticky : cudaErrorInvalidValue);
    st->capturing = true;
    st->invalidated = false;
    st->graph = std::make_unique<Graph>();
    ++g_captures;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
    Lock lk(g_mu);
    *graph = nullptr;
    if (!s || !g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    Stream* st = as_stream(s);
    if (!st->capturing) return api_result(cudaErrorStreamCaptureUnmatched);
    st->capturing = false;
    --g_captures;
    std::unique_ptr<Graph> g = std::move(st->graph);
    if (st->invalidated) return api_result(cudaErrorStreamCaptureInvalidated);
    *graph = reinterpret_cast<cudaGraph_t>(g.release());
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
    Lock lk(g_mu);
    if (!s || !g_streams.count(as_stream(s))) {
        *status = cudaStreamCaptureStatusNone;
        return s ? api_result(cudaErrorInvalidResourceHandle) : cudaSuccess;
    }
    const Stream* st = as_stream(s);
    *status = !st->capturing    ? cudaStreamCaptureStatusNone
              : st->invalidated ? cudaStreamCaptureStatusInvalidated
                                : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
    Lock lk(g_mu);
    if (!graph) return api_result(cudaErrorInvalidValue);
    *exec = reinterpret_cast<cudaGraphExec_t>(new Graph(*reinterpret_cast<Graph*>(graph)));
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    Lock lk(g_mu);
    if (!exec) return api_result(cudaErrorInvalidValue);
    if (g_sticky != cudaSuccess) return api_result(g_sticky);
    const Graph* g = reinterpret_cast<Graph*>(exec);
    return enqueue(stream, "cudaGraphLaunch", [g] {
        for (const auto& op : g->ops) op();
    });
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    Lock lk(g_mu);
    delete reinterpret_cast<Graph*>(exec);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    Lock lk(g_mu);
    delete reinterpret_cast<Graph*>(graph);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
    *e = reinterpret_cast<cudaEvent_t>(new Event);
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
    return cudaEventCreate(e);
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    Lock lk(g_mu);
    if (!e) return api_result(cudaErrorInvalidResourceHandle);
    auto* ev = reinterpret_cast<Event*>(e);
    return enqueue(s, "cudaEventRecord", [ev] {
        ev->t = std::chrono::steady_clock::now();
        ev->recorded = true;
    });
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    Lock lk(g_mu);
    if (!e) return api_result(cudaErrorInvalidResourceHandle);
    if (capture_violation("cudaEventSynchronize"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    return g_sticky;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
    return cudaEventSynchronize(e);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
    const auto* ea = reinterpret_cast<Event*>(a);
    const auto* eb = reinterpret_cast<Event*>(b);
    if (!ea || !eb || !ea->recorded || !eb->recorded)
        return api_result(cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(eb->t - ea->t).count();
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete reinterpret_cast<Event*>(e);
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t, unsigned) {
    Lock lk(g_mu);
    if (s && !g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    return cudaSuccess;  // everything runs in order
}
