// tests/test_cpu_pool2d.cpp — the CPU pooling (host/cpu/pool2d.cpp) against hand-computed numbers and a
// literal transcription of docs/operations.md (float64): max with the first-max mask (strict >, row-major
// window order), avg, and the three backward rules (mask, all ties, avg), with overlapping windows,
// strides, rows no window reaches, negative inputs, and ties (ReLU zeros). Also: float32 follows
// float64, 1 and 2 threads give bit-identical results, bad masks and geometries throw.
#include <algorithm>
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

PoolGeom make_geom(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, int kh, int kw,
                   int sh, int sw) {
    PoolGeom g;
    g.n = n, g.h = h, g.w = w, g.c = c;
    g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw;
    g.oh = (h - kh) / sh + 1;
    g.ow = (w - kw) / sw + 1;
    return g;
}

// ---- the reference ------------------------------------------------------------------------------

std::size_t at(const PoolGeom& g, std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t c) {
    return static_cast<std::size_t>(((n * g.h + y) * g.w + x) * g.c + c);
}
std::size_t oat(const PoolGeom& g, std::int64_t n, std::int64_t i, std::int64_t j, std::int64_t c) {
    return static_cast<std::size_t>(((n * g.oh + i) * g.ow + j) * g.c + c);
}

struct RefPool {
    std::vector<double> max, avg, dmask, dallties, davg;
    std::vector<std::int32_t> mask;
};

RefPool ref_pool(const std::vector<double>& x, const std::vector<double>& dy, const PoolGeom& g) {
    RefPool r;
    const auto on = static_cast<std::size_t>(g.out_numel());
    const auto in = static_cast<std::size_t>(g.in_numel());
    r.max.resize(on), r.avg.resize(on), r.mask.resize(on);
    r.dmask.assign(in, 0.0), r.dallties.assign(in, 0.0), r.davg.assign(in, 0.0);
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t i = 0; i < g.oh; ++i)
            for (std::int64_t j = 0; j < g.ow; ++j)
                for (std::int64_t c = 0; c < g.c; ++c) {
                    double best = -std::numeric_limits<double>::infinity(), sum = 0.0;
                    std::int32_t pos = -1;
                    for (int a = 0; a < g.kh; ++a)
                        for (int q = 0; q < g.kw; ++q) {
                            const double v = x[at(g, n, i * g.sh + a, j * g.sw + q, c)];
                            sum += v;
                            if (pos < 0 || v > best) best = v, pos = a * g.kw + q;
                        }
                    const std::size_t o = oat(g, n, i, j, c);
                    r.max[o] = best, r.mask[o] = pos, r.avg[o] = sum / (g.kh * g.kw);
                    r.dmask[at(g, n, i * g.sh + pos / g.kw, j * g.sw + pos % g.kw, c)] += dy[o];
                    for (int a = 0; a < g.kh; ++a)
                        for (int q = 0; q < g.kw; ++q) {
                            const std::size_t e = at(g, n, i * g.sh + a, j * g.sw + q, c);
                            if (x[e] == best) r.dallties[e] += dy[o];
                            r.davg[e] += dy[o] / (g.kh * g.kw);
                        }
                }
    return r;
}

// ---- hand-computed cases ------------------------------------------------------------------------

const std::vector<double> kX4 = {1, 3, 2, 1,  //
                                 4, 2, 0, 5,  //
                                 7, 8, 1, 1,  //
                                 6, 9, 3, 2};

