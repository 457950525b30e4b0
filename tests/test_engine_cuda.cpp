// tests/test_engine_cuda.cpp — the CUDA training engine (cuda/engine_cuda.cpp,
// cuda/train_kernels.cu) against the CPU engine: the fused dense-layer kernels, the fused softmax +
// cross-entropy and its metrics, Adam, the batch gather, the epoch permutation (bit-identical to
// the CPU's), one whole LeNet-5 training step (loss, every gradient, the updated weights) and a
// whole fit from the same seeds; large dense layers on cuBLAS (a 1024-wide layer, and a model with
// 1024-wide layers trained with CUDA graphs, against the CPU); scratch reservations (an operation beyond them throws, never
// allocates); CUDA graphs (capture records without running, a failed capture rethrows, a fit
// replaying graphs is bit-identical to one launching every kernel); every entry point running on
// the engine's device whatever device is current; and a NaN reported as divergence by fit() on both
// engines (the CPU half always runs). Every GPU test skips, saying why, in CPU-only builds or where
// no GPU (or, for the device test, no second GPU) is visible. The fused convolution + pooling
// operations against the Engine defaults: test_engine_cuda_fused.cpp.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#if defined(MINICNN_WITH_CUDA)
#include <cuda_runtime.h>
#endif

#include "engine_test_util.h"
#include "minicnn/checkpoint.h"
#include "minicnn/detail/permutation.h"
#include "minicnn/device.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "synthetic_data.h"

