// cuda/emu/runtime.cpp — the CPU emulator of the CUDA runtime, of cuBLAS SGEMM and of the GPU's
// execution model, with a checker in the manner of compute-sanitizer. Verification only (see
// cuda/emu/include/cuda_runtime.h and cuda/emu/run.sh); compiled without instrumentation.
//
// Execution. A launch runs its blocks one after another, in a shuffled order (EMU_BLOCK_ORDER =
// shuffle (default) | forward | reverse). Inside a block every CUDA thread is a fiber with its own
// stack; a fiber runs until it reaches __syncthreads(), a warp shuffle or its end, then the next
// fiber runs. When every live thread waits at the barrier, the barrier opens (a new "phase"); when
// every lane of a warp waits at a shuffle, the values are exchanged.
//
// Checker (every report names the kind, the kernel and where it was launched, the block, the
// thread and the address; the gtest main in cuda/emu/gtest_main.cpp fails the run on any report):
//   out-of-bounds global     an access outside every live allocation (redzones of 256 bytes around
//                            each), or to another device's memory: the launch stops, and the
//                            context gets the sticky cudaErrorIllegalAddress, as on a GPU
//   out-of-bounds shared     an access to the block's shared window outside every declared array
//                            and the dynamic size: the launch stops likewise
//   uninitialized read       a read of global memory no kernel, copy or memset has written, or of
//                            shared memory no thread of the block has written
//   shared-memory race       two threads of a block access one shared word between two barriers,
//                            at least one of them writing (atomics excepted)
//   global write conflict    two threads write one global word in one launch (different blocks, or
//                            one block with no barrier between the writes)
//   block-order dependence   a block reads a global word another block wrote in the same launch, or
//                            writes one another block read: the result depends on the order in
//                            which blocks run
//   barrier divergence       __syncthreads() not reached by every thread of the block (some exited,
//                            or they wait at different barriers), a shuffle whose lanes are absent
//   legacy stream            work enqueued on the legacy default stream (the library never uses it)
//   capture violation        a synchronising call or an allocation while a stream is captured
//                            (the real runtime's cudaErrorStreamCaptureUnsupported; the capture is
//                            invalidated)
// Memory accesses are seen through GCC's ThreadSanitizer instrumentation of the rewritten kernel
// files: the __tsan_* entry points at the end of this file. Accesses to the fibers' stacks (a
// thread's local variables) are not checked.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu {
namespace {

// ---------------------------------------------------------------------------------------------
// Errors and reports
// ---------------------------------------------------------------------------------------------

std::recursive_mutex g_mu;  // every API call and every launch runs under it
using Lock = std::lock_guard<std::recursive_mutex>;

cudaError_t g_sticky = cudaSuccess;             // a fault: every later call fails with it
thread_local cudaError_t t_last = cudaSuccess;  // what cudaGetLastError returns next

long g_errors = 0;
std::string g_last_reports;
long g_launches = 0, g_operations = 0;

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) t_last = e;
    return e;
}

