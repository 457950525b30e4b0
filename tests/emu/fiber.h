// tests/emu/fiber.h — the stacks and context switches of the emulator's CUDA threads (fiber.cpp).
// Fiber i runs on its own stack (128 KiB, with a guard page below it so an overflow faults); the
// scheduler resumes a fiber, which runs until it yields back. x86-64 switches with six pushes and
// a stack-pointer swap; other machines use ucontext.
#pragma once

#include <cstddef>

namespace emu::fiber {

constexpr int kMax = 1024;  // threads per block

// Every fiber stack lies in [stack_lo, stack_hi): an address there is a thread's local variable.
extern char* stack_lo;
extern char* stack_hi;

void init();                         // maps the stacks, once
void start(int i, void (*entry)());  // fiber i runs entry() from a fresh stack when next resumed
void resume(int i);                  // from the scheduler: runs fiber i until it yields
void yield(int i);                   // from fiber i: back to the scheduler

}  // namespace emu::fiber
