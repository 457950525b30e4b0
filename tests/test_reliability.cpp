// tests/test_reliability.cpp — the `minicnn` program under bad input, divergence and SIGKILL, run
// as a separate process (MINICNN_BINARY_DIR/minicnn, fork/exec):
//   - bad data: truncated files (raw and gzip), wrong magic, headers whose counts do not match the
//     file (2^31-1 included, under an address-space limit so a huge allocation would fail), garbage
//     where gzip is expected, image and label counts that disagree, images that are not 28x28,
//     labels outside [0, 10), a data path that is a file; bad checkpoints (corrupt, truncated,
//     empty, another model, a directory, missing) for evaluate, predict and train --resume; bad
//     numbers (--lr beyond float32, --epochs / --batch-size beyond int, --validation that leaves
//     nothing); --device cuda without a GPU. Each must end with exit status != 0 and exactly one
//     line on stderr that names the file or the argument.
//   - divergence: a huge learning rate makes the weights Inf/NaN; the run stops with a "diverged"
//     error, exit status 1, and the previous checkpoint is byte-for-byte the one before.
//   - SIGKILL: a real training run is killed mid-epoch; the last checkpoint loads (also through
//     `minicnn evaluate`), and --resume continues from its epoch and ends bit-identical to an
//     uninterrupted run, with one metrics row per epoch (a row whose checkpoint the kill prevented
//     is dropped on resume).
// (Argument errors already covered by test_cli.cpp — batch size 0, negative epochs, NaN or
// negative learning rate, unknown device, missing data folder — are not repeated here.)
#include <dirent.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/checkpoint.h"
#include "minicnn/device.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "process_util.h"

namespace minicnn {
namespace {

using test::Bytes;
using test::Result;

constexpr std::uint64_t kGiB = std::uint64_t(1) << 30;

class ReliabilityTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        scratch_ = new std::string(test::make_scratch_dir("reliability"));
        good_ = new std::string(*scratch_ + "/good");
        test::write_idx_dataset(*good_, 60, 20, 11);
    }
    static void TearDownTestSuite() {
        delete scratch_;
        delete good_;
        scratch_ = good_ = nullptr;
    }

    // A copy of the good data set in <scratch>/<name> (raw files), to be broken by the test.
    static std::string data_copy(const std::string& name) {
        const std::string d = *scratch_ + "/" + name;
        ::mkdir(d.c_str(), 0755);
        for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
            const std::string s = test::slurp_file(*good_ + "/" + f);
            test::write_file_bytes(d + "/" + f, Bytes(s.begin(), s.end()));
        }
        return d;
    }

    static Result run(const std::vector<std::string>& args, std::uint64_t as_limit = 0) {
        return test::run_minicnn(*scratch_, args, as_limit);
    }

    // Training on `dir` must fail (exit status 1) with one line on stderr naming every `needles`.
    static void expect_train_fails(const std::string& dir, const std::vector<std::string>& needles,
                                   std::uint64_t as_limit = 2 * kGiB) {
        const std::vector<std::string> args{"train", "--data",       dir, "--device",
                                            "cpu",   "--epochs",     "1", "--validation",
                                            "10",    "--batch-size", "16"};
        expect_fails(args, 1, needles, as_limit);
    }

    static void expect_fails(const std::vector<std::string>& args, int status,
                             const std::vector<std::string>& needles, std::uint64_t as_limit = 0) {
        const Result r = run(args, as_limit);
        const std::string cmd = test::join_args(args);
        EXPECT_EQ(r.signal, 0) << cmd << " was killed by signal " << r.signal << "\n" << r.err;
        EXPECT_EQ(r.exit_code, status) << cmd << "\nstdout: " << r.out << "\nstderr: " << r.err;
        EXPECT_EQ(test::line_count(r.err), 1) << cmd << "\nstderr: " << r.err;
        EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << cmd << ": " << r.err;
        for (const std::string& n : needles) {
            EXPECT_NE(r.err.find(n), std::string::npos)
                << cmd << ": stderr should contain '" << n << "': " << r.err;
        }
    }

    static std::string* scratch_;
    static std::string* good_;
};

std::string* ReliabilityTest::scratch_ = nullptr;
std::string* ReliabilityTest::good_ = nullptr;

