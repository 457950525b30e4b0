// tests/emu/device.cpp — the CUDA emulator's GPU: the execution model and the checker (in the
// manner of compute-sanitizer). Verification only (see tests/emu/include/cuda_runtime.h,
// tests/emu/run.sh and docs/emulator.md); compiled without instrumentation.
//
// Execution. A launch runs its blocks one after another, in a shuffled order (EMU_BLOCK_ORDER =
// shuffle (default) | forward | reverse). Inside a block every CUDA thread is a fiber with its own
// stack; a fiber runs until it reaches __syncthreads(), a warp shuffle or its end, then the next
// fiber runs. When every live thread waits at the barrier, the barrier opens (a new "phase"); when
// every lane of a warp waits at a shuffle, the values are exchanged.
//
// Checker: each report names its kind (the table in docs/emulator.md: out-of-bounds global and
// shared, uninitialized read, shared-memory race, global write conflict, block-order dependence,
// barrier divergence, legacy stream, launch failure; the launch checks are in launch.cpp), the
// kernel and where it was launched, the block, the thread and
// the address; the gtest main in tests/emu/gtest_main.cpp fails the run on any report. A fault
// (out-of-bounds) stops the launch and leaves the sticky cudaErrorIllegalAddress, as on a GPU.
// Memory accesses are seen through GCC's ThreadSanitizer instrumentation of the rewritten kernel
// files: the __tsan_* entry points at the end of this file. Accesses to the fibers' stacks (a
// thread's local variables) are not checked.
#include <cuda_runtime.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "emu_internal.h"
#include "fiber.h"

namespace emu {
namespace {

// ---------------------------------------------------------------------------------------------
// CUDA threads
// ---------------------------------------------------------------------------------------------

enum class FState { ready, barrier, shuffle, done };

// One CUDA thread of the running block: fiber `linear` (fiber.h) and what it waits for.
struct Fiber {
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

Fiber g_fibers[fiber::kMax];
thread_local Fiber* t_cur = nullptr;

void fiber_main();

void fiber_start(Fiber& f) {
    fiber::start(int(f.linear), fiber_main);
    f.state = FState::ready;
    f.in_kernel = false;
}

void to_fiber(Fiber& f) {
    t_cur = &f;
    fiber::resume(int(f.linear));
    t_cur = nullptr;
}

void to_scheduler() {
    fiber::yield(int(t_cur->linear));
}

// ---------------------------------------------------------------------------------------------
// Launch state, shared memory
// ---------------------------------------------------------------------------------------------

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
    if (p >= reinterpret_cast<std::uintptr_t>(fiber::stack_lo) &&
        p < reinterpret_cast<std::uintptr_t>(fiber::stack_hi))
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

}  // namespace

void execute(const char* name, const char* file, int line, std::function<void()>& body, dim3 grid,
             dim3 block, std::size_t dyn, int device) {
    if (g_sticky != cudaSuccess) return;  // a dead context runs nothing
    ++g_launches;
    fiber::init();
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
    shuffle_bits(2, 0xffffffffu, 0, 0, file, line);
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

std::uint64_t shuffle_bits(int kind, unsigned mask, std::uint64_t bits, int arg, const char* file,
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
void set_device_memory(std::size_t bytes) {
    Lock lk(g_mu);
    g_device_memory = bytes;
}
long launch_count() {
    Lock lk(g_mu);
    return g_launches;
}
long operation_count() {
    Lock lk(g_mu);
    return g_operations;
}

}  // namespace emu

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
