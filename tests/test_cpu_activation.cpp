// tests/test_cpu_activation.cpp — the CPU activations (host/cpu/activation.cpp): hand-computed values
// of each forward and backward rule (backward from the forward OUTPUT), softmax's max subtraction
// (no overflow for large logits), sigmoid at the extremes, in-place use (out = in, din = dout),
// float32 against float64, and bit-identical results for 1 and 2 threads.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include "minicnn/cpu_backend.h"

#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"
#include "minicnn/ops.h"
#include "test_util.h"

namespace minicnn {
namespace {

using test::all_close;
using test::all_equal;
using test::random_vector;

const Activation kAll[] = {Activation::linear, Activation::relu, Activation::tanh,
                           Activation::sigmoid, Activation::softmax};

std::vector<double> fwd(const std::vector<double>& x, std::int64_t rows, std::int64_t cols,
                        Activation act) {
    std::vector<double> y(x.size(), std::numeric_limits<double>::quiet_NaN());
    cpu::activation_forward(y.data(), x.data(), rows, cols, act);
    return y;
}
std::vector<double> bwd(const std::vector<double>& dy, const std::vector<double>& y,
                        std::int64_t rows, std::int64_t cols, Activation act) {
    std::vector<double> dx(dy.size(), std::numeric_limits<double>::quiet_NaN());
    cpu::activation_backward(dx.data(), dy.data(), y.data(), rows, cols, act);
    return dx;
}

TEST(CpuActivation, HandComputedForward) {
    const std::vector<double> x = {-2, 0, 0.5, 3};
    EXPECT_TRUE(all_equal(fwd(x, 1, 4, Activation::linear), x));
    EXPECT_TRUE(all_equal(fwd(x, 2, 2, Activation::relu), std::vector<double>{0, 0, 0.5, 3}));
    EXPECT_TRUE(all_close(
        fwd(x, 4, 1, Activation::tanh),
        std::vector<double>{-0.9640275800758169, 0, 0.46211715726000974, 0.9950547536867305}, 0,
        1e-15));
    EXPECT_TRUE(all_close(
        fwd(x, 1, 4, Activation::sigmoid),
        std::vector<double>{0.11920292202211755, 0.5, 0.6224593312018546, 0.9525741268224334}, 0,
        1e-15));
    // softmax per row: [1, 2, 3] -> e^{-2, -1, 0} / (e^-2 + e^-1 + 1); [0, 0, 0] -> 1/3 each.
    const std::vector<double> s = fwd({1, 2, 3, 0, 0, 0}, 2, 3, Activation::softmax);
    EXPECT_TRUE(all_close(s,
                          std::vector<double>{0.09003057317038046, 0.24472847105479764,
                                              0.6652409557748219, 1.0 / 3, 1.0 / 3, 1.0 / 3},
                          0, 1e-15));
}

// Large logits: without the max subtraction e^1000 overflows to inf and the result is NaN.
TEST(CpuActivation, SoftmaxAndSigmoidDoNotOverflow) {
    EXPECT_TRUE(all_close(fwd({1000, 1000, -1000, 0}, 2, 2, Activation::softmax),
                          std::vector<double>{0.5, 0.5, 0, 1}, 0, 1e-15));
    std::vector<float> y(4);
    const std::vector<float> x = {1000.f, 999.f, -100.f, 100.f};
    cpu::activation_forward(y.data(), x.data(), 1, 2, Activation::softmax);
    EXPECT_TRUE(all_close(
        y.data(), std::vector<double>{0.7310585786300049, 0.2689414213699951}.data(), 2, 0, 1e-6));
    cpu::activation_forward(y.data() + 2, x.data() + 2, 1, 2, Activation::sigmoid);
    EXPECT_EQ(y[2],
              0.0f);  // 1 / (1 + e^100): e^100 overflows float to inf, the result is 0, not NaN
    EXPECT_EQ(y[3], 1.0f);
}

TEST(CpuActivation, HandComputedBackwardFromOutput) {
    const std::vector<double> dy = {1, 2, 3, 4};
    // relu: the gradient passes where the output is > 0 (an output of exactly 0 blocks it).
    EXPECT_TRUE(all_equal(bwd(dy, {0, 0, 0.5, 3}, 1, 4, Activation::relu),
                          std::vector<double>{0, 0, 3, 4}));
    EXPECT_TRUE(all_equal(bwd(dy, {5, -5, 0, 1}, 1, 4, Activation::linear), dy));
    // tanh: dy (1 - a^2); sigmoid: dy a (1 - a).
    EXPECT_TRUE(all_close(bwd(dy, {0, 0.5, -0.5, 1}, 1, 4, Activation::tanh),
                          std::vector<double>{1, 1.5, 2.25, 0}, 0, 1e-15));
    EXPECT_TRUE(all_close(bwd(dy, {0.5, 0.25, 1, 0}, 1, 4, Activation::sigmoid),
                          std::vector<double>{0.25, 0.375, 0, 0}, 0, 1e-15));
    // softmax: a (dy - <dy, a>) per row. Row 1: a = (0.5, 0.5), dy = (1, 2): <.,.> = 1.5 ->
    // (-0.25, 0.25). Row 2: a = (0.25, 0.75), dy = (3, 4): <.,.> = 3.75 -> (-0.1875, 0.1875).
    EXPECT_TRUE(all_close(bwd(dy, {0.5, 0.5, 0.25, 0.75}, 2, 2, Activation::softmax),
                          std::vector<double>{-0.25, 0.25, -0.1875, 0.1875}, 0, 1e-15));
}

// out may alias in, din may alias dout: the result is the same as with separate buffers.
TEST(CpuActivation, InPlaceMatchesOutOfPlace) {
    const std::int64_t rows = 7, cols = 10;
    const auto x = random_vector<double>(rows * cols, 3, -4.0, 4.0);
    const auto dy = random_vector<double>(rows * cols, 4);
    for (Activation act : kAll) {
        const auto y = fwd(x, rows, cols, act);
        auto inplace = x;
        cpu::activation_forward(inplace.data(), inplace.data(), rows, cols, act);
        EXPECT_TRUE(all_equal(inplace, y)) << static_cast<int>(act);
        const auto dx = bwd(dy, y, rows, cols, act);
        auto dinplace = dy;
        cpu::activation_backward(dinplace.data(), dinplace.data(), y.data(), rows, cols, act);
        EXPECT_TRUE(all_equal(dinplace, dx)) << static_cast<int>(act);
    }
}

TEST(CpuActivation, Float32CloseToFloat64) {
    const std::int64_t rows = 33, cols = 17;
    const auto xf = random_vector<float>(rows * cols, 5, -6.0, 6.0);
    const auto dyf = random_vector<float>(rows * cols, 6);
    const auto x = test::cast_vector<double>(xf), dy = test::cast_vector<double>(dyf);
    for (Activation act : kAll) {
        SCOPED_TRACE(static_cast<int>(act));
        std::vector<float> yf(xf.size()), dxf(xf.size());
        cpu::activation_forward(yf.data(), xf.data(), rows, cols, act);
        const auto y = fwd(x, rows, cols, act);
        EXPECT_TRUE(all_close(yf, y, 1e-7, 1e-6));
        // Backward from the same (float-rounded) forward output, so only the backward differs.
        const auto yr = test::cast_vector<double>(yf);
        cpu::activation_backward(dxf.data(), dyf.data(), yf.data(), rows, cols, act);
        EXPECT_TRUE(all_close(dxf, bwd(dy, yr, rows, cols, act), 1e-6, 1e-6));
    }
}

TEST(CpuActivation, ThreadCountDoesNotChangeBits) {
    const std::int64_t rows = 3001, cols = 13;  // ~4e4 elements: really run on several threads
    const auto x = random_vector<float>(rows * cols, 7, -3.0, 3.0);
    const auto dy = random_vector<float>(rows * cols, 8);
    for (Activation act : kAll) {
        auto run = [&](int threads) {
            const int saved = cpu::thread_count();
            cpu::set_thread_count(threads);
            std::vector<float> y(x.size()), dx(x.size());
            cpu::activation_forward(y.data(), x.data(), rows, cols, act);
            cpu::activation_backward(dx.data(), dy.data(), y.data(), rows, cols, act);
            cpu::set_thread_count(saved);
            y.insert(y.end(), dx.begin(), dx.end());
            return y;
        };
        EXPECT_TRUE(all_equal(run(2), run(1))) << static_cast<int>(act);
    }
}

TEST(CpuActivation, EmptyAndBadArguments) {
    std::vector<double> buf(4, 1.0);
    cpu::activation_forward(buf.data(), buf.data(), 0, 4, Activation::softmax);  // nothing to do
    cpu::activation_backward(buf.data(), buf.data(), buf.data(), 4, 0, Activation::softmax);
    EXPECT_TRUE(all_equal(buf, std::vector<double>(4, 1.0)));
    EXPECT_THROW(cpu::activation_forward<double>(buf.data(), nullptr, 1, 4, Activation::relu),
                 ArgumentError);
    EXPECT_THROW(cpu::activation_forward(buf.data(), buf.data(), -1, 4, Activation::relu),
                 ArgumentError);
    EXPECT_THROW(cpu::activation_forward(buf.data(), buf.data(), 1, 4, static_cast<Activation>(99)),
                 ArgumentError);
    EXPECT_THROW(cpu::activation_backward(buf.data(), buf.data(), buf.data(), 1, 4,
                                          static_cast<Activation>(-1)),
                 ArgumentError);
}

// ---- through the functional API (minicnn/ops.h, Device::cpu()) ----------------------------------

// Any rank: softmax normalises over the last axis; the result equals the pointer-level rows x cols
// call.
TEST(CpuActivationApi, AnyRankLastAxis) {
    const Shape shape = {2, 3, 3, 4};
    const auto z = random_vector<double>(72, 700, -3.0, 3.0);
    const auto da = random_vector<double>(72, 701);
    const Tensor Z = Tensor::from<double>(shape, z);
    const Tensor DA = Tensor::from<double>(shape, da);
    for (Activation act : kAll) {
        SCOPED_TRACE(static_cast<int>(act));
        const Tensor A = activation_forward(Z, act, Device::cpu());
        ASSERT_EQ(A.shape(), shape);
        const auto a = fwd(z, 18, 4, act);
        EXPECT_TRUE(all_equal(test::to_vector<double>(A), a));
        const Tensor DZ = activation_backward(DA, A, act, Device::cpu());
        ASSERT_EQ(DZ.shape(), shape);
        EXPECT_TRUE(all_equal(test::to_vector<double>(DZ), bwd(da, a, 18, 4, act)));
    }
    const auto s =
        test::to_vector<double>(activation_forward(Z, Activation::softmax, Device::cpu()));
    for (std::size_t r = 0; r < 18; ++r) {
        double sum = 0.0;
        for (std::size_t k = 0; k < 4; ++k) sum += s[r * 4 + k];
        EXPECT_NEAR(sum, 1.0, 1e-14) << "row " << r;
    }
}

}  // namespace
}  // namespace minicnn