Bytes cut(Bytes b, std::size_t n) {
    b.resize(n);
    return b;
}

// ---- bad data through `minicnn train` -----------------------------------------------------------

TEST_F(ReliabilityTest, TruncatedImageFileRawAndGzip) {
    const Bytes images = test::idx_images(60, 28, 28, 11);
    std::string d = data_copy("trunc_raw");
    test::write_file_bytes(d + "/train-images-idx3-ubyte", cut(images, images.size() / 2));
    expect_train_fails(d, {d + "/train-images-idx3-ubyte"});
    test::write_file_bytes(d + "/train-images-idx3-ubyte", cut(images, 10));  // inside the header
    expect_train_fails(d, {d + "/train-images-idx3-ubyte"});

    d = data_copy("trunc_gz");
    ::remove((d + "/train-images-idx3-ubyte").c_str());
    const Bytes gz = test::gzip_bytes(images);
    // A gzip stream cut short, and a whole stream of a truncated file.
    test::write_file_bytes(d + "/train-images-idx3-ubyte.gz", cut(gz, gz.size() / 2));
    expect_train_fails(d, {d + "/train-images-idx3-ubyte.gz"});
    test::write_file_bytes(d + "/train-images-idx3-ubyte.gz",
                           test::gzip_bytes(cut(images, images.size() - 1)));
    expect_train_fails(d, {d + "/train-images-idx3-ubyte.gz"});
}

TEST_F(ReliabilityTest, WrongMagicNamesTheFile) {
    const std::string d = data_copy("magic");
    test::write_file_bytes(d + "/t10k-labels-idx1-ubyte", test::idx_labels(20, 12, -1, 0x00000803));
    expect_train_fails(d, {d + "/t10k-labels-idx1-ubyte", "801"});
}

TEST_F(ReliabilityTest, HeaderCountsThatDoNotMatchTheFile) {
    const std::string d = data_copy("counts");
    const std::string img = d + "/train-images-idx3-ubyte", lbl = d + "/train-labels-idx1-ubyte";
    // More images announced than present, fewer than present.
    test::write_file_bytes(img, test::idx_images(60, 28, 28, 11, 61));
    expect_train_fails(d, {img});
    test::write_file_bytes(img, test::idx_images(60, 28, 28, 11, 59));
    expect_train_fails(d, {img});
    // 2^31-1 images and labels: refused from the header, under a 2 GiB address-space limit (the
    // label file alone would be 2 GiB, the images 1.6 TiB); never a bad_alloc.
    test::write_file_bytes(img, test::idx_images(60, 28, 28, 11, 0x7fffffff));
    expect_train_fails(d, {img});
    test::write_file_bytes(img, test::gzip_bytes(test::idx_images(60, 28, 28, 11, 0x7fffffff)));
    ::rename(img.c_str(), (img + ".gz").c_str());
    expect_train_fails(d, {img + ".gz"});
    ::remove((img + ".gz").c_str());
    test::write_file_bytes(img, test::idx_images(60, 28, 28, 11));
    test::write_file_bytes(lbl, test::idx_labels(60, 11, 0x7fffffff));
    expect_train_fails(d, {lbl});
    // Huge rows and cols.
    Bytes huge = test::idx_images(0, 0x7fffffff, 0x7fffffff, 11, 60);
    test::write_file_bytes(lbl, test::idx_labels(60, 11));
    test::write_file_bytes(img, huge);
    expect_train_fails(d, {img});
}

TEST_F(ReliabilityTest, GarbageWhereGzipIsExpected) {
    const std::string d = data_copy("garbage_gz");
    const std::string gz = d + "/train-labels-idx1-ubyte.gz";
    ::remove((d + "/train-labels-idx1-ubyte").c_str());
    // The gzip magic followed by garbage, and text that is not gzip at all.
    Bytes g{0x1f, 0x8b, 0x08, 0x00};
    std::mt19937 rng(3);
    for (int i = 0; i < 300; ++i) g.push_back(std::uint8_t(rng()));
    test::write_file_bytes(gz, g);
    expect_train_fails(d, {gz});
    const std::string text = "this is not a gzip file\n";
    test::write_file_bytes(gz, Bytes(text.begin(), text.end()));
    expect_train_fails(d, {gz});
    // An empty file.
    test::write_file_bytes(gz, Bytes{});
    expect_train_fails(d, {gz});
}