// A checker report: a bug (counted; the run fails). A note is what the real runtime answers with an
// error code that the caller sees anyway (counted only by the caller's own checks).
void vreport(bool counted, const char* kind, const char* fmt, va_list ap) {
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
constexpr std::size_t kDeviceMemory = std::size_t(80) << 30;  // what each emulated device holds
constexpr std::size_t kRedzone = 256;
std::size_t g_used[64] = {};
std::size_t g_alloc_limit = 0;

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
std::map<std::uintptr_t, Alloc> g_allocs;  // by user address
long g_alloc_ids = 0;
const Alloc* g_last_alloc = nullptr;

// The allocation whose user range or redzones contain p, or null.
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

GWord* gword(const Alloc* a, std::uintptr_t p) {
    return a->shadow + (p - a->user) / 4;
}

// Marks [p, p + n) of allocation a as written by a copy / memset (or copies the state of src).
void host_write(const Alloc* a, std::uintptr_t p, std::size_t n, const Alloc* src = nullptr,
                std::uintptr_t sp = 0) {
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
std::set<Stream*> g_streams;
int g_captures = 0;  // streams being captured (global mode: any of them forbids sync calls)

struct Event {
    std::chrono::steady_clock::time_point t{};
    bool recorded = false;
};

Stream* as_stream(cudaStream_t s) {
    return reinterpret_cast<Stream*>(s);
}

// An unsafe call while a capture is active: the real runtime's cudaErrorStreamCaptureUnsupported
// (global capture mode), and every capture is invalidated.
bool capture_violation(const char* what) {
    if (g_captures == 0) return false;
    note("capture violation", "%s while a stream is being captured into a CUDA graph", what);
    for (Stream* s : g_streams)
        if (s->capturing) s->invalidated = true;
    return true;
}

// Runs `op` on `stream` now, or records it into the stream's graph under capture.
cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> op) {
    ++g_operations;
    if (stream == nullptr) {
        report("legacy stream", "%s enqueued on the legacy default stream", what);
    } else if (!g_streams.count(as_stream(stream))) {
        note("invalid stream", "%s enqueued on a stream that does not exist (destroyed?)", what);
        return set_error(cudaErrorInvalidResourceHandle);
    }
    Stream* s = as_stream(stream);
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

// ---------------------------------------------------------------------------------------------
// Fibers
// ---------------------------------------------------------------------------------------------

constexpr int kMaxThreads = 1024;
constexpr std::size_t kStackBytes = 128 * 1024;
constexpr std::size_t kGuardBytes = 4096;

enum class FState { ready, barrier, shuffle, done };

struct Fiber {
#if defined(__x86_64__)
    void* sp = nullptr;
#else
    ucontext_t uc;
#endif
    char* stack = nullptr;
    FState state = FState::done;
    uint3 tid;
    unsigned linear = 0;
    bool in_kernel = false;
    const char* wait_file = nullptr;
    int wait_line = 0;
    int shfl_kind = 0, shfl_arg = 0;
    unsigned shfl_mask = 0;
    std::uint64_t shfl_in = 0, shfl_out = 0;
};

char* g_stack_lo = nullptr;  // all fiber stacks: [g_stack_lo, g_stack_hi)
char* g_stack_hi = nullptr;
Fiber g_fibers[kMaxThreads];
thread_local Fiber* t_cur = nullptr;
#if defined(__x86_64__)
void* g_sched_sp = nullptr;
#else
ucontext_t g_sched_uc;
#endif

void fiber_main();

#if defined(__x86_64__)
// Saves the callee-saved registers and the stack pointer in *save, switches to `next`.
extern "C" void emu_switch(void** save, void* next);
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
extern "C" void emu_fiber_entry() {
    fiber_main();
}
#endif

void init_stacks() {
    if (g_stack_lo) return;
    const std::size_t per = kStackBytes + kGuardBytes;
    void* p = mmap(nullptr, per * kMaxThreads, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        std::fputs("emu: cannot map the fiber stacks\n", stderr);
        std::abort();
    }
    g_stack_lo = static_cast<char*>(p);
    g_stack_hi = g_stack_lo + per * kMaxThreads;
    for (int i = 0; i < kMaxThreads; ++i) {
        char* base = g_stack_lo + per * std::size_t(i);
        mprotect(base, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting
        g_fibers[i].stack = base + kGuardBytes;
    }
}

void fiber_start(Fiber& f) {
#if defined(__x86_64__)
    auto* top = reinterpret_cast<std::uintptr_t*>(
        (reinterpret_cast<std::uintptr_t>(f.stack + kStackBytes)) & ~std::uintptr_t(15));
    *--top = 0;                                                   // fake return address
    *--top = reinterpret_cast<std::uintptr_t>(&emu_fiber_entry);  // emu_switch's ret
    for (int r = 0; r < 6; ++r) *--top = 0;                       // rbp rbx r12-r15
    f.sp = top;
#else
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = f.stack;
    f.uc.uc_stack.ss_size = kStackBytes;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, fiber_main, 0);
#endif
    f.state = FState::ready;
    f.in_kernel = false;
}

void to_fiber(Fiber& f) {
    t_cur = &f;
#if defined(__x86_64__)
    emu_switch(&g_sched_sp, f.sp);
#else
    swapcontext(&g_sched_uc, &f.uc);
#endif
    t_cur = nullptr;
}

void to_scheduler() {
    Fiber& f = *t_cur;
#if defined(__x86_64__)
    emu_switch(&f.sp, g_sched_sp);
#else
    swapcontext(&f.uc, &g_sched_uc);
#endif
}

// ---------------------------------------------------------------------------------------------
// Launch state, shared memory
// ---------------------------------------------------------------------------------------------

constexpr std::size_t kSmemLimit = 48 * 1024;    // per block, without an opt-in
constexpr std::size_t kArenaBytes = 160 * 1024;  // static slots at 0, dynamic at kDynOffset
constexpr std::size_t kDynOffset = 96 * 1024;
constexpr std::size_t kSlotGap = 128;  // redzone after each static array

struct SWord {
    std::uint32_t w_thread, w_phase, r_thread, r_phase;
    std::uint8_t valid, init, many_readers, pad;
};

struct Launch {
    const char* name = "";
    const char* file = "";
    int line = 0;
    std::function<void()>* body = nullptr;
    dim3 grid, block;
    std::size_t dyn = 0;
    int device = 0;
    std::uint32_t id = 0;
    std::uint32_t block_linear = 0;
    uint3 bidx;
    std::uint32_t phase = 1;
    bool aborted = false;
    int reports = 0;
    std::map<int, std::size_t> slots;  // static shared id -> offset
    std::size_t static_end = 0;
    std::size_t static_bytes = 0;
};
Launch* g_launch = nullptr;
alignas(256) unsigned char g_arena[kArenaBytes];
SWord g_sshadow[kArenaBytes / 4];
std::uint32_t g_launch_ids = 1;  // 0 and 1 are "never written" and "host write"

bool limit_reports() {
    return ++g_launch->reports > 8;  // per launch, the first few of each launch are enough
}

void kernel_report(const char* kind, std::uintptr_t addr, std::size_t size, bool write,
                   const std::string& where, const char* fmt = "", ...) {
    if (limit_reports()) {
        ++g_errors;
        return;
    }
    char extra[400];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    const Fiber& f = *t_cur;
    const Launch& L = *g_launch;
    (void)addr;
    report(kind,
           "kernel %s (launched at %s:%d) block (%u,%u,%u) thread (%u,%u,%u): %s of %zu bytes at "
           "%s%s%s",
           L.name, L.file, L.line, L.bidx.x, L.bidx.y, L.bidx.z, f.tid.x, f.tid.y, f.tid.z,
           write ? "write" : "read", size, where.c_str(), extra[0] ? "; " : "", extra);
}

// Stops the launch (a fault): the fiber never resumes.
[[noreturn]] void fault() {
    g_launch->aborted = true;
    g_sticky = cudaErrorIllegalAddress;
    for (;;) to_scheduler();
}

[[gnu::noinline]] void check_shared(std::uintptr_t p, std::size_t size, bool write, bool atomic) {
    const Fiber& f = *t_cur;
    Launch& L = *g_launch;
    const std::size_t off0 = p - reinterpret_cast<std::uintptr_t>(g_arena);
    for (std::size_t off = off0 & ~std::size_t(3); off < off0 + size; off += 4) {
        SWord& s = g_sshadow[off / 4];
        auto where = [off] { return "shared offset " + std::to_string(off); };
        if (!s.valid) {
            kernel_report("out-of-bounds shared", p, size, write, where(),
                          "outside every __shared__ array and the %zu bytes of dynamic shared "
                          "memory",
                          L.dyn);
            fault();
        }
        if (atomic) {
            s.init = 1;
            continue;
        }
        if (write) {
            if (s.w_phase == L.phase && s.w_thread != f.linear && s.init)
                kernel_report("shared-memory race", p, size, write, where(),
                              "thread %u wrote it too since the last barrier", s.w_thread);
            else if (s.r_phase == L.phase && (s.many_readers || s.r_thread != f.linear))
                kernel_report("shared-memory race", p, size, write, where(),
                              "thread %u read it since the last barrier", s.r_thread);
            s.w_thread = f.linear;
            s.w_phase = L.phase;
            s.init = 1;
        } else {
            if (!s.init) {
                kernel_report("uninitialized read", p, size, write, where(),
                              "no thread of the block has written it");
            } else if (s.w_phase == L.phase && s.w_thread != f.linear) {
                kernel_report("shared-memory race", p, size, write, where(),
                              "thread %u wrote it since the last barrier", s.w_thread);
            }
            if (s.r_phase != L.phase) {
                s.r_phase = L.phase;
                s.r_thread = f.linear;
                s.many_readers = 0;
            } else if (s.r_thread != f.linear) {
                s.many_readers = 1;
            }
        }
    }
}

[[gnu::noinline]] void check_global(std::uintptr_t p, std::size_t size, bool write, bool atomic) {
    bool rz = false;
    const Alloc* a = find_alloc(p, &rz);
    if (!a || rz || p + size > a->user + a->size) {
        kernel_report("out-of-bounds global", p, size, write, describe_global(p));
        fault();
    }
    Launch& L = *g_launch;
    if (a->device != L.device) {
        kernel_report("out-of-bounds global", p, size, write, describe_global(p),
                      "memory of device %d accessed by a kernel on device %d", a->device, L.device);
        fault();
    }
    const Fiber& f = *t_cur;
    for (std::uintptr_t q = p & ~std::uintptr_t(3); q < p + size; q += 4) {
        GWord& g = *gword(a, q);
        if (atomic) {
            g.w_launch = g.w_launch ? g.w_launch : kHostWrite;
            continue;
        }
        if (write) {
            if (g.w_launch == L.id && g.w_block != L.block_linear) {
                kernel_report("global write conflict", q, 4, write, describe_global(q),
                              "block %u wrote it too in this launch", g.w_block);
            } else if (g.w_launch == L.id && g.w_thread != f.linear && g.w_phase == L.phase) {
                kernel_report("global write conflict", q, 4, write, describe_global(q),
                              "thread %u of this block wrote it too since the last barrier",
                              g.w_thread);
            } else if (g.r_launch == L.id &&
                       (g.r_block == kManyBlocks || g.r_block != L.block_linear)) {
                kernel_report("block-order dependence", q, 4, write, describe_global(q),
                              "another block (%s) read it in this launch",
                              g.r_block == kManyBlocks ? "several" : "one");
            }
            g.w_launch = L.id;
            g.w_block = L.block_linear;
            g.w_thread = f.linear;
            g.w_phase = L.phase;
        } else {
            if (g.w_launch == 0) {
                kernel_report("uninitialized read", q, 4, write, describe_global(q),
                              "no kernel, copy or memset has written it");
                g.w_launch = kHostWrite;  // report each word once
            } else if (g.w_launch == L.id && g.w_block != L.block_linear) {
                kernel_report("block-order dependence", q, 4, write, describe_global(q),
                              "block %u wrote it in this launch", g.w_block);
            } else if (g.w_launch == L.id && g.w_thread != f.linear && g.w_phase == L.phase) {
                kernel_report("global write conflict", q, 4, write, describe_global(q),
                              "thread %u of this block wrote it since the last barrier "
                              "(a read-write race)",
                              g.w_thread);
            }
            if (g.r_launch != L.id) {
                g.r_launch = L.id;
                g.r_block = L.block_linear;
            } else if (g.r_block != L.block_linear) {
                g.r_block = kManyBlocks;
            }
        }
    }
}

// The common case of a shared-memory access, handled without a call: one aligned word that the
// checker has nothing to say about. Anything else goes to check_shared, which reports.
inline bool shared_fast(std::uintptr_t p, bool write, const Fiber& f) {
    SWord& s = g_sshadow[(p - reinterpret_cast<std::uintptr_t>(g_arena)) / 4];
    const std::uint32_t ph = g_launch->phase, me = f.linear;
    if (!s.valid) return false;
    if (write) {
        if ((s.w_phase == ph && s.w_thread != me && s.init) ||
            (s.r_phase == ph && (s.many_readers || s.r_thread != me)))
            return false;
        s.w_thread = me;
        s.w_phase = ph;
        s.init = 1;
    } else {
        if (!s.init || (s.w_phase == ph && s.w_thread != me)) return false;
        if (s.r_phase != ph) {
            s.r_phase = ph;
            s.r_thread = me;
            s.many_readers = 0;
        } else if (s.r_thread != me) {
            s.many_readers = 1;
        }
    }
    return true;
}

inline void on_access(const void* addr, std::size_t size, bool write, bool atomic = false) {
    Fiber* f = t_cur;
    if (f == nullptr || !f->in_kernel) return;
    const auto p = reinterpret_cast<std::uintptr_t>(addr);
    if (p >= reinterpret_cast<std::uintptr_t>(g_stack_lo) &&
        p < reinterpret_cast<std::uintptr_t>(g_stack_hi))
        return;  // the thread's own local variables
    if (p >= reinterpret_cast<std::uintptr_t>(g_arena) &&
        p < reinterpret_cast<std::uintptr_t>(g_arena) + kArenaBytes) {
        if (size == 4 && (p & 3) == 0 && !atomic && shared_fast(p, write, *f)) return;
        check_shared(p, size, write, atomic);
        return;
    }
    check_global(p, size, write, atomic);
}

// ---------------------------------------------------------------------------------------------
// The scheduler
// ---------------------------------------------------------------------------------------------

void fiber_main() {
    Fiber& f = *t_cur;
    (*g_launch->body)();
    f.in_kernel = false;
    f.state = FState::done;
    for (;;) to_scheduler();
}

// Poisons the part of the shared window the previous block used (NaN data, nothing valid, nothing
// written) and declares the dynamic part of this one.
std::size_t g_dirty_static = kDynOffset, g_dirty_dyn = kArenaBytes - kDynOffset;
void reset_shared(std::size_t dyn) {
    auto clear = [](std::size_t from, std::size_t to) {
        std::fill(reinterpret_cast<float*>(g_arena + from), reinterpret_cast<float*>(g_arena + to),
                  std::nanf(""));
        std::fill(g_sshadow + from / 4, g_sshadow + to / 4, SWord{});
    };
    clear(0, std::min(g_dirty_static, kDynOffset));
    clear(kDynOffset, std::min(kArenaBytes, kDynOffset + g_dirty_dyn));
    for (std::size_t o = kDynOffset; o < kDynOffset + dyn; o += 4) g_sshadow[o / 4].valid = 1;
    g_dirty_static = 0;
    g_dirty_dyn = (dyn + 3) / 4 * 4 + 64;
}

// Exchanges the values of a warp whose live lanes all wait at a shuffle.
void exchange(Fiber* w, unsigned lanes) {
    for (unsigned l = 0; l < lanes; ++l) {
        Fiber& f = w[l];
        int src = int(l);
        if (f.shfl_kind == 0) src = int(l) ^ f.shfl_arg;
        if (f.shfl_kind == 1) src = int(l) + f.shfl_arg;
        if (f.shfl_kind == 2) src = f.shfl_arg & 31;
        f.shfl_out = (src >= 0 && unsigned(src) < lanes) ? w[src].shfl_in : f.shfl_in;
        f.state = FState::ready;
    }
}

void run_block(Launch& L, unsigned nt) {
    for (unsigned t = 0; t < nt; ++t) {
        Fiber& f = g_fibers[t];
        f.linear = t;
        f.tid = {t % L.block.x, (t / L.block.x) % L.block.y, t / (L.block.x * L.block.y)};
        fiber_start(f);
    }
    L.phase = 1;
    for (;;) {
        bool ran = false;
        for (unsigned t = 0; t < nt && !L.aborted; ++t) {
            if (g_fibers[t].state != FState::ready) continue;
            to_fiber(g_fibers[t]);
            ran = true;
        }
        if (L.aborted) return;
        if (ran) continue;
        // Nobody can run: open warps whose lanes all wait at a shuffle, else the barrier.
        bool progressed = false;
        for (unsigned w0 = 0; w0 < nt; w0 += 32) {
            const unsigned lanes = std::min(32u, nt - w0);
            unsigned at = 0, done = 0;
            for (unsigned l = 0; l < lanes; ++l) {
                at += g_fibers[w0 + l].state == FState::shuffle;
                done += g_fibers[w0 + l].state == FState::done;
            }
            if (at == 0) continue;
            if (at + done == lanes && done == 0 && lanes == 32) {
                exchange(&g_fibers[w0], lanes);
                progressed = true;
            } else if (at + done == lanes || lanes < 32) {
                const Fiber& f = g_fibers[w0];
                if (!limit_reports())
                    report("barrier divergence",
                           "kernel %s (launched at %s:%d) block (%u,%u,%u): warp %u: %u lanes "
                           "wait at a full-mask shuffle (%s:%d) that %u lanes never reach",
                           L.name, L.file, L.line, L.bidx.x, L.bidx.y, L.bidx.z, w0 / 32, at,
                           f.wait_file ? f.wait_file : "?", f.wait_line, 32 - at);
                exchange(&g_fibers[w0], lanes);
                progressed = true;
            }
        }
        if (progressed) continue;
        unsigned waiting = 0, done = 0;
        const Fiber* first = nullptr;
        bool mixed = false;
        for (unsigned t = 0; t < nt; ++t) {
            const Fiber& f = g_fibers[t];
            if (f.state == FState::done) {
                ++done;
            } else {
                ++waiting;
                if (!first) {
                    first = &f;
                } else if (f.state != first->state || f.wait_line != first->wait_line ||
                           f.wait_file != first->wait_file) {
                    mixed = true;
                }
            }
        }
        if (waiting == 0) return;  // the block is finished
        if ((done > 0 || mixed) && !limit_reports()) {
            report("barrier divergence",
                   "kernel %s (launched at %s:%d) block (%u,%u,%u): thread (%u,%u,%u) waits at "
                   "__syncthreads() %s:%d, but %u of the block's %u threads %s",
                   L.name, L.file, L.line, L.bidx.x, L.bidx.y, L.bidx.z, first->tid.x, first->tid.y,
                   first->tid.z, first->wait_file, first->wait_line, done ? done : nt - waiting, nt,
                   done ? "have exited without reaching it" : "wait at a different barrier");
        }
        for (unsigned t = 0; t < nt; ++t)
            if (g_fibers[t].state != FState::done) g_fibers[t].state = FState::ready;
        ++L.phase;
    }
}

std::vector<std::uint32_t> block_order(std::uint32_t blocks, std::uint32_t launch_id) {
    std::vector<std::uint32_t> order(blocks);
    for (std::uint32_t b = 0; b < blocks; ++b) order[b] = b;
    static const std::string mode = [] {
        const char* s = std::getenv("EMU_BLOCK_ORDER");
        return std::string(s ? s : "shuffle");
    }();
    if (mode == "reverse") {
        std::reverse(order.begin(), order.end());
    } else if (mode != "forward") {
        std::mt19937 rng(launch_id * 2654435761u + 12345u);
        std::shuffle(order.begin(), order.end(), rng);
    }
    return order;
}

void execute(const char* name, const char* file, int line, std::function<void()>& body, dim3 grid,
             dim3 block, std::size_t dyn, int device) {
    if (g_sticky != cudaSuccess) return;  // a dead context runs nothing
    ++g_launches;
    init_stacks();
    Launch L;
    L.name = name;
    L.file = file;
    L.line = line;
    L.body = &body;
    L.grid = grid;
    L.block = block;
    L.dyn = dyn;
    L.device = device;
    L.id = ++g_launch_ids;
    if (L.id < 2) L.id = g_launch_ids = 2;
    const unsigned nt = block.x * block.y * block.z;
    const std::uint32_t blocks = grid.x * grid.y * grid.z;
    Launch* saved = g_launch;
    g_launch = &L;
    for (std::uint32_t b : block_order(blocks, L.id)) {
        L.block_linear = b;
        L.bidx = {b % grid.x, (b / grid.x) % grid.y, b / (grid.x * grid.y)};
        L.slots.clear();
        L.static_end = 0;
        L.static_bytes = 0;
        reset_shared(dyn);
        run_block(L, nt);
        if (L.aborted) break;
    }
    g_launch = saved;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Device-code entry points
// ---------------------------------------------------------------------------------------------

KernelScope::KernelScope() {
    if (t_cur) t_cur->in_kernel = true;
}
KernelScope::~KernelScope() {
    if (t_cur) t_cur->in_kernel = false;
}

uint3 thread_idx() {
    return t_cur->tid;
}
uint3 block_idx() {
    return g_launch->bidx;
}
dim3 block_dim() {
    return g_launch->block;
}
dim3 grid_dim() {
    return g_launch->grid;
}

void syncthreads(const char* file, int line) {
    Fiber& f = *t_cur;
    f.state = FState::barrier;
    f.wait_file = file;
    f.wait_line = line;
    to_scheduler();
}

void syncwarp(unsigned, const char* file, int line) {
    shfl_idx_bits(0xffffffffu, 0, 0, 32, file, line);
}

void* dynamic_smem() {
    return g_arena + kDynOffset;
}

void* static_smem(int id, std::size_t bytes, std::size_t align) {
    Launch& L = *g_launch;
    auto it = L.slots.find(id);
    if (it == L.slots.end()) {
        std::size_t off = (L.static_end + align - 1) / align * align;
        if (off + bytes > kDynOffset) off = kDynOffset;  // never fits: reported below
        it = L.slots.emplace(id, off).first;
        L.static_end = off + bytes + kSlotGap;
        g_dirty_static = std::max(g_dirty_static, std::min(L.static_end, kDynOffset));
        L.static_bytes += bytes;
        if (L.static_bytes + L.dyn > kSmemLimit) {
            report("launch failure",
                   "kernel %s (launched at %s:%d) uses %zu bytes of static and %zu of dynamic "
                   "shared memory, more than the %zu a block may have",
                   L.name, L.file, L.line, L.static_bytes, L.dyn, kSmemLimit);
            g_sticky = cudaErrorLaunchFailure;
            L.aborted = true;
            for (;;) to_scheduler();
        }
        for (std::size_t o = off; o < off + bytes; o += 4) g_sshadow[o / 4].valid = 1;
    }
    return g_arena + it->second;
}

std::uint64_t shuffle(int kind, unsigned mask, std::uint64_t bits, int arg, const char* file,
                      int line) {
    Fiber& f = *t_cur;
    f.state = FState::shuffle;
    f.shfl_kind = kind;
    f.shfl_arg = arg;
    f.shfl_mask = mask;
    f.shfl_in = bits;
    f.wait_file = file;
    f.wait_line = line;
    to_scheduler();
    return f.shfl_out;
}
std::uint64_t shfl_xor_bits(unsigned mask, std::uint64_t bits, int lane_mask, int, const char* file,
                            int line) {
    return shuffle(0, mask, bits, lane_mask, file, line);
}
std::uint64_t shfl_down_bits(unsigned mask, std::uint64_t bits, unsigned delta, int,
                             const char* file, int line) {
    return shuffle(1, mask, bits, int(delta), file, line);
}
std::uint64_t shfl_idx_bits(unsigned mask, std::uint64_t bits, int src, int, const char* file,
                            int line) {
    return shuffle(2, mask, bits, src, file, line);
}

template <class T>
T atomic_rmw(T* p, T v) {
    on_access(p, sizeof(T), true, true);
    const T old = *p;
    *p = old + v;
    return old;
}
float atomic_add(float* p, float v) {
    return atomic_rmw(p, v);
}
int atomic_add(int* p, int v) {
    return atomic_rmw(p, v);
}
unsigned atomic_add(unsigned* p, unsigned v) {
    return atomic_rmw(p, v);
}
unsigned long long atomic_add(unsigned long long* p, unsigned long long v) {
    return atomic_rmw(p, v);
}

long error_count() {
    Lock lk(g_mu);
    return g_errors;
}
const char* last_reports() {
    return g_last_reports.c_str();
}
void set_allocation_limit(std::size_t bytes) {
    Lock lk(g_mu);
    g_alloc_limit = bytes;
}
long launch_count() {
    Lock lk(g_mu);
    return g_launches;
}
long operation_count() {
    Lock lk(g_mu);
    return g_operations;
}

void launch(const char* name, const char* file, int line, std::function<void()> body, dim3 grid,
            dim3 block, std::size_t dyn, cudaStream_t stream) {
    Lock lk(g_mu);
    if (g_sticky != cudaSuccess) {
        set_error(g_sticky);
        return;
    }
    const unsigned long long nt = 1ull * block.x * block.y * block.z;
    if (nt == 0 || nt > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (dyn > kSmemLimit) {
        set_error(cudaErrorInvalidValue);
        return;
    }
    const int device = t_device;
    if (stream && g_streams.count(as_stream(stream)) && as_stream(stream)->device != device) {
        note("wrong device",
             "kernel %s (launched at %s:%d) on a stream of device %d while "
             "device %d is current",
             name, file, line, as_stream(stream)->device, device);
        set_error(cudaErrorInvalidResourceHandle);
        return;
    }
    auto shared_body = std::make_shared<std::function<void()>>(std::move(body));
    enqueue(stream, name,
            [=] { execute(name, file, line, *shared_body, grid, block, dyn, device); });
}

}  // namespace emu

// -------------------------------------------------------------------------------------------------
// The runtime API
// -------------------------------------------------------------------------------------------------

using namespace emu;

namespace {

cudaError_t api_result(cudaError_t e) {
    return set_error(e);
}

// Checks that [p, p + n) is device memory of one allocation; returns it or null.
const Alloc* device_range(const void* p, std::size_t n) {
    bool rz = false;
    const Alloc* a = find_alloc(reinterpret_cast<std::uintptr_t>(p), &rz);
    if (!a || rz || reinterpret_cast<std::uintptr_t>(p) + n > a->user + a->size) return nullptr;
    return a;
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
    if (bytes == 0) return cudaSuccess;
    const int d = t_device;
    if (bytes > kDeviceMemory - g_used[d] || (g_alloc_limit && bytes > g_alloc_limit))
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
    g_used[it->second.device] -= it->second.size;
    munmap(it->second.shadow, it->second.shadow_bytes);
    std::free(it->second.raw);
    if (g_last_alloc == &it->second) g_last_alloc = nullptr;
    g_allocs.erase(it);
    return g_sticky;
}

cudaError_t cudaMemGetInfo(std::size_t* f, std::size_t* t) {
    Lock lk(g_mu);
    *t = kDeviceMemory;
    *f = kDeviceMemory - g_used[t_device];
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

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    Lock lk(g_mu);
    if (s && !g_streams.count(as_stream(s))) return api_result(cudaErrorInvalidResourceHandle);
    if (capture_violation("cudaStreamSynchronize"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    return g_sticky;
}
cudaError_t cudaDeviceSynchronize() {
    Lock lk(g_mu);
    if (capture_violation("cudaDeviceSynchronize"))
        return api_result(cudaErrorStreamCaptureUnsupported);
    return g_sticky;
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
    Lock lk(g_mu);
    if (capture_violation("cudaStreamQuery")) return api_result(cudaErrorStreamCaptureUnsupported);
    (void)s;
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
    std::snprintf(p->name, sizeof p->name, "Emulated GPU %d (minicnn cuda/emu)", d);
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->totalGlobalMem = kDeviceMemory;
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

// -------------------------------------------------------------------------------------------------
// cuBLAS
// -------------------------------------------------------------------------------------------------

struct cublasContext {
    int device = 0;
    cudaStream_t stream = nullptr;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

const char* cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS:
            return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "CUBLAS_STATUS_EXECUTION_FAILED";
        default:
            return "CUBLAS_STATUS_INTERNAL_ERROR";
    }
}
const char* cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "success" : "emulated cuBLAS error";
}
cublasStatus_t cublasCreate(cublasHandle_t* h) {
    Lock lk(g_mu);
    if (capture_violation("cublasCreate")) return CUBLAS_STATUS_NOT_INITIALIZED;
    *h = new cublasContext;
    (*h)->device = t_device;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *s = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void* ws, std::size_t bytes) {
    Lock lk(g_mu);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !device_range(ws, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t* m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *m = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

namespace {

// The column-major matrix of `rows` x `cols` with leading dimension ld at p, all in one allocation
// of `device`; every element read must have been written when `reads`.
bool gemm_matrix(const char* name, const float* p, int rows, int cols, int ld, int device,
                 bool reads) {
    if (rows == 0 || cols == 0) return true;
    const std::size_t extent = (std::size_t(cols) - 1) * std::size_t(ld) + std::size_t(rows);
    const Alloc* a = device_range(p, extent * sizeof(float));
    if (!a || a->device != device) {
        report("out-of-bounds global",
               "cublasSgemm: matrix %s (%d x %d, ld %d) at %s is not "
               "inside one allocation of device %d",
               name, rows, cols, ld, describe_global(reinterpret_cast<std::uintptr_t>(p)).c_str(),
               device);
        return false;
    }
    if (!reads) return true;
    for (int j = 0; j < cols; ++j)
        for (int i = 0; i < rows; ++i) {
            const auto q = reinterpret_cast<std::uintptr_t>(p + std::size_t(j) * ld + i);
            if (gword(a, q)->w_launch == 0) {
                report("uninitialized read",
                       "cublasSgemm: matrix %s element (%d, %d) at %s was "
                       "never written",
                       name, i, j, describe_global(q).c_str());
                return true;
            }
        }
    return true;
}

}  // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float* alpha, const float* A, int lda,
                           const float* B, int ldb, const float* beta, float* C, int ldc) {
    Lock lk(g_mu);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (h->device != t_device) {
        note("wrong device",
             "cublasSgemm: handle created on device %d used while device %d is "
             "current",
             h->device, t_device);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (g_captures > 0 && h->stream && !as_stream(h->stream)->capturing) {
        note("capture violation",
             "cublasSgemm: the handle is bound to a stream other than the "
             "one being captured: the GEMM would run outside the graph");
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    const int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    const int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, arows) || ldb < std::max(1, brows) ||
        ldc < std::max(1, m) || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) ||
        (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (h->math == CUBLAS_TF32_TENSOR_OP_MATH)
        report("tf32", "cublasSgemm with TF32 tensor-op math: results would not match the CPU");
    const float al = *alpha, be = *beta;  // host pointer mode: read at the call
    const int dev = h->device;
    auto op = [=] {
        if (g_sticky != cudaSuccess) return;
        if (m == 0 || n == 0) return;
        if (!gemm_matrix("A", A, arows, acols, lda, dev, k > 0 && al != 0.0f) ||
            !gemm_matrix("B", B, brows, bcols, ldb, dev, k > 0 && al != 0.0f) ||
            !gemm_matrix("C", C, m, n, ldc, dev, be != 0.0f)) {
            g_sticky = cudaErrorIllegalAddress;
            return;
        }
        const Alloc* ca = device_range(C, ((std::size_t(n) - 1) * ldc + m) * sizeof(float));
        const std::uint32_t id = ++g_launch_ids;
        ++g_launches;
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) {
                float s = 0.0f;
                for (int l = 0; l < k; ++l) {
                    const float a = ta == CUBLAS_OP_N ? A[std::size_t(l) * lda + i]
                                                      : A[std::size_t(i) * lda + l];
                    const float b = tb == CUBLAS_OP_N ? B[std::size_t(j) * ldb + l]
                                                      : B[std::size_t(l) * ldb + j];
                    s += a * b;
                }
                float* c = C + std::size_t(j) * ldc + i;
                *c = be == 0.0f ? al * s : al * s + be * *c;
                GWord* g = gword(ca, reinterpret_cast<std::uintptr_t>(c));
                *g = GWord{id, 0, 0, 1, 0, 0};
            }
    };
    if (enqueue(h->stream, "cublasSgemm", op) != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    return g_sticky == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

// -------------------------------------------------------------------------------------------------
// ThreadSanitizer entry points: GCC calls these for every load and store of the instrumented
// kernel files.
// -------------------------------------------------------------------------------------------------

#define EMU_TSAN_RW(N)                                   \
    extern "C" void __tsan_read##N(void* p) {            \
        emu::on_access(p, N, false);                     \
    }                                                    \
    extern "C" void __tsan_write##N(void* p) {           \
        emu::on_access(p, N, true);                      \
    }                                                    \
    extern "C" void __tsan_unaligned_read##N(void* p) {  \
        emu::on_access(p, N, false);                     \
    }                                                    \
    extern "C" void __tsan_unaligned_write##N(void* p) { \
        emu::on_access(p, N, true);                      \
    }
EMU_TSAN_RW(1)
EMU_TSAN_RW(2)
EMU_TSAN_RW(4)
EMU_TSAN_RW(8)
EMU_TSAN_RW(16)
extern "C" void __tsan_read_range(void* p, unsigned long n) {
    emu::on_access(p, n, false);
}
extern "C" void __tsan_write_range(void* p, unsigned long n) {
    emu::on_access(p, n, true);
}
extern "C" void __tsan_init() {}
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_vptr_update(void**, void*) {}
extern "C" void __tsan_vptr_read(void**) {}
