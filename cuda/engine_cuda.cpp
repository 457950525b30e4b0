// cuda/engine_cuda.cpp — CudaEngine: the training engine on one GPU (minicnn/engine.h).
//
// Everything runs on the stream of an owned cuda::Context; nothing synchronises except download()
// and synchronize(). Every public method first makes the engine's device current for its own
// duration (cuda::DeviceGuard: a cudaSetDevice only when another device is current, undone on
// return), so an engine works from any thread whatever device that thread has current.
//
// Layers use the direct tiled kernels of minicnn/cuda_backend.h (convolution, pooling,
// activations) and the fused dense kernels of cuda/dense.cu (one launch per dense layer forward —
// GEMM, bias, activation, softmax — and one backward — act', dweight, dbias, dinp); the kernels of
// cuda/train_kernels.cu hold the fused softmax + cross-entropy with its metrics, Adam, the batch
// gather, the step counters and the epoch permutation. An activation's backward is folded into the
// backward kernels of its layer (conv2d_backward_act, dense_backward_act), and a convolution
// followed by max pooling runs as one kernel (conv2d_maxpool_forward: the convolution's output
// never reaches memory; its backward folds act' into the pooling backward), and a convolution or
// dense layer whose input comes from such a pooling runs that pooling's backward in the epilogue
// of its own backward kernel (conv2d_backward_act_unpool, dense_backward_act_unpool), so a
// LeNet-5 training step is 16 device operations (CudaEngine.DeviceOperationsPerTrainingStep counts
// them).
//
// Memory: scratch (the convolution's filter-gradient workspace) is sized by reserve_conv before
// training; an operation that would need more throws ArgumentError instead of allocating (the loss
// needs none, its reservation is a count). Hence a training step can be recorded into a CUDA graph
// (capture()) and replayed.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <utility>

#include "context.h"
#include "cuda_check.h"
#include "dense.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "nccl_allreduce.h"
#include "train_kernels.h"

namespace minicnn {

namespace {

// Runs `release` (CUDA calls whose errors are ignored) with `device` current, restoring the
// caller's device; never throws. When the device cannot be made current, runs it anyway.
template <class F>
void release_on_device(int device, F&& release) noexcept {
    try {
        cuda::DeviceGuard guard(device);
        release();
        (void)cudaGetLastError();
        return;
    } catch (...) {
    }
    release();
    (void)cudaGetLastError();
}

// A captured graph and its executable instance, launched on the engine's stream.
class CudaGraph final : public EngineGraph {
public:
    CudaGraph(int device, cudaStream_t stream, cudaGraph_t graph)
        : device_(device), stream_(stream), graph_(graph) {}
    ~CudaGraph() override {
        release_on_device(device_, [this] {
            if (exec_) (void)cudaGraphExecDestroy(exec_);
            if (graph_) (void)cudaGraphDestroy(graph_);
        });
    }
    CudaGraph(const CudaGraph&) = delete;
    CudaGraph& operator=(const CudaGraph&) = delete;

    void instantiate() { MINICNN_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0)); }
    void launch() override {
        cuda::DeviceGuard guard(device_);
        MINICNN_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
    }

private:
    int device_;
    cudaStream_t stream_;
    cudaGraph_t graph_ = nullptr;
    cudaGraphExec_t exec_ = nullptr;
};