TEST(CpuPool2d, HandComputed4x4Window2Stride2) {
    const PoolGeom g = make_geom(1, 4, 4, 1, 2, 2, 2, 2);
    ASSERT_EQ(g.oh, 2);
    std::vector<double> out(4);
    std::vector<std::int32_t> mask(4, -1);
    cpu::maxpool2d_forward(out.data(), mask.data(), kX4.data(), g);
    EXPECT_TRUE(all_equal(out, std::vector<double>{4, 5, 9, 3}));
    EXPECT_TRUE(all_equal(mask, std::vector<std::int32_t>{2, 3, 3, 2}));
    cpu::maxpool2d_forward<double>(out.data(), nullptr, kX4.data(), g);  // mask is optional
    EXPECT_TRUE(all_equal(out, std::vector<double>{4, 5, 9, 3}));

    cpu::avgpool2d_forward(out.data(), kX4.data(), g);
    EXPECT_TRUE(all_equal(out, std::vector<double>{2.5, 2, 7.5, 1.75}));

    const std::vector<double> dy = {1, 2, 3, 4};
    std::vector<double> dx(16, -1.0);
    cpu::maxpool2d_backward_mask(dx.data(), dy.data(), mask.data(), g);
    EXPECT_TRUE(all_equal(dx, std::vector<double>{0, 0, 0, 0,  //
                                                  1, 0, 0, 2,  //
                                                  0, 0, 0, 0,  //
                                                  0, 3, 4, 0}));
    cpu::maxpool2d_backward_allties(dx.data(), dy.data(), kX4.data(), g);  // no ties here
    EXPECT_TRUE(all_equal(dx, std::vector<double>{0, 0, 0, 0,              //
                                                  1, 0, 0, 2,              //
                                                  0, 0, 0, 0,              //
                                                  0, 3, 4, 0}));
    cpu::avgpool2d_backward(dx.data(), dy.data(), g);
    EXPECT_TRUE(all_equal(dx, std::vector<double>{0.25, 0.25, 0.5, 0.5,  //
                                                  0.25, 0.25, 0.5, 0.5,  //
                                                  0.75, 0.75, 1, 1,      //
                                                  0.75, 0.75, 1, 1}));
}

// 3x3 windows with stride 1 overlap: gradients of windows that share a cell add up.
TEST(CpuPool2d, HandComputedOverlappingWindows) {
    const PoolGeom g = make_geom(1, 4, 4, 1, 3, 3, 1, 1);
    ASSERT_EQ(g.oh, 2);
    std::vector<double> out(4);
    std::vector<std::int32_t> mask(4);
    cpu::maxpool2d_forward(out.data(), mask.data(), kX4.data(), g);
    EXPECT_TRUE(all_equal(out, std::vector<double>{8, 8, 9, 9}));
    EXPECT_TRUE(all_equal(mask, std::vector<std::int32_t>{7, 6, 7, 6}));

    std::vector<double> dx(16);
    cpu::maxpool2d_backward_mask(dx.data(), std::vector<double>{1, 2, 3, 4}.data(), mask.data(), g);
    std::vector<double> expected(16, 0.0);
    expected[2 * 4 + 1] = 1 + 2;  // the 8 at (2, 1) is the maximum of the two top windows
    expected[3 * 4 + 1] = 3 + 4;  // the 9 at (3, 1) of the two bottom ones
    EXPECT_TRUE(all_equal(dx, expected, {1, 4, 4, 1}));

    cpu::avgpool2d_forward(out.data(), kX4.data(), g);
    EXPECT_TRUE(
        all_close(out, std::vector<double>{28.0 / 9, 23.0 / 9, 40.0 / 9, 31.0 / 9}, 0, 1e-15));
    // dA = 9 everywhere: each cell gets 9/9 per covering window, i.e. its coverage count.
    cpu::avgpool2d_backward(dx.data(), std::vector<double>(4, 9.0).data(), g);
    EXPECT_TRUE(all_close(dx,
                          std::vector<double>{1, 2, 2, 1,  //
                                              2, 4, 4, 2,  //
                                              2, 4, 4, 2,  //
                                              1, 2, 2, 1},
                          0, 1e-15, {1, 4, 4, 1}));
}

// Ties: a window of zeros (ReLU output), a two-way tie, an all-negative window (the maximum is not
// clamped at zero), one window per channel. first-max sends the gradient to the first maximum only;
// all-ties sends the full gradient to every cell equal to the maximum.
TEST(CpuPool2d, TieRules) {
    // (1, 2, 2, 3): channel 0 all zeros, channel 1 = [1, 5; 5, 2], channel 2 = [-5, -2; -7, -2].
    const std::vector<double> x = {0, 1, -5, 0, 5, -2,  //
                                   0, 5, -7, 0, 2, -2};
    const PoolGeom g = make_geom(1, 2, 2, 3, 2, 2, 2, 2);
    std::vector<double> out(3);
    std::vector<std::int32_t> mask(3);
    cpu::maxpool2d_forward(out.data(), mask.data(), x.data(), g);
    EXPECT_TRUE(all_equal(out, std::vector<double>{0, 5, -2}));
    EXPECT_TRUE(all_equal(mask, std::vector<std::int32_t>{0, 1, 1}));

    const std::vector<double> dy = {10, 20, 30};
    std::vector<double> dx(12);
    cpu::maxpool2d_backward_mask(dx.data(), dy.data(), mask.data(), g);
    EXPECT_TRUE(all_equal(dx,
                          std::vector<double>{10, 0, 0, 0, 20, 30,  //
                                              0, 0, 0, 0, 0, 0},
                          {1, 2, 2, 3}));
    cpu::maxpool2d_backward_allties(dx.data(), dy.data(), x.data(), g);
    EXPECT_TRUE(all_equal(dx,
                          std::vector<double>{10, 0, 0, 10, 20, 30,  //
                                              10, 20, 0, 10, 0, 30},
                          {1, 2, 2, 3}));
}

