// tests/test_pool2d.cpp — the CUDA pooling (cuda/pool2d.cu) against the CPU backend
// (host/cpu/pool2d.cpp): max forward with its argmax mask, avg forward, and the three backward passes
// (through the mask, the exercise's all-ties rule, avg), over hand-picked and 30 random shapes:
// LeNet's pools, C = 1, odd sizes, windows that leave columns uncovered (28 wide, 3x3 stride 3),
// overlapping windows (stride < window), strides larger than the window, batch 257.
//
// Each shape runs on two inputs: continuous random values (no ties) and a tie-heavy one where most
// cells are 0 (as after a ReLU) and the rest 0.5 or 1, so windows have several maxima; the
// first-max rule (strict >) and the all-ties rule are then really tested.
//
// The pooling kernels sum in the same order as the CPU (window by window, (i, j) row-major), so
// every result must be bit-identical to the CPU's float32 result, not merely close; masks are int32
// and compare exactly. A second GPU run must be bit-identical to the first. This stays exact under
// FMA contraction (nvcc's default; EMU_FMA=1 tests/emu/run.sh): max pooling only compares and
// copies, avg pooling only adds and divides (sum / area, dout / area: no product, so nothing to
// contract), and the backward through the mask adds dout as it is (no act' here).
#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/geometry.h"
#include "minicnn/ops.h"
#include "test_util.h"
#ifdef MINICNN_WITH_CUDA
#include "minicnn/cuda_backend.h"
#endif

