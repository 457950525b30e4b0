// tests/test_determinism.cpp — the same seed gives bit-identical training, end to end:
//   - CPU, through Trainer::fit (shuffled epochs, validation, the last shorter batch): the whole
//     serialised training state (weights, Adam moments and step, metadata) is byte-identical for
//     two runs with the same seeds, and differs when the weight seed or the shuffle seed changes;
//     predictions of the same weights are bit-identical too.
//   - CPU, through the `minicnn` program: two runs with the same --seed write byte-identical
//     checkpoints and the same per-epoch losses.
//   - GPU (CudaEngine, whose kernels use no floating-point atomics and reduce in a fixed order, so
//     it is always in its deterministic mode): the same as the first point; skipped without a GPU.
//     Exact with or without FMA contraction: two runs execute the same compiled kernels on the same
//     inputs with the same launch configurations, so each rounding happens alike.
// (test_train.cpp already covers N train_step calls and the CPU thread count.)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/checkpoint.h"
#include "minicnn/device.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "process_util.h"
#include "synthetic_data.h"

namespace minicnn {
namespace {

struct RunResult {
    std::vector<std::uint8_t> state;  // the serialised training checkpoint
    std::vector<float> params;
    std::vector<double> losses;  // per epoch, training and validation
};

// Two epochs of 150 images in batches of 16 (the last batch has 6), with validation.
RunResult fit_run(const Device& device, std::uint64_t init_seed, std::uint64_t shuffle_seed) {
    static const test::Squares train = test::squares(150, 1), val = test::squares(40, 2);
    Sequential m = lenet5(init_seed);
    Trainer t(m, device);
    FitOptions opt;
    opt.epochs = 2;
    opt.batch_size = 16;
    opt.seed = shuffle_seed;
    const DataView vv = val.view();
    const History h = t.fit(train.view(), &vv, opt);
    RunResult r;
    for (const EpochLog& e : h.epochs) {
        r.losses.push_back(e.loss);
        r.losses.push_back(e.val_loss);
    }
    r.state = serialize_checkpoint(t.to_checkpoint());  // pulls the weights into m
    r.params = m.params();
    return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The index and values of the first difference, for failure messages.
std::string first_difference(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size())
        return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            std::ostringstream os;
            os.precision(9);
            os << "first difference at parameter " << i << ": " << a[i] << " vs " << b[i];
            return os.str();
        }
    }
    return "no difference";
}

void expect_deterministic_fit(const Device& device) {
    const RunResult a = fit_run(device, 3, 10), b = fit_run(device, 3, 10);
    EXPECT_TRUE(same_bits(a.params, b.params)) << first_difference(a.params, b.params);
    EXPECT_TRUE(a.state == b.state) << "the serialised training states differ";
    EXPECT_EQ(a.losses, b.losses);
    EXPECT_FALSE(same_bits(a.params, lenet5(3).params())) << "training must change the weights";
    // Another shuffle seed (same initial weights) and another weight seed both change the result.
    EXPECT_FALSE(same_bits(a.params, fit_run(device, 3, 11).params));
    EXPECT_FALSE(same_bits(a.params, fit_run(device, 4, 10).params));
}

void expect_deterministic_predict(const Device& device) {
    const test::Squares d = test::squares(70, 9);
    Sequential m = lenet5(5);
    Trainer t(m, device);
    const Tensor p1 = t.predict(d.x.data(), d.n, 32);
    const Tensor p2 = t.predict(d.x.data(), d.n, 32);
    ASSERT_EQ(p1.numel(), d.n * 10);
    EXPECT_EQ(std::memcmp(p1.data<float>(), p2.data<float>(), std::size_t(p1.numel()) * 4), 0);
    const EvalResult e1 = t.evaluate(d.view(), 32), e2 = t.evaluate(d.view(), 32);
    EXPECT_EQ(e1.loss, e2.loss);
    EXPECT_EQ(e1.accuracy, e2.accuracy);
}

TEST(Determinism, CpuFitWithTheSameSeedsIsBitIdentical) {
    expect_deterministic_fit(Device::cpu());
}

TEST(Determinism, CpuPredictAndEvaluateAreBitIdentical) {
    expect_deterministic_predict(Device::cpu());
}

TEST(Determinism, ProgramRunsWithTheSameSeedWriteIdenticalCheckpoints) {
    const std::string s = test::make_scratch_dir("determinism");
    const std::string data = s + "/data";
    test::write_idx_dataset(data, 120, 20, 31);
    auto run = [&](const std::string& tag, const std::string& seed) {
        const std::vector<std::string> args{"train",
                                            "--data",
                                            data,
                                            "--device",
                                            "cpu",
                                            "--seed",
                                            seed,
                                            "--epochs",
                                            "2",
                                            "--batch-size",
                                            "16",
                                            "--validation",
                                            "30",
                                            "--checkpoint",
                                            s + "/" + tag + ".ckpt",
                                            "--metrics",
                                            s + "/" + tag + ".csv"};
        const test::Result r = test::run_minicnn(s, args);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return test::slurp_file(s + "/" + tag + ".ckpt");
    };
    // The loss and accuracy columns of the CSV (the timing columns differ).
    auto metrics = [&](const std::string& tag) {
        std::istringstream in(test::slurp_file(s + "/" + tag + ".csv"));
        std::string line, kept;
        while (std::getline(in, line)) {
            std::istringstream row(line);
            std::string f;
            for (int i = 0; i < 5 && std::getline(row, f, ','); ++i) kept += f + ",";
            kept += "\n";
        }
        return kept;
    };
    const std::string a = run("a", "8"), b = run("b", "8"), c = run("c", "9");
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << "two runs with --seed 8 wrote different checkpoints";
    EXPECT_FALSE(a == c) << "--seed 9 wrote the same checkpoint as --seed 8";
    EXPECT_EQ(metrics("a"), metrics("b"));
    EXPECT_EQ(test::line_count(metrics("a")), 3);
}

class DeterminismGpu : public ::testing::Test {
protected:
    void SetUp() override {
        if (!built_with_cuda()) GTEST_SKIP() << "GPU test skipped: minicnn was built without CUDA";
        if (cuda_device_count() == 0)
            GTEST_SKIP() << "GPU test skipped, no usable CUDA device: "
                         << cuda_unavailable_reason();
    }
};

TEST_F(DeterminismGpu, FitWithTheSameSeedsIsBitIdentical) {
    expect_deterministic_fit(Device::cuda(0));
}

TEST_F(DeterminismGpu, PredictAndEvaluateAreBitIdentical) {
    expect_deterministic_predict(Device::cuda(0));
}

}  // namespace
}  // namespace minicnn
