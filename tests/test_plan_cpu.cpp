// tests/test_plan_cpu.cpp — the CPU engine's plan (host/cpu/plan_cpu.cpp: convolution + activation
// + max pooling as one stage, the convolution's output never in a batch-sized buffer, act' taken
// from the pooled value) against the layer-by-layer plan on the same CPU engine
// (tests/plan_test_util.h: outputs and every parameter gradient equal value for value, the
// gradient arena poisoned with NaNs first), for 1, 2 and 3 threads; what cannot fuse runs layer by
// layer; with the im2col method (no direct kernels) nothing fuses.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/conv_direct.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/model.h"
#include "minicnn/plan.h"
#include "plan_test_util.h"

namespace minicnn {
namespace {

using namespace enginetest;

// Runs fn with the CPU backend's thread count set to `threads`, then restores it.
template <class F>
void with_threads(int threads, F&& fn) {
    const int saved = cpu::thread_count();
    cpu::set_thread_count(threads);
    fn();
    cpu::set_thread_count(saved);
}

// The stage names of the CPU plan, after checking it against the layer-by-layer plan with 1, 2
// and 3 threads.
std::vector<std::string> expect_cpu_plans_agree(Sequential& m, std::int64_t n) {
    std::vector<std::string> names;
    for (int threads : {1, 2, 3}) {
        SCOPED_TRACE(::testing::Message() << threads << " threads");
        with_threads(threads, [&] { names = expect_plans_agree(Device::cpu(), m, n); });
    }
    return names;
}

TEST(CpuPlan, LeNet5FusesBothConvPoolPairsValueForValue) {
    Sequential m = lenet5(3);
    const auto names = expect_cpu_plans_agree(m, 40);  // 40: three batch chunks
    if (!cpu::direct::enabled()) GTEST_SKIP() << "no AVX2 + FMA: the CPU plan fuses nothing here";
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d+max_pooling2d", "conv2d_1+max_pooling2d_1",
                                               "flatten", "dense", "dense_1", "dense_2"}));
}

// tanh and sigmoid take act' from the pooled value too; windows with gaps (2x2, stride 3) leave
// cells no window reaches, whose gradient is 0 either way.
TEST(CpuPlan, TanhSigmoidAndWindowsWithGapsFuseValueForValue) {
    Sequential m({14, 14, 3}, "gaps");
    m.conv2d(5, {3, 3}, Padding::same(), Activation::tanh).maxpool2d({2, 2}, {3, 3});
    m.conv2d(4, {2, 2}, Padding::valid(), Activation::sigmoid).maxpool2d({2, 2});
    m.flatten().dense(6, Activation::softmax);
    m.init_params(5);
    const auto names = expect_cpu_plans_agree(m, 6);
    if (!cpu::direct::enabled()) GTEST_SKIP() << "no AVX2 + FMA: the CPU plan fuses nothing here";
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d+max_pooling2d", "conv2d_1+max_pooling2d_1",
                                               "flatten", "dense"}));
}

// Overlapping windows (act' from the pooled value would not be exact) and average pooling are
// not fused.
TEST(CpuPlan, WhatCannotFuseRunsLayerByLayer) {
    Sequential m({12, 12, 2}, "unfused");
    m.conv2d(4, {3, 3}, Padding::same(), Activation::relu).maxpool2d({2, 2}, {1, 1});
    m.conv2d(3, {3, 3}, Padding::valid(), Activation::linear).avgpool2d({2, 2});
    m.flatten().dense(6, Activation::softmax);
    m.init_params(7);
    const auto names = expect_cpu_plans_agree(m, 4);
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d", "max_pooling2d", "conv2d_1",
                                               "average_pooling2d", "flatten", "dense"}));
}

// Without the direct kernels (CpuConvMethod::im2col, or a CPU without AVX2 + FMA) the pairs run
// layer by layer; the fused operation refuses them with a message that says why.
TEST(CpuPlan, WithoutTheDirectKernelsNothingFuses) {
    cpu::set_conv_method(cpu::CpuConvMethod::im2col);
    Sequential m = lenet5(3);
    std::vector<std::string> names;
    names = expect_plans_agree(Device::cpu(), m, 5);
    cpu::set_conv_method(cpu::CpuConvMethod::automatic);
    EXPECT_EQ(names.size(), m.size());
    EXPECT_EQ(names.front(), "conv2d");
}

}  // namespace
}  // namespace minicnn
