// tests/test_train.cpp — training with the CPU engine: the loss falls on a small synthetic set; the
// backward pass agrees with finite differences; the same seed gives bit-identical weights after N
// steps (and for 1 or 2 threads); a checkpoint restores weights and Adam state exactly; a resumed
// run ends bit-identical to an uninterrupted one; NaN stops training with a clear error and no
// checkpoint; bad arguments are refused. 8-bit data train bit for bit as their float32 copy; the
// memory a fit needs is what it allocates, and a run that does not fit is refused before anything
// is written.
#include "minicnn/cpu_backend.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/checkpoint.h"
#include "minicnn/error.h"
#include "minicnn/memory.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "synthetic_data.h"

namespace minicnn {
namespace {

std::string temp_path(const std::string& name) {
    return ::testing::TempDir() + "minicnn_train_" + name + "_" + std::to_string(::getpid());
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Train, LossFallsOnASmallSyntheticSet) {
    const test::Squares train = test::squares(640, 1), val = test::squares(200, 2);
    Sequential m = lenet5(1);
    Trainer t(m, Device::cpu());
    FitOptions opt;
    opt.epochs = 3;
    opt.batch_size = 32;
    const DataView v = val.view();
    int calls = 0;
    opt.on_epoch_end = [&](const EpochLog&) { ++calls; };
    const History h = t.fit(train.view(), &v, opt);
    ASSERT_EQ(h.epochs.size(), 3u);
    EXPECT_EQ(calls, 3);
    EXPECT_LT(h.epochs[2].loss, 0.5 * h.epochs[0].loss);
    EXPECT_GT(h.epochs[2].val_accuracy, 0.9);
    EXPECT_EQ(h.epochs[0].steps, 20);
    EXPECT_EQ(t.adam_steps(), 60);
    EXPECT_EQ(t.epochs_done(), 3);
    const EvalResult r = t.evaluate(v);
    EXPECT_DOUBLE_EQ(r.accuracy, h.epochs[2].val_accuracy);
    // predict: probabilities, and their argmax is what evaluate counts.
    const Tensor p = t.predict(val.x.data(), val.n);
    ASSERT_EQ(p.shape(), (Shape{val.n, 10}));
    std::int64_t hits = 0;
    for (std::int64_t i = 0; i < val.n; ++i) {
        const float* row = p.data<float>() + i * 10;
        double sum = 0;
        int best = 0;
        for (int j = 0; j < 10; ++j) {
            sum += row[j];
            if (row[j] > row[best]) best = j;
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
        hits += best == val.y[i];
    }
    EXPECT_DOUBLE_EQ(double(hits) / double(val.n), r.accuracy);
}

TEST(Train, BackwardAgreesWithFiniteDifferences) {
    // A small smooth model (tanh, sigmoid, average pooling) plus max pooling on distinct values.
    Sequential m({8, 8, 2}, "gradcheck");
    m.conv2d(3, {3, 3}, Padding::same(), Activation::tanh)
        .maxpool2d({2, 2})
        .conv2d(4, {2, 2}, Padding::valid(), Activation::sigmoid)
        .avgpool2d({1, 1})
        .flatten()
        .dense(5, Activation::tanh)
        .dense(3, Activation::softmax);
    m.init_params(5);
    std::mt19937 g(9);
    std::vector<float> x(6 * 128);
    for (float& v : x) v = float(g() % 100000) / 100000.0f;
    const std::vector<std::int32_t> y{0, 1, 2, 2, 1, 0};
    const std::vector<float> p0 = m.params();
    Trainer t(m, Device::cpu());
    t.train_step(x.data(), y.data(), 6, AdamConfig{});
    const std::vector<float> grad = t.gradients();
    const DataView d{x.data(), y.data(), 6};
    int checked = 0;
    for (std::size_t i = 0; i < p0.size(); i += 7) {
        const float eps = 1e-2f;
        m.params() = p0;
        m.params()[i] = p0[i] + eps;
        t.push_params();
        const double lp = t.evaluate(d).loss;
        m.params()[i] = p0[i] - eps;
        t.push_params();
        const double lm = t.evaluate(d).loss;
        const double fd = (lp - lm) / (2.0 * eps);
        EXPECT_NEAR(grad[i], fd, 2e-3 + 3e-2 * std::fabs(fd)) << "parameter " << i;
        ++checked;
    }
    EXPECT_GT(checked, 20);
}

std::vector<float> train_steps(std::uint64_t seed, int steps, int threads) {
    const int saved = cpu::thread_count();
    cpu::set_thread_count(threads);
    const test::Squares s = test::squares(64, 3);
    Sequential m = lenet5(seed);
    Trainer t(m, Device::cpu());
    for (int i = 0; i < steps; ++i) {
        t.train_step(s.x.data() + (i % 2) * 32 * 784, s.y.data() + (i % 2) * 32, 32, AdamConfig{});
    }
    t.pull_params();
    cpu::set_thread_count(saved);
    return m.params();
}

TEST(Train, SameSeedGivesBitIdenticalWeightsAfterNSteps) {
    const auto a = train_steps(11, 6, 2), b = train_steps(11, 6, 2);
    EXPECT_TRUE(bit_identical(a, b));
    EXPECT_FALSE(bit_identical(a, lenet5(11).params())) << "the steps must change the weights";
    EXPECT_FALSE(bit_identical(a, train_steps(12, 6, 2)));
    // The CPU engine splits batches into fixed chunks: the thread count does not change a bit.
    EXPECT_TRUE(bit_identical(a, train_steps(11, 6, 1)));
}

TEST(Train, CheckpointRoundTripRestoresWeightsAndAdamState) {
    const test::Squares s = test::squares(96, 4);
    Sequential m = lenet5(21);
    Trainer t(m, Device::cpu());
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 32;
    opt.seed = 77;
    t.fit(s.view(), nullptr, opt);
    const std::string path = temp_path("roundtrip.ckpt");
    save_training_checkpoint(path, t.to_checkpoint());

    const Checkpoint ck = load_checkpoint(path);
    Sequential m2 = model_from_checkpoint(ck);
    EXPECT_EQ(m2.spec(), m.spec());
    EXPECT_TRUE(bit_identical(m2.params(), m.params()));
    Sequential m3 = lenet5(0);
    Trainer t3(m3, Device::cpu());
    t3.load_checkpoint_state(ck);
    t3.pull_params();
    EXPECT_TRUE(bit_identical(m3.params(), m.params()));
    EXPECT_TRUE(bit_identical(t3.adam_m(), t.adam_m()));
    EXPECT_TRUE(bit_identical(t3.adam_v(), t.adam_v()));
    EXPECT_EQ(t3.adam_steps(), 3);
    EXPECT_EQ(t3.epochs_done(), 1);
    EXPECT_EQ(t3.seed(), 77u);
    // A different architecture is refused with a message.
    Sequential other({28, 28, 1});
    other.flatten().dense(10, Activation::softmax);
    Trainer t4(other, Device::cpu());
    EXPECT_THROW(t4.load_checkpoint_state(ck), ArgumentError);
    std::remove(path.c_str());
}

// A checkpoint whose checksum is right but whose metadata is not (written by another tool, or a
// future version) is refused with an ArgumentError naming the key, and leaves the trainer as it
// was.
TEST(Train, CheckpointWithBadMetadataIsRefusedAndChangesNothing) {
    Sequential m = lenet5(21);
    Trainer t(m, Device::cpu());
    const Checkpoint good = t.to_checkpoint();
    Sequential m2 = lenet5(5);
    Trainer t2(m2, Device::cpu());
    t2.pull_params();
    const std::vector<float> before = m2.params();
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"adam_lr", "abc"},     {"adam_lr", "-0.001"}, {"adam_beta2", "1.5"},
        {"adam_eps", "inf"},    {"adam_step", "7x"},   {"epochs_done", "-1"},
        {"shuffle_seed", "-3"}, {"shuffle_seed", ""},  {"epochs_done", "99999999999"}};
    for (const auto& kv : bad) {
        SCOPED_TRACE(kv.first + " = '" + kv.second + "'");
        Checkpoint ck = good;
        ck.set(kv.first, kv.second);
        try {
            t2.load_checkpoint_state(ck);
            ADD_FAILURE() << "expected ArgumentError";
        } catch (const ArgumentError& e) {
            const std::string msg = e.what();
            const std::string key =
                kv.first == "adam_beta2" || kv.first == "adam_lr" ? "" : kv.first;
            EXPECT_NE(msg.find("checkpoint"), std::string::npos) << msg;
            if (!key.empty()) EXPECT_NE(msg.find(key), std::string::npos) << msg;
        }
        t2.pull_params();
        EXPECT_TRUE(bit_identical(m2.params(), before))
            << "a refused checkpoint changed the weights";
        EXPECT_EQ(t2.epochs_done(), 0);
    }
}

TEST(Train, ResumedRunEndsBitIdenticalToAnUninterruptedOne) {
    const test::Squares s = test::squares(100, 5),
                        v = test::squares(30, 6);  // 100 = 3 batches of 32 + 4
    const DataView vv = v.view();
    FitOptions opt;
    opt.batch_size = 32;
    opt.seed = 5;

    Sequential full = lenet5(8);
    Trainer tf(full, Device::cpu());
    opt.epochs = 3;
    tf.fit(s.view(), &vv, opt);
    tf.pull_params();

    const std::string path = temp_path("resume.ckpt");
    {
        Sequential first = lenet5(8);
        Trainer t1(first, Device::cpu());
        opt.epochs = 1;
        opt.on_epoch_end = [&](const EpochLog&) {
            save_training_checkpoint(path, t1.to_checkpoint());
        };
        t1.fit(s.view(), &vv, opt);
    }
    Sequential resumed = lenet5(999);  // different initial weights: all must come from the file
    Trainer t2(resumed, Device::cpu());
    t2.load_checkpoint_state(load_checkpoint(path));
    opt.epochs = 3;
    opt.on_epoch_end = nullptr;
    const History h = t2.fit(s.view(), &vv, opt);
    t2.pull_params();
    ASSERT_EQ(h.epochs.size(), 2u);
    EXPECT_EQ(h.epochs[0].epoch, 2);
    EXPECT_TRUE(bit_identical(resumed.params(), full.params()));
    EXPECT_TRUE(bit_identical(t2.adam_m(), tf.adam_m()));
    EXPECT_EQ(t2.adam_steps(), tf.adam_steps());
    std::remove(path.c_str());
}

TEST(Train, NaNStopsTrainingWithAClearErrorAndNoCheckpoint) {
    test::Squares s = test::squares(64, 7);
    s.x[5 * 784 + 100] = NAN;
    Sequential m = lenet5(1);
    Trainer t(m, Device::cpu());
    FitOptions opt;
    opt.epochs = 2;
    opt.batch_size = 16;
    int epoch_ends = 0;
    opt.on_epoch_end = [&](const EpochLog&) { ++epoch_ends; };
    try {
        t.fit(s.view(), nullptr, opt);
        FAIL() << "a NaN input must stop training";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
    }
    EXPECT_EQ(epoch_ends, 0);
    // And a poisoned state is never written.
    Checkpoint ck = t.to_checkpoint();
    EXPECT_THROW(save_training_checkpoint(temp_path("nan.ckpt"), ck), Error);
}

TEST(Train, FitRefusesBadArguments) {
    const test::Squares s = test::squares(32, 8);
    Sequential m = lenet5(1);
    Trainer t(m, Device::cpu());
    FitOptions opt;
    opt.batch_size = 0;
    EXPECT_THROW(t.fit(s.view(), nullptr, opt), ArgumentError);
    opt.batch_size = 8;
    opt.epochs = -1;
    EXPECT_THROW(t.fit(s.view(), nullptr, opt), ArgumentError);
    opt.epochs = 1;
    opt.adam.lr = NAN;
    EXPECT_THROW(t.fit(s.view(), nullptr, opt), ArgumentError);
    opt.adam.lr = -1e-3f;
    EXPECT_THROW(t.fit(s.view(), nullptr, opt), ArgumentError);
    opt.adam.lr = 1e-3f;
    test::Squares bad = s;
    bad.y[3] = 10;
    EXPECT_THROW(t.fit(bad.view(), nullptr, opt), ArgumentError);
    EXPECT_THROW(t.fit(DataView{s.x.data(), s.y.data(), 0}, nullptr, opt), ArgumentError);
    DataView both = s.view();  // float32 images and 8-bit pixels: which?
    const std::vector<std::uint8_t> px(s.x.size());
    both.pixels = px.data();
    EXPECT_THROW(t.fit(both, nullptr, opt), ArgumentError);
    Sequential no_softmax({28, 28, 1});
    no_softmax.flatten().dense(10);
    Trainer t2(no_softmax, Device::cpu());
    EXPECT_THROW(t2.fit(s.view(), nullptr, opt), ArgumentError);
}

// 8-bit data are scaled as each batch is gathered (training) and as each evaluation batch is
// (validation, evaluate): the run is bit-identical to one on the float32 copy.
TEST(Train, EightBitDataTrainBitIdenticalToTheirFloatCopy) {
    const test::Squares8 train = test::squares8(200, 11), val = test::squares8(70, 12);
    FitOptions opt;
    opt.epochs = 2;
    opt.batch_size = 32;
    Sequential m8 = lenet5(5), mf = lenet5(5);
    Trainer t8(m8, Device::cpu()), tf(mf, Device::cpu());
    const DataView v8 = val.view(), vf = val.float_view();
    const History h8 = t8.fit(train.view(), &v8, opt);
    const History hf = tf.fit(train.float_view(), &vf, opt);
    ASSERT_EQ(h8.epochs.size(), 2u);
    for (std::size_t e = 0; e < 2; ++e) {
        EXPECT_EQ(h8.epochs[e].loss, hf.epochs[e].loss);
        EXPECT_EQ(h8.epochs[e].val_loss, hf.epochs[e].val_loss);
        EXPECT_EQ(h8.epochs[e].val_accuracy, hf.epochs[e].val_accuracy);
    }
    t8.pull_params();
    tf.pull_params();
    EXPECT_TRUE(bit_identical(m8.params(), mf.params()));
    const EvalResult r8 = t8.evaluate(v8, 16), rf = tf.evaluate(vf, 16);
    EXPECT_EQ(r8.loss, rf.loss);
    EXPECT_EQ(r8.accuracy, rf.accuracy);
}

// memory_need is exactly what fit() then holds at its peak in engine buffers: the state, the plan
// for the batch, the epoch permutation and the validation's sample index.
TEST(Train, MemoryNeedIsWhatFitAllocates) {
    const test::Squares8 train = test::squares8(300, 13), val = test::squares8(50, 14);
    Sequential m = lenet5(2);
    Trainer t(m, Device::cpu());
    const DataView v = val.view();
    const MemoryNeed need = t.memory_need(train.view(), &v, 300);
    EXPECT_EQ(need.state, 4 * std::size_t(m.param_count()) * sizeof(float) + sizeof(StepCounters) +
                              sizeof(Metrics));
    EXPECT_EQ(need.data, (300 + 50) * sizeof(std::int32_t) + sizeof(StepCounters));  // host data
    EXPECT_GT(need.plan, std::size_t(300) * 784 * sizeof(float));  // at least the batch itself
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 300;
    t.fit(train.view(), &v, opt);
    EXPECT_EQ(t.engine().peak_buffer_bytes(), need.total());
    EXPECT_EQ(t.engine().buffer_bytes(), need.state + need.plan);  // the run's data are freed
}

// The need against the host's memory: with an address-space limit (ulimit -v) that leaves half of
// what the run needs, fit() refuses in one line giving both numbers, before it writes anything: the
// checkpoint and the metrics file that are already there stay as they were.
TEST(Train, ARunThatDoesNotFitInHostMemoryIsRefusedAndTouchesNoFile) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "AddressSanitizer maps terabytes of shadow memory: no address-space limit";
#else
    const test::Squares8 train = test::squares8(4096, 15);
    Sequential m = lenet5(3);
    Trainer t(m, Device::cpu());
    const std::string ck = temp_path("refused.ckpt"), csv = temp_path("refused.csv");
    const std::string saved = "a checkpoint of an earlier run\n", rows = "epoch,loss\n1,0.5\n";
    std::ofstream(ck, std::ios::binary) << saved;
    std::ofstream(csv, std::ios::binary) << rows;
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 4096;
    opt.checkpoint_path = ck;
    opt.metrics_path = csv;
    const std::size_t need = t.memory_need(train.view(), nullptr, opt.batch_size).total();
    ASSERT_GT(need, std::size_t(64) << 20);  // the plan for 4096 samples
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_AS, &old), 0);
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const std::size_t mapped = std::size_t(pages) * std::size_t(::sysconf(_SC_PAGESIZE));
    rlimit tight = old;
    tight.rlim_cur = mapped + need / 2;
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < tight.rlim_cur)
        tight.rlim_cur = old.rlim_cur;
    ASSERT_EQ(::setrlimit(RLIMIT_AS, &tight), 0);
    std::string msg;
    try {
        t.fit(train.view(), nullptr, opt);
    } catch (const DeviceError& e) {
        msg = e.what();
    }
    const std::size_t available = host_memory_available();
    ASSERT_EQ(::setrlimit(RLIMIT_AS, &old), 0);
    ASSERT_FALSE(msg.empty()) << "a run that needs " << need << " bytes with " << available
                              << " available was not refused";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not fit in host memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("needs " + std::to_string(need) + " bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bytes ("), std::string::npos) << msg;
    EXPECT_LT(available, need);
    auto slurp = [](const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    };
    EXPECT_EQ(slurp(ck), saved);
    EXPECT_EQ(slurp(csv), rows);
    EXPECT_EQ(t.epochs_done(), 0);
    std::remove(ck.c_str());
    std::remove(csv.c_str());
#endif
}

}  // namespace
}  // namespace minicnn
