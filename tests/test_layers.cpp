// tests/test_layers.cpp — the CPU training engine (host/cpu/engine_cpu.cpp, host/cpu/gemm.cpp) against
// references: SGEMM against a naive double product; convolution (both im2col layouts), pooling and
// activations against the direct-loop oracle of minicnn/cpu_backend.h run in float64; dense layers,
// the fused softmax + cross-entropy and Adam against formulas written out here; masks compared
// exactly (with ties); and results bit-identical for 1 and 2 threads.
#include "minicnn/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/gemm.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/engine.h"

namespace minicnn {
namespace {

std::vector<float> randv(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 g(seed);
    std::vector<float> v(n);
    for (float& x : v) x = lo + (hi - lo) * float(double(g()) / 4294967296.0);
    return v;
}

std::vector<double> to_double(const std::vector<float>& v) {
    return {v.begin(), v.end()};
}

// |got - ref| <= atol + rtol |ref| everywhere; the failure names the worst element.
::testing::AssertionResult close(const std::vector<float>& got, const std::vector<double>& ref,
                                 double atol, double rtol = 1e-4) {
    if (got.size() != ref.size()) {
        return ::testing::AssertionFailure() << "size " << got.size() << " vs " << ref.size();
    }
    double worst = 0;
    std::size_t wi = 0;
    bool ok = true;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(double(got[i]) - ref[i]);
        const double excess = err - (atol + rtol * std::fabs(ref[i]));
        if (!(excess <= 0)) ok = false;
        if (!(excess <= worst) || (i == 0 && !ok)) {
            worst = std::isnan(excess) ? INFINITY : excess;
            wi = i;
        }
    }
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "worst element " << wi << ": got " << got[wi] << ", expected " << ref[wi] << " (atol "
           << atol << ", rtol " << rtol << ")";
}

// A float buffer in engine memory (the CPU engine's memory is host memory).
struct Buf {
    Engine& e;
    EngineBuffer<float> b;
    Buf(Engine& eng, const std::vector<float>& v) : e(eng), b(eng, std::int64_t(v.size())) {
        e.upload(b.data(), v.data(), b.bytes());
    }
    Buf(Engine& eng, std::int64_t n) : e(eng), b(eng, n) {}
    float* p() const { return b.data(); }
    std::vector<float> host() const {
        std::vector<float> h(static_cast<std::size_t>(b.size()));
        e.download(h.data(), b.data(), b.bytes());
        return h;
    }
};

// ---- SGEMM --------------------------------------------------------------------------------------

TEST(Gemm, BothImplementationsMatchNaiveProductForEveryTransposeCase) {
    const std::int64_t m = 37, n = 29, k = 141;  // not multiples of any block size
    for (int ta = 0; ta < 2; ++ta) {
        for (int tb = 0; tb < 2; ++tb) {
            const auto a = randv(static_cast<std::size_t>(m * k), 1),
                       b = randv(static_cast<std::size_t>(k * n), 2);
            const auto c0 = randv(static_cast<std::size_t>(m * n), 3);
            const std::int64_t lda = ta ? m : k, ldb = tb ? k : n;
            std::vector<double> ref(static_cast<std::size_t>(m * n));
            for (std::int64_t i = 0; i < m; ++i)
                for (std::int64_t j = 0; j < n; ++j) {
                    double s = 0;
                    for (std::int64_t p = 0; p < k; ++p) {
                        const double av = ta ? a[p * lda + i] : a[i * lda + p];
                        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                        s += av * bv;
                    }
                    ref[i * n + j] = 0.5 * s + 2.0 * c0[i * n + j];
                }
            auto c1 = c0, c2 = c0;
            cpu_gemm::sgemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 2.0f, c1.data(),
                            n);
            cpu_gemm::blocked_gemm<float>(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 2.0f,
                                          c2.data(), n);
            EXPECT_TRUE(close(c1, ref, 1e-4 * k)) << "sgemm ta=" << ta << " tb=" << tb;
            EXPECT_TRUE(close(c2, ref, 1e-4 * k)) << "blocked_gemm ta=" << ta << " tb=" << tb;
        }
    }
}