namespace minicnn {
namespace {

using namespace enginetest;

TEST(CudaEngine, DenseForwardBackwardMatchCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    for (std::int64_t n : {1, 37, 256}) {
        const std::int64_t ni = 400, no = 120;
        Twin<float> x(*c, *g, randv(static_cast<std::size_t>(n * ni), 1)),
            w(*c, *g, randv(static_cast<std::size_t>(ni * no), 2)),
            b(*c, *g, randv(static_cast<std::size_t>(no), 3)),
            dz(*c, *g, randv(static_cast<std::size_t>(n * no), 4));
        Twin<float> o(*c, *g, n * no), dx(*c, *g, n * ni), dw(*c, *g, ni * no), db(*c, *g, no);
        for (Engine* e : {c.get(), g.get()}) e->reserve_dense(n, ni, no);
        // Bound [R32] of tests/test_util.h (both engines float32, inputs uniform in [-1, 1)) with
        // atol = 1e-5 * L, L the reduction: ni forward (the softmax's outputs move by at most half
        // the largest logit error), no for dinp, n for dW and db; rtol 1e-4 covers [E].
        for (Activation act : {Activation::relu, Activation::softmax}) {
            c->dense_forward(o.cpu.data(), x.cpu.data(), w.cpu.data(), b.cpu.data(), n, ni, no,
                             act);
            g->dense_forward(o.gpu.data(), x.gpu.data(), w.gpu.data(), b.gpu.data(), n, ni, no,
                             act);
            EXPECT_TRUE(close(o.host_gpu(), o.host_cpu(), 1e-5 * ni)) << "n=" << n;
        }
        c->dense_backward(dx.cpu.data(), dw.cpu.data(), db.cpu.data(), dz.cpu.data(), nullptr,
                          Activation::linear, x.cpu.data(), w.cpu.data(), n, ni, no);
        g->dense_backward(dx.gpu.data(), dw.gpu.data(), db.gpu.data(), dz.gpu.data(), nullptr,
                          Activation::linear, x.gpu.data(), w.gpu.data(), n, ni, no);
        EXPECT_TRUE(close(dx.host_gpu(), dx.host_cpu(), 1e-5 * no)) << "dinp n=" << n;
        EXPECT_TRUE(close(dw.host_gpu(), dw.host_cpu(), 1e-5 * n)) << "dW n=" << n;
        EXPECT_TRUE(close(db.host_gpu(), db.host_cpu(), 1e-5 * n)) << "db n=" << n;
    }
}

#if defined(MINICNN_CUDA_EMULATOR)
// The device operations the emulator's runtime logged while `f` ran, one name each.
template <class F>
std::vector<std::string> operations_of(F&& f) {
    emu::record_operations(true);
    f();
    emu::record_operations(false);
    std::vector<std::string> ops;
    const std::string log = emu::recorded_operations();
    for (std::size_t b = 0, e; (e = log.find('\n', b)) != std::string::npos; b = e + 1)
        ops.push_back(log.substr(b, e - b));
    return ops;
}
#endif

// A 1024 -> 1024 dense layer (cuda::dense::uses_cublas) runs its GEMMs on cuBLAS and matches the
// CPU engine: the forward with an elementwise activation and with softmax (bias + activation in
// one kernel after the GEMM), the backward with act' (tanh, applied in place on dy first) and
// without, with and without dinp / dbias. On the emulator the dispatch itself is checked from the
// operations logged: cuBLAS for this layer, none for one of LeNet's (400 -> 120: the row kernel
// forward, the tiled kernel backward). Batch 64, not 256: the emulator's GEMM is a plain loop.
TEST(CudaEngine, LargeDenseLayersRunOnCublasAndMatchCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 64, ni = 1024, no = 1024;
    Twin<float> x(*c, *g, randv(static_cast<std::size_t>(n * ni), 1)),
        w(*c, *g, randv(static_cast<std::size_t>(ni * no), 2)),
        b(*c, *g, randv(static_cast<std::size_t>(no), 3)),
        out(*c, *g, randv(static_cast<std::size_t>(n * no), 5, 0.0f, 1.0f));
    Twin<float> o(*c, *g, n * no), dx(*c, *g, n * ni), dw(*c, *g, ni * no), db(*c, *g, no);
    for (Engine* e : {c.get(), g.get()}) e->reserve_dense(n, ni, no);
    const std::vector<std::string> fwd_ops = {"cublasSgemm", "activation_forward_kernel"},
                                   softmax_ops = {"cublasSgemm", "softmax_forward_kernel"};
    // Bound [R32] of tests/test_util.h (both engines float32, inputs uniform in [-1, 1), the
    // real cuBLAS in any summation order or tree) with atol = 1e-5 * L, L the reduction: ni
    // forward (a softmax output moves by at most half the largest logit error), no for dinp, n
    // for dW and db; rtol 1e-4 covers [E] (bias, activation, act').
    for (Activation act : {Activation::relu, Activation::softmax}) {
        c->dense_forward(o.cpu.data(), x.cpu.data(), w.cpu.data(), b.cpu.data(), n, ni, no, act);
        auto run = [&] {
            g->dense_forward(o.gpu.data(), x.gpu.data(), w.gpu.data(), b.gpu.data(), n, ni, no,
                             act);
        };
#if defined(MINICNN_CUDA_EMULATOR)
        EXPECT_EQ(operations_of(run), act == Activation::softmax ? softmax_ops : fwd_ops);
#else
        run();
#endif
        EXPECT_TRUE(close(o.host_gpu(), o.host_cpu(), 1e-5 * ni)) << activation_name(act);
    }
    for (Activation act : {Activation::linear, Activation::tanh}) {
        for (bool optional : {true, false}) {
            // dy is overwritten with dz (act' in place) on the GPU, and by the CPU engine too: a
            // fresh copy each time.
            Twin<float> dy(*c, *g, randv(static_cast<std::size_t>(n * no), 4));
            const std::string what =
                std::string(activation_name(act)) + (optional ? " with dinp, dbias" : " without");
            c->dense_backward(optional ? dx.cpu.data() : nullptr, dw.cpu.data(),
                              optional ? db.cpu.data() : nullptr, dy.cpu.data(), out.cpu.data(),
                              act, x.cpu.data(), w.cpu.data(), n, ni, no);
            auto run = [&] {
                g->dense_backward(optional ? dx.gpu.data() : nullptr, dw.gpu.data(),
                                  optional ? db.gpu.data() : nullptr, dy.gpu.data(),
                                  out.gpu.data(), act, x.gpu.data(), w.gpu.data(), n, ni, no);
            };
#if defined(MINICNN_CUDA_EMULATOR)
            std::vector<std::string> expect;
            if (act != Activation::linear) expect.push_back("activation_backward_kernel");
            expect.push_back("cublasSgemm");
            if (optional) expect.insert(expect.end(), {"column_sum_kernel", "cublasSgemm"});
            EXPECT_EQ(operations_of(run), expect) << what;
#else
            run();
#endif
            EXPECT_TRUE(close(dw.host_gpu(), dw.host_cpu(), 1e-5 * n)) << "dW " << what;
            if (!optional) continue;
            EXPECT_TRUE(close(dx.host_gpu(), dx.host_cpu(), 1e-5 * no)) << "dinp " << what;
            EXPECT_TRUE(close(db.host_gpu(), db.host_cpu(), 1e-5 * n)) << "db " << what;
        }
    }
#if defined(MINICNN_CUDA_EMULATOR)
    // One of LeNet's layers (400 -> 120) stays on minicnn's kernels.
    const std::vector<std::string> small_fwd = operations_of([&] {
        g->dense_forward(o.gpu.data(), x.gpu.data(), w.gpu.data(), b.gpu.data(), n, 400, 120,
                         Activation::relu);
    });
    const std::vector<std::string> small_bwd = operations_of([&] {
        g->dense_backward(dx.gpu.data(), dw.gpu.data(), db.gpu.data(), o.gpu.data(), o.gpu.data(),
                          Activation::relu, x.gpu.data(), w.gpu.data(), n, 400, 120);
    });
    EXPECT_EQ(small_fwd, std::vector<std::string>{"dense_chain_kernel"});
    EXPECT_EQ(small_bwd, std::vector<std::string>{"dense_gemm_kernel"});
#endif
    g->synchronize();
}

// The activation's backward folded into the layers' backward (conv2d_backward and dense_backward
// with an activation): the CUDA engine applies act' where its kernels read dy, the CPU engine runs
// activation_backward in place, then the plain backward. Every elementwise
// activation, with and without dinp / dbias; dy and out are random (act' reads only out).
TEST(CudaEngine, BackwardWithFoldedActivationMatchesCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 37, ni = 50, no = 40;
    const ConvGeom cg = conv_geometry({n, 9, 11, 6}, {3, 3, 6, 5}, Padding::same(), {1, 1}, "test");
    for (Engine* e : {c.get(), g.get()}) e->reserve_conv(cg);
    for (Activation act :
         {Activation::linear, Activation::relu, Activation::tanh, Activation::sigmoid}) {
        for (bool with_optional : {true, false}) {
            const std::string what = std::string(activation_name(act)) +
                                     (with_optional ? " with dinp, dbias" : " without");
            // Dense.
            Twin<float> x(*c, *g, randv(static_cast<std::size_t>(n * ni), 1)),
                w(*c, *g, randv(static_cast<std::size_t>(ni * no), 2)),
                out(*c, *g, randv(static_cast<std::size_t>(n * no), 3, 0.0f, 1.0f)),
                dy(*c, *g, randv(static_cast<std::size_t>(n * no), 4));
            Twin<float> dx(*c, *g, n * ni), dw(*c, *g, ni * no), db(*c, *g, no);
            c->dense_backward(with_optional ? dx.cpu.data() : nullptr, dw.cpu.data(),
                              with_optional ? db.cpu.data() : nullptr, dy.cpu.data(),
                              out.cpu.data(), act, x.cpu.data(), w.cpu.data(), n, ni, no);
            g->dense_backward(with_optional ? dx.gpu.data() : nullptr, dw.gpu.data(),
                              with_optional ? db.gpu.data() : nullptr, dy.gpu.data(),
                              out.gpu.data(), act, x.gpu.data(), w.gpu.data(), n, ni, no);
            EXPECT_TRUE(close(dw.host_gpu(), dw.host_cpu(), 1e-5 * n)) << "dense dW " << what;
            EXPECT_TRUE(close(dx.host_gpu(), dx.host_cpu(), 1e-5 * no)) << "dense dinp " << what;
            EXPECT_TRUE(close(db.host_gpu(), db.host_cpu(), 1e-5 * n)) << "dense db " << what;
            // Convolution.
            Twin<float> ci(*c, *g, randv(static_cast<std::size_t>(cg.in_numel()), 5)),
                cw(*c, *g, randv(static_cast<std::size_t>(cg.weight_numel()), 6)),
                co(*c, *g, randv(static_cast<std::size_t>(cg.out_numel()), 7, 0.0f, 1.0f)),
                cdy(*c, *g, randv(static_cast<std::size_t>(cg.out_numel()), 8));
            Twin<float> cdx(*c, *g, cg.in_numel()), cdw(*c, *g, cg.weight_numel()),
                cdb(*c, *g, cg.k);
            c->conv2d_backward(with_optional ? cdx.cpu.data() : nullptr, cdw.cpu.data(),
                               with_optional ? cdb.cpu.data() : nullptr, cdy.cpu.data(),
                               co.cpu.data(), act, ci.cpu.data(), cw.cpu.data(), cg);
            g->conv2d_backward(with_optional ? cdx.gpu.data() : nullptr, cdw.gpu.data(),
                               with_optional ? cdb.gpu.data() : nullptr, cdy.gpu.data(),
                               co.gpu.data(), act, ci.gpu.data(), cw.gpu.data(), cg);
            // Bound [R32] of tests/test_util.h, atol = 1e-5 * L: dz = act'(out) dy is in [-1, 1]
            // (out in [0, 1)), one rounding more per term, [E]; L = n for dense dW and db, no for
            // dense dinp, n*oh*ow for conv dW and db, 3*3*k for conv dinp.
            const double lw = double(n * cg.oh * cg.ow);
            EXPECT_TRUE(close(cdw.host_gpu(), cdw.host_cpu(), 1e-5 * lw)) << "conv dW " << what;
            EXPECT_TRUE(close(cdx.host_gpu(), cdx.host_cpu(), 1e-5 * 9 * cg.k))
                << "conv dinp " << what;
            EXPECT_TRUE(close(cdb.host_gpu(), cdb.host_cpu(), 1e-5 * lw)) << "conv db " << what;
        }
    }
}

TEST(CudaEngine, SoftmaxXentAdamAndGatherMatchCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 300, k = 10;
    for (Engine* e : {c.get(), g.get()}) e->reserve_loss(n);
    // Softmax rows (with a zero probability for the clamp) and labels.
    std::vector<float> logits = randv(static_cast<std::size_t>(n * k), 5, -4.0f, 4.0f);
    Twin<float> p(*c, *g, logits), d(*c, *g, n * k);
    c->activation_forward(p.cpu.data(), p.cpu.data(), n, k, Activation::softmax);
    const std::vector<float> probs = p.host_cpu();
    std::vector<float> probs2 = probs;
    probs2[3] = 0.0f;
    c->upload(p.cpu.data(), probs2.data(), p.cpu.bytes());
    g->upload(p.gpu.data(), probs2.data(), p.gpu.bytes());
    std::vector<std::int32_t> y(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = std::int32_t((i * 7) % k);
    Twin<std::int32_t> yl(*c, *g, y);
    Twin<Metrics> m(*c, *g, 1);
    for (int rep = 0; rep < 2; ++rep) {
        c->softmax_xent(d.cpu.data(), m.cpu.data(), p.cpu.data(), yl.cpu.data(), n, k, n, nullptr,
                        0);
        g->softmax_xent(d.gpu.data(), m.gpu.data(), p.gpu.data(), yl.gpu.data(), n, k, n, nullptr,
                        0);
    }
    // dlogits = (p - [j == y]) / n elementwise, [E]: a few roundings of values <= 1 / n, the
    // subtraction's u |p| / n <= 2e-10 absolute, far under atol 1e-7 (rtol 1e-4).
    EXPECT_TRUE(close(d.host_gpu(), d.host_cpu(), 1e-7));
    const Metrics mc = m.host_cpu()[0], mg = m.host_gpu()[0];
    // Each sample's loss is float(-log(p_y)) on both engines (one float rounding, u relative) and
    // the positive terms are summed in double: |diff| <= 2 u loss_sum + 1e-15 relative, 1.2e-7.
    EXPECT_NEAR(mg.loss_sum, mc.loss_sum, 1e-5 * mc.loss_sum);
    EXPECT_EQ(mg.correct, mc.correct);
    EXPECT_EQ(mg.count, 2.0 * n);

    // Adam, three steps with the step counter on each engine.
    const std::int64_t np = 5000;
    Twin<float> params(*c, *g, randv(static_cast<std::size_t>(np), 6)),
        grads(*c, *g, randv(static_cast<std::size_t>(np), 7)), m1(*c, *g, np), v1(*c, *g, np);
    Twin<StepCounters> cnt(*c, *g, 1);
    for (int t = 0; t < 3; ++t) {
        c->advance(cnt.cpu.data(), 0, true);  // the step is counted before its update
        g->advance(cnt.gpu.data(), 0, true);
        c->adam_update(params.cpu.data(), grads.cpu.data(), m1.cpu.data(), v1.cpu.data(), np,
                       AdamConfig{}, cnt.cpu.data());
        g->adam_update(params.gpu.data(), grads.gpu.data(), m1.gpu.data(), v1.gpu.data(), np,
                       AdamConfig{}, cnt.gpu.data());
    }
    // Adam elementwise, [E] on each engine (contracted or not, e.g. beta1 m + (1 - beta1) g may
    // become one fma): m and v keep a relative error of a few u per step; the step
    // lr m^ / (sqrt(v^) + eps) <= ~lr is a well-conditioned ratio of them (a few u relative, <=
    // 1e-9 absolute over 3 steps, under atol 1e-6) and each p -= step rounds once (3 u |p| over 3
    // steps, under rtol 1e-6 ~ 17 u). v = beta2 v + (1 - beta2) g^2: a few u relative per step,
    // under rtol 1e-5; atol 1e-9 only for v ~ 0.
    EXPECT_TRUE(close(params.host_gpu(), params.host_cpu(), 1e-6, 1e-6));
    EXPECT_TRUE(close(v1.host_gpu(), v1.host_cpu(), 1e-9, 1e-5));
    EXPECT_EQ(cnt.host_gpu()[0].step, 3);
    // A training step's loss counts the step on the device too (no separate advance launch).
    c->softmax_xent(nullptr, m.cpu.data(), p.cpu.data(), yl.cpu.data(), n, k, n, cnt.cpu.data(), 7);
    g->softmax_xent(nullptr, m.gpu.data(), p.gpu.data(), yl.gpu.data(), n, k, n, cnt.gpu.data(), 7);
    EXPECT_EQ(cnt.host_gpu()[0].step, 4);
    EXPECT_EQ(cnt.host_gpu()[0].cursor, 7);
    EXPECT_EQ(cnt.host_cpu()[0].step, 4);
    EXPECT_EQ(cnt.host_cpu()[0].cursor, 7);

    // Gather through a permutation and the cursor.
    const std::int64_t sample = 784, batch = 32;
    const std::int64_t pool = 500;
    Twin<float> images(*c, *g, randv(static_cast<std::size_t>(pool * sample), 8));
    std::vector<std::int32_t> lab(static_cast<std::size_t>(pool));
    for (std::int64_t i = 0; i < pool; ++i) lab[static_cast<std::size_t>(i)] = std::int32_t(i % 10);
    Twin<std::int32_t> labels(*c, *g, lab);
    std::vector<std::int32_t> perm(static_cast<std::size_t>(pool));
    for (std::int64_t i = 0; i < pool; ++i)
        perm[static_cast<std::size_t>(i)] = std::int32_t((i * 37) % pool);
    Twin<std::int32_t> pm(*c, *g, perm);
    Twin<StepCounters> cur(*c, *g, 1);
    c->advance(cur.cpu.data(), 64, false);
    g->advance(cur.gpu.data(), 64, false);
    Twin<float> x(*c, *g, batch * sample);
    Twin<std::int32_t> yb(*c, *g, batch);
    c->gather_batch(x.cpu.data(), yb.cpu.data(), images.cpu.data(), labels.cpu.data(),
                    pm.cpu.data(), cur.cpu.data(), batch, sample);
    g->gather_batch(x.gpu.data(), yb.gpu.data(), images.gpu.data(), labels.gpu.data(),
                    pm.gpu.data(), cur.gpu.data(), batch, sample);
    // Exact: the gather copies, no arithmetic on the values.
    EXPECT_EQ(x.host_gpu(), x.host_cpu());
    EXPECT_EQ(yb.host_gpu(), yb.host_cpu());
    // From 8-bit images (every byte value): exact too, both scale by detail::pixel_to_unit.
    std::vector<std::uint8_t> px(static_cast<std::size_t>(pool * sample));
    for (std::size_t k = 0; k < px.size(); ++k) px[k] = std::uint8_t((k * 131) % 256);
    Twin<std::uint8_t> pixels(*c, *g, px);
    c->gather_batch(x.cpu.data(), yb.cpu.data(), pixels.cpu.data(), labels.cpu.data(),
                    pm.cpu.data(), cur.cpu.data(), batch, sample);
    g->gather_batch(x.gpu.data(), yb.gpu.data(), pixels.gpu.data(), labels.gpu.data(),
                    pm.gpu.data(), cur.gpu.data(), batch, sample);
    const std::vector<float> got = x.host_gpu();
    EXPECT_EQ(got, x.host_cpu());
    EXPECT_EQ(got[5], float(px[std::size_t(perm[64] * sample + 5)]) / 255.0f);
    EXPECT_EQ(yb.host_gpu(), yb.host_cpu());
}

TEST(CudaEngine, OneLenet5TrainingStepMatchesCpu) {
    MINICNN_REQUIRE_GPU();
    const std::int64_t n = 64;
    std::mt19937 gen(3);
    std::vector<float> x(static_cast<std::size_t>(n * 784));
    for (float& v : x) v = float(gen() % 256) / 255.0f;
    std::vector<std::int32_t> y(static_cast<std::size_t>(n));
    for (auto& v : y) v = std::int32_t(gen() % 10);

    Sequential mc = lenet5(42), mg = lenet5(42);
    Trainer tc(mc, Device::cpu()), tg(mg, Device::cuda());
    EXPECT_EQ(tg.backend(), Backend::cuda);
    const double lc = tc.train_step(x.data(), y.data(), n, AdamConfig{});
    const double lg = tg.train_step(x.data(), y.data(), n, AdamConfig{});
    // Every value of the step is a chain of float32 reductions on both engines. By [R32]
    // (tests/test_util.h) a reduction of L mean-zero terms adds an error of sd ~ u sqrt(L / 6)
    // relative to its output's rms (u sqrt(S / 3), S ~ sigma^2 L^2 / 2, output ~ sigma sqrt(L)),
    // and He-normal layers keep every layer's scale ~ 1. The logits (L = 25, 150, 400, 120, 84)
    // then carry a relative error of sd ~ u sqrt(4 + 25 + 67 + 20 + 14) ~ 7e-7 per engine, the loss
    // (a mean of 64 per-sample losses, each moved by at most the largest logit error) ~ 1e-6
    // absolute at most: under 1e-5 * 2.3.
    EXPECT_NEAR(lg, lc, 1e-5 * std::fabs(lc));
    const std::vector<float> gc = tc.gradients(), gg = tg.gradients();
    // The gradients: the backward's chain adds as much again, and each dW / db reduction over
    // L <= 64 * 28 * 28 terms u sqrt(L / 6) ~ 5.5e-6 of its rms scale: ~1e-5 relative in all,
    // 100 times under rtol 1e-3 wherever a gradient is not a cancellation far below its terms'
    // scale; there atol 1e-5 covers an error of ~1e-5 times that scale, the gradients' scale at
    // this loss (a mean over the batch, He-normal weights) being below ~1e-1.
    EXPECT_TRUE(close(gg, gc, 1e-5, 1e-3));
    // The updated weights: Adam's first step moves each weight by about lr * sign(gradient), so
    // compare where the gradient's sign is well defined on both sides.
    tc.pull_params();
    tg.pull_params();
    std::vector<float> pc, pg;
    for (std::size_t i = 0; i < gc.size(); ++i) {
        if (std::fabs(gc[i]) > 1e-4f) {
            pc.push_back(mc.params()[i]);
            pg.push_back(mg.params()[i]);
        }
    }
    EXPECT_GT(pc.size(), gc.size() / 2);
    // Adam's first step is lr * g / (|g| + eps) per weight: with |g| > 1e-4 and the gradients'
    // ~1e-5 relative difference the sign agrees and the step differs by < 1e-9; the update
    // rounds w once (u |w|): under 1e-5 + 1e-4 |w|.
    EXPECT_TRUE(close(pg, pc, 1e-5, 1e-4));
    // Forward outputs agree after the step as well.
    const Tensor oc = tc.predict(x.data(), n), og = tg.predict(x.data(), n);
    std::vector<float> vc(oc.data<float>(), oc.data<float>() + oc.numel()),
        vg(og.data<float>(), og.data<float>() + og.numel());
    // Probabilities: an output moves by at most half the largest logit error. The logits carry
    // the forward's ~1e-6 relative rounding (above) and the weights' differences: u |w| where
    // |g| > 1e-4 (above), and where |g| <= 1e-4 the first step lr * g / (|g| + 3.2e-6) (Adam's
    // eps after the bias correction) differs by <= lr / 3.2e-6 = 316 times the gradients'
    // difference, ~1e-5 of their scale (above): ~3e-5 for gradients of scale 1e-2, and exact
    // zeros (dead ReLUs, empty pixels) agree. A logit sums such changes times inputs of scale ~1
    // with random signs. That these stay under atol 1e-4 is an estimate resting on the gradients'
    // scale, not a worst-case bound (which Adam's 316-fold amplification near g = 0 rules out).
    EXPECT_TRUE(close(vg, vc, 1e-4, 1e-3));
}

// What one LeNet-5 training step (batch 256) enqueues on the device: kernel launches, cuBLAS calls,
// copies and memsets, counted by the emulator's runtime (emu::record_operations). Each is a launch
// the CPU pays for and the GPU waits on; issue 12's budget is 20, the step has 16. train_step
// frames the step with two uploads (x, y), a memset (the metrics) and a download (the loss),
// which are not counted.
// The count does not depend on the batch size: a step is a fixed sequence of launches.
TEST(CudaEngine, DeviceOperationsPerTrainingStep) {
    MINICNN_REQUIRE_GPU();
#if !defined(MINICNN_CUDA_EMULATOR)
    GTEST_SKIP()
        << "device operations are counted by the CUDA emulator's runtime (tests/emu/run.sh); "
           "on a GPU, count the kernels of one step with nsys (bench/README.md)";
#else
    // One epoch of fit() over three batches of 256, launched kernel by kernel (no graphs, so every
    // operation is logged as it is enqueued): a step runs from one batch gather to the next.
    const test::Squares data = test::squares(3 * 256, 5);
    Sequential m = lenet5(42);
    Trainer t(m, Device::cuda());
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 256;
    opt.cuda_graphs = false;
    opt.progress_interval_s = 1e9;  // no progress read-back inside the epoch
    emu::record_operations(true);
    (void)t.fit(data.view(), nullptr, opt);
    emu::record_operations(false);
    std::vector<std::string> ops;
    const std::string log = emu::recorded_operations();
    for (std::size_t b = 0, e; (e = log.find('\n', b)) != std::string::npos; b = e + 1)
        ops.push_back(log.substr(b, e - b));
    std::vector<std::size_t> gathers;
    for (std::size_t i = 0; i < ops.size(); ++i)
        if (ops[i].rfind("gather_kernel", 0) == 0) gathers.push_back(i);  // gather_kernel<T>
    ASSERT_EQ(gathers.size(), 3u) << log;
    const std::vector<std::string> step(ops.begin() + std::ptrdiff_t(gathers[1]),
                                        ops.begin() + std::ptrdiff_t(gathers[2]));
    EXPECT_EQ(step, std::vector<std::string>(ops.begin() + std::ptrdiff_t(gathers[0]),
                                             ops.begin() + std::ptrdiff_t(gathers[1])))
        << "two steps of the same batch shape enqueue the same operations";
    std::string list;
    for (const std::string& o : step) list += "  " + o + "\n";
    std::printf("%s", list.c_str());
    std::printf("device operations per LeNet-5 training step: %zu\n", step.size());
    // Issue 12's budget was 20; the convolutions run with their max pooling in one kernel (two
    // launches fewer), the pooling backwards run inside conv2's backward data and dense1's
    // backward (two fewer), and the three dense layers' forwards are one launch (two fewer).
    EXPECT_LE(step.size(), 14u) << "at most 14 device operations per training step";
#endif
}

TEST(CudaEngine, FitOnTheGpuLearnsAndReportsMetrics) {
    MINICNN_REQUIRE_GPU();
    const test::Squares data = test::squares(512, 4);
    Sequential m = lenet5(1);
    Trainer t(m, Device::cuda());
    FitOptions opt;
    opt.epochs = 4;
    opt.batch_size = 32;
    const DataView d = data.view();
    const History h = t.fit(d, &d, opt);
    ASSERT_EQ(h.epochs.size(), 4u);
    EXPECT_LT(h.epochs[3].loss, 0.5 * h.epochs[0].loss);
    EXPECT_GT(h.epochs[3].val_accuracy, 0.9);
    EXPECT_EQ(t.adam_steps(), 4 * 16);
}

TEST(CudaEngine, PermutationIsIdenticalToCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    for (std::int64_t n : {60000, 777}) {
        Twin<std::int32_t> perm(*c, *g, n);
        for (std::uint64_t seed : {std::uint64_t(11), seed_for_epoch(1, 0)}) {
            for (bool shuffle : {true, false}) {
                c->permutation(perm.cpu.data(), n, seed, shuffle);
                g->permutation(perm.gpu.data(), n, seed, shuffle);
                const std::vector<std::int32_t> hc = perm.host_cpu(), hg = perm.host_gpu();
                // Exact: integer arithmetic only (no floating point, nothing to contract).
                EXPECT_EQ(hg, hc) << "n " << n << " seed " << seed << " shuffle " << shuffle;
                if (!shuffle) continue;
                std::vector<char> seen(static_cast<std::size_t>(n), 0);
                for (std::int32_t v : hg) {
                    ASSERT_TRUE(v >= 0 && v < n) << v;
                    ASSERT_FALSE(seen[static_cast<std::size_t>(v)]) << "duplicate " << v;
                    seen[static_cast<std::size_t>(v)] = 1;
                }
            }
        }
    }
}

// The CUDA engine never allocates inside an operation: beyond what reserve_* reserved, it throws.
TEST(CudaEngine, OperationsBeyondTheirReservationThrowInsteadOfAllocating) {
    MINICNN_REQUIRE_GPU();
    auto g = make_engine(Device::cuda());
    const std::int64_t k = 10;
    EngineBuffer<float> p(*g, 16 * k), d(*g, 16 * k);
    EngineBuffer<std::int32_t> y(*g, 16);
    EngineBuffer<Metrics> m(*g, 1);
    g->reserve_loss(8);
    EXPECT_NO_THROW(g->softmax_xent(d.data(), m.data(), p.data(), y.data(), 8, k, 8, nullptr, 0));
    try {
        g->softmax_xent(d.data(), m.data(), p.data(), y.data(), 16, k, 16, nullptr, 0);
        FAIL() << "softmax_xent on 16 samples with 8 reserved must throw";
    } catch (const ArgumentError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("holds 8 samples"), std::string::npos) << msg;
        EXPECT_NE(msg.find("has 16"), std::string::npos) << msg;
    }
    // A convolution reserved for 2 images, asked for a batch of 64 (LeNet's C3 shape).
    ConvGeom small =
        conv_geometry({2, 14, 14, 6}, {5, 5, 6, 16}, Padding::valid(), Stride{}, "test");
    ConvGeom big = small;
    big.n = 64;
    g->reserve_conv(small);
    EngineBuffer<float> dz(*g, big.out_numel()), x(*g, big.in_numel()), w(*g, big.weight_numel()),
        dw(*g, big.weight_numel()), db(*g, big.k), dx(*g, big.in_numel());
    EXPECT_NO_THROW(g->conv2d_backward(dx.data(), dw.data(), db.data(), dz.data(), nullptr,
                                       Activation::linear, x.data(), w.data(), small));
    try {
        g->conv2d_backward(dx.data(), dw.data(), db.data(), dz.data(), nullptr, Activation::linear,
                           x.data(), w.data(), big);
        FAIL() << "conv2d_backward beyond the reserved workspace must throw";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("reserve_conv"), std::string::npos) << e.what();
    }
    g->synchronize();
}

// capture() records without running; launch() replays; a throwing enqueue ends the capture and
// rethrows, and the engine keeps working.
TEST(CudaEngine, CaptureRecordsReplaysAndRethrows) {
    MINICNN_REQUIRE_GPU();
    auto g = make_engine(Device::cuda());
    EngineBuffer<StepCounters> c(*g, 1);
    auto counters = [&] {
        StepCounters h;
        g->download(&h, c.data(), sizeof h);
        return h;
    };
    // One launch before the capture, as the trainer's unrecorded first step of each shape: a driver
    // that loads kernels lazily (CUDA 12's default) fails a kernel's first launch in a capture.
    g->advance(c.data(), 5, true);
    g->fill_zero(c.data(), sizeof(StepCounters));
    std::unique_ptr<EngineGraph> graph = g->capture([&] { g->advance(c.data(), 5, true); });
#if defined(MINICNN_CUDA_SYNC_CHECK)
    EXPECT_EQ(graph, nullptr) << "a build that synchronises after every launch cannot capture";
    return;
#endif
    ASSERT_NE(graph, nullptr);
    EXPECT_EQ(counters().step, 0) << "capture must record, not run";
    graph->launch();
    graph->launch();
    EXPECT_EQ(counters().step, 2);
    EXPECT_EQ(counters().cursor, 10);
    EXPECT_THROW(g->capture([&] {
        g->advance(c.data(), 1, true);
        throw ArgumentError("thrown while capturing");
    }),
                 ArgumentError);
    // An operation beyond its reservation throws inside a capture too (nothing was reserved).
    EngineBuffer<float> p(*g, 10);
    EngineBuffer<std::int32_t> y(*g, 1);
    EngineBuffer<Metrics> m(*g, 1);
    EXPECT_THROW(g->capture([&] {
        g->softmax_xent(nullptr, m.data(), p.data(), y.data(), 1, 10, 1, nullptr, 0);
    }),
                 ArgumentError);
    g->advance(c.data(), 1, false);  // the stream is usable again, and nothing partial ran
    graph->launch();
    EXPECT_EQ(counters().step, 3);
    EXPECT_EQ(counters().cursor, 16);
}

// A fit that replays graphs and one that launches every kernel: byte-identical training states.
// 54 images in batches of 16 (three full batches and one of 6: two graphs, each recorded at the
// second step of its size, so the short batch's in epoch 2), two epochs, with validation.
TEST(CudaEngine, GraphAndStreamFitsAreBitIdentical) {
    MINICNN_REQUIRE_GPU();
    const test::Squares train = test::squares(54, 21), val = test::squares(20, 22);
    auto run = [&](bool graphs) {
        Sequential m = lenet5(3);
        Trainer t(m, Device::cuda());
        FitOptions opt;
        opt.epochs = 2;
        opt.batch_size = 16;
        opt.seed = 10;
        opt.cuda_graphs = graphs;
        const DataView vv = val.view();
        const History h = t.fit(train.view(), &vv, opt);
        std::vector<double> losses;
        for (const EpochLog& e : h.epochs) {
            losses.push_back(e.loss);
            losses.push_back(e.val_loss);
        }
        return std::make_pair(serialize_checkpoint(t.to_checkpoint()), losses);
    };
    const auto with = run(true), without = run(false);
    // Exact under FMA: a graph replays the very kernels (the same compiled code) the stream path
    // launches, with the same arguments and launch configurations, in the same order.
    EXPECT_TRUE(with.first == without.first) << "the serialised training states differ";
    EXPECT_EQ(with.second, without.second);
}

// 8-bit data stay 8-bit on the device and are scaled in the gather kernel (training) and the
// evaluation's gather: a fit and an evaluation on them are bit-identical to those on their float32
// copy, graphs and all.
TEST(CudaEngine, EightBitDataFitBitIdenticalToTheirFloatCopy) {
    MINICNN_REQUIRE_GPU();
    const test::Squares8 train = test::squares8(54, 31), val = test::squares8(20, 32);
    auto run = [&](bool eight_bit) {
        Sequential m = lenet5(3);
        Trainer t(m, Device::cuda());
        FitOptions opt;
        opt.epochs = 2;
        opt.batch_size = 16;
        const DataView vv = eight_bit ? val.view() : val.float_view();
        const History h = t.fit(eight_bit ? train.view() : train.float_view(), &vv, opt);
        std::vector<double> losses;
        for (const EpochLog& e : h.epochs) {
            losses.push_back(e.loss);
            losses.push_back(e.val_loss);
        }
        losses.push_back(t.evaluate(vv, 8).loss);
        return std::make_pair(serialize_checkpoint(t.to_checkpoint()), losses);
    };
    const auto bytes = run(true), floats = run(false);
    EXPECT_TRUE(bytes.first == floats.first) << "the serialised training states differ";
    EXPECT_EQ(bytes.second, floats.second);
}

// A whole fit on the GPU from the same seeds as on the CPU: the same batches (the permutation is
// identical), so the same losses step by step and nearly the same weights.
TEST(CudaEngine, FitMatchesCpuFromTheSameSeed) {
    MINICNN_REQUIRE_GPU();
    const test::Squares data = test::squares(64, 31);
    const float lr = 1e-3f;
    struct Run {
        std::vector<double> losses;  // mean loss so far after steps 1, 2, 3, then the epoch's
        std::vector<float> params;
    };
    auto run = [&](const Device& device) {
        Sequential m = lenet5(5);
        Trainer t(m, device);
        FitOptions opt;
        opt.epochs = 1;
        opt.batch_size = 16;  // 4 steps
        opt.seed = 17;
        opt.adam.lr = lr;
        opt.progress_interval_s = 0;  // a tick after every step but the last
        Run r;
        opt.on_progress = [&](const Progress& p) { r.losses.push_back(p.loss); };
        const History h = t.fit(data.view(), nullptr, opt);
        r.losses.push_back(h.epochs.at(0).loss);
        t.pull_params();
        r.params = m.params();
        return r;
    };
    const Run cpu = run(Device::cpu()), gpu = run(Device::cuda());
    ASSERT_EQ(cpu.losses.size(), 4u);
    ASSERT_EQ(gpu.losses.size(), 4u);
    // A different batch would change a step's loss by ~1e-2; the engines' rounding by ~1e-6.
    for (std::size_t i = 0; i < 4; ++i)
        EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 1e-4 * std::fabs(cpu.losses[i])) << "step " << i;
    // The weights: Adam's rule (expect_adam_weights_close, tests/engine_test_util.h), 4 steps. A
    // weight whose gradient stays well away from zero agrees to float rounding (a 1e-5 relative
    // gradient difference moves it by ~1e-8), far inside 1e-5 + 1e-3 |w| (1% of one step of lr
    // 1e-3). For scale: on the CPU, this run with every pixel perturbed by up to 1e-5 relative
    // keeps all 61706 weights within the tight bound (worst difference 5.5e-6) and the losses
    // within 2.3e-7 relative.
    expect_adam_weights_close(gpu.params, cpu.params, lr, 4, 1e-5, 1e-3, "GPU against CPU");
}

