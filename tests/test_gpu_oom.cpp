// tests/test_gpu_oom.cpp — running out of memory is a clear DeviceError that names the size asked
// for, never a crash, a silent short allocation or a sticky CUDA error:
//   - GPU (skipped without one): the training engine (make_engine(Device::cuda(0)) and
//     EngineBuffer, what Trainer allocates through) asked for 1 PiB, and for more elements than
//     size_t bytes can count; the engine still works after the failure.
//   - CPU engine (always runs): the same absurd sizes through alloc_bytes and EngineBuffer.
// (test_cuda_runtime.cpp covers a plain 1 PiB DeviceBuffer.)
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/device.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"

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
