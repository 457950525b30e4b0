// tests/emu/fiber.cpp — fibers for the emulator's CUDA threads (fiber.h). Verification only.
#include "fiber.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu::fiber {

char* stack_lo = nullptr;
char* stack_hi = nullptr;

namespace {

constexpr std::size_t kStackBytes = 128 * 1024;
constexpr std::size_t kGuardBytes = 4096;
char* g_stack[kMax];
void (*g_entry)() = nullptr;

#if defined(__x86_64__)
void* g_sp[kMax];
void* g_sched_sp = nullptr;
#else
ucontext_t g_uc[kMax];
ucontext_t g_sched_uc;
#endif

}  // namespace

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
    g_entry();
    std::fputs("emu: a fiber returned from its entry function\n", stderr);
    std::abort();
}
#else
void entry_trampoline() {
    g_entry();
    std::abort();
}
#endif

void init() {
    if (stack_lo) return;
    const std::size_t per = kStackBytes + kGuardBytes;
    void* p = mmap(nullptr, per * kMax, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        std::fputs("emu: cannot map the fiber stacks\n", stderr);
        std::abort();
    }
    stack_lo = static_cast<char*>(p);
    stack_hi = stack_lo + per * kMax;
    for (int i = 0; i < kMax; ++i) {
        char* base = stack_lo + per * std::size_t(i);
        mprotect(base, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting
        g_stack[i] = base + kGuardBytes;
    }
}

void start(int i, void (*entry)()) {
    g_entry = entry;
#if defined(__x86_64__)
    auto* top = reinterpret_cast<std::uintptr_t*>(
        reinterpret_cast<std::uintptr_t>(g_stack[i] + kStackBytes) & ~std::uintptr_t(15));
    *--top = 0;                                                   // fake return address
    *--top = reinterpret_cast<std::uintptr_t>(&emu_fiber_entry);  // emu_switch's ret
    for (int r = 0; r < 6; ++r) *--top = 0;                       // rbp rbx r12-r15
    g_sp[i] = top;
#else
    getcontext(&g_uc[i]);
    g_uc[i].uc_stack.ss_sp = g_stack[i];
    g_uc[i].uc_stack.ss_size = kStackBytes;
    g_uc[i].uc_link = nullptr;
    makecontext(&g_uc[i], entry_trampoline, 0);
#endif
}

void resume(int i) {
#if defined(__x86_64__)
    emu_switch(&g_sched_sp, g_sp[i]);
#else
    swapcontext(&g_sched_uc, &g_uc[i]);
#endif
}

void yield(int i) {
#if defined(__x86_64__)
    emu_switch(&g_sp[i], g_sched_sp);
#else
    swapcontext(&g_uc[i], &g_sched_uc);
#endif
}

}  // namespace emu::fiber