TEST_F(ReliabilityTest, ImageAndLabelCountsThatDisagree) {
    const std::string d = data_copy("disagree");
    test::write_file_bytes(d + "/train-labels-idx1-ubyte", test::idx_labels(59, 11));
    expect_train_fails(d, {d + "/train-images-idx3-ubyte", "60 images but 59 labels"});
}

TEST_F(ReliabilityTest, ImagesThatAreNot28x28) {
    const std::string d = data_copy("not28");
    test::write_file_bytes(d + "/t10k-images-idx3-ubyte", test::idx_images(20, 14, 28, 12));
    expect_train_fails(d, {d + "/t10k-images-idx3-ubyte", "14x28", "28x28"});
}

TEST_F(ReliabilityTest, LabelsOutsideTheClasses) {
    const std::string d = data_copy("labels");
    Bytes l = test::idx_labels(60, 11);
    l[8 + 5] = 10;
    test::write_file_bytes(d + "/train-labels-idx1-ubyte", l);
    expect_train_fails(d, {d + "/train-labels-idx1-ubyte", "is 10"});
}

TEST_F(ReliabilityTest, DataPathThatIsAFileOrHasNoImages) {
    const std::string d = data_copy("nofiles");
    expect_train_fails(d + "/train-images-idx3-ubyte", {d + "/train-images-idx3-ubyte"});
    ::remove((d + "/t10k-images-idx3-ubyte").c_str());
    expect_train_fails(d, {d, "t10k-images"});
    // evaluate on a missing folder names it too.
    const std::string ck = *scratch_ + "/fresh_for_missing.ckpt";
    Sequential m = lenet5(1);
    Trainer t(m, Device::cpu());
    save_training_checkpoint(ck, t.to_checkpoint());
    expect_fails(
        {"evaluate", "--checkpoint", ck, "--data", *scratch_ + "/no/such/dir", "--device", "cpu"},
        1, {*scratch_ + "/no/such/dir"});
}

// ---- bad numbers the parser accepts but the run cannot use --------------------------------------

TEST_F(ReliabilityTest, NumbersBeyondTheirTypeAndValidationTooLarge) {
    const std::vector<std::string> base{"train",    "--data", *good_,         "--device", "cpu",
                                        "--epochs", "1",      "--batch-size", "16"};
    std::vector<std::string> a = base;
    // Finite doubles that are +inf or 0 as float32 (the learning rate's type).
    for (const char* lr : {"1e39", "1e-50"}) {
        a = base;
        a.insert(a.end(), {"--validation", "10", "--lr", lr});
        expect_fails(a, 2, {"--lr", lr});
    }
    // Integers beyond int: never wrapped into another value (4294967296 would be 0).
    for (const char* opt : {"--epochs", "--batch-size"}) {
        a = base;
        a.insert(a.end(), {"--validation", "10", opt, "4294967296"});
        expect_fails(a, 2, {opt, "4294967296"});
    }
    a = base;
    a.insert(a.end(), {"--validation", "60"});
    expect_fails(a, 2, {"--validation", "60"});
    a = base;
    a.insert(a.end(), {"--validation", "10", "--limit", "1"});
    expect_fails(a, 2, {"--limit"});
}

TEST_F(ReliabilityTest, CudaDeviceWithoutAGpuIsAOneLineError) {
    if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is visible: --device cuda would work";
    for (const char* dev : {"cuda", "cuda:0", "cuda:3"}) {
        expect_fails(
            {"train", "--data", *good_, "--device", dev, "--epochs", "1", "--validation", "10"}, 1,
            {"CUDA"});
    }
}

// ---- bad checkpoints ----------------------------------------------------------------------------

