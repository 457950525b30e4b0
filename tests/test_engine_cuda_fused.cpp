// tests/test_engine_cuda_fused.cpp — the CUDA engine's fused operations against the Engine
// defaults they replace (minicnn/engine.h), on the same engine, bit for bit (outputs poisoned
// with NaNs first, so an element left unwritten is caught):
//   - conv2d_maxpool_forward (convolution + activation + max pooling in one kernel) and
//     maxpool2d_backward_act (act' folded into the pooling backward);
//   - conv2d_backward_act_unpool and dense_backward_act_unpool (a layer's backward and the
//     backward of the max pooling that produced its input, in one kernel);
// each on a shape that runs fused and one that falls back to the two operations; and what cannot
// be fused refused by both engines. Every test skips, saying why, where no GPU is visible.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "minicnn/geometry.h"
#include "test_util.h"

namespace minicnn {
namespace {

using namespace enginetest;

// NaNs: an output element an operation fails to write is caught, not hidden by zeros.
std::vector<float> poison(std::int64_t n) {
    return std::vector<float>(static_cast<std::size_t>(n), std::nanf(""));
}

// The CUDA engine's convolution + max pooling (one kernel where the tile allows, else the two
// operations) and its backward (act' folded into the pooling backward) against the Engine
// defaults on the same engine, bit for bit; what cannot be folded is refused by both engines.
TEST(CudaEngine, ConvMaxPoolOverridesAreBitIdenticalToTheDefaults) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const ConvGeom cg =
        conv_geometry({9, 28, 28, 1}, {5, 5, 1, 6}, Padding::same(), {1, 1}, "test");
    g->reserve_conv(cg);
    // 2x2 stride 2 runs in one kernel; 3x3 stride 3 straddles the 14x14 tiles: two operations.
    for (const Window win : {Window{2, 2}, Window{3, 3}}) {
        const PoolGeom pg = pool_geometry(cg.out_shape(), win, {win.h, win.w}, "test");
        const std::string what = std::to_string(win.h) + "x" + std::to_string(win.w);
        Twin<float> x(*c, *g, randv(static_cast<std::size_t>(cg.in_numel()), 11)),
            w(*c, *g, randv(static_cast<std::size_t>(cg.weight_numel()), 12)),
            b(*c, *g, randv(static_cast<std::size_t>(cg.k), 13));
        const auto dyv = randv(static_cast<std::size_t>(pg.out_numel()), 14);
        Twin<float> conv(*c, *g, cg.out_numel()), p1(*c, *g, pg.out_numel()),
            p2(*c, *g, pg.out_numel()), dy1(*c, *g, dyv), dy2(*c, *g, dyv),
            dz1(*c, *g, poison(cg.out_numel())), dz2(*c, *g, poison(cg.out_numel()));
        Twin<std::int32_t> m1(*c, *g, pg.out_numel()), m2(*c, *g, pg.out_numel());
        g->conv2d_maxpool_forward(conv.gpu.data(), p1.gpu.data(), m1.gpu.data(), x.gpu.data(),
                                  w.gpu.data(), b.gpu.data(), cg, Activation::relu, pg);
        g->Engine::conv2d_maxpool_forward(conv.gpu.data(), p2.gpu.data(), m2.gpu.data(),
                                          x.gpu.data(), w.gpu.data(), b.gpu.data(), cg,
                                          Activation::relu, pg);
        EXPECT_TRUE(test::all_equal(p1.host_gpu(), p2.host_gpu())) << what;
        EXPECT_TRUE(test::all_equal(m1.host_gpu(), m2.host_gpu())) << what;
        g->maxpool2d_backward_act(dz1.gpu.data(), dy1.gpu.data(), m1.gpu.data(), p1.gpu.data(),
                                  Activation::relu, pg);
        g->Engine::maxpool2d_backward_act(dz2.gpu.data(), dy2.gpu.data(), m2.gpu.data(),
                                          p2.gpu.data(), Activation::relu, pg);
        EXPECT_TRUE(test::all_equal(dz1.host_gpu(), dz2.host_gpu())) << what;
        // The CPU engine (the defaults) agrees to rounding.
        c->conv2d_maxpool_forward(conv.cpu.data(), p1.cpu.data(), m1.cpu.data(), x.cpu.data(),
                                  w.cpu.data(), b.cpu.data(), cg, Activation::relu, pg);
        EXPECT_TRUE(close(p1.host_gpu(), p1.host_cpu(), 1e-5)) << what;
    }
    // Overlapping windows: act' from the pooled value would not be exact; both engines refuse.
    const PoolGeom overlap = pool_geometry(cg.out_shape(), {2, 2}, {1, 1}, "test");
    for (Engine* e : {c.get(), g.get()}) {
        EXPECT_THROW(e->maxpool2d_backward_act(nullptr, nullptr, nullptr, nullptr, Activation::relu,
                                               overlap),
                     ArgumentError);
        EXPECT_THROW(e->conv2d_maxpool_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                               cg, Activation::relu, overlap),
                     ArgumentError);
    }
}