// A model with 1024-wide hidden layers (784 -> 1024 -> 1024 -> 10) trained by fit() on the GPU,
// its training step recorded into a CUDA graph and replayed (cuda_graphs, the default), from the
// same seeds as on the CPU: the same losses step by step and nearly the same weights. The two wide
// layers run on cuBLAS (on the emulator: cublasSgemm in the captured step, and the step replayed
// as graph launches), LeNet-sized ones do not (LeNet's step has no cuBLAS call:
// DeviceOperationsPerTrainingStep). Batches of 16, 4 steps: the emulator's GEMM is a plain loop.
TEST(CudaEngine, WideDenseModelTrainsOnCublasInCudaGraphsAndMatchesCpu) {
    MINICNN_REQUIRE_GPU();
    const test::Squares data = test::squares(64, 41);
    const float lr = 1e-3f;
    struct Run {
        std::vector<double> losses;
        std::vector<float> params;
    };
    auto run = [&](const Device& device) {
        Sequential m({28, 28, 1}, "wide");
        m.flatten()
            .dense(1024, Activation::relu)
            .dense(1024, Activation::tanh)
            .dense(10, Activation::softmax);
        m.init_params(6);
        Trainer t(m, device);
        FitOptions opt;
        opt.epochs = 1;
        opt.batch_size = 16;  // 4 steps: the second recorded as a graph, the last two replay it
        opt.seed = 19;
        opt.adam.lr = lr;
        opt.progress_interval_s = 0;
        Run r;
        opt.on_progress = [&](const Progress& p) { r.losses.push_back(p.loss); };
        const History h = t.fit(data.view(), nullptr, opt);
        r.losses.push_back(h.epochs.at(0).loss);
        t.pull_params();
        r.params = m.params();
        return r;
    };
    const Run cpu = run(Device::cpu());
    Run gpu;
#if defined(MINICNN_CUDA_EMULATOR)
    const std::vector<std::string> ops = operations_of([&] { gpu = run(Device::cuda()); });
    long gemms = 0, graph_launches = 0;
    for (const std::string& op : ops) {
        gemms += op == "cublasSgemm";
        graph_launches += op == "cudaGraphLaunch";
    }
    // Steps 1 and 2 enqueue their operations (the second into the graph): 2 forward GEMMs and
    // 3 backward ones (the first layer needs no dinp) each; steps 3 and 4 replay the graph.
    EXPECT_EQ(gemms, 2 * 5) << "cuBLAS calls in the fit";
    EXPECT_GE(graph_launches, 2) << "the step's graph replayed";
#else
    gpu = run(Device::cuda());
#endif
    ASSERT_EQ(cpu.losses.size(), 4u);
    ASSERT_EQ(gpu.losses.size(), 4u);
    // As FitMatchesCpuFromTheSameSeed: a different batch would change a step's loss by ~1e-2, the
    // engines' rounding ([R32] over reductions of up to 1024 terms) by ~1e-6.
    for (std::size_t i = 0; i < 4; ++i)
        EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 1e-4 * std::fabs(cpu.losses[i])) << "step " << i;
    expect_adam_weights_close(gpu.params, cpu.params, lr, 4, 1e-5, 1e-3, "GPU against CPU");
}

