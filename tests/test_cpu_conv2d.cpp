// tests/test_cpu_conv2d.cpp — the CPU convolution (host/cpu/conv2d.cpp) against hand-computed numbers
// and against a literal transcription of docs/operations.md's formulas (explicit zero-padded Apad, loops in
// formula order, float64), over many geometries: 'same'/'valid'/explicit padding, strides 1-3, odd,
// even and 1x1 kernels, kernels as large as the padded input. Also: outputs are overwritten,
// float32 follows float64 (by every method of the float convolution: the direct AVX-512 and AVX2 + FMA
// kernels and im2col + GEMM), the result is bit-identical for 1, 2 and 3 threads, and inconsistent geometries
// throw.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include "cpu/conv2d.h"
#include "cpu/conv_direct.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"
#include "minicnn/ops.h"
#include "test_util.h"

namespace minicnn {
namespace {

using test::all_close;
using test::all_equal;
using test::random_vector;

// docs/operations.md's "same" padding for one axis: ceil(((in - 1) * s + k - in) / 2).
int spec_same_pad(std::int64_t in, int k, int s) {
    const std::int64_t x = (in - 1) * s + k - in;
    return static_cast<int>((x + 1) / 2);
}

// A geometry built by hand (independent of host/geometry.cpp): output size by docs/operations.md's rule.
ConvGeom make_geom(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, std::int64_t k,
                   int kh, int kw, int sh, int sw, int ph, int pw) {
    ConvGeom g;
    g.n = n, g.h = h, g.w = w, g.c = c, g.k = k;
    g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
    g.oh = (h + 2 * ph - kh) / sh + 1;
    g.ow = (w + 2 * pw - kw) / sw + 1;
    return g;
}
ConvGeom make_same_geom(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                        std::int64_t k, int kh, int kw, int sh, int sw) {
    return make_geom(n, h, w, c, k, kh, kw, sh, sw, spec_same_pad(h, kh, sh),
                     spec_same_pad(w, kw, sw));
}

// ---- the reference: docs/operations.md's formulas, literally ------------------------------------

struct Padded {
    std::vector<double> v;  // (n, h + 2ph, w + 2pw, c)
    std::int64_t hp, wp;
    double& at(const ConvGeom& g, std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t c) {
        return v[((n * hp + y) * wp + x) * g.c + c];
    }
};

Padded pad(const std::vector<double>& inp, const ConvGeom& g) {
    Padded p{{}, g.h + 2 * g.ph, g.w + 2 * g.pw};
    p.v.assign(static_cast<std::size_t>(g.n * p.hp * p.wp * g.c), 0.0);
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t y = 0; y < g.h; ++y)
            for (std::int64_t x = 0; x < g.w; ++x)
                for (std::int64_t c = 0; c < g.c; ++c)
                    p.at(g, n, y + g.ph, x + g.pw, c) = inp[((n * g.h + y) * g.w + x) * g.c + c];
    return p;
}

// Z[n,i,j,k] = sum_{a,q,c} Apad[n, i*sh+a, j*sw+q, c] * W[a,q,c,k] + b[k]
std::vector<double> ref_forward(const std::vector<double>& inp, const std::vector<double>& wt,
                                const std::vector<double>& b, const ConvGeom& g) {
    Padded p = pad(inp, g);
    std::vector<double> z(static_cast<std::size_t>(g.out_numel()));
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t i = 0; i < g.oh; ++i)
            for (std::int64_t j = 0; j < g.ow; ++j)
                for (std::int64_t k = 0; k < g.k; ++k) {
                    double s = 0.0;
                    for (int a = 0; a < g.kh; ++a)
                        for (int q = 0; q < g.kw; ++q)
                            for (std::int64_t c = 0; c < g.c; ++c)
                                s += p.at(g, n, i * g.sh + a, j * g.sw + q, c) *
                                     wt[((a * g.kw + q) * g.c + c) * g.k + k];
                    z[((n * g.oh + i) * g.ow + j) * g.k + k] = s + b[k];
                }
    return z;
}

struct RefGrads {
    std::vector<double> dinp, dw, db;
};