namespace minicnn {
namespace {

struct PoolCase {
    std::int64_t n, h, w, c;
    int kh, kw, sh, sw;
};

std::string describe(const PoolCase& t) {
    std::ostringstream os;
    os << "inp (" << t.n << ", " << t.h << ", " << t.w << ", " << t.c << ") window (" << t.kh
       << ", " << t.kw << ") stride (" << t.sh << ", " << t.sw << ")";
    return os.str();
}

std::vector<PoolCase> fixed_cases() {
    return {
        {2, 28, 28, 6, 2, 2, 2, 2},   // LeNet S2
        {3, 10, 10, 16, 2, 2, 2, 2},  // LeNet S4
        {2, 28, 28, 1, 3, 3, 3, 3},   // 9 windows cover 27 of 28 columns
        {2, 9, 11, 3, 3, 3, 1, 1},    // overlapping windows
        {2, 12, 13, 5, 4, 3, 2, 1},   // overlapping, even window, mixed strides
        {257, 6, 5, 2, 2, 2, 1, 2},   // batch 257
        {1, 7, 9, 1, 3, 2, 2, 3},     // C = 1, odd sizes
        {2, 5, 7, 3, 5, 7, 1, 1},     // window = input
        {1, 17, 17, 2, 2, 2, 3, 3},   // stride > window: rows and columns no window reaches
        {1, 1, 1, 1, 1, 1, 1, 1},     // smallest
    };
}

std::vector<PoolCase> random_cases(int count, std::uint32_t seed) {
    std::mt19937 gen(seed);
    auto pick = [&](int lo, int hi) { return lo + int(gen() % std::uint32_t(hi - lo + 1)); };
    std::vector<PoolCase> cases;
    while (int(cases.size()) < count) {
        PoolCase t{};
        t.n = pick(1, 3);
        t.h = pick(1, 20);
        t.w = pick(1, 20);
        t.c = pick(0, 3) == 0 ? 1 : pick(1, 17);
        t.kh = pick(1, 4);
        t.kw = pick(1, 4);
        t.sh = pick(1, 3);
        t.sw = pick(1, 3);
        if (t.kh > t.h || t.kw > t.w) continue;
        cases.push_back(t);
    }
    return cases;
}

// Most cells 0 (a ReLU's output), the rest 0.5 or 1: many tied maxima.
std::vector<float> tie_heavy(std::size_t n, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::vector<float> v(n);
    for (auto& x : v) {
        const std::uint32_t r = gen() % 8;
        x = r < 5 ? 0.0f : r < 7 ? 0.5f : 1.0f;
    }
    return v;
}

#ifdef MINICNN_WITH_CUDA

struct GpuPoolResult {
    std::vector<float> max_out, avg_out, dinp_mask, dinp_allties, dinp_avg;
    std::vector<std::int32_t> mask;
};

GpuPoolResult run_gpu(const cuda::Context& ctx, const PoolGeom& g, const std::vector<float>& x,
                      const std::vector<float>& dout) {
    const cudaStream_t s = ctx.stream();
    auto d_x = test::to_device(x, s), d_dout = test::to_device(dout, s);
    const std::size_t no = std::size_t(g.out_numel()), ni = std::size_t(g.in_numel());
    cuda::DeviceBuffer<float> d_max(no), d_avg(no), d_m(ni), d_t(ni), d_a(ni);
    cuda::DeviceBuffer<std::int32_t> d_mask(no);
    // Poison every output: an element a kernel forgets to write cannot pass as a zero.
    for (auto* b : {&d_max, &d_avg, &d_m, &d_t, &d_a})
        MINICNN_CUDA_CHECK(cudaMemsetAsync(b->data(), 0xff, b->bytes(), s));
    MINICNN_CUDA_CHECK(cudaMemsetAsync(d_mask.data(), 0xff, d_mask.bytes(), s));
    cuda::maxpool2d_forward(d_max.data(), d_mask.data(), d_x.data(), g, s);
    cuda::avgpool2d_forward(d_avg.data(), d_x.data(), g, s);
    cuda::maxpool2d_backward_mask(d_m.data(), d_dout.data(), d_mask.data(), g, s);
    cuda::maxpool2d_backward_allties(d_t.data(), d_dout.data(), d_x.data(), g, s);
    cuda::avgpool2d_backward(d_a.data(), d_dout.data(), g, s);
    return {test::to_host(d_max, s), test::to_host(d_avg, s), test::to_host(d_m, s),
            test::to_host(d_t, s),   test::to_host(d_a, s),   test::to_host(d_mask, s)};
}

void check_case(const cuda::Context& ctx, const PoolCase& t, const std::vector<float>& x,
                std::uint32_t seed) {
    const PoolGeom g = pool_geometry({t.n, t.h, t.w, t.c}, {t.kh, t.kw}, {t.sh, t.sw}, "test");
    const std::size_t no = std::size_t(g.out_numel()), ni = std::size_t(g.in_numel());
    const auto dout = test::random_vector<float>(no, seed);

    std::vector<float> max_out(no), avg_out(no), dinp_mask(ni), dinp_allties(ni), dinp_avg(ni);
    std::vector<std::int32_t> mask(no);
    cpu::maxpool2d_forward<float>(max_out.data(), mask.data(), x.data(), g);
    cpu::avgpool2d_forward<float>(avg_out.data(), x.data(), g);
    cpu::maxpool2d_backward_mask<float>(dinp_mask.data(), dout.data(), mask.data(), g);
    cpu::maxpool2d_backward_allties<float>(dinp_allties.data(), dout.data(), x.data(), g);
    cpu::avgpool2d_backward<float>(dinp_avg.data(), dout.data(), g);

    const GpuPoolResult r = run_gpu(ctx, g, x, dout);
    const Shape os = g.out_shape(), is = g.in_shape();
    EXPECT_TRUE(test::all_equal(r.mask, mask, os)) << "max forward mask";
    EXPECT_TRUE(test::all_equal(r.max_out, max_out, os)) << "max forward";
    EXPECT_TRUE(test::all_equal(r.avg_out, avg_out, os)) << "avg forward";
    EXPECT_TRUE(test::all_equal(r.dinp_mask, dinp_mask, is)) << "max backward through the mask";
    EXPECT_TRUE(test::all_equal(r.dinp_allties, dinp_allties, is)) << "max backward, all ties";
    EXPECT_TRUE(test::all_equal(r.dinp_avg, dinp_avg, is)) << "avg backward";

    const GpuPoolResult r2 = run_gpu(ctx, g, x, dout);
    EXPECT_TRUE(test::all_equal(r2.mask, r.mask, os)) << "second run: mask";
    EXPECT_TRUE(test::all_equal(r2.max_out, r.max_out, os)) << "second run: max forward";
    EXPECT_TRUE(test::all_equal(r2.dinp_allties, r.dinp_allties, is)) << "second run: all ties";
    EXPECT_TRUE(test::all_equal(r2.dinp_avg, r.dinp_avg, is)) << "second run: avg backward";
}

void check_both_inputs(const cuda::Context& ctx, const PoolCase& t, std::uint32_t seed) {
    SCOPED_TRACE(describe(t));
    const std::size_t ni = std::size_t(t.n * t.h * t.w * t.c);
    {
        SCOPED_TRACE("continuous input");
        check_case(ctx, t, test::random_vector<float>(ni, seed), seed + 1);
    }
    {
        SCOPED_TRACE("tie-heavy input");
        check_case(ctx, t, tie_heavy(ni, seed + 2), seed + 3);
    }
}

class CudaPool2d : public ::testing::Test {
protected:
    void SetUp() override {
        MINICNN_SKIP_WITHOUT_GPU();
        ctx_ = std::make_unique<cuda::Context>(0);
    }
    std::unique_ptr<cuda::Context> ctx_;
};

TEST_F(CudaPool2d, FixedShapesMatchCpuExactly) {
    std::uint32_t seed = 300;
    for (const PoolCase& t : fixed_cases()) check_both_inputs(*ctx_, t, seed += 10);
}

TEST_F(CudaPool2d, RandomShapesMatchCpuExactly) {
    std::uint32_t seed = 7000;
    for (const PoolCase& t : random_cases(30, 42)) check_both_inputs(*ctx_, t, seed += 10);
}

// A window whose cells are all equal: the mask names cell 0 (first maximum), the all-ties rule
// gives every cell the gradient, the mask rule only the first.
TEST_F(CudaPool2d, AllEqualWindowFirstMaxAndAllTies) {
    const PoolGeom g = pool_geometry({1, 2, 2, 1}, {2, 2}, {2, 2}, "test");
    const cudaStream_t s = ctx_->stream();
    auto d_x = test::to_device(std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}, s);
    auto d_dout = test::to_device(std::vector<float>{3.0f}, s);
    cuda::DeviceBuffer<float> d_out(1), d_m(4), d_t(4);
    cuda::DeviceBuffer<std::int32_t> d_mask(1);
    cuda::maxpool2d_forward(d_out.data(), d_mask.data(), d_x.data(), g, s);
    cuda::maxpool2d_backward_mask(d_m.data(), d_dout.data(), d_mask.data(), g, s);
    cuda::maxpool2d_backward_allties(d_t.data(), d_dout.data(), d_x.data(), g, s);
    EXPECT_EQ(test::to_host(d_mask, s), std::vector<std::int32_t>{0});
    EXPECT_EQ(test::to_host(d_m, s), (std::vector<float>{3.0f, 0.0f, 0.0f, 0.0f}));
    EXPECT_EQ(test::to_host(d_t, s), (std::vector<float>{3.0f, 3.0f, 3.0f, 3.0f}));
}

// The functional API on the GPU against the CPU: pool_forward, pool_backward (both tie rules and
// avg), maxpool_forward_mask and maxpool_backward_mask.
TEST_F(CudaPool2d, FunctionalApiMatchesCpu) {
    const Shape xs{3, 12, 12, 4};
    const Tensor x = Tensor::from<float>(xs, tie_heavy(3 * 12 * 12 * 4, 11));
    const Window win{2, 2};
    const Stride st{2, 2};
    const Tensor dA = Tensor::from<float>({3, 6, 6, 4}, test::random_vector<float>(3 * 36 * 4, 12));
    auto same = [](const Tensor& a, const Tensor& b) {
        return a.shape() == b.shape() && a.dtype() == b.dtype() &&
               test::all_equal(static_cast<const unsigned char*>(a.raw()),
                               static_cast<const unsigned char*>(b.raw()), a.nbytes());
    };
    for (PoolMode mode : {PoolMode::max, PoolMode::avg}) {
        SCOPED_TRACE(pool_mode_name(mode));
        EXPECT_TRUE(same(pool_forward(x, win, st, mode, Device::cuda()),
                         pool_forward(x, win, st, mode, Device::cpu())));
        for (MaxTie tie : {MaxTie::all_ties, MaxTie::first_max})
            EXPECT_TRUE(same(pool_backward(dA, x, win, st, mode, tie, Device::cuda()),
                             pool_backward(dA, x, win, st, mode, tie, Device::cpu())));
    }
    const MaxPoolResult m_gpu = maxpool_forward_mask(x, win, st, Device::cuda());
    const MaxPoolResult m_cpu = maxpool_forward_mask(x, win, st, Device::cpu());
    EXPECT_TRUE(same(m_gpu.A, m_cpu.A));
    EXPECT_TRUE(same(m_gpu.mask, m_cpu.mask));
    EXPECT_TRUE(same(maxpool_backward_mask(dA, m_cpu.mask, xs, win, st, Device::cuda()),
                     maxpool_backward_mask(dA, m_cpu.mask, xs, win, st, Device::cpu())));
}

#else  // !MINICNN_WITH_CUDA

TEST(CudaPool2d, SkippedWithoutCuda) {
    GTEST_SKIP() << "GPU test skipped: " << cuda_unavailable_reason();
}

#endif

// Runs everywhere: the tie-heavy input really has ties, and the shapes cover the rules.
TEST(CudaPool2dCases, CasesCoverOverlapTiesAndUncoveredCells) {
    const auto v = tie_heavy(1000, 1);
    int zeros = 0;
    for (float x : v) zeros += x == 0.0f;
    EXPECT_GT(zeros, 400);
    bool overlap = false, gap = false;
    for (const auto& t : random_cases(30, 42)) {
        overlap |= t.sh < t.kh || t.sw < t.kw;
        gap |= t.sh > t.kh || t.sw > t.kw;
    }
    EXPECT_TRUE(overlap && gap);
}

}  // namespace
}  // namespace minicnn
