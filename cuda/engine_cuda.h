// cuda/engine_cuda.h — CudaEngine: the training engine on one GPU (minicnn/engine.h), declared
// here so that its planner (cuda/plan_cuda.cpp) can run the kernels on its stream. Host-only
// header (g++), internal to the CUDA backend.
//
// Everything runs on the stream of an owned cuda::Context; nothing synchronises except download()
// and synchronize(). Every public method first makes the engine's device current for its own
// duration (cuda::DeviceGuard: a cudaSetDevice only when another device is current, undone on
// return), so an engine works from any thread whatever device that thread has current.
//
// Its operations are the direct tiled kernels of minicnn/cuda_backend.h (convolution, pooling,
// activations; an activation's backward folded into its layer's backward kernels), the dense
// kernels of cuda/dense.cu (one launch per dense layer forward — GEMM, bias, activation,
// softmax — and one backward — act', dweight, dbias, dinp; a large layer's GEMMs on the
// context's cuBLAS handle instead, with bias + activation, act' and dbias as kernels around them),
// dropout's (cuda/dropout.cu) and the kernels of cuda/train_kernels.cu (the fused softmax +
// cross-entropy with its metrics and step count, Adam, the batch gather, the epoch permutation).
// What runs fused across layers is its plan's business (cuda/plan_cuda.cpp).
//
// Memory: scratch (the convolution's filter-gradient workspace) is sized by reserve_conv before
// training; an operation that would need more throws ArgumentError instead of allocating (the loss
// needs none, its reservation is a count). Hence a training step can be recorded into a CUDA graph
// (capture()) and replayed.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "context.h"
#include "cuda_check.h"
#include "dense.h"
#include "dropout.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "nccl_allreduce.h"
#include "train_kernels.h"

namespace minicnn {

namespace cuda {

// Runs `release` (CUDA calls whose errors are ignored) with `device` current, restoring the
// caller's device; never throws. When the device cannot be made current, runs it anyway.
template <class F>
void release_on_device(int device, F&& release) noexcept {
    try {
        DeviceGuard guard(device);
        release();
        (void)cudaGetLastError();
        return;
    } catch (...) {
    }
    release();
    (void)cudaGetLastError();
}

}  // namespace cuda

class CudaEngine final : public Engine {
public:
    explicit CudaEngine(int device) : ctx_(device) {}
    ~CudaEngine() override {
        cuda::release_on_device(ctx_.device(), [this] { workspace_ = {}; });
    }
    CudaEngine(const CudaEngine&) = delete;
    CudaEngine& operator=(const CudaEngine&) = delete;

    Backend backend() const override { return Backend::cuda; }
    std::string name() const override {
        return "cuda:" + std::to_string(ctx_.device()) + " (" + ctx_.device_name() + ")";
    }