// Mostly-zero inputs (ReLU outputs) make ties everywhere; float and double agree exactly there.
TEST(CpuPool2d, ReluZerosTiesMatchReference) {
    const PoolGeom g = make_geom(2, 9, 8, 3, 3, 2, 2, 2);
    auto x = random_vector<double>(g.in_numel(), 7);
    for (auto& v : x) v = std::max(0.0, v - 0.6);  // ~80% zeros
    const auto dy = random_vector<double>(g.out_numel(), 8);
    const RefPool r = ref_pool(x, dy, g);
    std::vector<double> out(g.out_numel()), dx(g.in_numel());
    std::vector<std::int32_t> mask(g.out_numel());
    cpu::maxpool2d_forward(out.data(), mask.data(), x.data(), g);
    EXPECT_TRUE(all_equal(mask, r.mask));
    cpu::maxpool2d_backward_allties(dx.data(), dy.data(), x.data(), g);
    EXPECT_TRUE(all_close(dx, r.dallties, 1e-15, 1e-15));
    cpu::maxpool2d_backward_mask(dx.data(), dy.data(), mask.data(), g);
    EXPECT_TRUE(all_close(dx, r.dmask, 1e-15, 1e-15));

    // The float32 mask is identical (values rounded to float keep their order and ties here).
    const auto xf = test::cast_vector<float>(x);
    std::vector<float> outf(g.out_numel());
    std::vector<std::int32_t> maskf(g.out_numel());
    cpu::maxpool2d_forward(outf.data(), maskf.data(), xf.data(), g);
    EXPECT_TRUE(all_equal(maskf, mask));
}

// 28 wide, kernel 3, stride 3: 9 windows cover 27 columns; row and column 27 get zero gradient in
// every backward rule (and the outputs are overwritten: the buffers start as NaN).
TEST(CpuPool2d, UnreachedRowsGetZeroGradient) {
    const PoolGeom g = make_geom(2, 28, 28, 2, 3, 3, 3, 3);
    ASSERT_EQ(g.oh, 9);
    ASSERT_EQ(g.ow, 9);
    const auto x = random_vector<double>(g.in_numel(), 21);
    const auto dy = random_vector<double>(g.out_numel(), 22, 0.5, 1.0);  // positive
    std::vector<std::int32_t> mask(g.out_numel());
    std::vector<double> out(g.out_numel());
    cpu::maxpool2d_forward(out.data(), mask.data(), x.data(), g);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> dmask(g.in_numel(), nan), dties(g.in_numel(), nan), davg(g.in_numel(), nan);
    cpu::maxpool2d_backward_mask(dmask.data(), dy.data(), mask.data(), g);
    cpu::maxpool2d_backward_allties(dties.data(), dy.data(), x.data(), g);
    cpu::avgpool2d_backward(davg.data(), dy.data(), g);
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t y = 0; y < 28; ++y)
            for (std::int64_t xx = 0; xx < 28; ++xx)
                for (std::int64_t c = 0; c < g.c; ++c) {
                    const std::size_t e = at(g, n, y, xx, c);
                    EXPECT_FALSE(std::isnan(dmask[e]) || std::isnan(dties[e]) ||
                                 std::isnan(davg[e]));
                    if (y == 27 || xx == 27) {
                        EXPECT_EQ(dmask[e], 0.0);
                        EXPECT_EQ(dties[e], 0.0);
                        EXPECT_EQ(davg[e], 0.0);
                    } else {
                        EXPECT_GT(davg[e], 0.0);
                    }
                }
}

// ---- random geometries against the reference ----------------------------------------------------

