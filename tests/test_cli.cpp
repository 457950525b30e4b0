// tests/test_cli.cpp — the `minicnn` program, run as a separate process (the binary built next to
// this test, MINICNN_BINARY_DIR/minicnn): help, one-line errors that name the bad argument with
// exit status 2, and an end-to-end train / resume / evaluate / predict run on a tiny synthetic IDX
// data set, with its CSV, JSON and checkpoint outputs. And in process (run_cli, the minicnn_cli
// library of tools/cli.h): the exact line of each kind of usage error, CLI11's errors included.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli.h"
#include "minicnn/export.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"

namespace {

struct Proc {
    int status = -1;
    std::string out, err;
};

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string scratch_dir() {
    static const std::string dir = [] {
        std::string d = ::testing::TempDir() + "minicnn_cli_" + std::to_string(::getpid());
        ::mkdir(d.c_str(), 0755);
        return d;
    }();
    return dir;
}

// Runs `minicnn <args>` with stdout and stderr captured in files.
Proc minicnn(const std::string& args) {
    const std::string bin = std::string(MINICNN_BINARY_DIR) + "/minicnn";
    const std::string out = scratch_dir() + "/stdout", err = scratch_dir() + "/stderr";
    const std::string cmd = "'" + bin + "' " + args + " >'" + out + "' 2>'" + err + "' </dev/null";
    const int rc = std::system(cmd.c_str());
    Proc r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

int count_lines(const std::string& s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

// A usage error: exit status 2, exactly one line on stderr that contains `needle`.
void expect_usage_error(const std::string& args, const std::string& needle) {
    const Proc r = minicnn(args);
    EXPECT_EQ(r.status, 2) << "minicnn " << args << "\nstderr: " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << "minicnn " << args << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos)
        << "minicnn " << args << ": stderr should name '" << needle << "': " << r.err;
}

void put_u32(std::ofstream& f, std::uint32_t v) {
    const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                                static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    f.write(reinterpret_cast<const char*>(b), 4);
}

// Raw IDX files <dir>/<prefix>-{images-idx3,labels-idx1}-ubyte: class c is a bright square at one
// of ten places, plus noise, so a few epochs learn it.
void write_idx(const std::string& dir, const std::string& prefix, int n, unsigned seed) {
    std::mt19937 g(seed);
    std::ofstream img(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary);
    std::ofstream lab(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary);
    put_u32(img, 0x00000803);
    put_u32(img, std::uint32_t(n));
    put_u32(img, 28);
    put_u32(img, 28);
    put_u32(lab, 0x00000801);
    put_u32(lab, std::uint32_t(n));
    for (int i = 0; i < n; ++i) {
        const int c = int(g() % 10);
        const char label = char(c);
        lab.write(&label, 1);
        const int r0 = 2 + (c / 5) * 13, c0 = 1 + (c % 5) * 5;
        for (int r = 0; r < 28; ++r)
            for (int q = 0; q < 28; ++q) {
                int v = int(g() % 60);
                if (r >= r0 && r < r0 + 7 && q >= c0 && q < c0 + 7) v += 180;
                const char px = char(static_cast<unsigned char>(v));
                img.write(&px, 1);
            }
    }
}

std::string data_dir() {
    static const std::string dir = [] {
        const std::string d = scratch_dir() + "/data";
        ::mkdir(d.c_str(), 0755);
        write_idx(d, "train", 400, 1);
        write_idx(d, "t10k", 100, 2);
        return d;
    }();
    return dir;
}

TEST(Cli, HelpForTheProgramAndEachCommand) {
    Proc r = minicnn("--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("train"), std::string::npos);
    EXPECT_NE(r.out.find("evaluate"), std::string::npos);
    EXPECT_NE(r.out.find("predict"), std::string::npos);
    r = minicnn("train --help");
    EXPECT_EQ(r.status, 0);
    for (const char* opt : {"--data", "--epochs", "--batch-size", "--lr", "--seed", "--device",
                            "--checkpoint", "--resume", "--metrics", "--json"}) {
        EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
    }
    r = minicnn("evaluate --help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--checkpoint"), std::string::npos);
    r = minicnn("predict -h");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--index"), std::string::npos);
    r = minicnn("");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("usage"), std::string::npos);
}

// --no-cuda-graphs: documented, a flag (no value), and accepted by a run (on the CPU it changes
// nothing; tests/test_engine_cuda.cpp checks that on the GPU it gives the same results).
TEST(Cli, NoCudaGraphsIsAFlagOfTrain) {
    const Proc h = minicnn("train --help");
    EXPECT_NE(h.out.find("--no-cuda-graphs"), std::string::npos) << h.out;
    expect_usage_error("train --no-cuda-graphs=1", "--no-cuda-graphs");
    const Proc r = minicnn("train --data '" + data_dir() +
                           "' --device cpu --epochs 1 --batch-size 16 --validation 80 --limit 120 "
                           "--no-cuda-graphs");
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Epoch 1/1"), std::string::npos) << r.out;
}

TEST(Cli, BadArgumentsGiveOneLineNamingTheArgumentAndExitStatus2) {
    expect_usage_error("train --batch-size 0", "--batch-size");
    expect_usage_error("train --batch-size 12x", "--batch-size");
    expect_usage_error("train --epochs -3", "--epochs");
    expect_usage_error("train --lr nan", "--lr");
    expect_usage_error("train --lr -0.1", "--lr");
    expect_usage_error("train --lr inf", "--lr");
    expect_usage_error("train --device tpu", "--device");
    expect_usage_error("train --bogus 3", "--bogus");
    expect_usage_error("train --epochs", "--epochs");
    expect_usage_error("train --epochs --lr 0.1", "--epochs");
    expect_usage_error("train --resume", "--checkpoint");
    expect_usage_error("train extra", "extra");
    expect_usage_error("fly", "fly");
    expect_usage_error("evaluate", "--checkpoint");
    expect_usage_error("predict --checkpoint x.ckpt", "--index");
    expect_usage_error("predict --checkpoint x.ckpt --index -1", "--index");
}

// run_cli in this process: its exit status, standard output and standard error.
Proc run_in_process(std::vector<const char*> args) {
    args.insert(args.begin(), "minicnn");
    std::ostringstream out, err;
    Proc r;
    r.status = minicnn::run_cli(int(args.size()), args.data(), out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

// CLI11 splits the command line and reports some problems itself (an option without its value, a
// flag given one, a missing required option); each still ends as one line in the program's words.
TEST(Cli, EachKindOfUsageErrorIsExactlyOneLineInTheProgramsWords) {
    const std::vector<std::pair<std::vector<const char*>, std::string>> cases{
        {{"train", "--epochs", "12x"},
         "minicnn train: --epochs must be an integer >= 0, got '12x'"},
        {{"train", "--epochs=12x"}, "minicnn train: --epochs must be an integer >= 0, got '12x'"},
        {{"train", "--epochs", "3", "--epochs", "4x"},  // the last occurrence wins
         "minicnn train: --epochs must be an integer >= 0, got '4x'"},
        {{"train", "--epochs"}, "minicnn train: option --epochs needs a value"},
        {{"train", "--epochs", "--lr", "0.1"}, "minicnn train: option --epochs needs a value"},
        {{"train", "--data", "-h"}, "minicnn train: option --data needs a value"},
        {{"train", "--no-cuda-graphs=1"}, "minicnn train: option --no-cuda-graphs takes no value"},
        {{"train", "--no-cuda-graphs=true"},
         "minicnn train: option --no-cuda-graphs takes no value"},
        {{"train", "--bogus=3"},
         "minicnn train: unknown option '--bogus' (see 'minicnn train --help')"},
        {{"train", "extra"},
         "minicnn train: unexpected argument 'extra' (see 'minicnn train --help')"},
        {{"train", "predict"},
         "minicnn train: unexpected argument 'predict' (see 'minicnn train --help')"},
        {{"train", "--resume"}, "minicnn train: --resume requires --checkpoint"},
        {{"evaluate"}, "minicnn evaluate: --checkpoint is required"},
        {{"evaluate", "--checkpoint"}, "minicnn evaluate: option --checkpoint needs a value"},
        {{"predict", "--checkpoint", "x.ckpt"}, "minicnn predict: --index is required"},
        {{"predict", "--checkpoint", "x.ckpt", "--index", "1", "2", "3x"},
         "minicnn predict: --index must be an integer >= 0, got '3x'"},
        {{"fly"},
         "minicnn: unknown command 'fly' (expected train, evaluate, predict or export; see "
         "'minicnn --help')"},
    };
    for (const auto& c : cases) {
        const Proc r = run_in_process(c.first);
        std::string cmd;
        for (const char* a : c.first) cmd += std::string(" ") + a;
        EXPECT_EQ(r.status, 2) << "minicnn" << cmd;
        EXPECT_EQ(r.err, c.second + "\n") << "minicnn" << cmd;
        EXPECT_EQ(r.out, "") << "minicnn" << cmd;
    }
    // The last --epochs is a good one: the run goes on to the data, and fails there (status 1).
    const Proc r = run_in_process({"train", "--epochs", "4x", "--epochs", "1", "--data",
                                   "/nonexistent/minicnn", "--device", "cpu"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.err.rfind("minicnn train: error: ", 0), 0u) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, HelpInProcessGoesToStandardOutput) {
    Proc r = run_in_process({"train", "--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.err, "");
    for (const char* opt : {"--limit", "--validation", "--no-cuda-graphs", "usage: minicnn train"})
        EXPECT_NE(r.out.find(opt), std::string::npos) << opt << " in " << r.out;
    r = run_in_process({"help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("predict"), std::string::npos) << r.out;
    r = run_in_process({});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("usage: minicnn"), std::string::npos) << r.err;
}

TEST(Cli, MissingDataIsAOneLineErrorWithStatus1) {
    const Proc r = minicnn("train --data /nonexistent/minicnn --epochs 1");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("/nonexistent/minicnn"), std::string::npos) << r.err;
}

TEST(Cli, TrainResumeEvaluatePredictEndToEnd) {
    const std::string d = data_dir(), s = scratch_dir();
    const std::string ck = s + "/run.ckpt", csv = s + "/run.csv", json = s + "/run.json";
    const std::string common =
        "--data '" + d + "' --device cpu --batch-size 16 --validation 80 --seed 3";
    Proc r = minicnn("train " + common + " --epochs 2 --checkpoint '" + ck + "' --metrics '" + csv +
                     "' --json '" + json + "'");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Total params: 61,706"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Epoch 2/2"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("val_accuracy"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Test: loss"), std::string::npos) << r.out;
    const std::string c = slurp(csv);
    EXPECT_EQ(count_lines(c), 3) << c;  // header + one row per epoch
    EXPECT_EQ(c.rfind("epoch,loss,accuracy,val_loss,val_accuracy", 0), 0u) << c;
    const std::string j = slurp(json);
    for (const char* key : {"\"test_accuracy\"", "\"test_loss\"", "\"epochs\": 2",
                            "\"train_images_per_second\"", "\"device\": \"cpu", "\"seconds\""}) {
        EXPECT_NE(j.find(key), std::string::npos) << key << " in " << j;
    }
    // The peak resident set size: at least the program and the data, less than the machine; no
    // device memory on the CPU.
    const std::string peak_key = "\"peak_host_memory_bytes\": ";
    const std::size_t at = j.find(peak_key);
    ASSERT_NE(at, std::string::npos) << j;
    const long long peak = std::atoll(j.c_str() + at + peak_key.size());
    EXPECT_GT(peak, 4ll << 20) << j;
    EXPECT_LT(peak, 64ll << 30) << j;
    EXPECT_NE(j.find("\"peak_device_memory_bytes\": null"), std::string::npos) << j;

    // Resume: one more epoch, appended to the CSV.
    r = minicnn("train " + common + " --epochs 3 --resume --checkpoint '" + ck + "' --metrics '" +
                csv + "'");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Resuming from"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Epoch 3/3"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("Epoch 1/3"), std::string::npos) << r.out;
    EXPECT_EQ(count_lines(slurp(csv)), 4);

    r = minicnn("evaluate --checkpoint '" + ck + "' --data '" + d + "' --device cpu --json '" +
                json + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("accuracy"), std::string::npos);
    EXPECT_NE(slurp(json).find("\"test_accuracy\""), std::string::npos);

    r = minicnn("predict --checkpoint '" + ck + "' --data '" + d + "' --device cpu --index 0 7 99");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(count_lines(r.out), 3) << r.out;
    EXPECT_NE(r.out.find("index 7: class"), std::string::npos) << r.out;

    expect_usage_error("predict --checkpoint '" + ck + "' --data '" + d + "' --index 100", "100");
    r = minicnn("evaluate --checkpoint '" + s + "/missing.ckpt' --data '" + d + "'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("missing.ckpt"), std::string::npos) << r.err;
}

// CIFAR-10 binary files <dir>/<name>: n records, class c a bright square in channel c % 3 at one
// of ten places, plus noise.
void write_cifar(const std::string& path, int n, unsigned seed) {
    std::mt19937 g(seed);
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < n; ++i) {
        const int c = int(g() % 10);
        f.put(char(c));
        const int r0 = 2 + (c / 5) * 14, c0 = 1 + (c % 5) * 6;
        for (int ch = 0; ch < 3; ++ch)
            for (int r = 0; r < 32; ++r)
                for (int q = 0; q < 32; ++q) {
                    int v = int(g() % 60);
                    if (ch == c % 3 && r >= r0 && r < r0 + 8 && q >= c0 && q < c0 + 6) v += 180;
                    f.put(char(static_cast<unsigned char>(v)));
                }
    }
}

// The CIFAR-shaped Keras model trained for one epoch on CIFAR-format files, then evaluated,
// predicted and resumed from its checkpoint without the model file.
TEST(Cli, TrainsAKerasModelFileOnCifarDataAndUsesTheCheckpointWithoutIt) {
    const std::string d = scratch_dir() + "/cifar", s = scratch_dir();
    ::mkdir(d.c_str(), 0755);
    write_cifar(d + "/data_batch_1.bin", 100, 11);
    write_cifar(d + "/data_batch_2.bin", 60, 12);
    write_cifar(d + "/test_batch.bin", 40, 13);
    const std::string model =
        std::string(MINICNN_SOURCE_DIR) + "/tests/data/keras/cifar_keras3.json";
    const std::string ck = s + "/cifar.ckpt";
    Proc r = run_in_process({"train", "--data", d.c_str(), "--model", model.c_str(), "--device",
                             "cpu", "--epochs", "1", "--batch-size", "16", "--validation", "32",
                             "--checkpoint", ck.c_str()});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Model: \"cifar_small\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Total params: 34,522"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(CIFAR-10 binary): 128 train, 32 validation, 40 test images"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Epoch 1/1"), std::string::npos) << r.out;

    r = run_in_process(
        {"evaluate", "--checkpoint", ck.c_str(), "--data", d.c_str(), "--device", "cpu"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("(40 images"), std::string::npos) << r.out;
    r = run_in_process({"predict", "--checkpoint", ck.c_str(), "--data", d.c_str(), "--device",
                        "cpu", "--index", "0", "39"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(count_lines(r.out), 2) << r.out;
    // --resume without --model takes the checkpoint's architecture.
    r = run_in_process({"train", "--data", d.c_str(), "--device", "cpu", "--epochs", "2",
                        "--batch-size", "16", "--validation", "32", "--checkpoint", ck.c_str(),
                        "--resume"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Resuming from"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Epoch 2/2"), std::string::npos) << r.out;

    // LeNet-5 (no --model) on 32x32x3 images: one line naming both shapes.
    r = run_in_process(
        {"train", "--data", d.c_str(), "--device", "cpu", "--epochs", "1", "--validation", "32"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("(28, 28, 1)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(32, 32, 3)"), std::string::npos) << r.err;
    // A model file for other images: refused before training, one line naming layer and field.
    const std::string lenet =
        std::string(MINICNN_SOURCE_DIR) + "/tests/data/keras/lenet5_keras2.json";
    r = run_in_process({"train", "--data", d.c_str(), "--model", lenet.c_str(), "--device", "cpu",
                        "--validation", "32"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("layer 'conv2d_input' (InputLayer): batch_input_shape: "),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.out.find("Epoch"), std::string::npos) << r.out;
}

// `minicnn export`: a checkpoint's weights as safetensors (read back equal) and its model as ONNX
// (the library's bytes); an unknown extension is a usage error that writes nothing; a failed
// export leaves an existing output as it was.
TEST(Cli, ExportWritesSafetensorsAndOnnxAndNeverDestroysAnExistingOutput) {
    const std::string s = scratch_dir() + "/export";
    ::mkdir(s.c_str(), 0755);
    const std::string ck = s + "/m.ckpt", st = s + "/m.safetensors", onnx = s + "/m.onnx";
    minicnn::Sequential model = minicnn::lenet5(4);
    {
        minicnn::Trainer t(model, minicnn::Device::cpu());
        minicnn::save_training_checkpoint(ck, t.to_checkpoint());
    }
    Proc r = minicnn("export --checkpoint '" + ck + "' --output '" + st + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("Wrote " + st + ": the weights of 'lenet5' (61,706 parameters)"),
              std::string::npos)
        << r.out;
    minicnn::Sequential back = minicnn::lenet5(5);
    minicnn::load_weights(back, st);
    EXPECT_EQ(back.params(), model.params());
    r = minicnn("export --checkpoint '" + ck + "' --output '" + onnx + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const std::vector<std::uint8_t> bytes = minicnn::model_to_onnx(model);
    EXPECT_EQ(slurp(onnx), std::string(bytes.begin(), bytes.end()));

    expect_usage_error("export --checkpoint '" + ck + "' --output '" + s + "/m.pt'",
                       "--output: export: '" + s + "/m.pt' has the extension '.pt'");
    EXPECT_FALSE(std::ifstream(s + "/m.pt").good());
    expect_usage_error("export --output '" + st + "'", "--checkpoint is required");
    expect_usage_error("export --checkpoint '" + ck + "'", "--output is required");
    const Proc h = minicnn("export --help");
    EXPECT_EQ(h.status, 0);
    EXPECT_NE(h.out.find("--output"), std::string::npos) << h.out;

    // Failures keep the existing output: a missing checkpoint, and a write that cannot start (in
    // process, where the temporary file's name, "<output>.tmp.<pid>", is known: a directory is in
    // its way).
    { std::ofstream(s + "/old.onnx") << "old"; }
    r = minicnn("export --checkpoint '" + s + "/none.ckpt' --output '" + s + "/old.onnx'");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("none.ckpt"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(s + "/old.onnx"), "old");
    const std::string out = s + "/old.onnx";
    const std::string tmp = out + ".tmp." + std::to_string(static_cast<long>(::getpid()));
    ::mkdir(tmp.c_str(), 0755);
    r = run_in_process({"export", "--checkpoint", ck.c_str(), "--output", out.c_str()});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("the previous file, if any, is unchanged"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(out), "old");
    ::rmdir(tmp.c_str());
}

// The CIFAR-shaped model with dropout that Keras 3 wrote (tests/data/keras/cifar_dropout_keras3.json:
// two 3x3 convolutions with pooling, Dropout(0.25), two dense layers with Dropout(0.5) between
// them) trains from the program on CIFAR-format files: its summary shows the dropout layers, the
// training loss falls over the epochs, and the checkpoint evaluates without the model file (where
// dropout is the identity).
TEST(Cli, TrainsTheCifarModelWithDropoutFromItsKerasFile) {
    const std::string d = scratch_dir() + "/cifar_dropout", s = scratch_dir();
    ::mkdir(d.c_str(), 0755);
    write_cifar(d + "/data_batch_1.bin", 200, 21);
    write_cifar(d + "/test_batch.bin", 40, 22);
    const std::string model =
        std::string(MINICNN_SOURCE_DIR) + "/tests/data/keras/cifar_dropout_keras3.json";
    const std::string ck = s + "/cifar_dropout.ckpt", csv = s + "/cifar_dropout.csv";
    Proc r =
        run_in_process({"train", "--data", d.c_str(), "--model", model.c_str(), "--device", "cpu",
                        "--epochs", "4", "--batch-size", "16", "--lr", "0.003", "--validation",
                        "40", "--checkpoint", ck.c_str(), "--metrics", csv.c_str()});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    for (const char* row :
         {"dropout (Dropout)", "dropout_1 (Dropout)", "Total params: 34,522", "Epoch 4/4"})
        EXPECT_NE(r.out.find(row), std::string::npos) << row << " in " << r.out;
    // epoch,loss,...: the last epoch's training loss below the first's.
    std::istringstream rows(slurp(csv));
    std::string line;
    std::vector<double> losses;
    std::getline(rows, line);  // the header
    while (std::getline(rows, line)) losses.push_back(std::atof(line.c_str() + line.find(',') + 1));
    ASSERT_EQ(losses.size(), 4u) << slurp(csv);
    EXPECT_LT(losses.back(), losses.front()) << slurp(csv);
    r = run_in_process(
        {"evaluate", "--checkpoint", ck.c_str(), "--data", d.c_str(), "--device", "cpu"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("(40 images"), std::string::npos) << r.out;
}

}  // namespace
