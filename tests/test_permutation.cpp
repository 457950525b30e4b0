// tests/test_permutation.cpp — the epoch permutation (minicnn/detail/permutation.h), on the host:
// a permutation of [0, n) for small, odd, power-of-two and MNIST-sized n; a function of the seed
// (same seed, same permutation; another seed, another one); not the identity; the identity without
// shuffling; spread over the positions; and the CPU engine's Engine::permutation is exactly it.
// The GPU twin (one thread per element) is compared with this in tests/test_engine_cuda.cpp
// (CudaEngine.PermutationIsIdenticalToCpu).
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/detail/permutation.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"

namespace minicnn {
namespace {

using detail::EpochPermutation;

std::vector<std::int64_t> draw(std::int64_t n, std::uint64_t seed, bool shuffle = true) {
    const EpochPermutation p(std::uint64_t(n), seed, shuffle);
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i)] = std::int64_t(p(std::uint64_t(i)));
    return v;
}

// Every value of [0, n) exactly once; names the first value out of range or seen twice.
::testing::AssertionResult is_permutation(const std::vector<std::int64_t>& v) {
    const std::int64_t n = std::int64_t(v.size());
    std::vector<char> seen(v.size(), 0);
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t x = v[std::size_t(i)];
        if (x < 0 || x >= n)
            return ::testing::AssertionFailure() << "element " << i << " = " << x << " of n " << n;
        if (seen[std::size_t(x)])
            return ::testing::AssertionFailure() << "value " << x << " twice (n " << n << ")";
        seen[std::size_t(x)] = 1;
    }
    return ::testing::AssertionSuccess();
}

TEST(Permutation, IsAPermutationOfEveryN) {
    for (std::int64_t n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 1000, 1024, 1025, 60000}) {
        for (std::uint64_t seed : {0ull, 1ull, 5ull, 0xFFFFFFFFFFFFFFFFull}) {
            EXPECT_TRUE(is_permutation(draw(n, seed))) << "n " << n << " seed " << seed;
        }
    }
    EXPECT_EQ(draw(1, 7), std::vector<std::int64_t>{0});
}

TEST(Permutation, IsAFunctionOfTheSeedAndNotTheIdentity) {
    for (std::int64_t n : {1000, 60000}) {
        const std::vector<std::int64_t> a = draw(n, 11), b = draw(n, 11), c = draw(n, 12);
        EXPECT_EQ(a, b) << "n " << n;
        EXPECT_NE(a, c) << "n " << n;
        std::int64_t fixed = 0, differ = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            fixed += a[std::size_t(i)] == i;
            differ += a[std::size_t(i)] != c[std::size_t(i)];
        }
        // A random permutation has 1 fixed point on average; two agree at 1 position on average.
        EXPECT_LT(fixed, 20) << "n " << n;
        EXPECT_GT(differ, n - 20) << "n " << n;
    }
    // Without shuffling: the identity, whatever the seed.
    const std::vector<std::int64_t> id = draw(1000, 11, false);
    for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(id[std::size_t(i)], i);
}

TEST(Permutation, SpreadsEveryElementOverThePositions) {
    // Over 2000 seeds, where element 0 goes (n = 10) and which of the 6 orders of n = 3 comes out:
    // each of k outcomes should come out about 2000 / k times; allow +-30% (binomial sd: ~3-4%).
    const int draws = 2000;
    std::vector<int> pos(10, 0), order(9, 0);
    for (int s = 0; s < draws; ++s) {
        const std::vector<std::int64_t> p = draw(10, std::uint64_t(s));
        for (int i = 0; i < 10; ++i)
            if (p[std::size_t(i)] == 0) ++pos[std::size_t(i)];
        const std::vector<std::int64_t> q = draw(3, std::uint64_t(s));
        ++order[std::size_t(q[0] * 3 + q[1])];
    }
    for (int i = 0; i < 10; ++i) {
        EXPECT_NEAR(pos[std::size_t(i)], draws / 10, 0.3 * draws / 10) << "position " << i;
    }
    int orders = 0;
    for (int k = 0; k < 9; ++k) {
        if (order[std::size_t(k)] == 0) continue;
        ++orders;
        EXPECT_NEAR(order[std::size_t(k)], draws / 6, 0.3 * draws / 6) << "order " << k;
    }
    EXPECT_EQ(orders, 6);
}

TEST(Permutation, CpuEngineFillsExactlyThePermutation) {
    auto e = make_cpu_engine();
    for (std::int64_t n : {1, 3, 1000, 60000}) {
        EngineBuffer<std::int32_t> buf(*e, n);
        for (bool shuffle : {true, false}) {
            e->permutation(buf.data(), n, 99, shuffle);
            std::vector<std::int32_t> got(static_cast<std::size_t>(n));
            e->download(got.data(), buf.data(), buf.bytes());
            const std::vector<std::int64_t> want = draw(n, 99, shuffle);
            for (std::int64_t i = 0; i < n; ++i) {
                ASSERT_EQ(got[std::size_t(i)], want[std::size_t(i)])
                    << "n " << n << " shuffle " << shuffle << " element " << i;
            }
        }
    }
    // int32 indices: n above 2^31 is refused before anything is written.
    try {
        e->permutation(nullptr, (std::int64_t(1) << 31) + 1, 1, true);
        FAIL() << "n = 2^31 + 1 must be refused";
    } catch (const ArgumentError& err) {
        EXPECT_NE(std::string(err.what()).find("2147483649"), std::string::npos) << err.what();
    }
}

}  // namespace
}  // namespace minicnn
