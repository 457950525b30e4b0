// cuda/engine_cuda.cpp — CudaEngine: the training engine on one GPU (minicnn/engine.h).
//
// Everything runs on the stream of an owned cuda::Context; nothing synchronises except download()
// and synchronize(). Layers use the direct tiled kernels of minicnn/cuda_backend.h (convolution,
// pooling, activations); dense layers are cuBLAS SGEMM (FP32, default math mode: no TF32) plus the
// bias/activation and column-sum kernels of cuda/train_kernels.cu, which also hold the fused
// softmax + cross-entropy, Adam, the batch gather and the step counters; the permutation is a
// Thrust shuffle. Scratch (the convolution's filter-gradient workspace, the loss's per-sample
// values) is sized by reserve_conv / reserve_dense before training, so a step never allocates.
//
// Row-major products through column-major cuBLAS (a row-major (r, c) matrix is its column-major
// transpose):
//   forward   out (n, no) = inp (n, ni) W (ni, no)   ->  out^T = W^T inp^T       : gemm(N, N, no,
//   n, ni) dW        dW (ni, no) = inp^T dz                 ->  dW^T  = dz^T inp        : gemm(N,
//   T, no, ni, n) dinp      dinp (n, ni) = dz W^T                  ->  dinp^T = W dz^T         :
//   gemm(T, N, ni, n, no)
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "context.h"
#include "cuda_check.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "train_kernels.h"

namespace minicnn {

namespace {

class CudaEngine final : public Engine {
public:
    explicit CudaEngine(int device) : ctx_(device) { ctx_.activate(); }

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
        if (p && cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
    }
    // Pageable host memory: the copy has read `host_src` when the call returns.
    void upload(void* dst, const void* host_src, std::size_t bytes) override {
        if (bytes == 0) return;
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ctx_.stream()));
    }
    void download(void* host_dst, const void* src, std::size_t bytes) override {
        if (bytes == 0) return;
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream()));
        ctx_.synchronize();
    }
    void copy(void* dst, const void* src, std::size_t bytes) override {
        if (bytes == 0 || dst == src) return;
        MINICNN_CUDA_CHECK(
            cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream()));
    }
    void fill_zero(void* dst, std::size_t bytes) override {
        if (bytes == 0) return;
        MINICNN_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, ctx_.stream()));
    }
    void synchronize() override { ctx_.synchronize(); }

    void reserve_conv(const ConvGeom& g) override {
        const std::size_t ws = cuda::conv2d_backward_filter_workspace(g);
        if (ws > workspace_.size())
            workspace_ = cuda::DeviceBuffer<unsigned char>(ws, "conv2d workspace");
        ensure_loss_scratch(g.n);
    }
    void reserve_dense(std::int64_t n, std::int64_t, std::int64_t) override {
        ensure_loss_scratch(n);
    }

    void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                        const ConvGeom& g, Activation act) override {
        cuda::conv2d_forward(out, inp, weight, bias, g, act, ctx_.stream());
    }
    void conv2d_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                         const float* inp, const float* weight, const ConvGeom& g) override {
        reserve_conv(g);  // no-op when set up for this batch size
        if (dinp) cuda::conv2d_backward_data(dinp, dz, weight, g, ctx_.stream());
        cuda::conv2d_backward_filter(dweight, dbias, dz, inp, g, workspace_.data(), ctx_.stream());
    }

    void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp,
                           const PoolGeom& g) override {
        cuda::maxpool2d_forward(out, mask, inp, g, ctx_.stream());
    }
    void maxpool2d_backward(float* dinp, const float* dout, const std::int32_t* mask,
                            const PoolGeom& g) override {
        cuda::maxpool2d_backward_mask(dinp, dout, mask, g, ctx_.stream());
    }
    void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g) override {
        cuda::avgpool2d_forward(out, inp, g, ctx_.stream());
    }
    void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g) override {
        cuda::avgpool2d_backward(dinp, dout, g, ctx_.stream());
    }

    void activation_forward(float* out, const float* in, std::int64_t rows, std::int64_t cols,
                            Activation act) override {
        cuda::activation_forward(out, in, rows, cols, act, ctx_.stream());
    }
    void activation_backward(float* din, const float* dout, const float* out, std::int64_t rows,
                             std::int64_t cols, Activation act) override {
        cuda::activation_backward(din, dout, out, rows, cols, act, ctx_.stream());
    }

    void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                       std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                       Activation act) override {
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
                      const std::int32_t* labels, std::int64_t n, std::int64_t classes) override {
        ensure_loss_scratch(n);
        cuda::train::softmax_xent(dlogits, metrics, probs, labels, n, classes, loss_scratch_.data(),
                                  ctx_.stream());
    }
    void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                     const AdamConfig& cfg, const StepCounters* counters) override {
        cuda::train::adam_update(params, grads, m, v, n, cfg, counters, ctx_.stream());
    }
    void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                      const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                      std::int64_t sample_numel) override {
        cuda::train::gather_batch(x, y, images, labels, perm, counters, batch, sample_numel,
                                  ctx_.stream());
    }
    void advance(StepCounters* counters, std::int64_t batch, bool count_step) override {
        cuda::train::advance(counters, batch, count_step, ctx_.stream());
    }
    void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed,
                     bool shuffle) override {
        cuda::train::permutation(perm, n, seed, shuffle, ctx_.stream());
    }

private:
    void ensure_loss_scratch(std::int64_t n) {
        if (std::size_t(2 * n) > loss_scratch_.size()) {
            loss_scratch_ = cuda::DeviceBuffer<float>(std::size_t(2 * n), "loss scratch");
        }
    }

    cuda::Context ctx_;
    cuda::DeviceBuffer<unsigned char> workspace_;  // conv2d backward-filter workspace
    cuda::DeviceBuffer<float> loss_scratch_;       // (2, n): per-sample loss and hit
};

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(int device_index) {
    return std::make_unique<CudaEngine>(device_index);
}

}  // namespace minicnn