// dApad[n, i*sh+a, j*sw+q, c] += W[a,q,c,k] * dZ[n,i,j,k]; dA_prev = interior of dApad.
// dW[a,q,c,k] = sum Apad[n, i*sh+a, j*sw+q, c] * dZ[n,i,j,k]; db[k] = sum dZ[n,i,j,k].
RefGrads ref_backward(const std::vector<double>& dz, const std::vector<double>& inp,
                      const std::vector<double>& wt, const ConvGeom& g) {
    Padded p = pad(inp, g);
    Padded dp{std::vector<double>(p.v.size(), 0.0), p.hp, p.wp};
    RefGrads r;
    r.dw.assign(static_cast<std::size_t>(g.weight_numel()), 0.0);
    r.db.assign(static_cast<std::size_t>(g.k), 0.0);
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t i = 0; i < g.oh; ++i)
            for (std::int64_t j = 0; j < g.ow; ++j)
                for (std::int64_t k = 0; k < g.k; ++k) {
                    const double d = dz[((n * g.oh + i) * g.ow + j) * g.k + k];
                    r.db[k] += d;
                    for (int a = 0; a < g.kh; ++a)
                        for (int q = 0; q < g.kw; ++q)
                            for (std::int64_t c = 0; c < g.c; ++c) {
                                const std::size_t wi = ((a * g.kw + q) * g.c + c) * g.k + k;
                                dp.at(g, n, i * g.sh + a, j * g.sw + q, c) += wt[wi] * d;
                                r.dw[wi] += p.at(g, n, i * g.sh + a, j * g.sw + q, c) * d;
                            }
                }
    r.dinp.assign(static_cast<std::size_t>(g.in_numel()), 0.0);
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t y = 0; y < g.h; ++y)
            for (std::int64_t x = 0; x < g.w; ++x)
                for (std::int64_t c = 0; c < g.c; ++c)
                    r.dinp[((n * g.h + y) * g.w + x) * g.c + c] =
                        dp.at(g, n, y + g.ph, x + g.pw, c);
    return r;
}

// ---- hand-computed cases ------------------------------------------------------------------------

// x = [[1,2,3],[4,5,6],[7,8,9]], W = [[1,2],[3,4]], b = 1, 'valid': out[i,j] = sum x[i+a,j+q]
// W[a,q] + 1.
TEST(CpuConv2d, HandComputedValid3x3Kernel2x2) {
    const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const std::vector<double> w = {1, 2, 3, 4};
    const std::vector<double> b = {1};
    const ConvGeom g = make_geom(1, 3, 3, 1, 1, 2, 2, 1, 1, 0, 0);
    ASSERT_EQ(g.oh, 2);
    ASSERT_EQ(g.ow, 2);
    std::vector<double> out(4);
    cpu::conv2d_forward(out.data(), x.data(), w.data(), b.data(), g, Activation::linear);
    // 1+4+12+20+1, 2+6+15+24+1, 4+10+21+32+1, 5+12+24+36+1
    EXPECT_TRUE(all_equal(out, std::vector<double>{38, 48, 68, 78}));

    // Without a bias pointer, and in float.
    std::vector<float> outf(4);
    const auto xf = test::cast_vector<float>(x), wf = test::cast_vector<float>(w);
    cpu::conv2d_forward<float>(outf.data(), xf.data(), wf.data(), nullptr, g, Activation::linear);
    EXPECT_TRUE(all_equal(outf, std::vector<float>{37, 47, 67, 77}));
}

// The same input and kernel with docs/operations.md's 'same' padding: ph = pw = ceil((2 + 2 - 3) / 2) = 1, so
// the output is 4x4 (one more row and column than the input: the even-kernel rule).
TEST(CpuConv2d, HandComputedSameEvenKernelGrowsByOne) {
    const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const std::vector<double> w = {1, 2, 3, 4};
    const std::vector<double> b = {0};
    ASSERT_EQ(spec_same_pad(3, 2, 1), 1);
    const ConvGeom g = make_same_geom(1, 3, 3, 1, 1, 2, 2, 1, 1);
    ASSERT_EQ(g.oh, 4);
    ASSERT_EQ(g.ow, 4);
    std::vector<double> out(16);
    cpu::conv2d_forward(out.data(), x.data(), w.data(), b.data(), g, Activation::linear);
    const std::vector<double> expected = {4,  11, 18, 9,   //
                                          18, 37, 47, 21,  //
                                          36, 67, 77, 33,  //
                                          14, 23, 26, 9};
    EXPECT_TRUE(all_equal(out, expected, {1, 4, 4, 1}));
}

// 1x1 kernel, stride 2, two channels in and out: each output pixel is x[c] @ W[c, k] at the pixels
// (0,0), (0,2), (2,0), (2,2) of a 3x3 input; relu clips the negative results.
TEST(CpuConv2d, HandComputedStride2ChannelMixingRelu) {
    std::vector<double> x(3 * 3 * 2,
                          100.0);  // cells the stride skips hold 100: they must not count
    auto px = [&](int y, int xx, double c0, double c1) {
        x[(y * 3 + xx) * 2 + 0] = c0;
        x[(y * 3 + xx) * 2 + 1] = c1;
    };
    px(0, 0, 1, -1);
    px(0, 2, 2, 0.5);
    px(2, 0, -1, -2);
    px(2, 2, 0, 3);
    const std::vector<double> w = {1, 2,   // c=0 -> k=0, k=1
                                   3, 4};  // c=1 -> k=0, k=1
    const std::vector<double> b = {0.5, -1};
    const ConvGeom g = make_geom(1, 3, 3, 2, 2, 1, 1, 2, 2, 0, 0);
    ASSERT_EQ(g.oh, 2);
    std::vector<double> out(8);
    cpu::conv2d_forward(out.data(), x.data(), w.data(), b.data(), g, Activation::linear);
    const std::vector<double> lin = {1 - 3 + 0.5,   2 - 4 - 1,    // (1, -1)
                                     2 + 1.5 + 0.5, 4 + 2 - 1,    // (2, 0.5)
                                     -1 - 6 + 0.5,  -2 - 8 - 1,   // (-1, -2)
                                     0 + 9 + 0.5,   0 + 12 - 1};  // (0, 3)
    EXPECT_TRUE(all_equal(out, lin, {1, 2, 2, 2}));
    cpu::conv2d_forward(out.data(), x.data(), w.data(), b.data(), g, Activation::relu);
    EXPECT_TRUE(all_equal(out, std::vector<double>{0, 0, 4, 5, 0, 0, 9.5, 11}, {1, 2, 2, 2}));
}

