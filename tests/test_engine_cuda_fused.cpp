// tests/test_engine_cuda_fused.cpp — the CUDA engine's plan (cuda/plan_cuda.cpp: convolution +
// activation + max pooling in one kernel, a pooling's backward inside the next layer's backward
// kernel) against the layer-by-layer plan (plan_layer_by_layer: every layer on the engine's
// unfused operations), on the same CUDA engine, with the same parameters, inputs and loss
// gradient. Outputs and every parameter gradient must be equal value for value: the fused kernels
// run the same accumulations in the same order, and the gradient arena is poisoned with NaNs
// first, so a gradient a fused stage fails to write is caught. (Equal values, not bits: where a
// fused unpooling writes a cell's gradient as 0 + g, the unfused path may carry a -0.)
// This stays exact under FMA contraction (nvcc's default; EMU_FMA=1 tests/emu/run.sh): a fused
// stage runs the unfused kernels' own code (conv2d_forward's kernel with a pooling epilogue chosen
// at run time; gemm_tile inlined in the dense chain as in one dense forward; the strip kernel's
// backward data with an unpooling epilogue), whose sums are acc += x * y, one product per
// addition, contracted alike wherever they are compiled; the epilogues only compare, copy, add a
// bias, or apply act / act' (activation_math.cuh) to the same floats: 0 + act'(p) g against
// acc = 0, acc += act'(p) g for one window per cell, the same number whether the product is
// rounded or fused with the + 0.
// Models: LeNet-5; pooling windows with gaps and uncovered rows; a stride-2 convolution after a
// fused pair (no unpooling there: the pair runs its pooling backward itself), and likewise a
// cuBLAS-sized dense layer after one; overlapping windows
// and average pooling (not fused); an Activation layer after a dense run. Every test skips,
// saying why, where no GPU is visible.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "plan_test_util.h"
#ifdef MINICNN_WITH_CUDA
#include <cuda_runtime.h>
#endif
#include "minicnn/engine.h"
#include "minicnn/model.h"
#include "minicnn/plan.h"

namespace minicnn {
namespace {

using namespace enginetest;

TEST(CudaPlan, LeNet5RunsThreeFusedStagesBitIdenticalToLayerByLayer) {
    MINICNN_REQUIRE_GPU();
    Sequential m = lenet5(3);
    const auto names = expect_plans_agree(Device::cuda(), m, 9);
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d+max_pooling2d", "conv2d_1+max_pooling2d_1",
                                               "flatten+dense+dense_1+dense_2"}));
}

// A buffer no stage writes is not allocated: the CUDA plan of LeNet-5 holds no convolution output
// (its pairs write only the pooled outputs and masks), so it takes at least those two outputs'
// bytes less than the layer-by-layer plan. Measured with the emulator's exact allocation
// accounting (cudaMemGetInfo); on a GPU other processes move that figure, so it skips there.
TEST(CudaPlan, TheFusedPlanAllocatesNoConvolutionOutput) {
    MINICNN_REQUIRE_GPU();
#if !defined(MINICNN_CUDA_EMULATOR)
    GTEST_SKIP()
        << "measured by the CUDA emulator's exact allocation accounting (tests/emu/run.sh)";
#else
    auto g = make_engine(Device::cuda());
    Sequential m = lenet5(4);
    Bound b(*g, m);
    const std::int64_t n = 64;
    auto used = [] {
        std::size_t free_b = 0, total_b = 0;
        EXPECT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
        return std::int64_t(total_b - free_b);
    };
    (void)g->plan(m, n);  // the engine's own reservations (the filter workspace) made first
    const std::int64_t before = used();
    std::int64_t fused_bytes = 0, plain_bytes = 0;
    {
        std::unique_ptr<Plan> fused = g->plan(m, n);
        fused_bytes = used() - before;
    }
    {
        std::unique_ptr<Plan> plain = plan_layer_by_layer(*g, m, n);
        plain_bytes = used() - before;
    }
    const std::int64_t conv_outputs =
        n * (28 * 28 * 6 + 10 * 10 * 16) * std::int64_t(sizeof(float));
    EXPECT_GE(plain_bytes - fused_bytes, conv_outputs)
        << "fused plan " << fused_bytes << " bytes, layer-by-layer " << plain_bytes << " bytes";
#endif
}

