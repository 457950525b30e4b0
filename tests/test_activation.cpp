// tests/test_activation.cpp — the CUDA activations (cuda/activation.cu) against the CPU backend
// (host/cpu/activation.cpp): relu, tanh, sigmoid, linear and softmax (over the last axis), forward and
// backward, on (rows, cols) shapes from 1 x 1 to 257 x 1000, including cols that are not multiples
// of the warp (softmax uses one warp per row), and inputs with exact zeros (ReLU's tie at 0: both
// backends send no gradient where the output is 0).
//
// Reference: the CPU backend in float64 on the same float32 inputs. Tolerance |got - ref| <= atol +
// rtol |ref| with rtol = 1e-5 and atol = 1e-6 (elementwise: bound [E] of tests/test_util.h, tanhf /
// expf within a few ulp; softmax forward: the row sum of e^(x_j - max) in [e^-2, 1] has a relative
// error <= cols * u even in the worst case, and out_j <= 1 / sum <= e^2 / cols, so that error adds
// <= e^2 u ~ 4.4e-7 absolute to out_j, under atol, the few roundings of exp and the division
// under rtol) or 1e-6 * cols (softmax backward: out_j (dout_j - sum_k out_k dout_k), a dot product
// with sum_k |out_k dout_k| <= sum_k out_k = 1, so even the worst case gamma_cols ~ cols * u,
// times out_j <= 1, is under 1e-6 * cols). In-place use (out = in, din = dout) must give
// the same bits as out-of-place, and a second run the same bits as the first: the same kernel and
// launch on the same values, one thread per element (a warp per softmax row, reduced in a fixed
// shuffle order), so exact with or without FMA.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/ops.h"
#include "test_util.h"
#ifdef MINICNN_WITH_CUDA
#include "minicnn/cuda_backend.h"
#endif

