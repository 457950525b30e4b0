// minicnn/detail/permutation.h — the epoch permutation, written once for the host and the device.
//
// EpochPermutation(n, seed)(i) is element i of a permutation of [0, n) chosen by seed: element i is
// computed on its own (counter-based: O(1) per element, no state, no scratch), so the CPU engine
// fills perm (n) with a loop and the CUDA engine with one thread per element, and both get the same
// bits (integer arithmetic only). Used by Engine::permutation (host/cpu/engine_cpu.cpp,
// cuda/train_kernels.cu); tested in tests/test_permutation.cpp and tests/test_engine_cuda.cpp.
//
// Construction: a keyed bijection f on [0, 2^k), 2^k the smallest power of two >= n, restricted to
// [0, n) by cycle walking:
//
//   x = f(i); while (x >= n) x = f(x);
//
// Walking the cycle of f that contains i until it comes back below n gives a bijection of [0, n)
// (the "cycle-walking cipher"); since 2^k < 2n, a walk takes fewer than 2 steps of f on average.
// f is an unbalanced Feistel network of kRounds rounds over k bits. A round splits x into its high
// `hb` bits H and its low `lb` = k - hb bits L and maps
//
//   x = (H, L)  ->  (L, H ^ F(L, round))     (new high part: L, lb bits; new low part: hb bits)
//
// which is invertible whatever F is (L is still there, so H comes back as the low part ^ F(L)). The
// two widths alternate from round to round. F is the splitmix64 finaliser (a 64-bit bijection with
// full avalanche) of the key, the round and L, cut to hb bits. The key is splitmix64 of the seed.
//
// MINICNN_HD and mix64 come from minicnn/detail/mix64.h (plain inline functions for g++,
// __host__ __device__ ones for nvcc).
#pragma once

#include <cstdint>

#include "minicnn/detail/mix64.h"
#include "minicnn/error.h"

namespace minicnn::detail {

class EpochPermutation {
public:
    static constexpr int kRounds = 6;

    // A permutation of [0, n), n in [0, 2^62]; the identity when shuffle is false.
    MINICNN_HD EpochPermutation(std::uint64_t n, std::uint64_t seed, bool shuffle = true)
        : n_(n), key_(mix64(seed + 0x9E3779B97F4A7C15ull)), shuffle_(shuffle) {
        while ((std::uint64_t(1) << bits_) < n) ++bits_;
    }

    MINICNN_HD std::uint64_t size() const { return n_; }

    // Element i of the permutation, i in [0, n).
    MINICNN_HD std::uint64_t operator()(std::uint64_t i) const {
        if (!shuffle_) return i;
        std::uint64_t x = feistel(i);
        while (x >= n_) x = feistel(x);  // ends: i < n lies on x's cycle
        return x;
    }

private:
    // The bijection f on [0, 2^bits_).
    MINICNN_HD std::uint64_t feistel(std::uint64_t x) const {
        int hb = bits_ - bits_ / 2;  // width of the high part (the one that gets F added)
        for (int r = 0; r < kRounds; ++r) {
            const int lb = bits_ - hb;
            const std::uint64_t high = x >> lb;
            const std::uint64_t low = x & ((std::uint64_t(1) << lb) - 1);
            const std::uint64_t f = mix64(key_ ^ mix64((low << 8) | std::uint64_t(r)));
            x = (low << hb) | ((high ^ f) & ((std::uint64_t(1) << hb) - 1));
            hb = lb;
        }
        return x;
    }

    std::uint64_t n_;
    std::uint64_t key_;
    bool shuffle_;
    int bits_ = 0;  // k: 2^k is the smallest power of two >= n
};

// Host side, before filling perm (n) of int32 indices: n must be in [0, 2^31].
inline void check_permutation_size(std::int64_t n) {
    MINICNN_REQUIRE(n >= 0 && n <= (std::int64_t(1) << 31),
                    "permutation: n must be in [0, 2^31] (int32 indices), got " << n);
}

}  // namespace minicnn::detail
