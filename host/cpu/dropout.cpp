// host/cpu/dropout.cpp — inverted dropout on the CPU (host/cpu/dropout.h), the twin of
// cuda/dropout.cu.
#include "dropout.h"

#include "minicnn/detail/dropout.h"
#include "thread_pool.h"

namespace minicnn::cpu {

void dropout_forward(float* out, std::int32_t* mask, const float* inp, std::int64_t count,
                     std::int64_t sample_numel, float rate, std::uint64_t layer,
                     const TrainingStep& t) {
    const std::uint64_t key = detail::dropout_key(t.seed, layer, std::uint64_t(t.counters->step));
    const std::uint32_t threshold = detail::dropout_threshold(rate);
    const float scale = detail::dropout_scale(rate);
    const std::uint64_t first = std::uint64_t(t.first_sample) * std::uint64_t(sample_numel);
    parallel_range(count, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const bool keep = detail::dropout_keep(key, first + std::uint64_t(i), threshold);
            mask[i] = keep ? 1 : 0;
            out[i] = keep ? inp[i] * scale : 0.0f;
        }
    });
}

void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask, std::int64_t count,
                      float rate) {
    const float scale = detail::dropout_scale(rate);
    parallel_range(count, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) dinp[i] = mask[i] ? dout[i] * scale : 0.0f;
    });
}

}  // namespace minicnn::cpu