std::vector<PoolGeom> geoms() {
    return {
        make_geom(2, 8, 8, 3, 2, 2, 2, 2),    // LeNet's window
        make_geom(2, 10, 10, 16, 2, 2, 2, 2), // LeNet's pool2 (16 channels, a compile-time count)
        make_geom(1, 9, 7, 6, 2, 2, 2, 2),    // pool1's 6 channels, an unreached row and column
        make_geom(2, 6, 6, 5, 2, 2, 2, 2),    // 2x2 with a run-time channel count
        make_geom(1, 7, 9, 2, 3, 3, 2, 2),    // overlapping, odd sizes
        make_geom(2, 6, 5, 4, 2, 3, 1, 2),    // rectangular window, mixed strides
        make_geom(1, 10, 10, 1, 3, 3, 3, 3),  // an unreached row and column
        make_geom(3, 4, 4, 2, 4, 4, 1, 1),    // one window covering everything
        make_geom(2, 5, 6, 3, 1, 1, 1, 1),    // 1x1: identity
        make_geom(1, 9, 9, 5, 2, 2, 1, 1),    // maximal overlap
    };
}

TEST(CpuPool2d, MatchesReferenceFloat64) {
    std::uint32_t seed = 50;
    for (const PoolGeom& g : geoms()) {
        SCOPED_TRACE("pool " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " stride " +
                     std::to_string(g.sh) + "x" + std::to_string(g.sw) + " on " +
                     std::to_string(g.h) + "x" + std::to_string(g.w));
        const auto x = random_vector<double>(g.in_numel(), seed++);
        const auto dy = random_vector<double>(g.out_numel(), seed++);
        const RefPool r = ref_pool(x, dy, g);
        const std::vector<std::int64_t> is = {g.n, g.h, g.w, g.c}, os = {g.n, g.oh, g.ow, g.c};
        const double nan = std::numeric_limits<double>::quiet_NaN();
        std::vector<double> out(g.out_numel(), nan), dx(g.in_numel(), nan);
        std::vector<std::int32_t> mask(g.out_numel(), -1);
        cpu::maxpool2d_forward(out.data(), mask.data(), x.data(), g);
        EXPECT_TRUE(all_equal(out, r.max, os));
        EXPECT_TRUE(all_equal(mask, r.mask, os));
        cpu::avgpool2d_forward(out.data(), x.data(), g);
        EXPECT_TRUE(all_close(out, r.avg, 1e-15, 1e-14, os));
        cpu::maxpool2d_backward_mask(dx.data(), dy.data(), mask.data(), g);
        EXPECT_TRUE(all_close(dx, r.dmask, 1e-15, 1e-14, is));
        std::fill(dx.begin(), dx.end(), nan);
        cpu::maxpool2d_backward_allties(dx.data(), dy.data(), x.data(), g);
        EXPECT_TRUE(all_close(dx, r.dallties, 1e-15, 1e-14, is));
        std::fill(dx.begin(), dx.end(), nan);
        cpu::avgpool2d_backward(dx.data(), dy.data(), g);
        EXPECT_TRUE(all_close(dx, r.davg, 1e-15, 1e-14, is));
    }
}

TEST(CpuPool2d, Float32CloseToFloat64) {
    std::uint32_t seed = 80;
    for (const PoolGeom& g : geoms()) {
        const auto xf = random_vector<float>(g.in_numel(), seed++);
        const auto dyf = random_vector<float>(g.out_numel(), seed++);
        const auto x = test::cast_vector<double>(xf), dy = test::cast_vector<double>(dyf);
        std::vector<double> od(g.out_numel()), dxd(g.in_numel());
        std::vector<float> of(g.out_numel()), dxf(g.in_numel());
        std::vector<std::int32_t> md(g.out_numel()), mf(g.out_numel());
        cpu::maxpool2d_forward(od.data(), md.data(), x.data(), g);
        cpu::maxpool2d_forward(of.data(), mf.data(), xf.data(), g);
        EXPECT_TRUE(all_close(of, od, 0, 0));  // a maximum is exact
        EXPECT_TRUE(all_equal(mf, md));
        cpu::avgpool2d_forward(od.data(), x.data(), g);
        cpu::avgpool2d_forward(of.data(), xf.data(), g);
        EXPECT_TRUE(all_close(of, od, 1e-6 * g.kh * g.kw, 1e-6));
        cpu::maxpool2d_backward_allties(dxd.data(), dy.data(), x.data(), g);
        cpu::maxpool2d_backward_allties(dxf.data(), dyf.data(), xf.data(), g);
        EXPECT_TRUE(all_close(dxf, dxd, 1e-6 * g.kh * g.kw, 1e-6));
        cpu::avgpool2d_backward(dxd.data(), dy.data(), g);
        cpu::avgpool2d_backward(dxf.data(), dyf.data(), g);
        EXPECT_TRUE(all_close(dxf, dxd, 1e-6 * g.kh * g.kw, 1e-6));
    }
}