// Backward of the 'valid' case with dZ = 1: dA_prev counts the kernel taps covering each cell,
// dW sums the input under each tap, db counts the outputs.
TEST(CpuConv2d, HandComputedBackwardValid) {
    const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const std::vector<double> w = {1, 2, 3, 4};
    const std::vector<double> dz = {1, 1, 1, 1};
    const ConvGeom g = make_geom(1, 3, 3, 1, 1, 2, 2, 1, 1, 0, 0);
    std::vector<double> dx(9), dw(4), db(1);
    cpu::conv2d_backward_data(dx.data(), dz.data(), w.data(), g);
    cpu::conv2d_backward_filter(dw.data(), db.data(), dz.data(), x.data(), g);
    EXPECT_TRUE(all_equal(dx, std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4}, {1, 3, 3, 1}));
    EXPECT_TRUE(all_equal(dw, std::vector<double>{12, 16, 24, 28}, {2, 2, 1, 1}));
    EXPECT_TRUE(all_equal(db, std::vector<double>{4}));
}

// 28 wide, kernel 3, stride 3, 'valid': 9 windows cover 27 columns; column and row 27 get zero
// gradient.
TEST(CpuConv2d, UnreachedRowsGetZeroGradient) {
    const ConvGeom g = make_geom(2, 28, 28, 2, 3, 3, 3, 3, 3, 0, 0);
    ASSERT_EQ(g.oh, 9);
    ASSERT_EQ(g.ow, 9);
    const auto w = random_vector<double>(g.weight_numel(), 11, 0.5, 1.0);  // all positive
    const auto dz = random_vector<double>(g.out_numel(), 12, 0.5, 1.0);    // all positive
    std::vector<double> dx(g.in_numel(), std::numeric_limits<double>::quiet_NaN());
    cpu::conv2d_backward_data(dx.data(), dz.data(), w.data(), g);
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t y = 0; y < 28; ++y)
            for (std::int64_t x = 0; x < 28; ++x)
                for (std::int64_t c = 0; c < g.c; ++c) {
                    const double v = dx[((n * 28 + y) * 28 + x) * g.c + c];
                    if (y == 27 || x == 27) {
                        EXPECT_EQ(v, 0.0)
                            << "at (" << n << ", " << y << ", " << x << ", " << c << ")";
                    } else {
                        EXPECT_GT(v, 0.0)
                            << "at (" << n << ", " << y << ", " << x << ", " << c << ")";
                    }
                }
}

// ---- docs/operations.md's size rules (hand-built geometries; the API-level tests check conv_geometry itself)
// ----

TEST(CpuConv2d, SpecSameSizeRules) {
    EXPECT_EQ(make_same_geom(1, 28, 28, 1, 1, 2, 2, 1, 1).oh, 29);  // even kernel: one more row
    EXPECT_EQ(make_same_geom(1, 28, 28, 1, 1, 5, 5, 1, 1).oh, 28);  // odd kernel: same size
    EXPECT_EQ(make_same_geom(1, 28, 28, 1, 1, 5, 5, 2, 2).oh, 28);  // stride 2 keeps the size
    EXPECT_EQ(make_same_geom(1, 28, 28, 1, 1, 2, 2, 2, 2).oh, 28);
    EXPECT_EQ(make_same_geom(1, 28, 28, 1, 1, 1, 1, 1, 1).ph, 0);  // 1x1: zero padding
}

// ---- random geometries against the reference ----------------------------------------------------

struct Case {
    const char* name;
    ConvGeom g;
};