// NaN pixels make the loss NaN, and fit() reports it as divergence on both engines: the GPU loss
// keeps a NaN as the CPU's does (no fmax, which would turn it into -log(1e-7)). A small model
// (flatten, dense softmax) so that the NaN reaches the softmax without a ReLU zeroing it.
void expect_nan_loss_is_reported(const Device& device) {
    const std::int64_t n = 8, pixels = 16;
    std::vector<float> x(static_cast<std::size_t>(n * pixels));
    std::vector<std::int32_t> y(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        y[static_cast<std::size_t>(i)] = std::int32_t(i % 3);
        for (std::int64_t p = 0; p < pixels; ++p)
            x[static_cast<std::size_t>(i * pixels + p)] = i == 5 ? NAN : float(p % 5) / 5.0f;
    }
    Sequential m({4, 4, 1}, "nan");
    m.flatten().dense(3, Activation::softmax);
    m.init_params(1);
    Trainer t(m, device);
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 4;
    int epoch_ends = 0;
    opt.on_epoch_end = [&](const EpochLog&) { ++epoch_ends; };
    try {
        t.fit(DataView{x.data(), y.data(), n}, nullptr, opt);
        FAIL() << device.str() << ": a NaN input must stop training";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("training diverged: the loss became nan"),
                  std::string::npos)
            << device.str() << ": " << e.what();
    }
    EXPECT_EQ(epoch_ends, 0);
}

