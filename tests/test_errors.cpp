// tests/test_errors.cpp — every error path of the functional API: each throws ArgumentError (or
// DeviceError) with a message naming what was expected and what was found; nothing crashes and
// nothing returns an empty tensor.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "minicnn/engine.h"
#include "minicnn/ops.h"

using namespace minicnn;

namespace {

// Runs f, expects an exception of type E whose message contains every one of `parts`.
template <class E = ArgumentError>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected one mentioning \"" << parts.front() << "\"";
    } catch (const E& e) {
        const std::string msg = e.what();
        for (const auto& p : parts)
            EXPECT_NE(msg.find(p), std::string::npos)
                << "message \"" << msg << "\" lacks \"" << p << "\"";
    }
}

Tensor x4(Shape s) {
    return Tensor(std::move(s));
}

}  // namespace

TEST(Errors, ConvWrongRanks) {
    Tensor A({28, 28}), W({5, 5, 1, 6}), b({1, 1, 1, 6});
    expect_error(
        [&] { conv_forward(A, W, b, Activation::relu, Padding::same(), {}, Device::cpu()); },
        {"conv_forward", "A_prev", "rank 4", "(28, 28)"});
    Tensor A4({1, 28, 28, 1}), W3({5, 5, 6});
    expect_error(
        [&] { conv_forward(A4, W3, b, Activation::relu, Padding::same(), {}, Device::cpu()); },
        {"W", "(kh, kw, c_prev, c_new)", "(5, 5, 6)"});
}

TEST(Errors, ConvChannelMismatch) {
    Tensor A({1, 8, 8, 3}), W({3, 3, 2, 4}), b({1, 1, 1, 4});
    expect_error(
        [&] { conv_forward(A, W, b, Activation::linear, Padding::valid(), {}, Device::cpu()); },
        {"channel mismatch", "(3, 3, 2, 4)", "(1, 8, 8, 3)"});
}

TEST(Errors, ConvBiasShape) {
    Tensor A({1, 8, 8, 3}), W({3, 3, 3, 4}), b({1, 1, 1, 5});
    expect_error(
        [&] { conv_forward(A, W, b, Activation::linear, Padding::valid(), {}, Device::cpu()); },
        {"b must have shape (1, 1, 1, 4)", "(1, 1, 1, 5)"});
}

TEST(Errors, ConvKernelLargerThanPaddedInput) {
    Tensor A({1, 3, 3, 1}), W({5, 5, 1, 1}), b({1, 1, 1, 1});
    expect_error(
        [&] { conv_forward(A, W, b, Activation::linear, Padding::valid(), {}, Device::cpu()); },
        {"kernel 5x5", "larger than the padded input 3x3"});
    // Padding that makes room is fine.
    EXPECT_EQ(
        conv_forward(A, W, b, Activation::linear, Padding::explicit_pad(1, 1), {}, Device::cpu())
            .shape(),
        (Shape{1, 1, 1, 1}));
}

TEST(Errors, NonPositiveStrides) {
    Tensor A({1, 8, 8, 1}), W({3, 3, 1, 1}), b({1, 1, 1, 1});
    expect_error(
        [&] {
            conv_forward(A, W, b, Activation::linear, Padding::same(), {0, 1}, Device::cpu());
        },
        {"stride must be positive", "(0, 1)"});
    expect_error(
        [&] {
            pool_forward(A, {2, 2}, {1, -2}, PoolMode::max, Device::cpu());
        },
        {"pool_forward", "stride must be positive", "(1, -2)"});
    Tensor dZ({1, 8, 8, 1});
    expect_error(
        [&] {
            conv_backward(dZ, A, W, b, Padding::same(), {-1, 1}, Device::cpu());
        },
        {"conv_backward", "stride"});
}

TEST(Errors, UnknownPaddingActivationModeDevice) {
    expect_error([] { Padding::parse("full"); }, {"padding", "\"full\""});
    expect_error([] { parse_activation("gelu"); }, {"activation", "\"gelu\""});
    expect_error([] { parse_pool_mode("min"); }, {"mode", "\"min\""});
    expect_error([] { Device::parse("tpu"); }, {"device", "\"tpu\""});
    expect_error([] { Padding::explicit_pad(-1, 2); }, {"(-1, 2)"});
}

TEST(Errors, PoolKernelTooLargeAndBadWindow) {
    Tensor A({1, 4, 4, 2});
    expect_error(
        [&] {
            pool_forward(A, {5, 2}, {1, 1}, PoolMode::avg, Device::cpu());
        },
        {"kernel 5x2", "larger than the input 4x4"});
    expect_error(
        [&] {
            pool_forward(A, {0, 2}, {1, 1}, PoolMode::avg, Device::cpu());
        },
        {"kernel_shape must be positive"});
    Tensor A3({4, 4, 2});
    expect_error(
        [&] {
            pool_forward(A3, {2, 2}, {2, 2}, PoolMode::max, Device::cpu());
        },
        {"rank 4", "(4, 4, 2)"});
}