// conv2d_backward_act_unpool: LeNet's conv2 (its input is pool1's output) runs the backward data
// and pool1's backward in one kernel; a stride-2 convolution falls back to the Engine default.
// dz_prev, dweight and dbias bit for bit against the default on the same engine; the CPU engine
// (the default) agrees to rounding.
TEST(CudaEngine, ConvBackwardUnpoolOverrideIsBitIdenticalToTheDefault) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 5;
    const PoolGeom pg = pool_geometry({n, 28, 28, 6}, {2, 2}, {2, 2}, "test");  // pool1
    for (const int stride : {1, 2}) {
        const ConvGeom cg = conv_geometry({n, 14, 14, 6}, {5, 5, 6, 16}, Padding::valid(),
                                          {stride, stride}, "test");
        g->reserve_conv(cg);
        c->reserve_conv(cg);
        const std::string what = "stride " + std::to_string(stride);
        // pool1's input (act = relu: non-negative, with ties at 0), its output and mask.
        auto a1 = randv(static_cast<std::size_t>(pg.in_numel()), 21);
        for (float& v : a1) v = v > 0.0f ? v : 0.0f;
        Twin<float> act1(*c, *g, a1), pooled(*c, *g, pg.out_numel());
        Twin<std::int32_t> mask(*c, *g, pg.out_numel());
        g->maxpool2d_forward(pooled.gpu.data(), mask.gpu.data(), act1.gpu.data(), pg);
        c->maxpool2d_forward(pooled.cpu.data(), mask.cpu.data(), act1.cpu.data(), pg);
        const auto dyv = randv(static_cast<std::size_t>(cg.out_numel()), 22);
        Twin<float> w(*c, *g, randv(static_cast<std::size_t>(cg.weight_numel()), 23)),
            out(*c, *g, randv(static_cast<std::size_t>(cg.out_numel()), 24, 0.0f, 1.0f)),
            dy1(*c, *g, dyv), dy2(*c, *g, dyv), dz1(*c, *g, poison(pg.in_numel())),
            dz2(*c, *g, poison(pg.in_numel())), scratch(*c, *g, cg.in_numel()),
            dw1(*c, *g, cg.weight_numel()), dw2(*c, *g, cg.weight_numel()), db1(*c, *g, cg.k),
            db2(*c, *g, cg.k);
        g->conv2d_backward_act_unpool(dz1.gpu.data(), scratch.gpu.data(), dw1.gpu.data(),
                                      db1.gpu.data(), dy1.gpu.data(), out.gpu.data(),
                                      Activation::relu, pooled.gpu.data(), w.gpu.data(), cg,
                                      mask.gpu.data(), Activation::relu, pg);
        g->Engine::conv2d_backward_act_unpool(dz2.gpu.data(), scratch.gpu.data(), dw2.gpu.data(),
                                              db2.gpu.data(), dy2.gpu.data(), out.gpu.data(),
                                              Activation::relu, pooled.gpu.data(), w.gpu.data(), cg,
                                              mask.gpu.data(), Activation::relu, pg);
        EXPECT_TRUE(test::all_equal(dz1.host_gpu(), dz2.host_gpu())) << what;
        EXPECT_TRUE(test::all_equal(dw1.host_gpu(), dw2.host_gpu())) << what;
        EXPECT_TRUE(test::all_equal(db1.host_gpu(), db2.host_gpu())) << what;
        c->conv2d_backward_act_unpool(dz1.cpu.data(), scratch.cpu.data(), dw1.cpu.data(),
                                      db1.cpu.data(), dy1.cpu.data(), out.cpu.data(),
                                      Activation::relu, pooled.cpu.data(), w.cpu.data(), cg,
                                      mask.cpu.data(), Activation::relu, pg);
        EXPECT_TRUE(close(dz1.host_gpu(), dz1.host_cpu(), 1e-5 * 25 * 16)) << what;
    }
    // A pooling whose output is not the convolution's input is refused by both engines.
    const ConvGeom other =
        conv_geometry({n, 12, 12, 6}, {5, 5, 6, 16}, Padding::valid(), {1, 1}, "test");
    for (Engine* e : {c.get(), g.get()}) {
        EXPECT_THROW(e->conv2d_backward_act_unpool(nullptr, nullptr, nullptr, nullptr, nullptr,
                                                   nullptr, Activation::relu, nullptr, nullptr,
                                                   other, nullptr, Activation::relu, pg),
                     ArgumentError);
    }
}