TEST(Gemm, BetaZeroOverwritesNaN) {
    std::vector<float> a{1, 2}, b{3, 4}, c{NAN};
    cpu_gemm::blocked_gemm<float>(false, false, 1, 1, 2, 1.0f, a.data(), 2, b.data(), 1, 0.0f,
                                  c.data(), 1);
    EXPECT_EQ(c[0], 11.0f);
    c[0] = NAN;
    cpu_gemm::sgemm(false, false, 1, 1, 2, 1.0f, a.data(), 2, b.data(), 1, 0.0f, c.data(), 1);
    EXPECT_EQ(c[0], 11.0f);
}

// ---- convolution --------------------------------------------------------------------------------

struct ConvCase {
    std::int64_t n, h, w, c, k;
    int kh, kw;
    Padding pad;
    Stride stride;
};

std::vector<ConvCase> conv_cases() {
    return {
        {37, 28, 28, 1, 6, 5, 5, Padding::same(), {1, 1}},    // LeNet C1 (transposed layout)
        {20, 14, 14, 6, 16, 5, 5, Padding::valid(), {1, 1}},  // LeNet C3 (row layout)
        {3, 9, 11, 3, 4, 3, 2, Padding::same(), {2, 3}},      // strides, uneven kernel
        {5, 8, 8, 1, 3, 2, 2, Padding::same(), {1, 1}},       // even kernel: 9x9 output
        {4, 7, 6, 2, 5, 3, 3, Padding::explicit_pad(2, 1), {1, 2}},
        {2, 6, 6, 1, 2, 3, 3, Padding::valid(), {2, 2}},  // c == 1 with stride 2 (row layout)
    };
}

ConvGeom geom_of(const ConvCase& t) {
    return conv_geometry({t.n, t.h, t.w, t.c}, {t.kh, t.kw, t.c, t.k}, t.pad, t.stride, "test");
}

TEST(CpuEngineConv, ForwardMatchesOracleForEveryLayoutAndActivation) {
    auto e = make_cpu_engine();
    for (const ConvCase& t : conv_cases()) {
        const ConvGeom g = geom_of(t);
        const auto x = randv(static_cast<std::size_t>(g.in_numel()), 11),
                   w = randv(static_cast<std::size_t>(g.weight_numel()), 12);
        const auto b = randv(static_cast<std::size_t>(g.k), 13);
        for (Activation act : {Activation::linear, Activation::relu, Activation::tanh}) {
            Buf X(*e, x), W(*e, w), B(*e, b), O(*e, g.out_numel());
            e->conv2d_forward(O.p(), X.p(), W.p(), B.p(), g, act);
            std::vector<double> ref(static_cast<std::size_t>(g.out_numel()));
            const auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
            cpu::conv2d_forward<double>(ref.data(), xd.data(), wd.data(), bd.data(), g, act);
            EXPECT_TRUE(close(O.host(), ref, 2e-6 * double(g.kh * g.kw * g.c)))
                << "case h=" << t.h << " c=" << t.c << " k=" << t.k << " pad=" << t.pad.str()
                << " act=" << activation_name(act);
        }
    }
}

TEST(CpuEngineConv, BackwardMatchesOracleForEveryLayout) {
    auto e = make_cpu_engine();
    for (const ConvCase& t : conv_cases()) {
        const ConvGeom g = geom_of(t);
        const auto x = randv(static_cast<std::size_t>(g.in_numel()), 21),
                   w = randv(static_cast<std::size_t>(g.weight_numel()), 22);
        const auto dz = randv(static_cast<std::size_t>(g.out_numel()), 23);
        Buf X(*e, x), W(*e, w), DZ(*e, dz), DX(*e, g.in_numel()), DW(*e, g.weight_numel()),
            DB(*e, g.k);
        e->conv2d_backward(DX.p(), DW.p(), DB.p(), DZ.p(), nullptr, Activation::linear, X.p(),
                           W.p(), g);
        const auto xd = to_double(x), wd = to_double(w), dzd = to_double(dz);
        std::vector<double> rdx(static_cast<std::size_t>(g.in_numel())),
            rdw(static_cast<std::size_t>(g.weight_numel())), rdb(static_cast<std::size_t>(g.k));
        cpu::conv2d_backward_data<double>(rdx.data(), dzd.data(), wd.data(), g);
        cpu::conv2d_backward_filter<double>(rdw.data(), rdb.data(), dzd.data(), xd.data(), g);
        std::ostringstream what;
        what << "case h=" << t.h << " c=" << t.c << " k=" << t.k << " pad=" << t.pad.str();
        EXPECT_TRUE(close(DX.host(), rdx, 2e-6 * double(g.kh * g.kw * g.k)))
            << what.str() << " dinp";
        EXPECT_TRUE(close(DW.host(), rdw, 2e-6 * double(g.n * g.oh * g.ow))) << what.str() << " dW";
        EXPECT_TRUE(close(DB.host(), rdb, 2e-6 * double(g.n * g.oh * g.ow))) << what.str() << " db";
        // Without dinp the weight gradients are the same.
        Buf DW2(*e, g.weight_numel()), DB2(*e, g.k);
        e->conv2d_backward(nullptr, DW2.p(), DB2.p(), DZ.p(), nullptr, Activation::linear, X.p(),
                           W.p(), g);
        EXPECT_EQ(DW2.host(), DW.host()) << what.str();
        EXPECT_EQ(DB2.host(), DB.host()) << what.str();
    }
}