TEST(Errors, BackwardGradientShapes) {
    Tensor A({2, 6, 6, 3}), W({3, 3, 3, 4}), b({1, 1, 1, 4});
    Tensor dZ({2, 4, 4, 4});  // 'same' gives 6x6, not 4x4
    expect_error(
        [&] {
            conv_backward(dZ, A, W, b, Padding::same(), {1, 1}, Device::cpu());
        },
        {"dZ must have shape (2, 6, 6, 4)", "(2, 4, 4, 4)"});
    Tensor dA({2, 2, 2, 3});
    expect_error(
        [&] {
            pool_backward(dA, A, {2, 2}, {2, 2}, PoolMode::max, MaxTie::all_ties, Device::cpu());
        },
        {"dA must have shape (2, 3, 3, 3)", "(2, 2, 2, 3)"});
}

TEST(Errors, DtypeMismatchAndIntegerInputs) {
    Tensor A({1, 4, 4, 1}, DType::f64), W({3, 3, 1, 1}), b({1, 1, 1, 1});
    expect_error(
        [&] { conv_forward(A, W, b, Activation::relu, Padding::same(), {}, Device::cpu()); },
        {"A_prev is float64 but W is float32"});
    Tensor Ai({1, 4, 4, 1}, DType::i32);
    expect_error(
        [&] {
            pool_forward(Ai, {2, 2}, {2, 2}, PoolMode::max, Device::cpu());
        },
        {"float32 or float64", "int32"});
}

TEST(Errors, MaskValidation) {
    Tensor A({1, 4, 4, 1});
    auto r = maxpool_forward_mask(A, {2, 2}, {2, 2}, Device::cpu());
    Tensor dA({1, 2, 2, 1});
    Tensor bad = r.mask.clone();
    bad.data<std::int32_t>()[3] = 4;  // a 2x2 window has positions 0..3
    expect_error(
        [&] {
            maxpool_backward_mask(dA, bad, A.shape(), {2, 2}, {2, 2}, Device::cpu());
        },
        {"mask[3] = 4", "outside the window [0, 4)"});
    Tensor fmask({1, 2, 2, 1});
    expect_error(
        [&] {
            maxpool_backward_mask(dA, fmask, A.shape(), {2, 2}, {2, 2}, Device::cpu());
        },
        {"mask must be int32", "float32"});
}

TEST(Errors, ActivationBackwardShapes) {
    Tensor dA({2, 3}), A({3, 2});
    expect_error([&] { activation_backward(dA, A, Activation::relu, Device::cpu()); },
                 {"dA must have shape (3, 2)", "(2, 3)"});
}

TEST(Errors, CudaWithoutGpuSaysWhy) {
    if (cuda_device_count() > 0)
        GTEST_SKIP() << "a GPU is visible: this test checks the no-GPU path";
    Tensor A({1, 4, 4, 1});
    expect_error<DeviceError>(
        [&] {
            pool_forward(A, {2, 2}, {2, 2}, PoolMode::max, Device::cuda());
        },
        {"CUDA device requested but unavailable"});
    EXPECT_EQ(resolve_backend(Device::auto_()), Backend::cpu);
    EXPECT_FALSE(cuda_unavailable_reason().empty());
}

// A build without the CUDA backend links the seam's stand-in (host/no_cuda/cuda_ops_none.cpp): no
// device, and every way to a CUDA engine or kernel ends in DeviceError saying the build has no CUDA.
TEST(Errors, BuildWithoutCudaSaysSoAtEveryEntry) {
    if (built_with_cuda()) GTEST_SKIP() << "this build has the CUDA backend";
    EXPECT_EQ(cuda_device_count(), 0);
    EXPECT_NE(cuda_unavailable_reason().find("built without CUDA"), std::string::npos);
    expect_error<DeviceError>([] { make_cuda_engine(0); }, {"make_cuda_engine", "built without CUDA"});
    expect_error<DeviceError>([] { make_engine(Device::cuda()); }, {"built without CUDA"});
    Tensor A({1, 4, 4, 1}), W({3, 3, 1, 2}), b({2});
    expect_error<DeviceError>(
        [&] { conv_forward(A, W, b, Activation::relu, Padding::same(), {1, 1}, Device::cuda()); },
        {"built without CUDA"});
    // auto falls back to the CPU.
    EXPECT_EQ(make_engine(Device::auto_())->backend(), Backend::cpu);
}

TEST(Errors, Float64OnCudaIsRefused) {
    Tensor A({1, 4, 4, 1}, DType::f64);
    expect_error(
        [&] {
            pool_forward(A, {2, 2}, {2, 2}, PoolMode::max, Device::cuda());
        },
        {"float32", "float64"});
    // ...while auto runs float64 on the CPU.
    EXPECT_EQ(pool_forward(A, {2, 2}, {2, 2}, PoolMode::max, Device::auto_()).dtype(), DType::f64);
}
