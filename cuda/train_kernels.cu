// cuda/train_kernels.cu — the training kernels of the CUDA engine. CPU twin:
// host/cpu/train_kernels.cpp. Test: tests/test_engine_cuda.cpp (CUDA engine against the CPU engine).
//
//   softmax_xent_kernel     loss and metrics in one launch of one block of 256 threads: thread t
//                           takes samples t, t+256, ... (classes is small: 10): first argmax
//                           (strict >), -log(max(p_label, 1e-7)) with the CPU's max (a NaN stays
//                           NaN, so a diverged run is reported), dlogits = (p - onehot) / n; its
//                           loss and hit sums (double) go through a fixed shared-memory tree and
//                           thread 0 adds them to the Metrics accumulator. No atomics.
//   adam_kernel             grid-stride over the flat arena; each thread recomputes the bias
//                           correction from the step counter in device memory (graph-capturable).
//   gather_kernel           one thread per element of the batch x (batch, sample); from float32
//                           images as they are, from 8-bit ones through detail::pixel_to_unit.
//   advance_kernel          one thread: the step counter and the cursor.
//   permutation_kernel      grid-stride, one thread per element i of perm (n): the counter-based
//                           permutation of minicnn/detail/permutation.h (the CPU engine's too).
#include "cuda_check.h"
#include "minicnn/detail/permutation.h"
#include "minicnn/detail/pixel.h"
#include "train_kernels.h"

namespace minicnn::cuda::train {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(std::int64_t n, int threads = kThreads) {
    const std::int64_t b = (n + threads - 1) / threads;
    return unsigned(b < 1 ? 1 : (b > 65535 * 32 ? 65535 * 32 : b));
}

// One block of 256 threads: thread t takes samples t, t+256, ... in order (first argmax, loss,
// dlogits) and sums their loss and hits in double; a fixed tree adds the 256 partial sums and
// thread 0 adds them to the Metrics accumulator. No scratch, no atomics, one launch.
__global__ void softmax_xent_kernel(float* dlogits, Metrics* metrics, const float* probs,
                                    const std::int32_t* labels, std::int64_t n,
                                    std::int64_t classes, std::int64_t mean_over,
                                    StepCounters* step, std::int64_t cursor_advance) {
    __shared__ double loss[kThreads];
    __shared__ double hit[kThreads];
    double l = 0.0, h = 0.0;
    const float inv_n = 1.0f / float(mean_over);  // the global batch (n on one process)
    for (std::int64_t r = threadIdx.x; r < n; r += kThreads) {
        const float* p = probs + r * classes;
        const std::int32_t y = labels[r];
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < classes; ++j)
            if (p[j] > p[best]) best = j;
        h += best == y ? 1.0 : 0.0;
        // Not fmax: fmax(NaN, 1e-7) is 1e-7, which would hide a NaN. This is std::max's
        // (a < b ? b : a), as in the CPU engine.
        const double py = double(p[y]);
        l += double(float(-log(py < 1e-7 ? 1e-7 : py)));
        if (dlogits) {
            float* d = dlogits + r * classes;
            for (std::int64_t j = 0; j < classes; ++j)
                d[j] = (p[j] - (j == y ? 1.0f : 0.0f)) * inv_n;
        }
    }
    loss[threadIdx.x] = l;
    hit[threadIdx.x] = h;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
        if (int(threadIdx.x) < stride) {
            loss[threadIdx.x] += loss[threadIdx.x + stride];
            hit[threadIdx.x] += hit[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        metrics->loss_sum += loss[0];
        metrics->correct += hit[0];
        metrics->count += double(n);
        if (step) {  // a training step: count it (the gather read the cursor in an earlier launch)
            step->step += 1;
            step->cursor += cursor_advance;
        }
    }
}

__global__ void adam_kernel(float* params, const float* grads, float* m, float* v, std::int64_t n,
                            float lr, float b1, float b2, float eps, const StepCounters* counters) {
    // The same bias correction as the CPU engine: computed in double, used in float.
    const double t = double(counters->step);  // this update's number, already counted
    const float lr_t =
        float(double(lr) * sqrt(1.0 - pow(double(b2), t)) / (1.0 - pow(double(b1), t)));
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const float g = grads[i];
        const float mi = b1 * m[i] + (1.0f - b1) * g;
        const float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr_t * mi / (sqrtf(vi) + eps);
    }
}