    void* alloc_bytes(std::size_t bytes) override {
        cuda::DeviceGuard guard(ctx_.device());
        void* p =
            cuda::detail::device_malloc(std::max<std::size_t>(bytes, 1), "the training engine");
        MINICNN_CUDA_CHECK(cudaMemsetAsync(p, 0, std::max<std::size_t>(bytes, 1), ctx_.stream()));
        return p;
    }
    void free_bytes(void* p) noexcept override {
        if (p) cuda::release_on_device(ctx_.device(), [p] { (void)cudaFree(p); });
    }
    std::size_t free_memory() override {
        cuda::DeviceGuard guard(ctx_.device());
        std::size_t free_b = 0, total_b = 0;
        MINICNN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        return free_b;
    }
    // Pageable host memory: the copy has read `host_src` when the call returns.
    void upload(void* dst, const void* host_src, std::size_t bytes) override {
        if (bytes == 0) return;
        cuda::DeviceGuard guard(ctx_.device());
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ctx_.stream()));
    }
    void download(void* host_dst, const void* src, std::size_t bytes) override {
        if (bytes == 0) return;
        cuda::DeviceGuard guard(ctx_.device());
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream()));
        ctx_.synchronize();
    }
    void copy(void* dst, const void* src, std::size_t bytes) override {
        if (bytes == 0 || dst == src) return;
        cuda::DeviceGuard guard(ctx_.device());
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream()));
    }
    void fill_zero(void* dst, std::size_t bytes) override {
        if (bytes == 0) return;
        cuda::DeviceGuard guard(ctx_.device());
        MINICNN_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, ctx_.stream()));
    }
    void synchronize() override {
        cuda::DeviceGuard guard(ctx_.device());
        ctx_.synchronize();
    }

    // NCCL on this engine's stream (cuda/nccl_allreduce.h), instead of the host all-reduce.
    std::unique_ptr<EngineAllReduce> make_allreduce(Communicator& comm) override {
        return cuda::make_nccl_allreduce(ctx_, comm);
    }

    // Records `enqueue` in global capture mode (engine_cuda.cpp).
    std::unique_ptr<EngineGraph> capture(const std::function<void()>& enqueue) override;

    // For every batch size up to g.n: the last batch of an epoch is shorter, and the workspace is
    // not monotonic in n (its segment count is capped, then rounded).
    void reserve_conv(const ConvGeom& g) override {
        std::size_t ws = 0;
        ConvGeom gi = g;
        for (gi.n = 1; gi.n <= g.n; ++gi.n)
            ws = std::max(ws, cuda::conv2d_backward_filter_workspace(gi));
        if (ws <= workspace_.size()) return;
        cuda::DeviceGuard guard(ctx_.device());
        workspace_ = cuda::DeviceBuffer<unsigned char>(ws, "conv2d workspace");
    }
    // The dense layers (cuda/dense.cu) need no scratch: cuBLAS's workspace is the context's.
    void reserve_dense(std::int64_t, std::int64_t, std::int64_t) override {}
    // The loss kernel needs no scratch; the reservation is kept as a count so that the engine
    // contract (an operation beyond its reservation throws) holds as on every engine.
    void reserve_loss(std::int64_t n) override { loss_reserved_ = std::max(loss_reserved_, n); }

    void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                        const ConvGeom& g, Activation act) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::conv2d_forward(out, inp, weight, bias, g, act, ctx_.stream());
    }
    // The activation's derivative is applied where the two backward kernels read dy (softmax,
    // which needs whole rows, runs as its own kernel first).
    void conv2d_backward(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
                         Activation act, const float* inp, const float* weight,
                         const ConvGeom& g) override {
        void* ws = filter_workspace(g);
        cuda::DeviceGuard guard(ctx_.device());
        if (act == Activation::softmax) {
            cuda::activation_backward(dy, dy, out, g.n * g.oh * g.ow, g.k, act, ctx_.stream());
            act = Activation::linear;
        }
        if (dinp) cuda::conv2d_backward_data(dinp, dy, weight, g, ctx_.stream(), out, act);
        cuda::conv2d_backward_filter(dweight, dbias, dy, inp, g, ws, ctx_.stream(), out, act);
    }
    // The filter-gradient workspace for g, reserved by reserve_conv (ArgumentError, saying what
    // was reserved and what g needs, when it does not hold it).
    void* filter_workspace(const ConvGeom& g) {
        const std::size_t ws = cuda::conv2d_backward_filter_workspace(g);
        MINICNN_REQUIRE(ws <= workspace_.size(),
                        "conv2d_backward: the filter-gradient workspace holds "
                            << workspace_.size() << " bytes (reserve_conv), this shape (n " << g.n
                            << ", " << g.h << "x" << g.w << "x" << g.c << " -> " << g.k
                            << " filters) needs " << ws << " bytes");
        return workspace_.data();
    }
    void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp,
                           const PoolGeom& g) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::maxpool2d_forward(out, mask, inp, g, ctx_.stream());
    }
    void maxpool2d_backward(float* dinp, const float* dout, const std::int32_t* mask,
                            const PoolGeom& g) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::maxpool2d_backward_mask(dinp, dout, mask, g, ctx_.stream());
    }
    void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::avgpool2d_forward(out, inp, g, ctx_.stream());
    }
    void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::avgpool2d_backward(dinp, dout, g, ctx_.stream());
    }

    void activation_forward(float* out, const float* in, std::int64_t rows, std::int64_t cols,
                            Activation act) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::activation_forward(out, in, rows, cols, act, ctx_.stream());
    }
    void activation_backward(float* din, const float* dout, const float* out, std::int64_t rows,
                             std::int64_t cols, Activation act) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::activation_backward(din, dout, out, rows, cols, act, ctx_.stream());
    }

    void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                       std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                       Activation act) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::dense::forward(out, inp, weight, bias, n, n_in, n_out, act, ctx_);
    }
    // act' is applied where the one backward kernel reads dy (softmax first, as its own kernel).
    void dense_backward(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
                        Activation act, const float* inp, const float* weight, std::int64_t n,
                        std::int64_t n_in, std::int64_t n_out) override {
        cuda::DeviceGuard guard(ctx_.device());
        if (act == Activation::softmax) {
            cuda::activation_backward(dy, dy, out, n, n_out, act, ctx_.stream());
            act = Activation::linear;
        }
        cuda::dense::backward(dinp, dweight, dbias, dy, out, act, inp, weight, n, n_in, n_out,
                              ctx_);
    }
    void dropout_forward(float* out, std::int32_t* mask, const float* inp, std::int64_t count,
                         std::int64_t sample_numel, float rate, std::uint64_t layer,
                         const TrainingStep& t) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::dropout_forward(out, mask, inp, count, sample_numel, rate, layer, t, ctx_.stream());
    }
    void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask,
                          std::int64_t count, float rate) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::dropout_backward(dinp, dout, mask, count, rate, ctx_.stream());
    }
    void softmax_xent(float* dlogits, Metrics* metrics, const float* probs,
                      const std::int32_t* labels, std::int64_t n, std::int64_t classes,
                      std::int64_t mean_over, StepCounters* step,
                      std::int64_t cursor_advance) override {
        MINICNN_REQUIRE(n <= loss_reserved_,
                        "softmax_xent: the loss reservation holds "
                            << loss_reserved_ << " samples (reserve_loss), this batch has " << n);
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::softmax_xent(dlogits, metrics, probs, labels, n, classes, mean_over, step,
                                  cursor_advance, ctx_.stream());
    }
    void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                     const AdamConfig& cfg, const StepCounters* counters) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::adam_update(params, grads, m, v, n, cfg, counters, ctx_.stream());
    }
    void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                      const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                      std::int64_t sample_numel) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::gather_batch(x, y, images, labels, perm, counters, batch, sample_numel,
                                  ctx_.stream());
    }
    void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels,
                      const std::int32_t* labels, const std::int32_t* perm,
                      const StepCounters* counters, std::int64_t batch,
                      std::int64_t sample_numel) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::gather_batch(x, y, pixels, labels, perm, counters, batch, sample_numel,
                                  ctx_.stream());
    }
    void advance(StepCounters* counters, std::int64_t batch, bool count_step) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::advance(counters, batch, count_step, ctx_.stream());
    }
    void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed,
                     bool shuffle) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::permutation(perm, n, seed, shuffle, ctx_.stream());
    }

    // Its plan fuses (cuda/plan_cuda.cpp).
    std::unique_ptr<Plan> plan(const Sequential& model, std::int64_t max_batch) override;

    int device() const { return ctx_.device(); }
    cudaStream_t stream() const { return ctx_.stream(); }
    const cuda::Context& context() const { return ctx_; }

private:
    cuda::Context ctx_;
    cuda::DeviceBuffer<unsigned char> workspace_;  // conv2d backward-filter workspace
    std::int64_t loss_reserved_ = 0;               // samples (reserve_loss)
};

}  // namespace minicnn
