// host/cpu/engine_cpu.cpp — CpuEngine: the training engine on the host (minicnn/engine.h). Host
// memory, and every operation delegated to the CPU backend, the same code the functional API runs:
// convolution host/cpu/conv2d.h, pooling and activations minicnn/cpu_backend.h, dense layers
// host/cpu/dense.h, dropout host/cpu/dropout.h, loss, Adam, gather and permutation host/cpu/train_kernels.h, all on the one
// pool of host/cpu/thread_pool.h. Its plan is Engine::plan's default, one stage per layer
// (minicnn/plan.h). There are no graphs: capture() returns nullptr. Backend selection
// (make_engine) is host/engine_select.cpp.
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>

#include "conv2d.h"
#include "conv_direct.h"
#include "plan_cpu.h"
#include "dense.h"
#include "dropout.h"
#include "gemm.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "minicnn/memory.h"
#include "train_kernels.h"

namespace minicnn {

namespace {

class CpuEngine final : public Engine {
public:
    CpuEngine() { cpu_gemm::use_single_blas_thread(); }

    Backend backend() const override { return Backend::cpu; }
    std::string name() const override {
        std::ostringstream os;
        os << "cpu (" << cpu::thread_count() << " threads, ";
        if (cpu::direct::enabled()) os << cpu::direct::isa_name() << " convolutions, ";
        os << cpu_gemm::sgemm_backend_name() << ")";
        return os.str();
    }

    void* alloc_bytes(std::size_t bytes) override {
        if (bytes > std::numeric_limits<std::size_t>::max() - 255) {  // rounding up would wrap
            throw DeviceError("cpu engine: out of host memory allocating " + std::to_string(bytes) +
                              " bytes");
        }
        const std::size_t rounded = ((bytes + 255) / 256) * 256;
        void* p = std::aligned_alloc(256, rounded == 0 ? 256 : rounded);
        if (!p) {
            throw DeviceError("cpu engine: out of host memory allocating " + std::to_string(bytes) +
                              " bytes");
        }
        std::memset(p, 0, rounded == 0 ? 256 : rounded);
        return p;
    }
    void free_bytes(void* p) noexcept override { std::free(p); }
    std::size_t free_memory() override { return host_memory_available(); }
    void upload(void* dst, const void* src, std::size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void download(void* dst, const void* src, std::size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void copy(void* dst, const void* src, std::size_t bytes) override {
        if (bytes && dst != src) std::memmove(dst, src, bytes);
    }
    void fill_zero(void* dst, std::size_t bytes) override {
        if (bytes) std::memset(dst, 0, bytes);
    }
    void synchronize() override {}

    void reserve_conv(const ConvGeom& g) override { cpu::conv2d_reserve(ws_, g); }
    void reserve_dense(std::int64_t n, std::int64_t n_in, std::int64_t n_out) override {
        cpu::dense_reserve(ws_, n, n_in, n_out);
    }
    void reserve_loss(std::int64_t) override {}  // the loss needs no scratch

    std::unique_ptr<EngineGraph> capture(const std::function<void()>&) override { return nullptr; }

    void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                        const ConvGeom& g, Activation act) override {
        cpu::conv2d_forward(out, inp, weight, bias, g, act, ws_);
    }
    // dz = act'(out) * dy is formed in place, then the backward of the convolution.
    void conv2d_backward(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
                         Activation act, const float* inp, const float* weight,
                         const ConvGeom& g) override {
        if (act != Activation::linear)
            cpu::activation_backward(dy, dy, out, g.n * g.oh * g.ow, g.k, act);
        cpu::conv2d_backward(dinp, dweight, dbias, dy, inp, weight, g, ws_);
    }

    void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp,
                           const PoolGeom& g) override {
        cpu::maxpool2d_forward(out, mask, inp, g);
    }
    void maxpool2d_backward(float* dinp, const float* dout, const std::int32_t* mask,
                            const PoolGeom& g) override {
        cpu::maxpool2d_backward_mask(dinp, dout, mask, g);
    }
    void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g) override {
        cpu::avgpool2d_forward(out, inp, g);
    }
    void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g) override {
        cpu::avgpool2d_backward(dinp, dout, g);
    }

    void activation_forward(float* out, const float* in, std::int64_t rows, std::int64_t cols,
                            Activation act) override {
        cpu::activation_forward(out, in, rows, cols, act);
    }
    void activation_backward(float* din, const float* dout, const float* out, std::int64_t rows,
                             std::int64_t cols, Activation act) override {
        cpu::activation_backward(din, dout, out, rows, cols, act);
    }

    void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                       std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                       Activation act) override {
        cpu::dense_forward(out, inp, weight, bias, n, n_in, n_out, act);
    }
    void dense_backward(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
                        Activation act, const float* inp, const float* weight, std::int64_t n,
                        std::int64_t n_in, std::int64_t n_out) override {
        if (act != Activation::linear) cpu::activation_backward(dy, dy, out, n, n_out, act);
        cpu::dense_backward(dinp, dweight, dbias, dy, inp, weight, n, n_in, n_out, ws_);
    }

    void dropout_forward(float* out, std::int32_t* mask, const float* inp, std::int64_t count,
                         std::int64_t sample_numel, float rate, std::uint64_t layer,
                         const TrainingStep& t) override {
        cpu::dropout_forward(out, mask, inp, count, sample_numel, rate, layer, t);
    }
    void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask,
                          std::int64_t count, float rate) override {
        cpu::dropout_backward(dinp, dout, mask, count, rate);
    }

    void softmax_xent(float* dlogits, Metrics* metrics, const float* probs,
                      const std::int32_t* labels, std::int64_t n, std::int64_t classes,
                      std::int64_t mean_over, StepCounters* step,
                      std::int64_t cursor_advance) override {
        cpu::train::softmax_xent(dlogits, metrics, probs, labels, n, classes, mean_over, step,
                                 cursor_advance);
    }
    void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                     const AdamConfig& cfg, const StepCounters* counters) override {
        cpu::train::adam_update(params, grads, m, v, n, cfg, counters);
    }
    void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                      const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                      std::int64_t sample_numel) override {
        cpu::train::gather_batch(x, y, images, labels, perm, counters, batch, sample_numel);
    }
    void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels,
                      const std::int32_t* labels, const std::int32_t* perm,
                      const StepCounters* counters, std::int64_t batch,
                      std::int64_t sample_numel) override {
        cpu::train::gather_batch(x, y, pixels, labels, perm, counters, batch, sample_numel);
    }
    void advance(StepCounters* counters, std::int64_t batch, bool count_step) override {
        cpu::train::advance(counters, batch, count_step);
    }
    void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed,
                     bool shuffle) override {
        cpu::train::permutation(perm, n, seed, shuffle);
    }

    // Convolution + max pooling pairs fused (host/cpu/plan_cpu.cpp).
    std::unique_ptr<Plan> plan(const Sequential& model, std::int64_t max_batch) override {
        return cpu::plan_cpu(*this, ws_, model, max_batch);
    }

private:
    cpu::Workspace<float> ws_;  // im2col scratch and partial gradients, grown by reserve_*
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine() {
    return std::make_unique<CpuEngine>();
}

}  // namespace minicnn