std::vector<Case> cases() {
    return {
        {"valid 5x5 s1", make_geom(2, 8, 7, 3, 4, 5, 5, 1, 1, 0, 0)},
        {"same 5x5 s1 (LeNet C1)", make_same_geom(2, 12, 12, 1, 6, 5, 5, 1, 1)},
        {"same 2x2 s1 (even kernel)", make_same_geom(2, 6, 5, 2, 3, 2, 2, 1, 1)},
        {"same 4x3 s1 (even/odd)", make_same_geom(1, 7, 6, 3, 2, 4, 3, 1, 1)},
        {"same 3x3 s2", make_same_geom(2, 9, 8, 2, 5, 3, 3, 2, 2)},
        {"same 2x2 s2", make_same_geom(1, 8, 7, 3, 2, 2, 2, 2, 2)},
        {"same 1x1 s1 (zero padding)", make_same_geom(2, 5, 4, 3, 4, 1, 1, 1, 1)},
        {"same 3x3 s3x1", make_same_geom(1, 10, 7, 2, 3, 3, 3, 3, 1)},
        {"valid 3x3 s3 (unreached column)", make_geom(2, 10, 10, 2, 3, 3, 3, 3, 3, 0, 0)},
        {"explicit (2, 1) 3x2 s2x1", make_geom(2, 6, 5, 3, 2, 3, 2, 2, 1, 2, 1)},
        {"explicit (3, 3) 2x2 s1 (padding > kernel)", make_geom(1, 3, 4, 2, 2, 2, 2, 1, 1, 3, 3)},
        {"kernel = padded input", make_geom(2, 4, 5, 2, 3, 6, 5, 1, 1, 1, 0)},
        {"1x1 input, same 3x3", make_same_geom(3, 1, 1, 4, 5, 3, 3, 1, 1)},
        {"many channels", make_same_geom(2, 6, 6, 16, 24, 3, 3, 1, 1)},
        // The direct kernels' tiles: rows longer than a tile, channel groups of 32 + 8, the
        // filter gradient's taps (kw * c = 30) over two tiles.
        {"valid 5x5 6->16 (LeNet C2)", make_geom(2, 14, 14, 6, 16, 5, 5, 1, 1, 0, 0)},
        {"wide rows, 40 channels", make_same_geom(2, 5, 30, 3, 40, 3, 5, 1, 1)},
        {"one channel, 13 outputs, rows of 35 (LeNet C1's kernels)",
         make_same_geom(2, 9, 35, 1, 13, 5, 4, 2, 1)},
    };
}

TEST(CpuConv2d, MatchesSpecFormulasFloat64) {
    std::uint32_t seed = 100;
    for (const Case& cs : cases()) {
        SCOPED_TRACE(cs.name);
        const ConvGeom& g = cs.g;
        const auto x = random_vector<double>(g.in_numel(), seed++);
        const auto w = random_vector<double>(g.weight_numel(), seed++);
        const auto b = random_vector<double>(g.k, seed++);
        const auto dz = random_vector<double>(g.out_numel(), seed++);
        const std::vector<std::int64_t> ishape = {g.n, g.h, g.w, g.c};
        const std::vector<std::int64_t> oshape = {g.n, g.oh, g.ow, g.k};
        const std::vector<std::int64_t> wshape = {g.kh, g.kw, g.c, g.k};

        std::vector<double> out(g.out_numel(), std::numeric_limits<double>::quiet_NaN());
        cpu::conv2d_forward(out.data(), x.data(), w.data(), b.data(), g, Activation::linear);
        EXPECT_TRUE(all_close(out, ref_forward(x, w, b, g), 1e-12, 1e-12, oshape));

        const RefGrads r = ref_backward(dz, x, w, g);
        // Outputs are overwritten: fill them with NaN first.
        std::vector<double> dx(g.in_numel(), std::numeric_limits<double>::quiet_NaN());
        std::vector<double> dw(g.weight_numel(), std::numeric_limits<double>::quiet_NaN());
        std::vector<double> db(g.k, std::numeric_limits<double>::quiet_NaN());
        cpu::conv2d_backward_data(dx.data(), dz.data(), w.data(), g);
        cpu::conv2d_backward_filter(dw.data(), db.data(), dz.data(), x.data(), g);
        EXPECT_TRUE(all_close(dx, r.dinp, 1e-12, 1e-12, ishape));
        EXPECT_TRUE(all_close(dw, r.dw, 1e-12, 1e-12, wshape));
        EXPECT_TRUE(all_close(db, r.db, 1e-12, 1e-12));

        // dbias may be null: dW is unchanged.
        std::vector<double> dw2(g.weight_numel());
        cpu::conv2d_backward_filter<double>(dw2.data(), nullptr, dz.data(), x.data(), g);
        EXPECT_TRUE(all_equal(dw2, dw));
    }
}

// Sets the float convolution's method for a scope (host/cpu/conv_direct.h: automatic runs the direct
// AVX2 + FMA kernels where the CPU has them).
class MethodScope {
public:
    explicit MethodScope(cpu::CpuConvMethod m) : saved_(cpu::conv_method()) {
        cpu::set_conv_method(m);
    }
    ~MethodScope() { cpu::set_conv_method(saved_); }
    MethodScope(const MethodScope&) = delete;
    MethodScope& operator=(const MethodScope&) = delete;

private:
    cpu::CpuConvMethod saved_;
};
const cpu::CpuConvMethod kMethods[] = {cpu::CpuConvMethod::automatic, cpu::CpuConvMethod::im2col,
                                       cpu::CpuConvMethod::direct_avx2};