TEST(CpuEngineConv, ResultsAreBitIdenticalForOneAndTwoThreads) {
    auto e = make_cpu_engine();
    const ConvGeom g = geom_of(conv_cases()[1]);
    const auto x = randv(static_cast<std::size_t>(g.in_numel()), 31),
               w = randv(static_cast<std::size_t>(g.weight_numel()), 32);
    const auto dz = randv(static_cast<std::size_t>(g.out_numel()), 33);
    Buf X(*e, x), W(*e, w), DZ(*e, dz);
    std::vector<float> runs[2][2];
    const int saved = cpu::thread_count();
    for (int r = 0; r < 2; ++r) {
        cpu::set_thread_count(r == 0 ? 1 : 2);
        Buf DX(*e, g.in_numel()), DW(*e, g.weight_numel()), DB(*e, g.k);
        e->conv2d_backward(DX.p(), DW.p(), DB.p(), DZ.p(), nullptr, Activation::linear, X.p(),
                           W.p(), g);
        runs[r][0] = DX.host();
        runs[r][1] = DW.host();
    }
    cpu::set_thread_count(saved);
    EXPECT_EQ(runs[0][0], runs[1][0]);
    EXPECT_EQ(runs[0][1], runs[1][1]);
}

// ---- pooling ------------------------------------------------------------------------------------

TEST(CpuEnginePool, MaxMaskMatchesOracleExactlyIncludingTies) {
    auto e = make_cpu_engine();
    const PoolGeom g = pool_geometry({6, 10, 9, 5}, {2, 2}, {2, 2}, "test");
    auto x = randv(static_cast<std::size_t>(g.in_numel()), 41);
    // ReLU-like zeros: whole windows of ties, and ties between a zero and a positive maximum.
    for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i] < 0.2f) x[i] = 0.0f;
    Buf X(*e, x), O(*e, g.out_numel());
    EngineBuffer<std::int32_t> mask(*e, g.out_numel());
    e->maxpool2d_forward(O.p(), mask.data(), X.p(), g);
    std::vector<float> ro(static_cast<std::size_t>(g.out_numel()));
    std::vector<std::int32_t> rm(static_cast<std::size_t>(g.out_numel()));
    cpu::maxpool2d_forward<float>(ro.data(), rm.data(), x.data(), g);
    EXPECT_EQ(O.host(), ro);
    std::vector<std::int32_t> got(rm.size());
    e->download(got.data(), mask.data(), mask.bytes());
    EXPECT_EQ(got, rm);
    std::int64_t zero_windows = 0;
    for (float v : ro) zero_windows += v == 0.0f;
    EXPECT_GT(zero_windows, 0) << "the test needs tied windows";

    const auto dout = randv(static_cast<std::size_t>(g.out_numel()), 42);
    Buf DO(*e, dout), DX(*e, g.in_numel());
    e->maxpool2d_backward(DX.p(), DO.p(), mask.data(), g);
    std::vector<float> rdx(static_cast<std::size_t>(g.in_numel()));
    cpu::maxpool2d_backward_mask<float>(rdx.data(), dout.data(), rm.data(), g);
    EXPECT_EQ(DX.host(), rdx);
}

