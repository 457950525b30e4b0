// tests/emu/state.cpp — the CUDA emulator's shared state (tests/emu/emu_internal.h): errors and
// checker reports, the emulated devices' allocations and their shadow words, streams and capture.
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "emu_internal.h"

namespace emu {

// ---------------------------------------------------------------------------------------------
// Errors and reports
// ---------------------------------------------------------------------------------------------

std::recursive_mutex g_mu;

cudaError_t g_sticky = cudaSuccess;             // a fault: every later call fails with it
thread_local cudaError_t t_last = cudaSuccess;  // what cudaGetLastError returns next

long g_errors = 0;
std::string g_last_reports;
long g_launches = 0, g_operations = 0;
std::uint32_t g_launch_ids = 1;

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) t_last = e;
    return e;
}

// A checker report: a bug (counted; the run fails). A note is what the real runtime answers with an
// error code that the caller sees anyway (counted only by the caller's own checks).
static void vreport(bool counted, const char* kind, const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    if (counted) ++g_errors;
    std::string line =
        std::string(counted ? "emu checker: " : "emu note: ") + kind + ": " + buf + "\n";
    std::fputs(line.c_str(), stderr);
    g_last_reports += line;
    if (g_last_reports.size() > 16384) g_last_reports.erase(0, g_last_reports.size() - 16384);
}
void report(const char* kind, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(true, kind, fmt, ap);
    va_end(ap);
}
void note(const char* kind, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(false, kind, fmt, ap);
    va_end(ap);
}

// ---------------------------------------------------------------------------------------------
// Devices, allocations, global shadow memory
// ---------------------------------------------------------------------------------------------

int device_count() {
    static const int n = [] {
        const char* s = std::getenv("EMU_DEVICES");
        const int v = s ? std::atoi(s) : 2;
        return v < 1 ? 1 : v;
    }();
    return n;
}
thread_local int t_device = 0;
std::size_t g_used[64] = {};
std::size_t g_alloc_limit = 0;
std::size_t g_device_memory = 0;

std::map<std::uintptr_t, Alloc> g_allocs;  // by user address
long g_alloc_ids = 0;
const Alloc* g_last_alloc = nullptr;

const Alloc* find_alloc(std::uintptr_t p, bool* in_redzone) {
    *in_redzone = false;
    const Alloc* a = g_last_alloc;
    if (a && p >= a->user && p < a->user + a->size) return a;
    auto it = g_allocs.upper_bound(p);
    if (it != g_allocs.begin()) {
        const Alloc& b = std::prev(it)->second;
        if (p < b.user + b.size) {
            g_last_alloc = &b;
            return &b;
        }
        if (p < b.user + b.size + kRedzone) {
            *in_redzone = true;
            return &b;
        }
    }
    if (it != g_allocs.end() && p + kRedzone >= it->second.user) {
        *in_redzone = true;
        return &it->second;
    }
    return nullptr;
}

std::string describe_global(std::uintptr_t p) {
    bool rz = false;
    const Alloc* a = find_alloc(p, &rz);
    char buf[200];
    if (!a) {
        std::snprintf(buf, sizeof buf, "0x%" PRIxPTR " (not in any device allocation)", p);
    } else if (rz) {
        const long off = long(p) - long(a->user);
        std::snprintf(buf, sizeof buf,
                      "0x%" PRIxPTR " (%ld bytes %s allocation #%ld of %zu bytes on device %d)", p,
                      off < 0 ? -off : off - long(a->size), off < 0 ? "before" : "past the end of",
                      a->id, a->size, a->device);
    } else {
        std::snprintf(buf, sizeof buf,
                      "0x%" PRIxPTR " (offset %zu of allocation #%ld of %zu bytes on device %d)", p,
                      std::size_t(p - a->user), a->id, a->size, a->device);
    }
    return buf;
}

void host_write(const Alloc* a, std::uintptr_t p, std::size_t n, const Alloc* src,
                std::uintptr_t sp) {
    if (n == 0) return;
    const std::size_t first = (p - a->user) / 4, last = (p + n - 1 - a->user) / 4;
    if (!src) {
        std::fill(a->shadow + first, a->shadow + last + 1, GWord{kHostWrite, 0, 0, 0, 0, 0});
        return;
    }
    for (std::size_t w = first; w <= last; ++w) {
        const std::size_t sw = (sp + (w * 4 + a->user - p) - src->user) / 4;
        const bool unwritten = sw < src->size / 4 + 1 && src->shadow[sw].w_launch == 0;
        a->shadow[w] = GWord{unwritten ? 0 : kHostWrite, 0, 0, 0, 0, 0};
    }
}

// ---------------------------------------------------------------------------------------------
// Streams, graphs, events
// ---------------------------------------------------------------------------------------------

std::set<Stream*> g_streams;
int g_captures = 0;  // streams being captured (global mode: any of them forbids sync calls)

bool capture_violation(const char* what) {
    if (g_captures == 0) return false;
    note("capture violation", "%s while a stream is being captured into a CUDA graph", what);
    for (Stream* s : g_streams)
        if (s->capturing) s->invalidated = true;
    return true;
}

static bool g_recording = false;
static std::string g_recorded;

void record_operations(bool on) {
    Lock lk(g_mu);
    if (on) g_recorded.clear();
    g_recording = on;
}
const char* recorded_operations() {
    return g_recorded.c_str();
}

cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> op) {
    ++g_operations;
    if (g_recording) g_recorded += std::string(what) + "\n";
    if (stream == nullptr) {
        report("legacy stream", "%s enqueued on the legacy default stream", what);
    } else if (!g_streams.count(as_stream(stream))) {
        note("invalid stream", "%s enqueued on a stream that does not exist (destroyed?)", what);
        return set_error(cudaErrorInvalidResourceHandle);
    }
    Stream* s = as_stream(stream);
    if (s && !s->capturing && nccl_busy(s, 0)) {
        report("nccl",
               "%s enqueued behind an ncclAllReduce that has not finished (a peer has not called "
               "it yet): the emulator runs stream work when it is enqueued and cannot queue it",
               what);
        return set_error(cudaErrorNotSupported);
    }
    if (s && s->capturing) {
        s->graph->ops.push_back(std::move(op));
        return cudaSuccess;
    }
    if (g_captures > 0 && s == nullptr) {
        capture_violation("work on the legacy stream");
        return set_error(cudaErrorStreamCaptureImplicit);
    }
    op();
    return cudaSuccess;
}

const Alloc* device_range(const void* p, std::size_t n) {
    bool rz = false;
    const Alloc* a = find_alloc(reinterpret_cast<std::uintptr_t>(p), &rz);
    if (!a || rz || reinterpret_cast<std::uintptr_t>(p) + n > a->user + a->size) return nullptr;
    return a;
}

}  // namespace emu