TEST_F(ReliabilityTest, CorruptMissingOrForeignCheckpoints) {
    const std::string s = *scratch_;
    const std::string good_ck = s + "/good.ckpt";
    Sequential m = lenet5(1);
    Trainer t(m, Device::cpu());
    save_training_checkpoint(good_ck, t.to_checkpoint());
    const std::string bytes_s = test::slurp_file(good_ck);
    const Bytes bytes(bytes_s.begin(), bytes_s.end());
    ASSERT_GT(bytes.size(), 1000u);

    struct Case {
        std::string name;
        Bytes content;
    };
    Bytes flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x40;
    Bytes foreign_magic = bytes;
    foreign_magic[0] = 'X';
    // A valid checkpoint of another architecture.
    Sequential other({28, 28, 1});
    other.flatten().dense(10, Activation::softmax);
    Trainer to(other, Device::cpu());
    const std::string other_path = s + "/other.ckpt";
    save_training_checkpoint(other_path, to.to_checkpoint());
    const std::string other_s = test::slurp_file(other_path);
    const std::vector<Case> cases{{"flipped.ckpt", flipped},
                                  {"truncated.ckpt", cut(bytes, bytes.size() - 7)},
                                  {"header_only.ckpt", cut(bytes, 20)},
                                  {"empty.ckpt", Bytes{}},
                                  {"magic.ckpt", foreign_magic},
                                  {"idx.ckpt", test::idx_labels(10, 1)}};
    for (const Case& c : cases) {
        const std::string p = s + "/" + c.name;
        test::write_file_bytes(p, c.content);
        SCOPED_TRACE(c.name);
        expect_fails({"evaluate", "--checkpoint", p, "--data", *good_, "--device", "cpu"}, 1, {p});
        expect_fails(
            {"predict", "--checkpoint", p, "--data", *good_, "--device", "cpu", "--index", "0"}, 1,
            {p});
        // --resume with a broken checkpoint must not silently start afresh (and overwrite it).
        expect_fails({"train", "--data", *good_, "--device", "cpu", "--epochs", "1", "--validation",
                      "10", "--checkpoint", p, "--resume"},
                     1, {p});
        EXPECT_EQ(test::slurp_file(p), std::string(c.content.begin(), c.content.end()))
            << "the broken checkpoint was overwritten";
    }
    // Another model: evaluate could run it, and --resume without --model takes its architecture,
    // but resuming a --model (here LeNet-5's Keras file) from it must be refused.
    const std::string lenet_json =
        std::string(MINICNN_SOURCE_DIR) + "/tests/data/keras/lenet5_keras2.json";
    expect_fails({"train", "--data", *good_, "--device", "cpu", "--epochs", "1", "--validation",
                  "10", "--checkpoint", other_path, "--resume", "--model", lenet_json},
                 1, {"different model"});
    EXPECT_EQ(test::slurp_file(other_path), other_s);
    // A directory and a missing file.
    expect_fails({"evaluate", "--checkpoint", s, "--data", *good_, "--device", "cpu"}, 1, {s});
    expect_fails({"predict", "--checkpoint", s + "/missing.ckpt", "--data", *good_, "--device",
                  "cpu", "--index", "1"},
                 1, {s + "/missing.ckpt"});
}

// ---- divergence ---------------------------------------------------------------------------------

