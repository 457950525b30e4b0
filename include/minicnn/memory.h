// minicnn/memory.h — how much host memory the process may still use, and how much it has used.
//
// host_memory_available() is what a trainer compares its need with before it allocates (Trainer::
// fit refuses a run that does not fit, minicnn/trainer.h): the kernel's estimate of memory
// available without swapping (MemAvailable in /proc/meminfo), lowered by the limits this process
// runs under where they are tighter: the address-space limit (ulimit -v, RLIMIT_AS) less the address
// space already mapped, and a cgroup v2 memory limit (memory.max) less the cgroup's usage.
#pragma once

#include <cstddef>

namespace minicnn {

// Bytes this process may still allocate (see above); SIZE_MAX where nothing says.
std::size_t host_memory_available();
// The peak resident set size of this process so far, in bytes (getrusage ru_maxrss).
std::size_t peak_host_memory();

}  // namespace minicnn
