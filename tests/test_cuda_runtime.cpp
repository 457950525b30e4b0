// tests/test_cuda_runtime.cpp — the CUDA backend's plumbing: device_count (never throws; 0 with a
// reason where there is no driver or device), the checking macros (DeviceError naming file, line,
// expression and CUDA's message), DeviceBuffer (move-only owner, copies, out-of-memory message with
// the sizes), Context (non-blocking stream, cuBLAS bound to it with a workspace of its own, a GEMM
// on it captured into a graph and replayed, the workspace rules), and the launchers' argument
// checks. The tests that need a device skip without one; the others run on every CUDA build.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "minicnn/device.h"
#include "minicnn/error.h"
#include "minicnn/geometry.h"
#ifdef MINICNN_WITH_CUDA
#include "context.h"
#include "cuda_check.h"
#include "cuda_ops.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#endif

namespace minicnn {
namespace {

#ifdef MINICNN_WITH_CUDA

// Runs with or without a GPU: the count and the reason agree, and nothing throws.
TEST(CudaRuntime, DeviceCountNeverThrowsAndExplainsZero) {
    std::string reason = "unchanged";
    int count = -1;
    EXPECT_NO_THROW(count = cuda_ops::device_count(&reason));
    EXPECT_NO_THROW(cuda_ops::device_count(nullptr));
    ASSERT_GE(count, 0);
    if (count == 0) {
        EXPECT_FALSE(reason.empty());
        EXPECT_NE(reason, "unchanged");
        EXPECT_EQ(resolve_backend(Device::auto_()), Backend::cpu);
        EXPECT_THROW(resolve_backend(Device::cuda()), DeviceError);
    } else {
        EXPECT_TRUE(reason.empty()) << reason;
        EXPECT_EQ(resolve_backend(Device::auto_()), Backend::cuda);
    }
}

// Runs without a GPU: the macro turns a failing status into DeviceError with file, line,
// expression and CUDA's message, and a cuBLAS status likewise.
TEST(CudaRuntime, CheckMacrosThrowDeviceErrorWithDetails) {
    try {
        MINICNN_CUDA_CHECK(cudaErrorInvalidValue);
        FAIL() << "no exception";
    } catch (const DeviceError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("cudaErrorInvalidValue"), std::string::npos) << m;
        EXPECT_NE(m.find("test_cuda_runtime.cpp"), std::string::npos) << m;
        EXPECT_NE(m.find("in `cudaErrorInvalidValue`"), std::string::npos) << m;
    }
    try {
        MINICNN_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED);
        FAIL() << "no exception";
    } catch (const DeviceError& e) {
        EXPECT_NE(std::string(e.what()).find("CUBLAS_STATUS_NOT_INITIALIZED"), std::string::npos)
            << e.what();
    }
}

TEST(CudaRuntime, DeviceBufferIsMoveOnly) {
    static_assert(!std::is_copy_constructible_v<cuda::DeviceBuffer<float>>);
    static_assert(!std::is_copy_assignable_v<cuda::DeviceBuffer<float>>);
    static_assert(std::is_nothrow_move_constructible_v<cuda::DeviceBuffer<float>>);
    static_assert(std::is_nothrow_move_assignable_v<cuda::DeviceBuffer<float>>);
    static_assert(std::is_nothrow_destructible_v<cuda::DeviceBuffer<float>>);
    static_assert(!std::is_copy_constructible_v<cuda::Context>);
    static_assert(std::is_nothrow_move_constructible_v<cuda::Context>);
    cuda::DeviceBuffer<float> empty;  // no allocation, no device needed
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_EQ(empty.data(), nullptr);
}

// Runs without a GPU: launchers validate the geometry before touching the device.
TEST(CudaRuntime, LaunchersRejectBadGeometry) {
    ConvGeom g = conv_geometry({1, 8, 8, 2}, {3, 3, 2, 4}, Padding::valid(), {1, 1}, "test");
    g.oh = 7;  // contradicts docs/operations.md's rule (6)
    EXPECT_THROW(
        cuda::conv2d_forward(nullptr, nullptr, nullptr, nullptr, g, Activation::relu, nullptr),
        ArgumentError);
    EXPECT_THROW(cuda::conv2d_backward_data(nullptr, nullptr, nullptr, g, nullptr), ArgumentError);
    const ConvGeom ok = conv_geometry({1, 8, 8, 2}, {3, 3, 2, 4}, Padding::valid(), {1, 1}, "test");
    EXPECT_GT(cuda::conv2d_backward_filter_workspace(ok), 0u);
    EXPECT_THROW(
        cuda::conv2d_backward_filter(nullptr, nullptr, nullptr, nullptr, ok, nullptr, nullptr),
        ArgumentError);
    PoolGeom p = pool_geometry({1, 8, 8, 2}, {2, 2}, {2, 2}, "test");
    p.kh = 0;
    EXPECT_THROW(cuda::maxpool2d_forward(nullptr, nullptr, nullptr, p, nullptr), ArgumentError);
    EXPECT_THROW(cuda::activation_forward(nullptr, nullptr, -1, 3, Activation::relu, nullptr),
                 ArgumentError);
}