TEST_F(ReliabilityTest, DivergenceStopsWithAClearErrorAndKeepsThePreviousCheckpoint) {
    const std::string s = *scratch_;
    const std::string ck = s + "/diverge.ckpt", csv = s + "/diverge.csv";
    const std::vector<std::string> base{
        "train", "--data",       *good_, "--device",     "cpu", "--seed",    "5", "--batch-size",
        "16",    "--validation", "10",   "--checkpoint", ck,    "--metrics", csv};
    std::vector<std::string> a = base;
    a.insert(a.end(), {"--epochs", "1"});
    Result r = run(a);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string before = test::slurp_file(ck);
    ASSERT_FALSE(before.empty());

    // Resume with a learning rate that throws the weights to +-1e30 in one Adam step: the next
    // forward pass overflows to Inf and the gradients become NaN.
    a = base;
    a.insert(a.end(), {"--epochs", "3", "--resume", "--lr", "1e30"});
    r = run(a);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_EQ(test::line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("diverged"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("epoch 2"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("Epoch 2/3"), std::string::npos) << "no epoch line for a diverged epoch";
    EXPECT_EQ(test::slurp_file(ck), before) << "the checkpoint of epoch 1 must be left as it was";
    const Checkpoint c = load_checkpoint(ck);
    EXPECT_EQ(c.get("epochs_done"), "1");
    EXPECT_EQ(test::line_count(test::slurp_file(csv)), 2) << "header + epoch 1 only";

    // A fresh run that diverges in its first epoch writes no checkpoint at all.
    const std::string ck2 = s + "/diverge_fresh.ckpt";
    r = run({"train", "--data", *good_, "--device", "cpu", "--epochs", "2", "--batch-size", "16",
             "--validation", "10", "--lr", "1e30", "--checkpoint", ck2});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("diverged"), std::string::npos) << r.err;
    EXPECT_FALSE(test::file_exists(ck2));
}

// ---- SIGKILL mid-epoch --------------------------------------------------------------------------

std::vector<std::string> csv_rows(const std::string& path) {
    std::vector<std::string> rows;
    std::string line;
    std::istringstream in(test::slurp_file(path));
    while (std::getline(in, line)) {
        if (!line.empty() && line.rfind("epoch,", 0) != 0) rows.push_back(line);
    }
    return rows;
}

double csv_seconds(const std::string& row) {  // epoch,loss,accuracy,val_loss,val_acc,seconds,...
    std::istringstream in(row);
    std::string f;
    for (int i = 0; i < 6 && std::getline(in, f, ','); ++i) {
    }
    return std::atof(f.c_str());
}

std::vector<std::string> files_starting_with(const std::string& dir, const std::string& prefix) {
    std::vector<std::string> v;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            if (std::string(e->d_name).rfind(prefix, 0) == 0) v.push_back(e->d_name);
        }
        ::closedir(d);
    }
    return v;
}

