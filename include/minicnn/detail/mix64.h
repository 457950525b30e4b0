// minicnn/detail/mix64.h — the splitmix64 finaliser, written once for the host and the device: the
// mixing step of the counter-based random streams (the epoch permutation,
// minicnn/detail/permutation.h; dropout's draws, minicnn/detail/dropout.h).
//
// Host-only builds see plain inline functions; nvcc sees __host__ __device__ ones (the CPU emulator
// of tests/emu compiles .cu files with g++ and defines __host__ and __device__ as empty).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MINICNN_HD __host__ __device__
#else
#define MINICNN_HD
#endif

namespace minicnn::detail {

// The splitmix64 finaliser: a bijection of 64-bit words in which every output bit depends on every
// input bit.
MINICNN_HD inline std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace minicnn::detail