TEST(CpuEnginePool, OverlappingWindowsAndAveragePoolingMatchOracle) {
    auto e = make_cpu_engine();
    const PoolGeom g = pool_geometry({3, 11, 8, 4}, {3, 2}, {2, 1}, "test");
    const auto x = randv(static_cast<std::size_t>(g.in_numel()), 51),
               dout = randv(static_cast<std::size_t>(g.out_numel()), 52);
    Buf X(*e, x), O(*e, g.out_numel()), DO(*e, dout), DX(*e, g.in_numel());
    EngineBuffer<std::int32_t> mask(*e, g.out_numel());
    e->maxpool2d_forward(O.p(), mask.data(), X.p(), g);
    e->maxpool2d_backward(DX.p(), DO.p(), mask.data(), g);
    std::vector<float> ro(static_cast<std::size_t>(g.out_numel())),
        rdx(static_cast<std::size_t>(g.in_numel()));
    std::vector<std::int32_t> rm(static_cast<std::size_t>(g.out_numel()));
    cpu::maxpool2d_forward<float>(ro.data(), rm.data(), x.data(), g);
    cpu::maxpool2d_backward_mask<float>(rdx.data(), dout.data(), rm.data(), g);
    EXPECT_EQ(O.host(), ro);
    EXPECT_TRUE(close(DX.host(), to_double(rdx), 1e-6));

    e->avgpool2d_forward(O.p(), X.p(), g);
    e->avgpool2d_backward(DX.p(), DO.p(), g);
    std::vector<double> rao(static_cast<std::size_t>(g.out_numel())),
        radx(static_cast<std::size_t>(g.in_numel()));
    const auto xd = to_double(x), dd = to_double(dout);
    cpu::avgpool2d_forward<double>(rao.data(), xd.data(), g);
    cpu::avgpool2d_backward<double>(radx.data(), dd.data(), g);
    EXPECT_TRUE(close(O.host(), rao, 1e-6));
    EXPECT_TRUE(close(DX.host(), radx, 1e-6));
}

// ---- activations --------------------------------------------------------------------------------

TEST(CpuEngineActivation, ForwardAndBackwardMatchOracle) {
    auto e = make_cpu_engine();
    const std::int64_t rows = 67, cols = 10;
    auto x = randv(static_cast<std::size_t>(rows * cols), 61, -3.0f, 3.0f);
    x[0] = 0.0f;  // relu's tie at zero: gradient 0
    const auto dout = randv(static_cast<std::size_t>(rows * cols), 62);
    for (Activation act : {Activation::linear, Activation::relu, Activation::tanh,
                           Activation::sigmoid, Activation::softmax}) {
        Buf X(*e, x), O(*e, rows * cols), DO(*e, dout), DX(*e, rows * cols);
        e->activation_forward(O.p(), X.p(), rows, cols, act);
        const auto xd = to_double(x), dd = to_double(dout);
        std::vector<double> ro(x.size()), rdx(x.size());
        cpu::activation_forward<double>(ro.data(), xd.data(), rows, cols, act);
        EXPECT_TRUE(close(O.host(), ro, 1e-6)) << activation_name(act);
        e->activation_backward(DX.p(), DO.p(), O.p(), rows, cols, act);
        cpu::activation_backward<double>(rdx.data(), dd.data(), ro.data(), rows, cols, act);
        EXPECT_TRUE(close(DX.host(), rdx, 1e-5)) << activation_name(act);
        // In place (din aliases dout), as the layers use it.
        e->activation_backward(DO.p(), DO.p(), O.p(), rows, cols, act);
        EXPECT_EQ(DO.host(), DX.host()) << activation_name(act);
    }
}

// ---- dense --------------------------------------------------------------------------------------