TEST(CpuPool2d, ThreadCountDoesNotChangeBits) {
    // Large enough (~1e5 window cells) that the passes really run on several threads; the
    // general path and the 2x2 one (pool1's shape).
    for (const PoolGeom& g : {make_geom(8, 24, 20, 8, 3, 3, 2, 1),
                              make_geom(64, 28, 28, 6, 2, 2, 2, 2)}) {
    auto x = random_vector<float>(g.in_numel(), 90);
    for (auto& v : x) v = std::max(0.0f, v);  // ties
    const auto dy = random_vector<float>(g.out_numel(), 91);
    auto run = [&](int threads) {
        const int saved = cpu::thread_count();
        cpu::set_thread_count(threads);
        std::vector<float> out(g.out_numel()), avg(g.out_numel());
        std::vector<float> d1(g.in_numel()), d2(g.in_numel()), d3(g.in_numel());
        std::vector<std::int32_t> mask(g.out_numel());
        cpu::maxpool2d_forward(out.data(), mask.data(), x.data(), g);
        cpu::avgpool2d_forward(avg.data(), x.data(), g);
        cpu::maxpool2d_backward_mask(d1.data(), dy.data(), mask.data(), g);
        cpu::maxpool2d_backward_allties(d2.data(), dy.data(), x.data(), g);
        cpu::avgpool2d_backward(d3.data(), dy.data(), g);
        cpu::set_thread_count(saved);
        for (auto* v : {&avg, &d1, &d2, &d3}) out.insert(out.end(), v->begin(), v->end());
        for (std::int32_t m : mask) out.push_back(static_cast<float>(m));
        return out;
    };
    const auto one = run(1), two = run(2), three = run(3);
    EXPECT_TRUE(all_equal(two, one));
    EXPECT_TRUE(all_equal(three, one));
    }
}

TEST(CpuPool2d, BadMaskAndGeometryThrow) {
    const PoolGeom g = make_geom(1, 4, 4, 1, 2, 2, 2, 2);
    std::vector<double> dy(4, 1.0), dx(16);
    std::vector<std::int32_t> mask = {0, 1, 4, 2};  // 4 is outside a 2x2 window
    try {
        cpu::maxpool2d_backward_mask(dx.data(), dy.data(), mask.data(), g);
        ADD_FAILURE() << "expected ArgumentError";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("found 4"), std::string::npos) << e.what();
    }
    mask[2] = -1;
    EXPECT_THROW(cpu::maxpool2d_backward_mask(dx.data(), dy.data(), mask.data(), g), ArgumentError);
    {  // the 2x2 path with a compile-time channel count (16) reports the first bad value too
        const PoolGeom g16 = make_geom(1, 4, 4, 16, 2, 2, 2, 2);
        std::vector<double> dy16(64, 1.0), dx16(256);
        std::vector<std::int32_t> m16(64, 3);
        m16[37] = 7;
        try {
            cpu::maxpool2d_backward_mask(dx16.data(), dy16.data(), m16.data(), g16);
            ADD_FAILURE() << "expected ArgumentError";
        } catch (const ArgumentError& e) {
            EXPECT_NE(std::string(e.what()).find("found 7 at flat index 37"), std::string::npos)
                << e.what();
        }
    }

    EXPECT_THROW(cpu::maxpool2d_backward_mask<double>(dx.data(), dy.data(), nullptr, g),
                 ArgumentError);
    PoolGeom bad = g;
    bad.ow = 3;  // should be 2
    EXPECT_THROW(cpu::maxpool2d_forward<double>(dy.data(), nullptr, dx.data(), bad), ArgumentError);
    EXPECT_THROW(cpu::avgpool2d_backward<double>(dx.data(), dy.data(), bad), ArgumentError);
    bad = make_geom(1, 1, 4, 1, 2, 2, 2, 2);  // window taller than the input
    EXPECT_THROW(cpu::avgpool2d_forward<double>(dy.data(), dx.data(), bad), ArgumentError);
    bad = g;
    bad.sw = 0;
    EXPECT_THROW(cpu::maxpool2d_backward_allties<double>(dx.data(), dy.data(), dx.data(), bad),
                 ArgumentError);
}

// ---- through the functional API (minicnn/ops.h, Device::cpu()) ----------------------------------