// A stored pixel as the model sees it: a float as it is, a byte scaled to [0, 1].
__device__ inline float to_input(float v) {
    return v;
}
__device__ inline float to_input(std::uint8_t v) {
    return ::minicnn::detail::pixel_to_unit(v);
}

template <class T>
__global__ void gather_kernel(float* x, std::int32_t* y, const T* images,
                              const std::int32_t* labels, const std::int32_t* perm,
                              const StepCounters* counters, std::int64_t batch,
                              std::int64_t sample) {
    const std::int32_t* idx = perm + counters->cursor;
    const std::int64_t total = batch * sample;
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < total;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t i = e / sample, k = e % sample;
        const std::int64_t src = idx[i];
        x[e] = to_input(images[src * sample + k]);
        if (k == 0) y[i] = labels[src];
    }
}

template <class T>
void launch_gather(float* x, std::int32_t* y, const T* images, const std::int32_t* labels,
                   const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                   std::int64_t sample, cudaStream_t stream) {
    if (batch * sample == 0) return;
    gather_kernel<T><<<blocks_for(batch * sample), kThreads, 0, stream>>>(
        x, y, images, labels, perm, counters, batch, sample);
    MINICNN_CUDA_CHECK_LAUNCH();
}

__global__ void advance_kernel(StepCounters* counters, std::int64_t batch, int count_step) {
    counters->step += count_step;
    counters->cursor += batch;
}

__global__ void permutation_kernel(std::int32_t* perm, ::minicnn::detail::EpochPermutation p) {
    const std::int64_t n = std::int64_t(p.size());
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        perm[i] = std::int32_t(p(std::uint64_t(i)));
    }
}

}  // namespace

void softmax_xent(float* dlogits, Metrics* metrics, const float* probs, const std::int32_t* labels,
                  std::int64_t n, std::int64_t classes, std::int64_t mean_over, StepCounters* step,
                  std::int64_t cursor_advance, cudaStream_t stream) {
    if (n == 0) {
        if (step) {
            advance_kernel<<<1, 1, 0, stream>>>(step, cursor_advance, 1);
            MINICNN_CUDA_CHECK_LAUNCH();
        }
        return;
    }
    softmax_xent_kernel<<<1, kThreads, 0, stream>>>(dlogits, metrics, probs, labels, n, classes,
                                                    mean_over, step, cursor_advance);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                 const AdamConfig& cfg, const StepCounters* counters, cudaStream_t stream) {
    if (n == 0) return;
    adam_kernel<<<blocks_for(n), kThreads, 0, stream>>>(params, grads, m, v, n, cfg.lr, cfg.beta1,
                                                        cfg.beta2, cfg.eps, counters);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample, cudaStream_t stream) {
    launch_gather(x, y, images, labels, perm, counters, batch, sample, stream);
}

void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample, cudaStream_t stream) {
    launch_gather(x, y, pixels, labels, perm, counters, batch, sample, stream);
}

void advance(StepCounters* counters, std::int64_t batch, bool count_step, cudaStream_t stream) {
    advance_kernel<<<1, 1, 0, stream>>>(counters, batch, count_step ? 1 : 0);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed, bool shuffle,
                 cudaStream_t stream) {
    ::minicnn::detail::check_permutation_size(n);
    if (n == 0) return;
    permutation_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
        perm, ::minicnn::detail::EpochPermutation(std::uint64_t(n), seed, shuffle));
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace minicnn::cuda::train