const char* method_name(cpu::CpuConvMethod m) {
    switch (m) {
        case cpu::CpuConvMethod::im2col: return "im2col";
        case cpu::CpuConvMethod::direct_avx2: return "direct_avx2";
        default: return "automatic";
    }
}

// The direct kernels run exactly where the CPU has AVX2 and FMA (16 lanes with AVX-512, else 8),
// unless im2col is asked for.
TEST(CpuConv2d, DirectKernelsRunWhereTheCpuHasAvx2AndFma) {
#if defined(__GNUC__) && defined(__x86_64__)
    const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool has512 = has && __builtin_cpu_supports("avx512f");
#else
    const bool has = false, has512 = false;
#endif
    EXPECT_EQ(cpu::direct::enabled(), has);
    EXPECT_EQ(cpu::direct::vector_lanes(), has512 ? 16 : has ? 8 : 0);
    {
        MethodScope avx2(cpu::CpuConvMethod::direct_avx2);
        EXPECT_EQ(cpu::direct::vector_lanes(), has ? 8 : 0);
    }
    const ConvGeom lenet2 = make_geom(4, 14, 14, 6, 16, 5, 5, 1, 1, 0, 0);
    EXPECT_EQ(cpu::direct::forward_fits(lenet2), has);
    EXPECT_EQ(cpu::direct::backward_filter_fits(lenet2), has);
    // One input channel (LeNet's first layer) has kernels of its own for unit horizontal stride;
    // with another stride it stays on the transposed im2col path, and its data gradient (5 taps)
    // on im2col + GEMM.
    const ConvGeom lenet1 = make_geom(4, 28, 28, 1, 6, 5, 5, 1, 1, 2, 2);
    EXPECT_EQ(cpu::direct::forward_fits(lenet1), has);
    EXPECT_EQ(cpu::direct::backward_filter_fits(lenet1), has);
    EXPECT_FALSE(cpu::direct::backward_data_fits(lenet1));
    EXPECT_FALSE(cpu::direct::forward_fits(make_geom(4, 28, 28, 1, 6, 5, 5, 1, 2, 2, 2)));
    MethodScope im2col(cpu::CpuConvMethod::im2col);
    EXPECT_FALSE(cpu::direct::enabled());
    EXPECT_EQ(cpu::direct::vector_lanes(), 0);
    EXPECT_FALSE(cpu::direct::forward_fits(lenet2));
}

// float32 follows float64 within a tolerance that grows with the reduction length, by every method.
TEST(CpuConv2d, Float32CloseToFloat64) {
    for (cpu::CpuConvMethod method : kMethods) {
    SCOPED_TRACE(method_name(method));
    MethodScope scope(method);
    std::uint32_t seed = 200;
    for (const Case& cs : cases()) {
        SCOPED_TRACE(cs.name);
        const ConvGeom& g = cs.g;
        const auto x = random_vector<double>(g.in_numel(), seed++);
        const auto w = random_vector<double>(g.weight_numel(), seed++);
        const auto b = random_vector<double>(g.k, seed++);
        const auto dz = random_vector<double>(g.out_numel(), seed++);
        const auto xf = test::cast_vector<float>(x), wf = test::cast_vector<float>(w),
                   bf = test::cast_vector<float>(b), dzf = test::cast_vector<float>(dz);
        // Inputs rounded to float, so the only difference is float arithmetic.
        const auto xr = test::cast_vector<double>(xf), wr = test::cast_vector<double>(wf),
                   br = test::cast_vector<double>(bf), dzr = test::cast_vector<double>(dzf);

        for (Activation act : {Activation::linear, Activation::relu, Activation::tanh,
                               Activation::sigmoid, Activation::softmax}) {
            SCOPED_TRACE(activation_name(act));
            std::vector<double> od(g.out_numel());
            std::vector<float> of(g.out_numel());
            cpu::conv2d_forward(od.data(), xr.data(), wr.data(), br.data(), g, act);
            cpu::conv2d_forward(of.data(), xf.data(), wf.data(), bf.data(), g, act);
            const double len = double(g.kh) * g.kw * g.c;
            EXPECT_TRUE(all_close(of, od, 1e-6 * len, 1e-5));
        }

        std::vector<double> dxd(g.in_numel()), dwd(g.weight_numel()), dbd(g.k);
        std::vector<float> dxf(g.in_numel()), dwf(g.weight_numel()), dbf(g.k);
        cpu::conv2d_backward_data(dxd.data(), dzr.data(), wr.data(), g);
        cpu::conv2d_backward_data(dxf.data(), dzf.data(), wf.data(), g);
        EXPECT_TRUE(all_close(dxf, dxd, 1e-6 * g.kh * g.kw * g.k, 1e-5));
        cpu::conv2d_backward_filter(dwd.data(), dbd.data(), dzr.data(), xr.data(), g);
        cpu::conv2d_backward_filter(dwf.data(), dbf.data(), dzf.data(), xf.data(), g);
        const double pixels = double(g.n) * g.oh * g.ow;
        EXPECT_TRUE(all_close(dwf, dwd, 1e-6 * pixels, 1e-5));
        EXPECT_TRUE(all_close(dbf, dbd, 1e-6 * pixels, 1e-5));
    }
    }
}