TEST(CpuEngineDense, ForwardAndBackwardMatchFormulas) {
    auto e = make_cpu_engine();
    for (std::int64_t n : {1, 5, 33, 256}) {
        const std::int64_t ni = 40, no = 12;
        const auto x = randv(static_cast<std::size_t>(n * ni), 71),
                   w = randv(static_cast<std::size_t>(ni * no), 72);
        const auto b = randv(static_cast<std::size_t>(no), 73),
                   dz = randv(static_cast<std::size_t>(n * no), 74);
        Buf X(*e, x), W(*e, w), B(*e, b), O(*e, n * no), DZ(*e, dz), DX(*e, n * ni),
            DW(*e, ni * no), DB(*e, no);
        e->reserve_dense(n, ni, no);
        e->dense_forward(O.p(), X.p(), W.p(), B.p(), n, ni, no, Activation::relu);
        e->dense_backward(DX.p(), DW.p(), DB.p(), DZ.p(), nullptr, Activation::linear, X.p(), W.p(),
                          n, ni, no);
        std::vector<double> ro(static_cast<std::size_t>(n * no)),
            rdx(static_cast<std::size_t>(n * ni)), rdw(static_cast<std::size_t>(ni * no)),
            rdb(static_cast<std::size_t>(no));
        for (std::int64_t r = 0; r < n; ++r)
            for (std::int64_t j = 0; j < no; ++j) {
                double s = b[j];
                for (std::int64_t i = 0; i < ni; ++i) s += double(x[r * ni + i]) * w[i * no + j];
                ro[r * no + j] = s > 0 ? s : 0;
                rdb[j] += dz[r * no + j];
                for (std::int64_t i = 0; i < ni; ++i) {
                    rdw[i * no + j] += double(x[r * ni + i]) * dz[r * no + j];
                    rdx[r * ni + i] += double(dz[r * no + j]) * w[i * no + j];
                }
            }
        EXPECT_TRUE(close(O.host(), ro, 1e-5 * ni)) << "n=" << n;
        EXPECT_TRUE(close(DX.host(), rdx, 1e-5 * no)) << "n=" << n;
        EXPECT_TRUE(close(DW.host(), rdw, 1e-5 * n)) << "n=" << n;
        EXPECT_TRUE(close(DB.host(), rdb, 1e-5 * n)) << "n=" << n;
    }
}

// ---- loss, Adam, data ---------------------------------------------------------------------------

TEST(CpuEngineLoss, SoftmaxCrossEntropyGradientLossAndAccuracy) {
    auto e = make_cpu_engine();
    const std::int64_t n = 4, k = 3;
    const std::vector<float> p{0.7f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f,
                               0.3f, 0.3f, 0.4f, 0.0f, 1.0f, 0.0f};
    const std::vector<std::int32_t> y{0, 2, 2, 0};
    Buf P(*e, p), D(*e, n * k);
    EngineBuffer<std::int32_t> Y(*e, n);
    e->upload(Y.data(), y.data(), Y.bytes());
    EngineBuffer<Metrics> m(*e, 1);
    e->softmax_xent(D.p(), m.data(), P.p(), Y.data(), n, k, n, nullptr, 0);
    Metrics h;
    e->download(&h, m.data(), sizeof h);
    // Sample 3 has p_label = 0: the loss is clamped at -log(1e-7).
    const double loss = -std::log(0.7) - std::log(0.1) - std::log(0.4) - std::log(1e-7);
    EXPECT_NEAR(h.loss_sum, loss, 1e-5);
    EXPECT_EQ(h.correct, 2.0);  // samples 0 and 2
    EXPECT_EQ(h.count, 4.0);
    const auto d = D.host();
    for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t j = 0; j < k; ++j)
            EXPECT_FLOAT_EQ(d[r * k + j], (p[r * k + j] - (j == y[r] ? 1.0f : 0.0f)) / n);
    // Metrics accumulate across calls; no gradient is written for a null dlogits.
    e->softmax_xent(nullptr, m.data(), P.p(), Y.data(), n, k, n, nullptr, 0);
    e->download(&h, m.data(), sizeof h);
    EXPECT_EQ(h.count, 8.0);
    EXPECT_EQ(h.correct, 4.0);
    // A training step's loss also counts the step: step + 1, cursor past the batch.
    EngineBuffer<StepCounters> c(*e, 1);
    e->fill_zero(c.data(), sizeof(StepCounters));
    e->softmax_xent(nullptr, m.data(), P.p(), Y.data(), n, k, n, c.data(), 32);
    e->softmax_xent(nullptr, m.data(), P.p(), Y.data(), n, k, n, c.data(), 32);
    StepCounters hc;
    e->download(&hc, c.data(), sizeof hc);
    EXPECT_EQ(hc.step, 2);
    EXPECT_EQ(hc.cursor, 64);
}