// dense_backward_act_unpool: LeNet's dense1 (its input is pool2's output, flattened) writes
// conv2's dz from the epilogue of its dinp blocks; also windows with gaps (2x2, stride 3) and an
// uncovered row and column. dz_prev, dweight and dbias bit for bit against the default on the
// same engine; the CPU engine (the default) agrees to rounding.
TEST(CudaEngine, DenseBackwardUnpoolOverrideIsBitIdenticalToTheDefault) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 9, n_out = 120;
    struct Case {
        Shape in;  // the pooling's input (n, h, w, c)
        int pk, ps;
        Activation act, prev_act;
    };
    const std::vector<Case> cases = {{{n, 10, 10, 16}, 2, 2, Activation::relu, Activation::relu},
                                     {{n, 12, 12, 3}, 2, 3, Activation::tanh, Activation::sigmoid},
                                     {{n, 11, 9, 5}, 2, 2, Activation::linear, Activation::tanh}};
    for (const Case& t : cases) {
        const PoolGeom pg = pool_geometry(t.in, {t.pk, t.pk}, {t.ps, t.ps}, "test");
        const std::int64_t n_in = pg.oh * pg.ow * pg.c;
        const std::string what =
            shape_str(t.in) + " pool " + std::to_string(t.pk) + " stride " + std::to_string(t.ps);
        auto a = randv(static_cast<std::size_t>(pg.in_numel()), 31);
        if (t.prev_act == Activation::relu)
            for (float& v : a) v = v > 0.0f ? v : 0.0f;
        Twin<float> act(*c, *g, a), pooled(*c, *g, pg.out_numel());
        Twin<std::int32_t> mask(*c, *g, pg.out_numel());
        g->maxpool2d_forward(pooled.gpu.data(), mask.gpu.data(), act.gpu.data(), pg);
        c->maxpool2d_forward(pooled.cpu.data(), mask.cpu.data(), act.cpu.data(), pg);
        const auto dyv = randv(static_cast<std::size_t>(n * n_out), 32);
        Twin<float> w(*c, *g, randv(static_cast<std::size_t>(n_in * n_out), 33)),
            out(*c, *g, randv(static_cast<std::size_t>(n * n_out), 34, 0.0f, 1.0f)),
            dy1(*c, *g, dyv), dy2(*c, *g, dyv), dz1(*c, *g, poison(pg.in_numel())),
            dz2(*c, *g, poison(pg.in_numel())), scratch(*c, *g, n * n_in),
            dw1(*c, *g, n_in * n_out), dw2(*c, *g, n_in * n_out), db1(*c, *g, n_out),
            db2(*c, *g, n_out);
        g->dense_backward_act_unpool(dz1.gpu.data(), scratch.gpu.data(), dw1.gpu.data(),
                                     db1.gpu.data(), dy1.gpu.data(), out.gpu.data(), t.act,
                                     pooled.gpu.data(), w.gpu.data(), n, n_in, n_out,
                                     mask.gpu.data(), t.prev_act, pg);
        g->Engine::dense_backward_act_unpool(dz2.gpu.data(), scratch.gpu.data(), dw2.gpu.data(),
                                             db2.gpu.data(), dy2.gpu.data(), out.gpu.data(), t.act,
                                             pooled.gpu.data(), w.gpu.data(), n, n_in, n_out,
                                             mask.gpu.data(), t.prev_act, pg);
        EXPECT_TRUE(test::all_equal(dz1.host_gpu(), dz2.host_gpu())) << what;
        EXPECT_TRUE(test::all_equal(dw1.host_gpu(), dw2.host_gpu())) << what;
        EXPECT_TRUE(test::all_equal(db1.host_gpu(), db2.host_gpu())) << what;
        c->dense_backward_act_unpool(dz1.cpu.data(), scratch.cpu.data(), dw1.cpu.data(),
                                     db1.cpu.data(), dy1.cpu.data(), out.cpu.data(), t.act,
                                     pooled.cpu.data(), w.cpu.data(), n, n_in, n_out,
                                     mask.cpu.data(), t.prev_act, pg);
        EXPECT_TRUE(close(dz1.host_gpu(), dz1.host_cpu(), 1e-5 * double(n_out))) << what;
    }
    // A pooling whose output is not the layer's input is refused by both engines.
    const PoolGeom pg = pool_geometry({n, 10, 10, 16}, {2, 2}, {2, 2}, "test");
    for (Engine* e : {c.get(), g.get()}) {
        EXPECT_THROW(e->dense_backward_act_unpool(nullptr, nullptr, nullptr, nullptr, nullptr,
                                                  nullptr, Activation::relu, nullptr, nullptr, n,
                                                  399, n_out, nullptr, Activation::relu, pg),
                     ArgumentError);
    }
}

}  // namespace
}  // namespace minicnn