class CudaRuntimeGpu : public ::testing::Test {
protected:
    void SetUp() override { MINICNN_SKIP_WITHOUT_GPU(); }
};

TEST_F(CudaRuntimeGpu, OutOfMemorySaysHowMuch) {
    const std::size_t huge = std::size_t(1) << 50;  // 1 PiB
    try {
        cuda::DeviceBuffer<char> b(huge, "a test buffer");
        FAIL() << "allocated 1 PiB";
    } catch (const DeviceError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("out of GPU memory: asked for 1125899906842624 bytes"), std::string::npos)
            << m;
        EXPECT_NE(m.find("for a test buffer"), std::string::npos) << m;
        EXPECT_NE(m.find("MiB free of"), std::string::npos) << m;
    }
    // The failure is not left behind for the next check to report.
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST_F(CudaRuntimeGpu, BufferCopiesRoundTripAndMoves) {
    cuda::Context ctx(0);
    const std::vector<float> v{1.0f, -2.0f, 3.5f};
    cuda::DeviceBuffer<float> a = test::to_device(v, ctx.stream());
    float* p = a.data();
    cuda::DeviceBuffer<float> b = std::move(a);
    EXPECT_EQ(a.data(), nullptr);  // NOLINT: moved-from state is specified
    EXPECT_EQ(b.data(), p);
    EXPECT_EQ(test::to_host(b, ctx.stream()), v);  // exact here and below: copies and a memset
    std::vector<float> too_big(4);
    EXPECT_THROW(b.copy_to(too_big.data(), 4, ctx.stream()), ArgumentError);
    b.zero(ctx.stream());
    EXPECT_EQ(test::to_host(b, ctx.stream()), (std::vector<float>{0.0f, 0.0f, 0.0f}));
}

TEST_F(CudaRuntimeGpu, ContextOwnsNonBlockingStreamAndBoundCublas) {
    cuda::Context ctx(0);
    unsigned flags = 0;
    ASSERT_EQ(cudaStreamGetFlags(ctx.stream(), &flags), cudaSuccess);
    EXPECT_EQ(flags & cudaStreamNonBlocking, unsigned(cudaStreamNonBlocking));
    EXPECT_NE(ctx.stream(), nullptr);  // never the legacy default stream
    cudaStream_t bound = nullptr;
    ASSERT_EQ(cublasGetStream(ctx.cublas(), &bound), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(bound, ctx.stream());
    EXPECT_FALSE(ctx.device_name().empty());
    cuda::Context moved = std::move(ctx);
    EXPECT_EQ(ctx.stream(), nullptr);  // NOLINT
    EXPECT_NO_THROW(moved.synchronize());
    int count = 0;
    ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
    EXPECT_THROW(cuda::Context bad(count), DeviceError);
}

// Stream capture, as the training engine uses it: work enqueued on a capturing stream is recorded,
// not run; the instantiated graph replays it; a synchronising call or an allocation during capture
// is refused and invalidates the capture (the emulator implements the same rules, so the capture
// path is checked in CI).
TEST_F(CudaRuntimeGpu, GraphCaptureRecordsReplaysAndRefusesSynchronisation) {
    cuda::Context ctx(0);
    const cudaStream_t s = ctx.stream();
    cuda::DeviceBuffer<float> buf(4, "a test buffer"), out(4, "a test output");
    const std::vector<float> ones(4, 1.0f), twos(4, 2.0f);
    buf.copy_from(ones.data(), 4, s);
    // One launch of the kernel before the capture: a driver that loads kernels lazily (CUDA 12's
    // default) fails a kernel's first launch inside a capture.
    cuda::activation_forward(out.data(), buf.data(), 1, 4, Activation::sigmoid, s);
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(out.data(), buf.data(), buf.bytes(), cudaMemcpyDeviceToDevice, s),
              cudaSuccess);
    cuda::activation_forward(out.data(), out.data(), 1, 4, Activation::sigmoid, s);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
    ASSERT_NE(graph, nullptr);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    // Nothing ran during capture: out still holds the warm-up's values, so fill it before looking.
    out.copy_from(twos.data(), 4, s);
    EXPECT_EQ(test::to_host(out, s), twos);
    for (const std::vector<float>* in : {&ones, &twos}) {
        buf.copy_from(in->data(), 4, s);
        ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
        const std::vector<float> got = test::to_host(out, s);
        // 4 ulps (EXPECT_FLOAT_EQ): on each side expf within 2 ulps (CUDA's documented bound; e^-x
        // <= 0.37 of the denominator), the sum and the quotient rounded once each, no product to
        // contract: <= 2.6 u relative, 1.9 ulps of a result in [0.5, 1); both sides 3.8 ulps.
        for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(got[i], 1.0f / (1.0f + std::exp(-(*in)[i])));
    }
    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);

    for (int violation = 0; violation < 2; ++violation) {
        ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
        if (violation == 0) {
            EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
        } else {
            void* p = nullptr;
            EXPECT_EQ(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
            EXPECT_EQ(p, nullptr);
        }
        cudaGraph_t bad = nullptr;
        EXPECT_EQ(cudaStreamEndCapture(s, &bad), cudaErrorStreamCaptureInvalidated);
        EXPECT_EQ(bad, nullptr);
        (void)cudaGetLastError();
    }
    EXPECT_NO_THROW(ctx.synchronize());
}

