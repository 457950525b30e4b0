// cuda/dropout.cu — inverted dropout (training only; evaluation is the identity and launches
// nothing). CPU twin: host/cpu/dropout.cpp; test: tests/test_dropout.cpp (bit for bit, both
// rounding modes: the only arithmetic is one product per element).
//
//   dropout_forward_kernel    grid-stride, one thread per element i of (count): the counter-based
//                             decision of minicnn/detail/dropout.h (the CPU's code), with the key
//                             of (seed, layer, counters->step) computed by each thread from the
//                             step counter in device memory (graph-capturable: a replay reads the
//                             new step); writes mask[i] (1 kept, 0 dropped) and out[i].
//   dropout_backward_kernel   grid-stride, one thread per element: dinp = mask ? dout * scale : 0.
#include "dropout.h"

#include "cuda_check.h"
#include "minicnn/detail/dropout.h"

namespace minicnn::cuda {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(std::int64_t n) {
    const std::int64_t b = (n + kThreads - 1) / kThreads;
    return unsigned(b < 1 ? 1 : (b > 65535 * 32 ? 65535 * 32 : b));
}

__global__ void dropout_forward_kernel(float* out, std::int32_t* mask, const float* inp,
                                       std::int64_t count, std::uint64_t first,
                                       std::uint32_t threshold, float scale, std::uint64_t seed,
                                       std::uint64_t layer, const StepCounters* counters) {
    const std::uint64_t key =
        ::minicnn::detail::dropout_key(seed, layer, std::uint64_t(counters->step));
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const bool keep = ::minicnn::detail::dropout_keep(key, first + std::uint64_t(i), threshold);
        mask[i] = keep ? 1 : 0;
        out[i] = keep ? inp[i] * scale : 0.0f;
    }
}

__global__ void dropout_backward_kernel(float* dinp, const float* dout, const std::int32_t* mask,
                                        std::int64_t count, float scale) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        dinp[i] = mask[i] ? dout[i] * scale : 0.0f;
    }
}

}  // namespace

void dropout_forward(float* out, std::int32_t* mask, const float* inp, std::int64_t count,
                     std::int64_t sample_numel, float rate, std::uint64_t layer,
                     const TrainingStep& t, cudaStream_t stream) {
    if (count == 0) return;
    dropout_forward_kernel<<<blocks_for(count), kThreads, 0, stream>>>(
        out, mask, inp, count, std::uint64_t(t.first_sample) * std::uint64_t(sample_numel),
        ::minicnn::detail::dropout_threshold(rate), ::minicnn::detail::dropout_scale(rate), t.seed,
        layer, t.counters);
    MINICNN_CUDA_CHECK_LAUNCH();
}

void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask, std::int64_t count,
                      float rate, cudaStream_t stream) {
    if (count == 0) return;
    dropout_backward_kernel<<<blocks_for(count), kThreads, 0, stream>>>(
        dinp, dout, mask, count, ::minicnn::detail::dropout_scale(rate));
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace minicnn::cuda