// The fused activation equals the linear convolution followed by activation_forward (softmax over
// k).
TEST(CpuConv2d, FusedActivationMatchesSeparatePass) {
    const ConvGeom g = make_same_geom(2, 6, 5, 3, 4, 3, 3, 1, 1);
    const auto x = random_vector<double>(g.in_numel(), 300, -2.0, 2.0);
    const auto w = random_vector<double>(g.weight_numel(), 301);
    const auto b = random_vector<double>(g.k, 302);
    std::vector<double> z(g.out_numel());
    cpu::conv2d_forward(z.data(), x.data(), w.data(), b.data(), g, Activation::linear);
    const std::int64_t rows = g.n * g.oh * g.ow;
    for (Activation act :
         {Activation::relu, Activation::tanh, Activation::sigmoid, Activation::softmax}) {
        SCOPED_TRACE(activation_name(act));
        std::vector<double> fused(g.out_numel()), sep(g.out_numel());
        cpu::conv2d_forward(fused.data(), x.data(), w.data(), b.data(), g, act);
        cpu::activation_forward(sep.data(), z.data(), rows, g.k, act);
        EXPECT_TRUE(all_close(fused, sep, 1e-15, 1e-14));
        if (act == Activation::softmax) {
            for (std::int64_t r = 0; r < rows; ++r) {
                double s = 0.0;
                for (std::int64_t k = 0; k < g.k; ++k) s += fused[r * g.k + k];
                EXPECT_NEAR(s, 1.0, 1e-14) << "softmax row " << r;
            }
        }
    }
}

// Work is split by a function of the shapes only, so 1, 2 and 3 threads give bit-identical results,
// by every method; the batches of 40 are cut into 3 chunks.
TEST(CpuConv2d, ThreadCountDoesNotChangeBits) {
    for (cpu::CpuConvMethod method : kMethods)
        for (const ConvGeom& g : {make_same_geom(40, 17, 13, 5, 7, 5, 4, 2, 1),
                                  make_geom(40, 14, 14, 6, 16, 5, 5, 1, 1, 0, 0),
                                  make_same_geom(40, 9, 9, 12, 20, 3, 3, 1, 1)}) {
            SCOPED_TRACE(method_name(method));
            SCOPED_TRACE(::testing::Message() << "c " << g.c << " k " << g.k);
            MethodScope scope(method);
            const auto x = random_vector<float>(g.in_numel(), 400);
            const auto w = random_vector<float>(g.weight_numel(), 401);
            const auto b = random_vector<float>(g.k, 402);
            const auto dz = random_vector<float>(g.out_numel(), 403);
            auto run = [&](int threads) {
                const int saved = cpu::thread_count();
                cpu::set_thread_count(threads);
                std::vector<float> out(g.out_numel()), dx(g.in_numel()), dw(g.weight_numel()),
                    db(g.k);
                cpu::conv2d_forward(out.data(), x.data(), w.data(), b.data(), g,
                                    Activation::softmax);
                cpu::conv2d_backward_data(dx.data(), dz.data(), w.data(), g);
                cpu::conv2d_backward_filter(dw.data(), db.data(), dz.data(), x.data(), g);
                cpu::set_thread_count(saved);
                out.insert(out.end(), dx.begin(), dx.end());
                out.insert(out.end(), dw.begin(), dw.end());
                out.insert(out.end(), db.begin(), db.end());
                return out;
            };
            const auto one = run(1), two = run(2), three = run(3);
            EXPECT_TRUE(all_equal(two, one));
            EXPECT_TRUE(all_equal(three, one));
        }
}

