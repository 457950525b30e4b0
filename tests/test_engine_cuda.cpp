// tests/test_engine_cuda.cpp — the CUDA training engine (cuda/engine_cuda.cpp,
// cuda/train_kernels.cu) against the CPU engine: dense layers through cuBLAS, the fused softmax +
// cross-entropy and its metrics, Adam, the batch gather, the Thrust permutation, and one whole
// LeNet-5 training step (loss, every gradient, the updated weights). Every test skips, saying why,
// in CPU-only builds or where no GPU is visible.
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/device.h"
#include "minicnn/engine.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"

namespace minicnn {
namespace {

#define MINICNN_REQUIRE_GPU()                                                        \
    do {                                                                             \
        if (!built_with_cuda()) GTEST_SKIP() << "minicnn was built without CUDA";    \
        if (cuda_device_count() == 0)                                                \
            GTEST_SKIP() << "no CUDA device visible: " << cuda_unavailable_reason(); \
    } while (0)

std::vector<float> randv(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 g(seed);
    std::vector<float> v(n);
    for (float& x : v) x = lo + (hi - lo) * float(double(g()) / 4294967296.0);
    return v;
}

// |gpu - cpu| <= atol + rtol |cpu|; names the worst element.
::testing::AssertionResult close(const std::vector<float>& gpu, const std::vector<float>& cpu,
                                 double atol, double rtol = 1e-4) {
    if (gpu.size() != cpu.size()) return ::testing::AssertionFailure() << "sizes differ";
    std::size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (std::size_t i = 0; i < gpu.size(); ++i) {
        const double excess =
            std::fabs(double(gpu[i]) - cpu[i]) - (atol + rtol * std::fabs(cpu[i]));
        if (!(excess <= 0)) ++bad;
        if (!(excess <= worst_excess)) {
            worst_excess = std::isnan(excess) ? INFINITY : excess;
            worst = i;
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << bad << " of " << gpu.size() << " elements differ; worst " << worst << ": gpu "
           << gpu[worst] << ", cpu " << cpu[worst] << " (atol " << atol << ")";
}

// The same host data in the memory of two engines.
template <class T>
struct Twin {
    EngineBuffer<T> cpu, gpu;
    Engine *ce, *ge;
    Twin(Engine& c, Engine& g, const std::vector<T>& v)
        : cpu(c, std::int64_t(v.size())), gpu(g, std::int64_t(v.size())), ce(&c), ge(&g) {
        c.upload(cpu.data(), v.data(), cpu.bytes());
        g.upload(gpu.data(), v.data(), gpu.bytes());
    }
    Twin(Engine& c, Engine& g, std::int64_t n)
        : Twin(c, g, std::vector<T>(static_cast<std::size_t>(n))) {}
    std::vector<T> host_cpu() const {
        std::vector<T> h(static_cast<std::size_t>(cpu.size()));
        ce->download(h.data(), cpu.data(), cpu.bytes());
        return h;
    }
    std::vector<T> host_gpu() const {
        std::vector<T> h(static_cast<std::size_t>(gpu.size()));
        ge->download(h.data(), gpu.data(), gpu.bytes());
        return h;
    }
};

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
        for (Activation act : {Activation::relu, Activation::softmax}) {
            c->dense_forward(o.cpu.data(), x.cpu.data(), w.cpu.data(), b.cpu.data(), n, ni, no,
                             act);
            g->dense_forward(o.gpu.data(), x.gpu.data(), w.gpu.data(), b.gpu.data(), n, ni, no,
                             act);
            EXPECT_TRUE(close(o.host_gpu(), o.host_cpu(), 1e-5 * ni)) << "n=" << n;
        }
        c->dense_backward(dx.cpu.data(), dw.cpu.data(), db.cpu.data(), dz.cpu.data(), x.cpu.data(),
                          w.cpu.data(), n, ni, no);
        g->dense_backward(dx.gpu.data(), dw.gpu.data(), db.gpu.data(), dz.gpu.data(), x.gpu.data(),
                          w.gpu.data(), n, ni, no);
        EXPECT_TRUE(close(dx.host_gpu(), dx.host_cpu(), 1e-5 * no)) << "dinp n=" << n;
        EXPECT_TRUE(close(dw.host_gpu(), dw.host_cpu(), 1e-5 * n)) << "dW n=" << n;
        EXPECT_TRUE(close(db.host_gpu(), db.host_cpu(), 1e-5 * n)) << "db n=" << n;
    }
}

TEST(CudaEngine, SoftmaxXentAdamGatherAndPermutationMatchCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 300, k = 10;
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
        c->softmax_xent(d.cpu.data(), m.cpu.data(), p.cpu.data(), yl.cpu.data(), n, k);
        g->softmax_xent(d.gpu.data(), m.gpu.data(), p.gpu.data(), yl.gpu.data(), n, k);
    }
    EXPECT_TRUE(close(d.host_gpu(), d.host_cpu(), 1e-7));
    const Metrics mc = m.host_cpu()[0], mg = m.host_gpu()[0];
    EXPECT_NEAR(mg.loss_sum, mc.loss_sum, 1e-5 * mc.loss_sum);
    EXPECT_EQ(mg.correct, mc.correct);
    EXPECT_EQ(mg.count, 2.0 * n);