class CudaEngine final : public Engine {
public:
    explicit CudaEngine(int device) : ctx_(device) {}
    ~CudaEngine() override {
        release_on_device(ctx_.device(), [this] { workspace_ = {}; });
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
        if (p) release_on_device(ctx_.device(), [p] { (void)cudaFree(p); });
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

    // Global capture mode: a call on any thread that could synchronise or allocate during the
    // capture (cudaMalloc, cudaMemcpy, ...) fails instead of silently breaking the graph.
    std::unique_ptr<EngineGraph> capture(const std::function<void()>& enqueue) override {
#if defined(MINICNN_CUDA_SYNC_CHECK)
        // Every launch check synchronises the device, which a capture forbids: run unrecorded.
        (void)enqueue;
        return nullptr;
#else
        cuda::DeviceGuard guard(ctx_.device());
        MINICNN_CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream(), cudaStreamCaptureModeGlobal));
        try {
            enqueue();
        } catch (...) {
            // End the capture so the stream is usable again; the partial graph is discarded.
            cudaGraph_t partial = nullptr;
            if (cudaStreamEndCapture(ctx_.stream(), &partial) == cudaSuccess && partial)
                (void)cudaGraphDestroy(partial);
            (void)cudaGetLastError();
            throw;
        }
        cudaGraph_t graph = nullptr;
        MINICNN_CUDA_CHECK(cudaStreamEndCapture(ctx_.stream(), &graph));
        auto g = std::make_unique<CudaGraph>(ctx_.device(), ctx_.stream(), graph);
        g->instantiate();
        return g;
#endif
    }

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
    void reserve_dense(std::int64_t, std::int64_t, std::int64_t) override {}  // cuBLAS: none
    // The loss kernel needs no scratch; the reservation is kept as a count so that the engine
    // contract (an operation beyond its reservation throws) holds as on every engine.
    void reserve_loss(std::int64_t n) override {
        loss_reserved_ = std::max(loss_reserved_, n);
    }

    void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                        const ConvGeom& g, Activation act) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::conv2d_forward(out, inp, weight, bias, g, act, ctx_.stream());
    }
    void conv2d_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                         const float* inp, const float* weight, const ConvGeom& g) override {
        conv_backward(dinp, dweight, dbias, dz, nullptr, Activation::linear, inp, weight, g);
    }
    // The activation's derivative is applied where the two backward kernels read dy.
    void conv2d_backward_act(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
                             Activation act, const float* inp, const float* weight,
                             const ConvGeom& g) override {
        if (act == Activation::softmax)  // needs whole rows: the separate kernel
            return Engine::conv2d_backward_act(dinp, dweight, dbias, dy, out, act, inp, weight, g);
        conv_backward(dinp, dweight, dbias, dy, out, act, inp, weight, g);
    }
    // The backward data and the unpooling in one kernel (cuda::conv2d_backward_data_unpool) where
    // the strip kernel applies; otherwise the default's two operations.
    void conv2d_backward_act_unpool(float* dz_prev, float* scratch, float* dweight, float* dbias,
                                    float* dy, const float* out, Activation act, const float* inp,
                                    const float* weight, const ConvGeom& g,
                                    const std::int32_t* mask, Activation prev_act,
                                    const PoolGeom& pool) override {
        if (act != Activation::softmax) {  // (the launcher checks the pooling against g)
            check_filter_workspace(g);
            cuda::DeviceGuard guard(ctx_.device());
            if (cuda::conv2d_backward_data_unpool(dz_prev, dy, weight, g, ctx_.stream(), out, act,
                                                  mask, inp, prev_act, pool)) {
                cuda::conv2d_backward_filter(dweight, dbias, dy, inp, g, workspace_.data(),
                                             ctx_.stream(), out, act);
                return;
            }
        }
        Engine::conv2d_backward_act_unpool(dz_prev, scratch, dweight, dbias, dy, out, act, inp,
                                           weight, g, mask, prev_act, pool);
    }
    void check_filter_workspace(const ConvGeom& g) const {
        const std::size_t ws = cuda::conv2d_backward_filter_workspace(g);
        MINICNN_REQUIRE(ws <= workspace_.size(),
                        "conv2d_backward: the filter-gradient workspace holds "
                            << workspace_.size() << " bytes (reserve_conv), this shape (n " << g.n
                            << ", " << g.h << "x" << g.w << "x" << g.c << " -> " << g.k
                            << " filters) needs " << ws << " bytes");
    }
    void conv_backward(float* dinp, float* dweight, float* dbias, const float* dy, const float* out,
                       Activation act, const float* inp, const float* weight, const ConvGeom& g) {
        check_filter_workspace(g);
        cuda::DeviceGuard guard(ctx_.device());
        if (dinp) cuda::conv2d_backward_data(dinp, dy, weight, g, ctx_.stream(), out, act);
        cuda::conv2d_backward_filter(dweight, dbias, dy, inp, g, workspace_.data(), ctx_.stream(),
                                     out, act);
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
    // One kernel (the forward kernel's pooling epilogue) wherever its tile is whole pooling
    // windows: conv_out is then not written. Otherwise the two operations.
    void conv2d_maxpool_forward(float* conv_out, float* pooled, std::int32_t* mask,
                                const float* inp, const float* weight, const float* bias,
                                const ConvGeom& g, Activation act, const PoolGeom& pool) override {
        if (!cuda::conv2d_maxpool_fusable(g, act, pool)) {
            return Engine::conv2d_maxpool_forward(conv_out, pooled, mask, inp, weight, bias, g, act,
                                                  pool);
        }
        cuda::DeviceGuard guard(ctx_.device());
        cuda::conv2d_maxpool_forward(pooled, mask, inp, weight, bias, g, act, pool, ctx_.stream());
    }
    // act' applied where the pooling backward reads dy: one kernel.
    void maxpool2d_backward_act(float* dz, float* dy, const std::int32_t* mask, const float* pooled,
                                Activation act, const PoolGeom& pool) override {
        const std::string why = maxpool_act_unfoldable(act, pool);
        MINICNN_REQUIRE(why.empty(), "maxpool2d_backward_act: " << why);
        cuda::DeviceGuard guard(ctx_.device());
        cuda::maxpool2d_backward_mask(dz, dy, mask, pool, ctx_.stream(), pooled, act);
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
        cuda::dense::forward(out, inp, weight, bias, n, n_in, n_out, act, ctx_.stream());
    }
    void dense_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                        const float* inp, const float* weight, std::int64_t n, std::int64_t n_in,
                        std::int64_t n_out) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::dense::backward(dinp, dweight, dbias, dz, nullptr, Activation::linear, inp, weight, n,
                              n_in, n_out, ctx_.stream());
    }
    // act' is applied where the one backward kernel reads dy.
    // The unpooling in the epilogue of the dense backward's dinp blocks: still one launch.
    void dense_backward_act_unpool(float* dz_prev, float* scratch, float* dweight, float* dbias,
                                   float* dy, const float* out, Activation act, const float* inp,
                                   const float* weight, std::int64_t n, std::int64_t n_in,
                                   std::int64_t n_out, const std::int32_t* mask,
                                   Activation prev_act, const PoolGeom& pool) override {
        if (act == Activation::softmax)
            return Engine::dense_backward_act_unpool(dz_prev, scratch, dweight, dbias, dy, out, act,
                                                     inp, weight, n, n_in, n_out, mask, prev_act,
                                                     pool);
        cuda::DeviceGuard guard(ctx_.device());
        cuda::dense::backward_unpool(dz_prev, dweight, dbias, dy, out, act, inp, weight, n, n_in,
                                     n_out, mask, prev_act, pool, ctx_.stream());
    }
    void dense_backward_act(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
                            Activation act, const float* inp, const float* weight, std::int64_t n,
                            std::int64_t n_in, std::int64_t n_out) override {
        if (act == Activation::softmax)  // needs whole rows: the separate kernel
            return Engine::dense_backward_act(dinp, dweight, dbias, dy, out, act, inp, weight, n,
                                              n_in, n_out);
        cuda::DeviceGuard guard(ctx_.device());
        cuda::dense::backward(dinp, dweight, dbias, dy, out, act, inp, weight, n, n_in, n_out,
                              ctx_.stream());
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
    void advance(StepCounters* counters, std::int64_t batch, bool count_step) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::advance(counters, batch, count_step, ctx_.stream());
    }
    void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed,
                     bool shuffle) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::permutation(perm, n, seed, shuffle, ctx_.stream());
    }

private:
    cuda::Context ctx_;
    cuda::DeviceBuffer<unsigned char> workspace_;  // conv2d backward-filter workspace
    std::int64_t loss_reserved_ = 0;               // samples (reserve_loss)
};

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(int device_index) {
    return std::make_unique<CudaEngine>(device_index);
}

}  // namespace minicnn
