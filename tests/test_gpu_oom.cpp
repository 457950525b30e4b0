// tests/test_gpu_oom.cpp — running out of memory is a clear DeviceError that names the size asked
// for, never a crash, a silent short allocation or a sticky CUDA error:
//   - GPU (skipped without one): the training engine (make_engine(Device::cuda(0)) and
//     EngineBuffer, what Trainer allocates through) asked for 1 PiB, and for more elements than
//     size_t bytes can count; the engine still works after the failure.
//   - CPU engine (always runs): the same absurd sizes through alloc_bytes and EngineBuffer.
//   - A training run that does not fit in the device's memory is refused before it starts
//     (emulator: a small emulated device), and Trainer::memory_need is what fit() allocates.
// (test_cuda_runtime.cpp covers a plain 1 PiB DeviceBuffer.)
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/device.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "synthetic_data.h"

#if defined(MINICNN_CUDA_EMULATOR)
#include <cuda_runtime.h>  // cudaMemGetInfo, emu::set_device_memory
#endif

namespace minicnn {
namespace {

constexpr std::size_t kPiB = std::size_t(1) << 50;  // beyond any GPU and any 47-bit address space

// Calls f, expects a DeviceError whose message contains every needle.
template <class F>
void expect_device_error(F&& f, const std::vector<std::string>& needles) {
    try {
        f();
        ADD_FAILURE() << "an absurd allocation succeeded";
    } catch (const DeviceError& e) {
        const std::string m = e.what();
        for (const std::string& n : needles) {
            EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' missing from: " << m;
        }
    }
}

// The engine is usable after a failed allocation: a small buffer round-trips.
void expect_engine_still_works(Engine& e) {
    EngineBuffer<float> b(e, 3);
    const float in[3] = {1.5f, -2.0f, 3.25f};
    float out[3] = {0, 0, 0};
    e.upload(b.data(), in, sizeof in);
    e.download(out, b.data(), sizeof out);
    EXPECT_EQ(out[0], 1.5f);  // exact: a copy there and back, no arithmetic
    EXPECT_EQ(out[1], -2.0f);
    EXPECT_EQ(out[2], 3.25f);
}

TEST(EngineOutOfMemory, CpuEngineNamesTheBytesAskedFor) {
    const std::unique_ptr<Engine> e = make_cpu_engine();
    expect_device_error([&] { e->alloc_bytes(kPiB); }, {"1125899906842624 bytes"});
    // Sizes whose rounding or element-count product overflows size_t must not wrap into a small
    // allocation.
    const std::size_t max = std::numeric_limits<std::size_t>::max();
    expect_device_error([&] { e->alloc_bytes(max); }, {std::to_string(max)});
    expect_device_error([&] { EngineBuffer<float> b(*e, std::int64_t(1) << 62); },
                        {"4611686018427387904"});
    expect_device_error([&] { EngineBuffer<double> b(*e, std::int64_t(kPiB)); },
                        {"9007199254740992 bytes"});
    expect_engine_still_works(*e);
}

class GpuOutOfMemory : public ::testing::Test {
protected:
    void SetUp() override {
        if (!built_with_cuda()) GTEST_SKIP() << "GPU test skipped: minicnn was built without CUDA";
        if (cuda_device_count() == 0)
            GTEST_SKIP() << "GPU test skipped, no usable CUDA device: "
                         << cuda_unavailable_reason();
    }
};

TEST_F(GpuOutOfMemory, TrainingEngineNamesTheBytesAskedForAndKeepsWorking) {
    const std::unique_ptr<Engine> e = make_engine(Device::cuda(0));
    ASSERT_EQ(e->backend(), Backend::cuda);
    expect_device_error([&] { EngineBuffer<char> b(*e, std::int64_t(kPiB)); },
                        {"out of GPU memory: asked for 1125899906842624 bytes", "MiB free of"});
    expect_device_error([&] { EngineBuffer<float> b(*e, std::int64_t(kPiB)); },
                        {"4503599627370496 bytes"});
    expect_device_error([&] { EngineBuffer<float> b(*e, std::int64_t(1) << 62); },
                        {"4611686018427387904"});
    expect_engine_still_works(*e);
}

// A training run that does not fit in the GPU's memory is refused by Trainer::fit before it
// allocates anything for the run or writes anything: one line with the bytes it needs and the
// bytes available. The emulator's device is made small enough for that (emu::set_device_memory);
// a GPU is never that small, hence emulator only.
TEST_F(GpuOutOfMemory, ATrainingRunThatDoesNotFitIsRefusedAndTouchesNoFile) {
#if !defined(MINICNN_CUDA_EMULATOR)
    GTEST_SKIP() << "needs a device smaller than the run: the CUDA emulator's set_device_memory "
                    "(tests/emu/run.sh)";
#else
    const test::Squares8 train = test::squares8(512, 21);
    Sequential m = lenet5(3);
    Trainer t(m, Device::cuda());
    const std::string ck =
        ::testing::TempDir() + "minicnn_gpu_refused_" + std::to_string(::getpid()) + ".ckpt";
    const std::string saved = "a checkpoint of an earlier run\n";
    std::ofstream(ck, std::ios::binary) << saved;
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 512;
    opt.checkpoint_path = ck;
    const std::size_t need = t.memory_need(train.view(), nullptr, opt.batch_size).total();
    const std::size_t held = t.engine().buffer_bytes();
    std::size_t free_b = 0, total_b = 0;
    ASSERT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
    const std::size_t used = total_b - free_b;
    // Free memory: half of what the run still has to allocate.
    const std::size_t free_now = (need - held) / 2;
    emu::set_device_memory(used + free_now);
    std::string msg;
    try {
        t.fit(train.view(), nullptr, opt);
    } catch (const DeviceError& e) {
        msg = e.what();
    }
    emu::set_device_memory(0);
    ASSERT_FALSE(msg.empty()) << "a run that needs " << need << " bytes was not refused";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not fit in GPU memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("needs " + std::to_string(need) + " bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(free_now + held) + " bytes"), std::string::npos) << msg;
    std::ifstream f(ck, std::ios::binary);
    std::stringstream text;
    text << f.rdbuf();
    EXPECT_EQ(text.str(), saved);
    EXPECT_EQ(t.epochs_done(), 0);
    std::remove(ck.c_str());
    // With the device's memory back, the same run trains: the refusal was the memory's.
    opt.checkpoint_path.clear();
    EXPECT_EQ(t.fit(train.view(), nullptr, opt).epochs.size(), 1u);
#endif
}

// On the GPU the data sets stay 8-bit too, and memory_need is exactly what fit() holds at its
// peak in engine buffers (the state, the plan, the data sets, the permutation, the validation's
// index); the emulator's own count of device memory agrees with the buffers the trainer holds.
TEST_F(GpuOutOfMemory, MemoryNeedIsWhatFitAllocatesOnTheGpu) {
    const test::Squares8 train = test::squares8(300, 22), val = test::squares8(60, 23);
    Sequential m = lenet5(4);
    Trainer t(m, Device::cuda());
    const DataView v = val.view();
    const MemoryNeed need = t.memory_need(train.view(), &v, 100);
    // Pixels, labels, and the permutation or the validation's index: (784 + 4 + 4) bytes a sample.
    EXPECT_EQ(need.data, (300 + 60) * (784 + 2 * sizeof(std::int32_t)) + sizeof(StepCounters));
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 100;
    t.fit(train.view(), &v, opt);
    EXPECT_EQ(t.engine().peak_buffer_bytes(), need.total());
    EXPECT_EQ(t.engine().buffer_bytes(), need.state + need.plan);
}

}  // namespace
}  // namespace minicnn

#ifdef MINICNN_WITH_CUDA
#include "gpu_memory.h"

// A byte count that does not fit in size_t is refused before cudaMalloc is asked (so this runs
// without a GPU too): the wrapped product would otherwise allocate a few bytes for a huge buffer.
TEST(DeviceBufferSize, OverflowingElementCountIsRefused) {
    const std::size_t count = SIZE_MAX / sizeof(float) + 2;
    try {
        minicnn::cuda::DeviceBuffer<float> b(count, "a test buffer");
        FAIL() << "expected DeviceError";
    } catch (const minicnn::DeviceError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(std::to_string(count) + " elements"), std::string::npos) << msg;
        EXPECT_NE(msg.find("a test buffer"), std::string::npos) << msg;
    }
}
#endif