TEST(CpuEngineAdam, UpdateFollowsTheKerasFormula) {
    auto e = make_cpu_engine();
    const std::int64_t n = 50;
    const auto p0 = randv(static_cast<std::size_t>(n), 81),
               g = randv(static_cast<std::size_t>(n), 82);
    Buf P(*e, p0), G(*e, g), M(*e, n), V(*e, n);
    EngineBuffer<StepCounters> c(*e, 1);
    const AdamConfig cfg{1e-3f, 0.9f, 0.999f, 1e-7f};
    std::vector<double> p(p0.begin(), p0.end()), m(static_cast<std::size_t>(n)),
        v(static_cast<std::size_t>(n));
    for (int t = 1; t <= 3; ++t) {
        e->advance(c.data(), 0, true);  // the step is counted before its update
        e->adam_update(P.p(), G.p(), M.p(), V.p(), n, cfg, c.data());
        const double lr_t = 1e-3 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
        for (std::int64_t i = 0; i < n; ++i) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * double(g[i]) * g[i];
            p[i] -= lr_t * m[i] / (std::sqrt(v[i]) + 1e-7);
        }
    }
    EXPECT_TRUE(close(P.host(), p, 1e-6, 1e-6));
    StepCounters hc;
    e->download(&hc, c.data(), sizeof hc);
    EXPECT_EQ(hc.step, 3);
}

TEST(CpuEngineData, PermutationIsSeededAndGatherFollowsTheCursor) {
    auto e = make_cpu_engine();
    const std::int64_t n = 1000;
    EngineBuffer<std::int32_t> a(*e, n), b(*e, n), c(*e, n);
    e->permutation(a.data(), n, 5, true);
    e->permutation(b.data(), n, 5, true);
    e->permutation(c.data(), n, 6, true);
    std::vector<std::int32_t> ha(n), hb(n), hc(n);
    e->download(ha.data(), a.data(), a.bytes());
    e->download(hb.data(), b.data(), b.bytes());
    e->download(hc.data(), c.data(), c.bytes());
    EXPECT_EQ(ha, hb);
    EXPECT_NE(ha, hc);
    std::vector<std::int32_t> sorted = ha;
    std::sort(sorted.begin(), sorted.end());
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
    e->permutation(a.data(), n, 5, false);
    e->download(ha.data(), a.data(), a.bytes());
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(ha[i], i);

    // gather: images (n, 3) with image i = (i, i, i), label i % 10.
    std::vector<float> img(static_cast<std::size_t>(n * 3));
    std::vector<std::int32_t> lab(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        img[i * 3] = img[i * 3 + 1] = img[i * 3 + 2] = float(i);
        lab[i] = std::int32_t(i % 10);
    }
    Buf I(*e, img), X(*e, 4 * 3);
    EngineBuffer<std::int32_t> L(*e, n), Y(*e, 4);
    e->upload(L.data(), lab.data(), L.bytes());
    EngineBuffer<StepCounters> cnt(*e, 1);
    e->advance(cnt.data(), 8, false);  // cursor 8
    e->gather_batch(X.p(), Y.data(), I.p(), L.data(), b.data(), cnt.data(), 4, 3);
    const auto x = X.host();
    std::vector<std::int32_t> y(4);
    e->download(y.data(), Y.data(), Y.bytes());
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(x[i * 3 + 2], float(hb[8 + i]));
        EXPECT_EQ(y[i], hb[8 + i] % 10);
    }
    // From 8-bit images: scaled by detail::pixel_to_unit (v / 255.0f) as they are gathered.
    std::vector<std::uint8_t> px(static_cast<std::size_t>(n * 3));
    for (std::int64_t i = 0; i < n; ++i)
        for (int k = 0; k < 3; ++k) px[std::size_t(i * 3 + k)] = std::uint8_t((i * 3 + k) * 7);
    EngineBuffer<std::uint8_t> P(*e, n * 3);
    e->upload(P.data(), px.data(), P.bytes());
    e->gather_batch(X.p(), Y.data(), P.data(), L.data(), b.data(), cnt.data(), 4, 3);
    const auto x8 = X.host();
    e->download(y.data(), Y.data(), Y.bytes());
    for (int i = 0; i < 4; ++i) {
        for (int k = 0; k < 3; ++k) {
            EXPECT_EQ(x8[i * 3 + k], float(px[std::size_t(hb[8 + i] * 3 + k)]) / 255.0f);
        }
        EXPECT_EQ(y[i], hb[8 + i] % 10);
    }
}

}  // namespace
}  // namespace minicnn