// The context's cuBLAS handle: its workspace (cublasSetWorkspace, so that a GEMM can be captured),
// a GEMM on it recorded into a CUDA graph without running and replayed with new inputs, and the
// workspace rules of the cuBLAS guide: a pointer not 256-byte aligned is refused; on the emulator
// also a workspace under 16 KiB (the real library "may" fail then, so only the emulator, which
// always does, is asked).
TEST_F(CudaRuntimeGpu, ContextCublasHasAWorkspaceAndItsGemmsCaptureIntoAGraph) {
    cuda::Context ctx(0);
    const cudaStream_t s = ctx.stream();
    EXPECT_GE(ctx.cublas_workspace_bytes(), std::size_t(4) << 20);
    // Column-major 2 x 2: C = A B with A = [1 3; 2 4] and B as given by the host vectors.
    const std::vector<float> a{1, 2, 3, 4}, b1{1, 0, 0, 1}, b2{0, 1, 1, 0}, nan(4, std::nanf(""));
    cuda::DeviceBuffer<float> A = test::to_device(a, s), B = test::to_device(b1, s),
                              C = test::to_device(nan, s);
    const float one = 1.0f, zero = 0.0f;
    auto gemm = [&] {
        return cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, A.data(), 2,
                           B.data(), 2, &zero, C.data(), 2);
    };
    ASSERT_EQ(gemm(), CUBLAS_STATUS_SUCCESS);  // outside a capture first (lazy loading)
    EXPECT_EQ(test::to_host(C, s), a);         // exact: one product, the rest 0 * x + ...
    C.copy_from(nan.data(), 4, s);
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    ASSERT_EQ(gemm(), CUBLAS_STATUS_SUCCESS);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    const std::vector<float> before = test::to_host(C, s);
    for (float v : before) EXPECT_TRUE(std::isnan(v)) << "the captured GEMM ran";
    B.copy_from(b2.data(), 4, s);
    ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
    EXPECT_EQ(test::to_host(C, s), (std::vector<float>{3, 4, 1, 2}));  // A's columns swapped
    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);

    cuda::DeviceBuffer<unsigned char> ws(std::size_t(64) << 10, "a test workspace");
    EXPECT_EQ(cublasSetWorkspace(ctx.cublas(), ws.data() + 4, 1024), CUBLAS_STATUS_INVALID_VALUE);
#if defined(MINICNN_CUDA_EMULATOR)
    ASSERT_EQ(cublasSetWorkspace(ctx.cublas(), ws.data(), 1024), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(gemm(), CUBLAS_STATUS_ALLOC_FAILED);
#endif
    ASSERT_EQ(cublasSetWorkspace(ctx.cublas(), ws.data(), ws.size()), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(gemm(), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(test::to_host(C, s), (std::vector<float>{3, 4, 1, 2}));
}

#else  // !MINICNN_WITH_CUDA

TEST(CudaRuntime, SkippedWithoutCuda) {
    EXPECT_FALSE(built_with_cuda());
    EXPECT_EQ(cuda_device_count(), 0);
    GTEST_SKIP() << "GPU test skipped: " << cuda_unavailable_reason();
}

#endif

}  // namespace
}  // namespace minicnn
