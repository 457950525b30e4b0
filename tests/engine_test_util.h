// tests/engine_test_util.h — helpers of the CUDA-engine-against-CPU-engine tests
// (test_engine_cuda.cpp, test_engine_cuda_fused.cpp):
//   - MINICNN_REQUIRE_GPU(): GTEST_SKIP() with the reason in CPU-only builds or without a device,
//   - randv: a reproducible uniform float vector,
//   - close: |gpu - cpu| <= atol + rtol |cpu| elementwise, naming the worst element,
//   - expect_adam_weights_close: weights after a few Adam steps on two sides (Adam's rule),
//   - Twin<T>: the same host data in the memory of two engines.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/device.h"
#include "minicnn/engine.h"

namespace minicnn::enginetest {

#define MINICNN_REQUIRE_GPU()                                                        \
    do {                                                                             \
        if (!built_with_cuda()) GTEST_SKIP() << "minicnn was built without CUDA";    \
        if (cuda_device_count() == 0)                                                \
            GTEST_SKIP() << "no CUDA device visible: " << cuda_unavailable_reason(); \
    } while (0)

inline std::vector<float> randv(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 g(seed);
    std::vector<float> v(n);
    for (float& x : v) x = lo + (hi - lo) * float(double(g()) / 4294967296.0);
    return v;
}

// |gpu - cpu| <= atol + rtol |cpu|; names the worst element.
inline ::testing::AssertionResult close(const std::vector<float>& gpu,
                                        const std::vector<float>& cpu, double atol,
                                        double rtol = 1e-4) {
    if (gpu.size() != cpu.size()) return ::testing::AssertionFailure() << "sizes differ";
    std::size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (std::size_t i = 0; i < gpu.size(); ++i) {
        const double excess =
            std::fabs(double(gpu[i]) - cpu[i]) - (atol + rtol * std::fabs(cpu[i]));
        if (!(excess <= 0)) ++bad;
        if (!(excess <= worst_excess)) {
            worst_excess = std::isnan(excess) ? INFINITY : excess;
            worst = i;
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << bad << " of " << gpu.size() << " elements differ; worst " << worst << ": gpu "
           << gpu[worst] << ", cpu " << cpu[worst] << " (atol " << atol << ")";
}

// Weights after `steps` Adam steps from the same start on two sides whose gradients differ by
// float rounding (two engines, or one process against ranks). Adam moves a weight by
// lr * m^ / (sqrt(v^) + eps), about lr * sign(g) while its gradient history is one-signed: a weight
// whose gradients stay well away from zero agrees to float rounding, a few u relative in the
// gradient changing the step by a few u lr and each update rounding the weight once (bounded by
// atol + rtol |w|, which the caller derives). Where a gradient is within the two sides' rounding
// difference of zero (a unit at the edge of its ReLU, batch contributions that cancel), the two
// sides may step that weight differently, by up to 2 lr per step; such weights are few, and move
// the loss by ~ g * 2 lr ~ 0. So the tight bound must hold for all but 0.1% of the weights, and
// every weight must stay within the (2 steps + 0.1) lr any two Adam runs of `steps` steps from
// the same start can differ by (|m^| / sqrt(v^) <= 1.01 for steps <= 4 with the default betas).
inline void expect_adam_weights_close(const std::vector<float>& got, const std::vector<float>& ref,
                                      double lr, int steps, double atol, double rtol,
                                      const std::string& what) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    ASSERT_LE(steps, 4) << "the bound |m^| / sqrt(v^) <= 1.01 is for at most 4 steps";
    std::size_t loose = 0, worst = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        const double diff = std::fabs(double(got[i]) - ref[i]);
        if (!(diff <= atol + rtol * std::fabs(ref[i]))) ++loose;
        if (!(diff <= std::fabs(double(got[worst]) - ref[worst]))) worst = i;
    }
    EXPECT_LE(loose, ref.size() / 1000) << what << ": " << loose << " of " << ref.size()
                                         << " weights differ by more than " << atol << " + "
                                         << rtol << " |w|";
    EXPECT_LE(std::fabs(double(got[worst]) - ref[worst]), (2 * steps + 0.1) * lr)
        << what << ": weight " << worst << ": got " << got[worst] << ", expected " << ref[worst];
}

// The same host data in the memory of two engines.
template <class T>
struct Twin {
    EngineBuffer<T> cpu, gpu;
    Engine *ce, *ge;
    Twin(Engine& c, Engine& g, const std::vector<T>& v)
        : cpu(c, std::int64_t(v.size())), gpu(g, std::int64_t(v.size())), ce(&c), ge(&g) {
        c.upload(cpu.data(), v.data(), cpu.bytes());
        g.upload(gpu.data(), v.data(), gpu.bytes());
    }
    Twin(Engine& c, Engine& g, std::int64_t n)
        : Twin(c, g, std::vector<T>(static_cast<std::size_t>(n))) {}
    std::vector<T> host_cpu() const {
        std::vector<T> h(static_cast<std::size_t>(cpu.size()));
        ce->download(h.data(), cpu.data(), cpu.bytes());
        return h;
    }
    std::vector<T> host_gpu() const {
        std::vector<T> h(static_cast<std::size_t>(gpu.size()));
        ge->download(h.data(), gpu.data(), gpu.bytes());
        return h;
    }
};

}  // namespace minicnn::enginetest