TEST_F(ReliabilityTest, KilledMidEpochKeepsTheCheckpointAndResumeFinishesBitIdentical) {
    const std::string s = test::make_scratch_dir("reliability_kill");
    const std::string data = s + "/data";
    test::write_idx_dataset(data, 2400, 20, 21);  // epochs long enough to land a kill inside one
    const std::string ck = s + "/run.ckpt", csv = s + "/run.csv";
    const int epochs = 10;
    auto args = [&](const std::string& ckpt, const std::string& metrics) {
        return std::vector<std::string>{"train",
                                        "--data",
                                        data,
                                        "--device",
                                        "cpu",
                                        "--seed",
                                        "7",
                                        "--epochs",
                                        std::to_string(epochs),
                                        "--batch-size",
                                        "8",
                                        "--validation",
                                        "200",
                                        "--checkpoint",
                                        ckpt,
                                        "--metrics",
                                        metrics};
    };

    const test::Child c = test::spawn_minicnn(args(ck, csv), s + "/killed.out", s + "/killed.err");
    ASSERT_GT(c.pid, 0);
    // Wait for epoch 2's row (its checkpoint follows it), then into epoch 3 and kill -9 there.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::vector<std::string> rows;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
        rows = csv_rows(csv);
        if (rows.size() >= 2) break;
        int status = 0;
        if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
            exited = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (exited || rows.size() < 2) {
        ::kill(c.pid, SIGKILL);
        if (!exited) test::wait_child(c);
        FAIL() << "the training run did not reach epoch 2 (" << rows.size()
               << " rows): " << test::slurp_file(s + "/killed.err");
    }
    const double epoch_s = csv_seconds(rows[1]);
    const double wait_s = std::max(0.005, 0.4 * epoch_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
    ASSERT_EQ(::kill(c.pid, SIGKILL), 0);
    const Result killed = test::wait_child(c);
    ASSERT_EQ(killed.signal, SIGKILL)
        << "the run ended before the kill: " << killed.out << killed.err;
    const std::size_t rows_at_kill = csv_rows(csv).size();
    ASSERT_LT(rows_at_kill, std::size_t(epochs)) << "killed after the last epoch";

    // The checkpoint is complete and valid: epoch 2 or a later finished epoch, never a partial
    // one (CSV rows are written just before the checkpoint of the same epoch).
    Checkpoint saved;
    ASSERT_NO_THROW(saved = load_checkpoint(ck));
    const int done = std::stoi(saved.get("epochs_done"));
    EXPECT_GE(done, 2);
    EXPECT_TRUE(std::size_t(done) == rows_at_kill || std::size_t(done) + 1 == rows_at_kill)
        << done << " epochs in the checkpoint, " << rows_at_kill << " CSV rows";
    std::printf("killed %.2f s into epoch %zu (%.2f s per epoch); the checkpoint holds %d epochs\n",
                wait_s, rows_at_kill + 1, epoch_s, done);
    // A temporary file left by the kill does not replace or damage it.
    for (const std::string& f : files_starting_with(s, "run.ckpt.tmp.")) {
        std::printf("note: the kill left the temporary file %s; the checkpoint is intact\n",
                    f.c_str());
    }
    Result r =
        test::run_minicnn(s, {"evaluate", "--checkpoint", ck, "--data", data, "--device", "cpu"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Test: loss"), std::string::npos) << r.out;

    // --resume continues from the saved epoch and finishes.
    r = test::run_minicnn(s, [&] {
        auto a = args(ck, csv);
        a.push_back("--resume");
        return a;
    }());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Resuming from " + ck + " after epoch " + std::to_string(done)),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Epoch " + std::to_string(done + 1) + "/" + std::to_string(epochs)),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.find("Epoch " + std::to_string(done) + "/"), std::string::npos)
        << "a finished epoch was trained again: " << r.out;
    EXPECT_NE(r.out.find("Epoch " + std::to_string(epochs) + "/" + std::to_string(epochs)),
              std::string::npos)
        << r.out;
    const Checkpoint final_ck = load_checkpoint(ck);
    EXPECT_EQ(final_ck.get("epochs_done"), std::to_string(epochs));
    // The metrics file has one row per epoch, in order, whatever the kill left in it.
    const std::vector<std::string> final_rows = csv_rows(csv);
    ASSERT_EQ(final_rows.size(), std::size_t(epochs)) << test::slurp_file(csv);
    for (int e = 0; e < epochs; ++e)
        EXPECT_EQ(std::atoi(final_rows[std::size_t(e)].c_str()), e + 1);

    // On the CPU the interrupted and resumed run ends with the same weights and Adam state, bit for
    // bit, as one that was never interrupted.
    const std::string ck_full = s + "/full.ckpt";
    r = test::run_minicnn(s, args(ck_full, s + "/full.csv"));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const Checkpoint full = load_checkpoint(ck_full);
    for (const char* name : {"params", "adam_m", "adam_v"}) {
        EXPECT_TRUE(final_ck.array(name).bytes == full.array(name).bytes)
            << name << " differs between the resumed and the uninterrupted run";
    }
    EXPECT_EQ(final_ck.get("adam_step"), full.get("adam_step"));
}

// A kill between an epoch's CSV row and its checkpoint leaves a row for an epoch the checkpoint
// does not hold; --resume trains that epoch again and must not list it twice.
TEST_F(ReliabilityTest, ResumeDropsMetricsRowsTheCheckpointDoesNotHold) {
    const std::string s = *scratch_;
    const std::string ck = s + "/rows.ckpt", csv = s + "/rows.csv";
    auto args = [&](const char* epochs) {
        return std::vector<std::string>{"train", "--data",       *good_, "--device",
                                        "cpu",   "--epochs",     epochs, "--batch-size",
                                        "16",    "--validation", "10",   "--checkpoint",
                                        ck,      "--metrics",    csv,    "--resume"};
    };
    Result r = run(args("1"));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string dead_row = "2,9.9,0.1,9.9,0.1,1.0,100";  // the dead run's row of epoch 2
    {
        std::ofstream f(csv, std::ios::app);
        f << dead_row << "\n";
    }
    r = run(args("3"));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::vector<std::string> rows = csv_rows(csv);
    ASSERT_EQ(rows.size(), 3u) << test::slurp_file(csv);
    for (int e = 0; e < 3; ++e) EXPECT_EQ(std::atoi(rows[std::size_t(e)].c_str()), e + 1);
    // The dead row itself (not merely "9.9", which a real row's images/s can contain, e.g.
    // 15229.94475).
    for (const std::string& row : rows) EXPECT_NE(row, dead_row) << test::slurp_file(csv);
    EXPECT_EQ(test::slurp_file(csv).rfind("epoch,loss,accuracy", 0), 0u);
    EXPECT_FALSE(test::file_exists(csv + ".tmp"));
}

}  // namespace
}  // namespace minicnn