    // Adam, three steps with the step counter on each engine.
    const std::int64_t np = 5000;
    Twin<float> params(*c, *g, randv(static_cast<std::size_t>(np), 6)),
        grads(*c, *g, randv(static_cast<std::size_t>(np), 7)), m1(*c, *g, np), v1(*c, *g, np);
    Twin<StepCounters> cnt(*c, *g, 1);
    for (int t = 0; t < 3; ++t) {
        c->adam_update(params.cpu.data(), grads.cpu.data(), m1.cpu.data(), v1.cpu.data(), np,
                       AdamConfig{}, cnt.cpu.data());
        g->adam_update(params.gpu.data(), grads.gpu.data(), m1.gpu.data(), v1.gpu.data(), np,
                       AdamConfig{}, cnt.gpu.data());
        c->advance(cnt.cpu.data(), 0, true);
        g->advance(cnt.gpu.data(), 0, true);
    }
    EXPECT_TRUE(close(params.host_gpu(), params.host_cpu(), 1e-6, 1e-6));
    EXPECT_TRUE(close(v1.host_gpu(), v1.host_cpu(), 1e-9, 1e-5));
    EXPECT_EQ(cnt.host_gpu()[0].step, 3);

    // Permutation: a permutation, the same for the same seed, different for another.
    const std::int64_t count = 60000;
    EngineBuffer<std::int32_t> a(*g, count), b2(*g, count), c2(*g, count);
    g->permutation(a.data(), count, 11, true);
    g->permutation(b2.data(), count, 11, true);
    g->permutation(c2.data(), count, 12, true);
    std::vector<std::int32_t> ha(static_cast<std::size_t>(count)),
        hb(static_cast<std::size_t>(count)), hc(static_cast<std::size_t>(count));
    g->download(ha.data(), a.data(), a.bytes());
    g->download(hb.data(), b2.data(), b2.bytes());
    g->download(hc.data(), c2.data(), c2.bytes());
    EXPECT_EQ(ha, hb);
    EXPECT_NE(ha, hc);
    std::vector<char> seen(static_cast<std::size_t>(count), 0);
    for (std::int32_t v : ha) {
        ASSERT_TRUE(v >= 0 && v < count);
        ASSERT_FALSE(seen[static_cast<std::size_t>(v)]) << "duplicate " << v;
        seen[static_cast<std::size_t>(v)] = 1;
    }

    // Gather through the same permutation and cursor.
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
    EXPECT_EQ(x.host_gpu(), x.host_cpu());
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
    EXPECT_NEAR(lg, lc, 1e-5 * std::fabs(lc));
    const std::vector<float> gc = tc.gradients(), gg = tg.gradients();
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
    EXPECT_TRUE(close(pg, pc, 1e-5, 1e-4));
    // Forward outputs agree after the step as well.
    const Tensor oc = tc.predict(x.data(), n), og = tg.predict(x.data(), n);
    std::vector<float> vc(oc.data<float>(), oc.data<float>() + oc.numel()),
        vg(og.data<float>(), og.data<float>() + og.numel());
    EXPECT_TRUE(close(vg, vc, 1e-4, 1e-3));
}

TEST(CudaEngine, FitOnTheGpuLearnsAndReportsMetrics) {
    MINICNN_REQUIRE_GPU();
    const std::int64_t n = 512;
    std::mt19937 gen(4);
    std::vector<float> x(static_cast<std::size_t>(n * 784));
    std::vector<std::int32_t> y(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        const int c = int(gen() % 10);
        y[static_cast<std::size_t>(i)] = c;
        for (int p = 0; p < 784; ++p) {
            const int r = p / 28, q = p % 28;
            const bool on = r >= 2 + (c / 5) * 13 && r < 9 + (c / 5) * 13 && q >= 1 + (c % 5) * 5 &&
                            q < 8 + (c % 5) * 5;
            x[static_cast<std::size_t>(i * 784 + p)] =
                float(gen() % 1000) / 4000.0f + (on ? 0.7f : 0.0f);
        }
    }
    Sequential m = lenet5(1);
    Trainer t(m, Device::cuda());
    FitOptions opt;
    opt.epochs = 4;
    opt.batch_size = 32;
    const DataView d{x.data(), y.data(), n};
    const History h = t.fit(d, &d, opt);
    ASSERT_EQ(h.epochs.size(), 4u);
    EXPECT_LT(h.epochs[3].loss, 0.5 * h.epochs[0].loss);
    EXPECT_GT(h.epochs[3].val_accuracy, 0.9);
    EXPECT_EQ(t.adam_steps(), 4 * 16);
}

}  // namespace
}  // namespace minicnn