TEST(CpuConv2d, InconsistentGeometryThrows) {
    ConvGeom g = make_geom(1, 5, 5, 1, 1, 3, 3, 1, 1, 0, 0);
    std::vector<double> buf(1000);
    g.oh = 4;  // should be 3
    EXPECT_THROW(cpu::conv2d_forward<double>(buf.data(), buf.data(), buf.data(), nullptr, g,
                                             Activation::linear),
                 ArgumentError);
    EXPECT_THROW(cpu::conv2d_backward_data<double>(buf.data(), buf.data(), buf.data(), g),
                 ArgumentError);
    EXPECT_THROW(
        cpu::conv2d_backward_filter<double>(buf.data(), nullptr, buf.data(), buf.data(), g),
        ArgumentError);
    g = make_geom(1, 5, 5, 1, 1, 3, 3, 1, 1, 0, 0);
    g.sh = 0;
    EXPECT_THROW(cpu::conv2d_forward<double>(buf.data(), buf.data(), buf.data(), nullptr, g,
                                             Activation::linear),
                 ArgumentError);
    g = make_geom(1, 5, 5, 1, 1, 3, 3, 1, 1, 0, 0);
    EXPECT_THROW(cpu::conv2d_forward<double>(buf.data(), nullptr, buf.data(), nullptr, g,
                                             Activation::linear),
                 ArgumentError);
    EXPECT_THROW(cpu::conv2d_backward_filter<double>(nullptr, nullptr, buf.data(), buf.data(), g),
                 ArgumentError);
    g = make_geom(1, 2, 2, 1, 1, 3, 3, 1, 1, 0, 0);  // kernel larger than the (unpadded) input
    try {
        cpu::conv2d_forward<double>(buf.data(), buf.data(), buf.data(), nullptr, g,
                                    Activation::linear);
        ADD_FAILURE() << "expected ArgumentError";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("conv2d_forward"), std::string::npos) << e.what();
    }
}

// ---- through the functional API (minicnn/ops.h, Device::cpu()) ----------------------------------

// conv_forward / conv_backward on host tensors against the docs/operations.md reference, with the padding the
// reference derives itself from docs/operations.md's formula (so conv_geometry and the backend are both
// checked).
void check_api_conv(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, std::int64_t k,
                    int kh, int kw, int sh, int sw, Padding padding, std::int64_t expect_oh,
                    std::int64_t expect_ow, std::uint32_t seed) {
    const ConvGeom g = padding.kind == Padding::Kind::valid
                           ? make_geom(n, h, w, c, k, kh, kw, sh, sw, 0, 0)
                           : make_geom(n, h, w, c, k, kh, kw, sh, sw, spec_same_pad(h, kh, sh),
                                       spec_same_pad(w, kw, sw));
    ASSERT_EQ(g.oh, expect_oh);
    ASSERT_EQ(g.ow, expect_ow);
    const auto x = random_vector<double>(g.in_numel(), seed);
    const auto wt = random_vector<double>(g.weight_numel(), seed + 1);
    const auto b = random_vector<double>(g.k, seed + 2);
    const auto dz = random_vector<double>(g.out_numel(), seed + 3);
    const Tensor X = Tensor::from<double>({n, h, w, c}, x);
    const Tensor W = Tensor::from<double>({kh, kw, c, k}, wt);
    const Tensor B = Tensor::from<double>({1, 1, 1, k}, b);
    const Tensor DZ = Tensor::from<double>({n, expect_oh, expect_ow, k}, dz);
    const Stride stride{sh, sw};

    const Tensor Z = conv_forward(X, W, B, Activation::linear, padding, stride, Device::cpu());
    ASSERT_EQ(Z.shape(), (Shape{n, expect_oh, expect_ow, k}));
    ASSERT_EQ(Z.dtype(), DType::f64);
    EXPECT_TRUE(
        all_close(test::to_vector<double>(Z), ref_forward(x, wt, b, g), 1e-12, 1e-12, Z.shape()));

    const ConvGrads gr = conv_backward(DZ, X, W, B, padding, stride, Device::cpu());
    const RefGrads r = ref_backward(dz, x, wt, g);
    ASSERT_EQ(gr.dA_prev.shape(), (Shape{n, h, w, c}));
    ASSERT_EQ(gr.dW.shape(), (Shape{kh, kw, c, k}));
    ASSERT_EQ(gr.db.shape(), (Shape{1, 1, 1, k}));
    EXPECT_TRUE(
        all_close(test::to_vector<double>(gr.dA_prev), r.dinp, 1e-12, 1e-12, gr.dA_prev.shape()));
    EXPECT_TRUE(all_close(test::to_vector<double>(gr.dW), r.dw, 1e-12, 1e-12, gr.dW.shape()));
    EXPECT_TRUE(all_close(test::to_vector<double>(gr.db), r.db, 1e-12, 1e-12));

    // float32 through the API gives the pointer-level float32 result exactly.
    const Tensor Xf = X.astype(DType::f32), Wf = W.astype(DType::f32), Bf = B.astype(DType::f32);
    const Tensor Zf = conv_forward(Xf, Wf, Bf, Activation::relu, padding, stride, Device::cpu());
    std::vector<float> zf(g.out_numel());
    cpu::conv2d_forward(zf.data(), Xf.data<float>(), Wf.data<float>(), Bf.data<float>(), g,
                        Activation::relu);
    EXPECT_TRUE(all_equal(test::to_vector<float>(Zf), zf));
}

TEST(CpuConv2dApi, SameEvenKernelGivesOneMoreRow) {
    // 28 in, kh = 2, 'same', stride 1 -> 29 out (docs/operations.md; not TensorFlow's 'same').
    check_api_conv(2, 28, 28, 1, 3, 2, 2, 1, 1, Padding::same(), 29, 29, 500);
}

