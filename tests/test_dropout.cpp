// tests/test_dropout.cpp — dropout: the CPU twin (host/cpu/dropout.cpp) on its own (the fraction
// dropped is the rate, the expectation is preserved, kept units are scaled exactly, independent
// masks per seed, layer and step, a rank's share draws what one process draws for those samples),
// the Dropout layer (the identity in evaluation, its spec and checkpoint round trip, its summary
// row, a resumed run ending bit-identical to an uninterrupted one), and the CUDA kernel (cuda/dropout.cu) against the CPU bit for bit: masks, outputs and
// gradients, in a recorded CUDA graph whose replays draw new units each step, and a whole fit of a
// CIFAR-shaped model with dropout read from a Keras file. The GPU tests skip, saying why, where no
// GPU is visible (the emulator runs them: tests/emu/run.sh 'CudaDropout*').
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "minicnn/checkpoint.h"
#include "minicnn/detail/dropout.h"
#include "minicnn/engine.h"
#include "minicnn/keras.h"
#include "minicnn/layers.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "synthetic_data.h"
#include "test_util.h"

namespace minicnn {
namespace {

using namespace enginetest;

// The step counter and a TrainingStep on one engine.
struct Steps {
    EngineBuffer<StepCounters> counters;
    Steps(Engine& e, std::int64_t step) : counters(e, 1) {
        const StepCounters c{step, 0};
        e.upload(counters.data(), &c, sizeof c);
    }
    TrainingStep at(std::uint64_t seed, std::int64_t first = 0) const {
        return {seed, counters.data(), first};
    }
};

struct Drawn {
    std::vector<float> out;
    std::vector<std::int32_t> mask;
};

// dropout_forward of x on `e` at `step`.
Drawn draw(Engine& e, const std::vector<float>& x, std::int64_t sample, float rate,
           std::uint64_t layer, std::uint64_t seed, std::int64_t step, std::int64_t first = 0) {
    const std::int64_t n = std::int64_t(x.size());
    EngineBuffer<float> in(e, n), out(e, n);
    EngineBuffer<std::int32_t> mask(e, n);
    e.upload(in.data(), x.data(), in.bytes());
    const Steps s(e, step);
    e.dropout_forward(out.data(), mask.data(), in.data(), n, sample, rate, layer,
                      s.at(seed, first));
    Drawn d{std::vector<float>(x.size()), std::vector<std::int32_t>(x.size())};
    e.download(d.out.data(), out.data(), out.bytes());
    e.download(d.mask.data(), mask.data(), mask.bytes());
    return d;
}

double fraction_dropped(const std::vector<std::int32_t>& mask) {
    std::int64_t dropped = 0;
    for (std::int32_t m : mask) dropped += m == 0;
    return double(dropped) / double(mask.size());
}

// |fraction - p| within 5 standard deviations of a binomial over n draws.
void expect_fraction(double fraction, double p, std::size_t n, const std::string& what) {
    const double sd = std::sqrt(p * (1 - p) / double(n));
    EXPECT_NEAR(fraction, p, 5 * sd + 1e-12) << what;
}

TEST(Dropout, CpuDropsTheRateAndPreservesTheExpectation) {
    auto c = make_cpu_engine();
    const std::size_t n = 1 << 18;
    const std::vector<float> ones(n, 1.0f), x = randv(n, 3);
    for (float rate : {0.1f, 0.25f, 0.5f, 0.8f}) {
        const std::string what = "rate " + std::to_string(rate);
        const Drawn d = draw(*c, ones, 1024, rate, 3, 42, 7);
        expect_fraction(fraction_dropped(d.mask), rate, n, what);
        // E[out] = 1: the kept ones are scaled by 1 / (1 - rate).
        double sum = 0;
        for (float v : d.out) sum += v;
        const double sd = std::sqrt(rate / (1 - rate) / double(n));
        EXPECT_NEAR(sum / double(n), 1.0, 5 * sd) << what;
        // Each kept unit is x * scale exactly, each dropped one 0; the mask says which.
        const Drawn dx = draw(*c, x, 1024, rate, 3, 42, 7);
        EXPECT_EQ(dx.mask, d.mask) << what << ": the mask does not depend on the values";
        const float scale = detail::dropout_scale(rate);
        EXPECT_EQ(scale, float(1.0 / (1.0 - double(rate))));
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < n; ++i)
            wrong += dx.out[i] != (dx.mask[i] ? x[i] * scale : 0.0f);
        EXPECT_EQ(wrong, 0u) << what;
    }
    // Rate 0 keeps everything, unscaled.
    const Drawn none = draw(*c, x, 1024, 0.0f, 3, 42, 7);
    EXPECT_EQ(none.out, x);
    EXPECT_EQ(fraction_dropped(none.mask), 0.0);
}

// Masks for another seed, layer or step are independent: two of them drop the same unit with
// probability rate^2. A rank whose share starts at sample `first` draws exactly what one process
// draws for those samples.
TEST(Dropout, SeedLayerAndStepDrawIndependentMasksAndRanksDrawTheirShare) {
    auto c = make_cpu_engine();
    const std::size_t n = 1 << 16;
    const std::int64_t sample = 256;
    const std::vector<float> x(n, 1.0f);
    const float rate = 0.5f;
    const Drawn base = draw(*c, x, sample, rate, 2, 9, 5);
    const std::vector<std::pair<std::string, Drawn>> others{
        {"another seed", draw(*c, x, sample, rate, 2, 10, 5)},
        {"another layer", draw(*c, x, sample, rate, 3, 9, 5)},
        {"the next step", draw(*c, x, sample, rate, 2, 9, 6)},
    };
    for (const auto& [what, d] : others) {
        std::size_t both = 0;
        for (std::size_t i = 0; i < n; ++i) both += base.mask[i] == 0 && d.mask[i] == 0;
        expect_fraction(double(both) / double(n), rate * rate, n, what);
    }
    // The second half of the batch as a rank's share.
    const std::vector<float> half(n / 2, 1.0f);
    const Drawn share = draw(*c, half, sample, rate, 2, 9, 5, std::int64_t(n / 2) / sample);
    EXPECT_EQ(share.mask, std::vector<std::int32_t>(base.mask.begin() + n / 2, base.mask.end()));
}

TEST(Dropout, BackwardPassesTheGradientOfKeptUnitsScaled) {
    auto c = make_cpu_engine();
    const std::size_t n = 4099;
    const std::vector<float> x = randv(n, 5), dy = randv(n, 6);
    const Drawn d = draw(*c, x, 1, 0.3f, 0, 1, 0);
    EngineBuffer<float> g(*c, std::int64_t(n)), dx(*c, std::int64_t(n));
    EngineBuffer<std::int32_t> m(*c, std::int64_t(n));
    c->upload(g.data(), dy.data(), g.bytes());
    c->upload(m.data(), d.mask.data(), m.bytes());
    c->dropout_backward(dx.data(), g.data(), m.data(), std::int64_t(n), 0.3f);
    c->dropout_backward(g.data(), g.data(), m.data(), std::int64_t(n), 0.3f);  // in place
    const float scale = detail::dropout_scale(0.3f);
    for (std::size_t i = 0; i < n; ++i) {
        const float want = d.mask[i] ? dy[i] * scale : 0.0f;
        ASSERT_EQ(dx.data()[i], want) << i;
        ASSERT_EQ(g.data()[i], want) << i << " in place";
    }
}

TEST(Dropout, LayerIsTheIdentityInEvaluationAndRoundTripsItsSpec) {
    Sequential m({8}, "drop");
    m.dense(6, Activation::relu).dropout(0.25f).dense(3, Activation::softmax);
    const Layer& l = m.layer(1);
    EXPECT_EQ(l.name, "dropout");
    EXPECT_EQ(l.spec(), "Dropout rate=0.25");
    EXPECT_EQ(l.op().kind, LayerOp::Kind::dropout);
    EXPECT_EQ(l.output_shape(), (Shape{6}));
    EXPECT_EQ(l.param_count(), 0);
    EXPECT_NE(m.summary().find("dropout (Dropout)"), std::string::npos) << m.summary();
    // Evaluation: a view of the input, no copy, and the identity's gradient.
    auto c = make_cpu_engine();
    std::vector<float> x = randv(12, 1), dy = randv(12, 2), dx(12);
    const LayerContext ctx = l.forward(*c, x.data(), nullptr, nullptr, 2);
    EXPECT_EQ(ctx.out, x.data());
    l.backward(*c, ctx, dy.data(), false, dx.data());
    EXPECT_EQ(dx, dy);
    // An odd rate survives the spec exactly; a checkpoint rebuilds the model.
    Sequential odd({8}, "odd");
    odd.dense(6).dropout(0.3f).dense(3, Activation::softmax);
    const Sequential back = Sequential::from_spec(odd.spec());
    EXPECT_EQ(static_cast<const Dropout&>(back.layer(1)).rate(), 0.3f);
    EXPECT_EQ(back.spec(), odd.spec());
    Trainer t(odd, Device::cpu());
    const std::vector<std::uint8_t> bytes = serialize_checkpoint(t.to_checkpoint());
    const Checkpoint ck = parse_checkpoint(bytes.data(), bytes.size(), "in memory");
    EXPECT_EQ(model_from_checkpoint(ck).spec(), odd.spec());
    // Bad rates, one line each.
    for (const char* bad : {"Dropout rate=1", "Dropout rate=-0.1", "Dropout rate=x", "Dropout"}) {
        const std::string e = test::error_of([&] { Layer::from_spec(bad); });
        EXPECT_NE(e.find("rate"), std::string::npos) << bad << ": " << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
}

// A model with dropout resumed from a checkpoint (its architecture too) after epoch 1 ends
// bit-identical to the uninterrupted run: the checkpoint keeps the seed and the step count, from
// which the units are drawn. Another seed draws other units (other weights).
TEST(Dropout, AResumedRunDropsWhatTheUninterruptedRunDrops) {
    const test::Squares s = test::squares(72, 5);  // 72 = 2 batches of 32 + 8
    auto model = [] {
        Sequential m({28, 28, 1}, "drop");
        m.conv2d(4, {5, 5}, Padding::same(), Activation::relu)
            .maxpool2d({2, 2})
            .dropout(0.3f)
            .flatten()
            .dense(24, Activation::relu)
            .dropout(0.5f)
            .dense(10, Activation::softmax);
        m.init_params(8);
        return m;
    };
    FitOptions opt;
    opt.batch_size = 32;
    opt.seed = 5;
    opt.epochs = 3;
    Sequential full = model();
    Trainer tf(full, Device::cpu());
    tf.fit(s.view(), nullptr, opt);
    tf.pull_params();

    Sequential first = model();
    Trainer t1(first, Device::cpu());
    opt.epochs = 1;
    t1.fit(s.view(), nullptr, opt);
    const std::vector<std::uint8_t> bytes = serialize_checkpoint(t1.to_checkpoint());
    const Checkpoint ck = parse_checkpoint(bytes.data(), bytes.size(), "in memory");
    Sequential resumed = model_from_checkpoint(ck);
    EXPECT_EQ(resumed.spec(), full.spec());
    Trainer t2(resumed, Device::cpu());
    t2.load_checkpoint_state(ck);
    opt.epochs = 3;
    t2.fit(s.view(), nullptr, opt);
    t2.pull_params();
    EXPECT_EQ(resumed.params(), full.params());
}

// ---- the CUDA kernel against the CPU --------------------------------------------------------

TEST(CudaDropout, ForwardAndBackwardEqualTheCpuBitForBit) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    for (std::int64_t count : {1, 255, 257, 6 * 1024 + 3}) {
        for (float rate : {0.0f, 0.3f, 0.5f}) {
            for (std::int64_t step :
                 {std::int64_t(0), std::int64_t(1), std::int64_t(12345678901)}) {
                const std::string what = "count " + std::to_string(count) + " rate " +
                                         std::to_string(rate) + " step " + std::to_string(step);
                const std::vector<float> x = randv(std::size_t(count), unsigned(count));
                const Drawn dc = draw(*c, x, 3, rate, 4, 77, step, 5);
                const Drawn dg = draw(*g, x, 3, rate, 4, 77, step, 5);
                EXPECT_EQ(dg.mask, dc.mask) << what;
                EXPECT_EQ(dg.out, dc.out) << what;
                // Backward, out of place and in place.
                const std::vector<float> dy = randv(std::size_t(count), unsigned(count) + 1);
                Twin<float> grad(*c, *g, dy), dx(*c, *g, count);
                Twin<std::int32_t> mask(*c, *g, dc.mask);
                c->dropout_backward(dx.cpu.data(), grad.cpu.data(), mask.cpu.data(), count, rate);
                g->dropout_backward(dx.gpu.data(), grad.gpu.data(), mask.gpu.data(), count, rate);
                EXPECT_EQ(dx.host_gpu(), dx.host_cpu()) << what;
                c->dropout_backward(grad.cpu.data(), grad.cpu.data(), mask.cpu.data(), count, rate);
                g->dropout_backward(grad.gpu.data(), grad.gpu.data(), mask.gpu.data(), count, rate);
                EXPECT_EQ(grad.host_gpu(), dx.host_cpu()) << what << " in place";
            }
        }
    }
}

// A recorded graph freezes the kernel's arguments; the step comes from device memory, so each
// replay draws the units of the next step, and each equals the CPU's for that step.
TEST(CudaDropout, GraphReplaysDrawNewUnitsEachStepAndEqualTheCpu) {
    MINICNN_REQUIRE_GPU();
    auto c = make_cpu_engine();
    auto g = make_engine(Device::cuda());
    const std::int64_t n = 2000;
    const std::vector<float> x = randv(std::size_t(n), 8);
    EngineBuffer<float> in(*g, n), out(*g, n);
    EngineBuffer<std::int32_t> mask(*g, n);
    g->upload(in.data(), x.data(), in.bytes());
    const Steps s(*g, 0);
    const TrainingStep t = s.at(99);
    auto enqueue = [&] {
        g->dropout_forward(out.data(), mask.data(), in.data(), n, 10, 0.4f, 6, t);
        g->advance(s.counters.data(), 0, true);  // as a training step's loss counts the step
    };
    enqueue();  // step 0 unrecorded (a warm-up, as the trainer does)
    std::unique_ptr<EngineGraph> graph = g->capture(enqueue);
    ASSERT_NE(graph, nullptr);
    const std::size_t un = static_cast<std::size_t>(n);
    std::vector<std::int32_t> prev(un), got(un);
    std::vector<float> got_out(un);
    g->download(prev.data(), mask.data(), mask.bytes());
    EXPECT_EQ(prev, draw(*c, x, 10, 0.4f, 6, 99, 0).mask) << "step 0";
    for (std::int64_t step = 1; step <= 3; ++step) {
        graph->launch();
        g->download(got.data(), mask.data(), mask.bytes());
        g->download(got_out.data(), out.data(), out.bytes());
        const Drawn want = draw(*c, x, 10, 0.4f, 6, 99, step);
        EXPECT_NE(got, prev) << "step " << step << " dropped the same units as the step before";
        EXPECT_EQ(got, want.mask) << "step " << step;
        EXPECT_EQ(got_out, want.out) << "step " << step;
        prev = got;
    }
}

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// The CIFAR-shaped model with dropout of tests/data/keras/ (Keras 3's own file), trained for 3
// steps on the CPU and on the GPU (CUDA graphs on: the first step unrecorded, then a recording
// replayed twice) from the same seeds: the same units dropped (any difference would move a step's
// loss by ~1e-2), so the same losses step by step and nearly the same weights.
TEST(CudaDropout, CifarModelWithDropoutFitMatchesCpu) {
    MINICNN_REQUIRE_GPU();
    const std::string text =
        read_text(std::string(MINICNN_SOURCE_DIR) + "/tests/data/keras/cifar_dropout_keras3.json");
    const float lr = 1e-3f;
    const std::int64_t n = 24;
    std::vector<float> images = randv(std::size_t(n * 32 * 32 * 3), 5, 0.0f, 1.0f);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) labels[std::size_t(i)] = std::int32_t((i * 7) % 10);
    struct Run {
        std::vector<double> losses;
        std::vector<float> params;
    };
    auto run = [&](const Device& device) {
        KerasOptions o;
        o.seed = 3;
        Sequential m = model_from_keras_json(text, o);
        Trainer t(m, device);
        FitOptions opt;
        opt.epochs = 1;
        opt.batch_size = 8;  // 3 steps
        opt.seed = 21;
        opt.adam.lr = lr;
        opt.progress_interval_s = 0;
        Run r;
        opt.on_progress = [&](const Progress& p) { r.losses.push_back(p.loss); };
        const History h = t.fit(DataView{images.data(), labels.data(), n}, nullptr, opt);
        r.losses.push_back(h.epochs.at(0).loss);
        t.pull_params();
        r.params = m.params();
        return r;
    };
    const Run cpu = run(Device::cpu()), gpu = run(Device::cuda());
    ASSERT_EQ(cpu.losses.size(), 3u);
    ASSERT_EQ(gpu.losses.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 1e-4 * std::fabs(cpu.losses[i])) << "step " << i;
    expect_adam_weights_close(gpu.params, cpu.params, lr, 3, 1e-5, 1e-3, "GPU against CPU");
}

}  // namespace
}  // namespace minicnn