namespace minicnn {
namespace {

const Activation kActs[] = {Activation::linear, Activation::relu, Activation::tanh,
                            Activation::sigmoid, Activation::softmax};

// (rows, cols)
const std::pair<std::int64_t, std::int64_t> kShapes[] = {{1, 1},      {1, 10},  {7, 3},  {32, 10},
                                                         {257, 10},   {5, 31},  {4, 32}, {3, 33},
                                                         {257, 1000}, {2, 4097}};

// Uniform in [-4, 4) with every fifth value exactly 0.
std::vector<float> input_with_zeros(std::size_t n, std::uint32_t seed) {
    auto v = test::random_vector<float>(n, seed, -4.0, 4.0);
    for (std::size_t i = 0; i < n; i += 5) v[i] = 0.0f;
    return v;
}

#ifdef MINICNN_WITH_CUDA

class CudaActivation : public ::testing::Test {
protected:
    void SetUp() override {
        MINICNN_SKIP_WITHOUT_GPU();
        ctx_ = std::make_unique<cuda::Context>(0);
    }
    std::unique_ptr<cuda::Context> ctx_;
};

TEST_F(CudaActivation, ForwardAndBackwardMatchCpu) {
    const cudaStream_t s = ctx_->stream();
    std::uint32_t seed = 900;
    for (Activation act : kActs) {
        for (const auto& [rows, cols] : kShapes) {
            SCOPED_TRACE(std::string(activation_name(act)) + " on (" + std::to_string(rows) + ", " +
                         std::to_string(cols) + ")");
            const std::size_t n = std::size_t(rows * cols);
            const Shape shape{rows, cols};
            const auto x = input_with_zeros(n, seed += 10);
            const auto dout = test::random_vector<float>(n, seed + 1);

            // Reference forward in double; the backward reference uses the GPU's float forward
            // output (as the training path does), so only the backward formula is compared.
            std::vector<double> out_ref(n);
            const auto xd = test::cast_vector<double>(x);
            cpu::activation_forward<double>(out_ref.data(), xd.data(), rows, cols, act);

            auto d_x = test::to_device(x, s), d_dout = test::to_device(dout, s);
            cuda::DeviceBuffer<float> d_out(n), d_din(n);
            cuda::activation_forward(d_out.data(), d_x.data(), rows, cols, act, s);
            const auto out = test::to_host(d_out, s);
            EXPECT_TRUE(test::all_close(out, out_ref, 1e-6, 1e-5, shape)) << "forward";

            std::vector<double> din_ref(n);
            const auto outd = test::cast_vector<double>(out),
                       doutd = test::cast_vector<double>(dout);
            cpu::activation_backward<double>(din_ref.data(), doutd.data(), outd.data(), rows, cols,
                                             act);
            cuda::activation_backward(d_din.data(), d_dout.data(), d_out.data(), rows, cols, act,
                                      s);
            const auto din = test::to_host(d_din, s);
            const double atol = act == Activation::softmax ? 1e-6 * double(cols) : 1e-6;
            EXPECT_TRUE(test::all_close(din, din_ref, atol, 1e-5, shape)) << "backward";

            // In place (out = in, din = dout) gives the same bits; so does a second run.
            cuda::activation_forward(d_x.data(), d_x.data(), rows, cols, act, s);
            EXPECT_TRUE(test::all_equal(test::to_host(d_x, s), out, shape)) << "forward in place";
            cuda::activation_backward(d_dout.data(), d_dout.data(), d_out.data(), rows, cols, act,
                                      s);
            EXPECT_TRUE(test::all_equal(test::to_host(d_dout, s), din, shape))
                << "backward in place";
        }
    }
}

// ReLU at exactly 0: forward gives 0, backward sends nothing (output 0 is not > 0), on both sides.
TEST_F(CudaActivation, ReluTieAtZero) {
    const cudaStream_t s = ctx_->stream();
    auto d_x = test::to_device(std::vector<float>{0.0f, -1.0f, 2.0f}, s);
    auto d_dout = test::to_device(std::vector<float>{5.0f, 5.0f, 5.0f}, s);
    cuda::DeviceBuffer<float> d_out(3), d_din(3);
    cuda::activation_forward(d_out.data(), d_x.data(), 1, 3, Activation::relu, s);
    cuda::activation_backward(d_din.data(), d_dout.data(), d_out.data(), 1, 3, Activation::relu, s);
    // Exact: relu and its backward compare and copy, no rounding.
    EXPECT_EQ(test::to_host(d_out, s), (std::vector<float>{0.0f, 0.0f, 2.0f}));
    EXPECT_EQ(test::to_host(d_din, s), (std::vector<float>{0.0f, 0.0f, 5.0f}));
}

// Softmax rows sum to 1 and survive large inputs (the row maximum is subtracted first).
TEST_F(CudaActivation, SoftmaxIsStableForLargeInputs) {
    const cudaStream_t s = ctx_->stream();
    auto d_x = test::to_device(
        std::vector<float>{1000.0f, 1001.0f, 1002.0f, -1000.0f, 1000.0f, 1000.0f}, s);
    cuda::DeviceBuffer<float> d_out(6);
    cuda::activation_forward(d_out.data(), d_x.data(), 2, 3, Activation::softmax, s);
    const auto out = test::to_host(d_out, s);
    for (float v : out) EXPECT_TRUE(std::isfinite(v));
    // [E] of tests/test_util.h: each output is e^(x - max) / sum over 3 terms, a few roundings of
    // values <= 1 (~4 u ~ 2.4e-7), under 1e-6; out[3] = e^-2000 / sum underflows to exactly 0.
    EXPECT_NEAR(out[0] + out[1] + out[2], 1.0f, 1e-6f);
    EXPECT_NEAR(out[2], 0.66524096f, 1e-6f);
    EXPECT_NEAR(out[5], 0.5f, 1e-6f);
    EXPECT_EQ(out[3], 0.0f);
}

// The functional API on the GPU against the CPU for a rank-4 tensor (softmax over the last axis).
TEST_F(CudaActivation, FunctionalApiMatchesCpu) {
    const Shape shape{2, 3, 4, 10};
    const Tensor z = Tensor::from<float>(shape, input_with_zeros(240, 77));
    const Tensor da = Tensor::from<float>(shape, test::random_vector<float>(240, 78));
    for (Activation act : kActs) {
        SCOPED_TRACE(activation_name(act));
        const Tensor a_gpu = activation_forward(z, act, Device::cuda());
        const Tensor a_cpu = activation_forward(z, act, Device::cpu());
        ASSERT_EQ(a_gpu.shape(), shape);
        EXPECT_TRUE(
            test::all_close(a_gpu.data<float>(), a_cpu.data<float>(), 240, 1e-6, 1e-5, shape));
        const Tensor d_gpu = activation_backward(da, a_cpu, act, Device::cuda());
        const Tensor d_cpu = activation_backward(da, a_cpu, act, Device::cpu());
        // Against the CPU's float32: both sides round. Forward: [E] (softmax: as in the header,
        // twice). Backward: softmax's dot product of 10 terms, <= 2 * 10 u worst case (see the
        // header), under atol 1e-5.
        EXPECT_TRUE(
            test::all_close(d_gpu.data<float>(), d_cpu.data<float>(), 240, 1e-5, 1e-5, shape));
    }
}

#else  // !MINICNN_WITH_CUDA

TEST(CudaActivation, SkippedWithoutCuda) {
    GTEST_SKIP() << "GPU test skipped: " << cuda_unavailable_reason();
}

#endif

// Runs everywhere: the inputs contain the ReLU tie.
TEST(CudaActivationCases, InputsContainExactZeros) {
    const auto v = input_with_zeros(100, 1);
    EXPECT_EQ(v[0], 0.0f);
    EXPECT_EQ(v[95], 0.0f);
}

}  // namespace
}  // namespace minicnn