// Windows with gaps (2x2, stride 3) and an uncovered row and column: the pair still fuses where
// the forward tile is whole windows, and the dense layer unpools it in its epilogue.
TEST(CudaPlan, PoolingWithGapsFusesAndUnpoolsBitIdentical) {
    MINICNN_REQUIRE_GPU();
    Sequential m({14, 14, 3}, "gaps");
    m.conv2d(5, {3, 3}, Padding::same(), Activation::sigmoid).maxpool2d({2, 2}, {3, 3});
    m.flatten().dense(7, Activation::tanh).dense(4, Activation::softmax);
    m.init_params(5);
    const auto names = expect_plans_agree(Device::cuda(), m, 6);
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names.back(), "flatten+dense+dense_1");
}

// A stride-2 convolution after a fused pair: its backward data has no unpooling kernel, so the
// pair is handed the pooled output's gradient and runs the pooling backward itself.
TEST(CudaPlan, StrideTwoConvolutionAfterAPairIsNotUnpooledAndStaysBitIdentical) {
    MINICNN_REQUIRE_GPU();
    Sequential m({28, 28, 1}, "stride2");
    m.conv2d(6, {5, 5}, Padding::same(), Activation::relu).maxpool2d({2, 2});
    m.conv2d(8, {3, 3}, Padding::valid(), Activation::tanh, {2, 2});
    m.flatten().dense(10, Activation::softmax);
    m.init_params(6);
    const auto names = expect_plans_agree(Device::cuda(), m, 5);
    ASSERT_GE(names.size(), 2u);
    EXPECT_EQ(names[0], "conv2d+max_pooling2d");
}

// A dense layer large enough for cuBLAS (1024 -> 256: cuda::dense::uses_cublas) after a fused
// pair: its backward runs as cuBLAS GEMMs, so the plan does not fold the pooling's backward into
// it, and the pair runs that backward itself (on the emulator: pool2d_backward_kernel and
// cublasSgemm in the fused plan's backward, no unpooling dense kernel). Both plans make the same
// cuBLAS calls on the same data, so the results stay equal (cuBLAS is reproducible run to run).
TEST(CudaPlan, CublasDenseLayerAfterAPairIsNotUnpooledAndStaysBitIdentical) {
    MINICNN_REQUIRE_GPU();
    Sequential m({16, 16, 3}, "wide");
    m.conv2d(16, {3, 3}, Padding::same(), Activation::relu).maxpool2d({2, 2});
    m.flatten().dense(256, Activation::relu).dense(10, Activation::softmax);
    m.init_params(8);
    const auto names = expect_plans_agree(Device::cuda(), m, 6);
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d+max_pooling2d", "flatten+dense+dense_1"}));
#if defined(MINICNN_CUDA_EMULATOR)
    auto g = make_engine(Device::cuda());
    Bound b(*g, m);
    std::unique_ptr<Plan> fused = g->plan(m, 4);
    const auto x = randv(static_cast<std::size_t>(4 * 16 * 16 * 3), 9);
    const auto dl = randv(static_cast<std::size_t>(4 * 10), 10);
    (void)run(*g, *fused, b, m, x, dl, 4);  // the kernels' first launches
    EngineBuffer<float> X(*g, std::int64_t(x.size()));
    g->upload(X.data(), x.data(), X.bytes());
    (void)fused->forward(X.data(), 4);
    g->upload(fused->dlogits(), dl.data(), dl.size() * sizeof(float));
    emu::record_operations(true);
    fused->backward(4);
    emu::record_operations(false);
    const std::string ops = emu::recorded_operations();
    EXPECT_NE(ops.find("pool2d_backward_kernel"), std::string::npos) << ops;
    EXPECT_NE(ops.find("cublasSgemm"), std::string::npos) << ops;
    // One tiled dense backward: the last layer's (dense_1); the first layer's is cuBLAS.
    EXPECT_EQ(ops.find("dense_gemm_kernel"), ops.rfind("dense_gemm_kernel")) << ops;
    g->synchronize();
#endif
}

// Overlapping windows (act' from the pooled value would not be exact) and average pooling are
// not fused: each layer is a stage of its own; an Activation layer after a dense run.
TEST(CudaPlan, WhatCannotFuseRunsLayerByLayer) {
    MINICNN_REQUIRE_GPU();
    Sequential m({12, 12, 2}, "unfused");
    m.conv2d(4, {3, 3}, Padding::same(), Activation::relu).maxpool2d({2, 2}, {1, 1});
    m.conv2d(3, {3, 3}, Padding::valid(), Activation::linear).avgpool2d({2, 2});
    m.flatten().dense(6, Activation::tanh).activation(Activation::softmax);
    m.init_params(7);
    const auto names = expect_plans_agree(Device::cuda(), m, 4);
    EXPECT_EQ(names,
              (std::vector<std::string>{"conv2d", "max_pooling2d", "conv2d_1", "average_pooling2d",
                                        "flatten+dense", "activation"}));
}

}  // namespace
}  // namespace minicnn