// pool_forward / pool_backward / the mask path on host tensors against the reference, for both
// dtypes' shapes and every mode and tie rule.
TEST(CpuPool2dApi, MatchesReferenceEveryModeAndTieRule) {
    const PoolGeom g = make_geom(2, 28, 28, 3, 3, 3, 3, 3);  // 9 windows cover 27 of 28 columns
    auto x = random_vector<double>(g.in_numel(), 600);
    for (auto& v : x) v = std::max(0.0, v);  // ReLU-like zeros: ties
    const auto dy = random_vector<double>(g.out_numel(), 601);
    const RefPool r = ref_pool(x, dy, g);
    const Tensor X = Tensor::from<double>({2, 28, 28, 3}, x);
    const Tensor DY = Tensor::from<double>({2, 9, 9, 3}, dy);
    const Window win{3, 3};
    const Stride st{3, 3};
    const Device cpu_dev = Device::cpu();

    const Tensor M = pool_forward(X, win, st, PoolMode::max, cpu_dev);
    ASSERT_EQ(M.shape(), (Shape{2, 9, 9, 3}));
    EXPECT_TRUE(all_equal(test::to_vector<double>(M), r.max));
    EXPECT_TRUE(all_close(test::to_vector<double>(pool_forward(X, win, st, PoolMode::avg, cpu_dev)),
                          r.avg, 1e-15, 1e-14));

    // Default tie rule: the exercise's (all ties).
    const Tensor D_default =
        pool_backward(DY, X, win, st, PoolMode::max, MaxTie::all_ties, cpu_dev);
    EXPECT_TRUE(all_equal(test::to_vector<double>(pool_backward(DY, X, win, st)),
                          test::to_vector<double>(D_default)));
    EXPECT_TRUE(all_close(test::to_vector<double>(D_default), r.dallties, 1e-15, 1e-14));
    const Tensor D_first = pool_backward(DY, X, win, st, PoolMode::max, MaxTie::first_max, cpu_dev);
    EXPECT_TRUE(all_close(test::to_vector<double>(D_first), r.dmask, 1e-15, 1e-14));
    EXPECT_TRUE(all_close(test::to_vector<double>(pool_backward(DY, X, win, st, PoolMode::avg,
                                                                MaxTie::all_ties, cpu_dev)),
                          r.davg, 1e-15, 1e-14));

    // The training path: the mask tensor, and backward through it equals the first-max rule.
    const MaxPoolResult mp = maxpool_forward_mask(X, win, st, cpu_dev);
    ASSERT_EQ(mp.mask.dtype(), DType::i32);
    ASSERT_EQ(mp.mask.shape(), (Shape{2, 9, 9, 3}));
    EXPECT_TRUE(all_equal(test::to_vector<double>(mp.A), r.max));
    EXPECT_TRUE(all_equal(test::to_vector<std::int32_t>(mp.mask), r.mask));
    const Tensor D_mask = maxpool_backward_mask(DY, mp.mask, X.shape(), win, st, cpu_dev);
    EXPECT_TRUE(all_equal(test::to_vector<double>(D_mask), test::to_vector<double>(D_first)));

    // Row and column 27 get zero gradient under every rule.
    for (const Tensor* d : {&D_default, &D_first, &D_mask})
        for (std::int64_t n = 0; n < 2; ++n)
            for (std::int64_t t = 0; t < 28; ++t)
                for (std::int64_t c = 0; c < 3; ++c) {
                    EXPECT_EQ(d->at<double>(n, 27, t, c), 0.0);
                    EXPECT_EQ(d->at<double>(n, t, 27, c), 0.0);
                }
}

// The two max rules on a window of zeros, through the API in float32.
TEST(CpuPool2dApi, ZeroWindowTieRules) {
    const Tensor X = Tensor::from<float>({1, 2, 2, 1}, {0.f, 0.f, 0.f, 0.f});
    const Tensor DY = Tensor::from<float>({1, 1, 1, 1}, {1.5f});
    const Tensor all =
        pool_backward(DY, X, {2, 2}, {2, 2}, PoolMode::max, MaxTie::all_ties, Device::cpu());
    const Tensor first =
        pool_backward(DY, X, {2, 2}, {2, 2}, PoolMode::max, MaxTie::first_max, Device::cpu());
    EXPECT_TRUE(all_equal(test::to_vector<float>(all), std::vector<float>{1.5f, 1.5f, 1.5f, 1.5f}));
    EXPECT_TRUE(all_equal(test::to_vector<float>(first), std::vector<float>{1.5f, 0.f, 0.f, 0.f}));
}

}  // namespace
}  // namespace minicnn
