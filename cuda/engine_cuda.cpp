// cuda/engine_cuda.cpp — CudaEngine: the training engine on one GPU (minicnn/engine.h).
//
// Everything runs on the stream of an owned cuda::Context; nothing synchronises except download()
// and synchronize(). Every public method first makes the engine's device current for its own
// duration (cuda::DeviceGuard: a cudaSetDevice only when another device is current, undone on
// return), so an engine works from any thread whatever device that thread has current.
//
// Layers use the direct tiled kernels of minicnn/cuda_backend.h (convolution, pooling,
// activations); dense layers are cuBLAS SGEMM (FP32, default math mode: no TF32) plus the
// bias/activation and column-sum kernels of cuda/train_kernels.cu, which also hold the fused
// softmax + cross-entropy, Adam, the batch gather, the step counters and the epoch permutation.
//
// Memory: scratch (the convolution's filter-gradient workspace, the loss's per-sample values) is
// sized by reserve_conv / reserve_loss before training; an operation that would need more throws
// ArgumentError instead of allocating. cuBLAS gets a fixed workspace at construction
// (cublasSetWorkspace), so it never allocates either. Hence a training step can be recorded into a
// CUDA graph (capture()) and replayed.
//
// Row-major products through column-major cuBLAS (a row-major (r, c) matrix is its column-major
// transpose):
//   forward  out (n, no) = inp (n, ni) W (ni, no)  ->  out^T  = W^T inp^T  : gemm(N, N, no, n, ni)
//   dW       dW (ni, no) = inp^T dz                ->  dW^T   = dz^T inp   : gemm(N, T, no, ni, n)
//   dinp     dinp (n, ni) = dz W^T                 ->  dinp^T = W dz^T     : gemm(T, N, ni, n, no)
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <utility>

#include "context.h"
#include "cuda_check.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "nccl_allreduce.h"
#include "train_kernels.h"

namespace minicnn {

namespace {

// cuBLAS's workspace: its documented recommendation for Hopper (4 MiB is enough before sm_90).
constexpr std::size_t kCublasWorkspaceBytes = std::size_t(32) << 20;

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
    explicit CudaEngine(int device) : ctx_(device) {
        cuda::DeviceGuard guard(ctx_.device());
        cublas_workspace_ =
            cuda::DeviceBuffer<unsigned char>(kCublasWorkspaceBytes, "the cuBLAS workspace");
        // After the context's cublasSetStream, which resets the workspace to cuBLAS's own pool.
        MINICNN_CUBLAS_CHECK(
            cublasSetWorkspace(ctx_.cublas(), cublas_workspace_.data(), cublas_workspace_.size()));
    }
    ~CudaEngine() override {
        release_on_device(ctx_.device(), [this] {
            workspace_ = {};
            loss_scratch_ = {};
            cublas_workspace_ = {};
        });
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
    void reserve_loss(std::int64_t n) override {
        if (std::size_t(2 * n) <= loss_scratch_.size()) return;
        cuda::DeviceGuard guard(ctx_.device());
        loss_scratch_ = cuda::DeviceBuffer<float>(std::size_t(2 * n), "loss scratch");
    }

    void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                        const ConvGeom& g, Activation act) override {
        cuda::DeviceGuard guard(ctx_.device());
        cuda::conv2d_forward(out, inp, weight, bias, g, act, ctx_.stream());
    }
    void conv2d_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                         const float* inp, const float* weight, const ConvGeom& g) override {
        const std::size_t ws = cuda::conv2d_backward_filter_workspace(g);
        MINICNN_REQUIRE(ws <= workspace_.size(),
                        "conv2d_backward: the filter-gradient workspace holds "
                            << workspace_.size() << " bytes (reserve_conv), this shape (n " << g.n
                            << ", " << g.h << "x" << g.w << "x" << g.c << " -> " << g.k
                            << " filters) needs " << ws << " bytes");
        cuda::DeviceGuard guard(ctx_.device());
        if (dinp) cuda::conv2d_backward_data(dinp, dz, weight, g, ctx_.stream());
        cuda::conv2d_backward_filter(dweight, dbias, dz, inp, g, workspace_.data(), ctx_.stream());
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
        const float one = 1.0f, zero = 0.0f;
        MINICNN_CUBLAS_CHECK(cublasSgemm(ctx_.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, int(n_out),
                                         int(n), int(n_in), &one, weight, int(n_out), inp,
                                         int(n_in), &zero, out, int(n_out)));
        if (act == Activation::softmax) {
            cuda::train::bias_activation(out, bias, n, n_out, Activation::linear, ctx_.stream());
            cuda::activation_forward(out, out, n, n_out, Activation::softmax, ctx_.stream());
        } else {
            cuda::train::bias_activation(out, bias, n, n_out, act, ctx_.stream());
        }
    }
    void dense_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                        const float* inp, const float* weight, std::int64_t n, std::int64_t n_in,
                        std::int64_t n_out) override {
        cuda::DeviceGuard guard(ctx_.device());
        const float one = 1.0f, zero = 0.0f;
        MINICNN_CUBLAS_CHECK(cublasSgemm(ctx_.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, int(n_out),
                                         int(n_in), int(n), &one, dz, int(n_out), inp, int(n_in),
                                         &zero, dweight, int(n_out)));
        if (dbias) cuda::train::column_sums(dbias, dz, n, n_out, ctx_.stream());
        if (dinp) {
            MINICNN_CUBLAS_CHECK(cublasSgemm(ctx_.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, int(n_in),
                                             int(n), int(n_out), &one, weight, int(n_out), dz,
                                             int(n_out), &zero, dinp, int(n_in)));
        }
    }

    void softmax_xent(float* dlogits, Metrics* metrics, const float* probs,
                      const std::int32_t* labels, std::int64_t n, std::int64_t classes,
                      std::int64_t mean_over) override {
        MINICNN_REQUIRE(std::size_t(2 * n) <= loss_scratch_.size(),
                        "softmax_xent: the loss scratch holds "
                            << loss_scratch_.size() / 2
                            << " samples (reserve_loss), this batch has " << n);
        cuda::DeviceGuard guard(ctx_.device());
        cuda::train::softmax_xent(dlogits, metrics, probs, labels, n, classes, mean_over,
                                  loss_scratch_.data(), ctx_.stream());
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
    cuda::DeviceBuffer<unsigned char> cublas_workspace_;  // kCublasWorkspaceBytes
    cuda::DeviceBuffer<unsigned char> workspace_;         // conv2d backward-filter workspace
    cuda::DeviceBuffer<float> loss_scratch_;              // (2, n): per-sample loss and hit
};

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(int device_index) {
    return std::make_unique<CudaEngine>(device_index);
}

}  // namespace minicnn
