// tests/test_plan_cpu.cpp — the CPU engine's plan (host/cpu/plan_cpu.cpp: convolution + activation
// + max pooling as one stage, the convolution's output never in a batch-sized buffer, act' taken
// from the pooled value) against the layer-by-layer plan on the same CPU engine
// (tests/plan_test_util.h: outputs and every parameter gradient equal value for value, the
// gradient arena poisoned with NaNs first), for 1, 2 and 3 threads and with the AVX-512 and the
// AVX2 kernels; what cannot fuse runs layer by layer; with the im2col method (no direct kernels)
// nothing fuses.
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
// and 3 threads, with the widest kernels and with the AVX2 ones (CpuConvMethod::direct_avx2: no
// pooling in registers, the general fused path).
std::vector<std::string> expect_cpu_plans_agree(Sequential& m, std::int64_t n) {
    std::vector<std::string> names;
    for (cpu::CpuConvMethod method :
         {cpu::CpuConvMethod::direct_avx2, cpu::CpuConvMethod::automatic}) {
        cpu::set_conv_method(method);
        for (int threads : {1, 2, 3}) {
            SCOPED_TRACE(::testing::Message()
                         << threads << " threads, "
                         << (method == cpu::CpuConvMethod::automatic ? "automatic" : "direct_avx2"));
            with_threads(threads, [&] { names = expect_plans_agree(Device::cpu(), m, n); });
        }
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

// One input channel pooled in the convolution's registers (AVX-512: direct::forward_maxpool):
// rows of 70 pixels (tiles of 32, 32 and 6), 8 channels (blocks of 6 and 2), a linear activation;
// then a vertical stride of 2 and an odd number of output rows (the last one no window reads).
TEST(CpuPlan, OneChannelPairsPoolInRegistersValueForValue) {
    Sequential wide({30, 70, 1}, "wide");
    wide.conv2d(8, {3, 3}, Padding::same(), Activation::linear).maxpool2d({2, 2});
    wide.flatten().dense(5, Activation::softmax);
    wide.init_params(9);
    const auto names = expect_cpu_plans_agree(wide, 5);
    Sequential strided({29, 40, 1}, "strided");
    strided.conv2d(7, {5, 5}, Padding::valid(), Activation::relu, {2, 1}).maxpool2d({2, 2});
    strided.flatten().dense(4, Activation::softmax);
    strided.init_params(10);
    const auto names2 = expect_cpu_plans_agree(strided, 5);
    if (!cpu::direct::enabled()) GTEST_SKIP() << "no AVX2 + FMA: the CPU plan fuses nothing here";
    EXPECT_EQ(names.front(), "conv2d+max_pooling2d");
    EXPECT_EQ(names2.front(), "conv2d+max_pooling2d");
    const ConvGeom g = wide.layer(0).op().conv;
    EXPECT_EQ(cpu::direct::forward_maxpool_fits(g, Activation::linear, wide.layer(1).op().pool),
              cpu::direct::vector_lanes() == 16);
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