TEST(CpuConv2dApi, SameStrideTwoKeepsTheSize) {
    check_api_conv(1, 28, 28, 2, 4, 5, 5, 2, 2, Padding::same(), 28, 28, 510);
    check_api_conv(1, 28, 27, 2, 2, 2, 3, 2, 2, Padding::same(), 28, 27, 520);
}

TEST(CpuConv2dApi, SameOneByOneKernelBackward) {
    // 'same' with a 1x1 kernel pads nothing; the exercise crashed here, minicnn returns the
    // gradient.
    check_api_conv(2, 5, 6, 3, 4, 1, 1, 1, 1, Padding::same(), 5, 6, 530);
}

// A batch of no images: every filter-gradient pass writes zeros (a sum over nothing) over what its
// outputs held, the plain pass and both passes fused with a pooling's backward.
TEST(CpuConv2d, EmptyBatchWritesZeroGradients) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float* none = nullptr;
    const auto all_zero = [](const std::vector<float>& v) {
        for (const float x : v)
            if (!(x == 0.0f)) return false;
        return true;
    };
    const auto pool_of = [](const ConvGeom& g) {
        PoolGeom p;
        p.n = g.n, p.h = g.oh, p.w = g.ow, p.c = g.k;
        p.kh = p.kw = p.sh = p.sw = 2;
        p.oh = g.oh / 2, p.ow = g.ow / 2;
        return p;
    };
    const ConvGeom g = make_geom(0, 14, 14, 6, 16, 5, 5, 1, 1, 0, 0);      // LeNet's conv2
    const ConvGeom g1 = make_geom(0, 28, 28, 1, 6, 5, 5, 1, 1, 2, 2);      // LeNet's conv1
    const auto w = random_vector<float>(g.weight_numel(), 580);
    for (int pass = 0; pass < 3; ++pass) {
        SCOPED_TRACE(pass);
        const ConvGeom& gp = pass == 2 ? g1 : g;
        std::vector<float> dw(std::size_t(gp.weight_numel()), nan), db(std::size_t(gp.k), nan);
        cpu::Workspace<float> ws;
        if (pass == 0) {
            cpu::conv2d_backward_filter(dw.data(), db.data(), none, none, gp);
        } else if (pass == 1) {
            if (!cpu::conv2d_maxpool_backward_fits(gp, pool_of(gp))) continue;  // no direct kernels
            cpu::conv2d_maxpool_backward(nullptr, dw.data(), db.data(), none, nullptr, none,
                                         w.data(), gp, pool_of(gp), ws);
        } else {
            if (!cpu::conv2d_backward_filter_unpool_fits(gp, pool_of(gp))) continue;
            cpu::conv2d_backward_filter_unpool(dw.data(), db.data(), none, nullptr, none, gp,
                                               pool_of(gp), ws);
        }
        EXPECT_TRUE(all_zero(dw));
        EXPECT_TRUE(all_zero(db));
    }
}

TEST(CpuConv2dApi, LeNetLayersAndUnreachedColumn) {
    check_api_conv(2, 28, 28, 1, 6, 5, 5, 1, 1, Padding::same(), 28, 28, 540);    // C1
    check_api_conv(2, 14, 14, 6, 16, 5, 5, 1, 1, Padding::valid(), 10, 10, 550);  // C3
    check_api_conv(1, 28, 28, 2, 2, 3, 3, 3, 3, Padding::valid(), 9, 9, 560);  // column 27 unused
}

TEST(CpuConv2dApi, BiasMayBeFlatAndSoftmaxIsOverChannels) {
    const auto x = random_vector<float>(2 * 4 * 4 * 3, 570);
    const auto wt = random_vector<float>(3 * 3 * 3 * 5, 571);
    const auto b = random_vector<float>(5, 572);
    const Tensor X = Tensor::from<float>({2, 4, 4, 3}, x);
    const Tensor W = Tensor::from<float>({3, 3, 3, 5}, wt);
    const Tensor A = conv_forward(X, W, Tensor::from<float>({5}, b), Activation::softmax,
                                  Padding::same(), {}, Device::cpu());
    const Tensor A4 = conv_forward(X, W, Tensor::from<float>({1, 1, 1, 5}, b), Activation::softmax,
                                   Padding::same(), {}, Device::cpu());
    ASSERT_EQ(A.shape(), (Shape{2, 4, 4, 5}));
    EXPECT_TRUE(all_equal(test::to_vector<float>(A), test::to_vector<float>(A4)));
    const auto a = test::to_vector<float>(A);
    for (std::size_t r = 0; r < a.size() / 5; ++r) {
        double s = 0.0;
        for (std::size_t k = 0; k < 5; ++k) s += a[r * 5 + k];
        EXPECT_NEAR(s, 1.0, 1e-6) << "pixel " << r;
    }
}

}  // namespace
}  // namespace minicnn