TEST(CpuEngine, NanInputIsReportedAsDivergence) {
    expect_nan_loss_is_reported(Device::cpu());
}

TEST(CudaEngine, NanInputIsReportedAsDivergence) {
    MINICNN_REQUIRE_GPU();
    expect_nan_loss_is_reported(Device::cuda());
}

// An engine on device 1 driven from a thread whose current device is 0: every call (set-up,
// uploads, a train_step, a fit whose second step is recorded and replayed, predict, the
// destructor) runs on device 1, and the thread's current device is still 0 afterwards. The
// results are bit-identical to the same run with device 1 current.
TEST(CudaEngine, EntryPointsUseTheEngineDeviceWhateverIsCurrent) {
    MINICNN_REQUIRE_GPU();
    if (cuda_device_count() < 2) {
        GTEST_SKIP() << "needs 2 CUDA devices to run an engine off the current one, "
                     << cuda_device_count() << " visible";
    }
#if defined(MINICNN_WITH_CUDA)
    const test::Squares data = test::squares(32, 41);
    struct Run {
        std::vector<float> params, probs;
    };
    auto run = [&](int current) {
        EXPECT_EQ(cudaSetDevice(current), cudaSuccess);
        Run r;
        {
            Sequential m = lenet5(9);
            Trainer t(m, Device::cuda(1));
            t.train_step(data.x.data(), data.y.data(), 16, AdamConfig{});
            FitOptions opt;
            opt.epochs = 1;
            opt.batch_size = 16;
            t.fit(data.view(), nullptr, opt);
            const Tensor p = t.predict(data.x.data(), 16);
            r.probs.assign(p.data<float>(), p.data<float>() + p.numel());
            t.pull_params();
            r.params = m.params();
        }
        int now = -1;
        EXPECT_EQ(cudaGetDevice(&now), cudaSuccess);
        EXPECT_EQ(now, current) << "the engine changed the calling thread's current device";
        return r;
    };
    const Run on1 = run(1), on0 = run(0);
    EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
    ASSERT_EQ(on0.params.size(), on1.params.size());
    // Exact under FMA: both runs train on device 1 with the same kernels and inputs; only the
    // calling thread's current device differs.
    EXPECT_EQ(std::memcmp(on0.params.data(), on1.params.data(), on1.params.size() * sizeof(float)),
              0);
    EXPECT_EQ(on0.probs, on1.probs);
#endif
}

}  // namespace
}  // namespace minicnn
