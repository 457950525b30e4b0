// host/cpu/train_kernels.cpp — the training engine's loss, Adam, batch gather, counters and epoch
// permutation on the CPU (host/cpu/train_kernels.h), the twin of cuda/train_kernels.cu.
#include "train_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "minicnn/detail/permutation.h"
#include "minicnn/detail/pixel.h"
#include "minicnn/error.h"
#include "simd_clones.h"
#include "thread_pool.h"

namespace minicnn::cpu::train {

namespace {

// One Adam update of n parameters (the formula of minicnn/engine.h, lr_t bias-corrected).
MINICNN_CLONES void adam_range(float* params, const float* grads, float* m, float* v,
                               std::int64_t n, float lr_t, float b1, float b2, float eps) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float g = grads[i];
        const float mi = b1 * m[i] + (1.0f - b1) * g;
        const float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr_t * mi / (std::sqrt(vi) + eps);
    }
}

// dst[k] = pixel_to_unit(src[k]): the division in vectors (a baseline build runs it 4 wide).
MINICNN_CLONES void pixels_to_unit(float* __restrict dst, const std::uint8_t* __restrict src,
                                   std::int64_t n) {
    for (std::int64_t k = 0; k < n; ++k) dst[k] = detail::pixel_to_unit(src[k]);
}

}  // namespace

void softmax_xent(float* dlogits, Metrics* metrics, const float* probs, const std::int32_t* labels,
                  std::int64_t n, std::int64_t classes, std::int64_t mean_over, StepCounters* step,
                  std::int64_t cursor_advance) {
    double loss = 0.0, correct = 0.0;
    const float inv_n = 1.0f / float(mean_over);
    for (std::int64_t r = 0; r < n; ++r) {
        const float* p = probs + r * classes;
        const std::int32_t y = labels[r];
        MINICNN_REQUIRE(y >= 0 && y < classes, "softmax_xent: label " << y << " of sample " << r
                                                                      << " is outside [0, "
                                                                      << classes << ")");
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < classes; ++j)
            if (p[j] > p[best]) best = j;
        correct += best == y ? 1.0 : 0.0;
        loss += -std::log(std::max(double(p[y]), 1e-7));  // NaN stays NaN (divergence is reported)
        if (dlogits) {
            float* d = dlogits + r * classes;
            for (std::int64_t j = 0; j < classes; ++j)
                d[j] = (p[j] - (j == y ? 1.0f : 0.0f)) * inv_n;
        }
    }
    metrics->loss_sum += loss;
    metrics->correct += correct;
    metrics->count += double(n);
    if (step) advance(step, cursor_advance, true);
}

void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                 const AdamConfig& cfg, const StepCounters* counters) {
    const double t = double(counters->step);  // this update's number, already counted
    const float lr_t = float(double(cfg.lr) * std::sqrt(1.0 - std::pow(double(cfg.beta2), t)) /
                             (1.0 - std::pow(double(cfg.beta1), t)));
    parallel_range(n, [&](std::int64_t i0, std::int64_t i1) {
        adam_range(params + i0, grads + i0, m + i0, v + i0, i1 - i0, lr_t, cfg.beta1, cfg.beta2,
                   cfg.eps);
    });
}

void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample) {
    const std::int32_t* idx = perm + counters->cursor;
    parallel_range(batch, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) {
            std::memcpy(x + i * sample, images + std::int64_t(idx[i]) * sample,
                        std::size_t(sample) * sizeof(float));
            y[i] = labels[idx[i]];
        }
    });
}

void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample) {
    const std::int32_t* idx = perm + counters->cursor;
    parallel_range(batch, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) {
            pixels_to_unit(x + i * sample, pixels + std::int64_t(idx[i]) * sample, sample);
            y[i] = labels[idx[i]];
        }
    });
}

void advance(StepCounters* counters, std::int64_t batch, bool count_step) {
    if (count_step) counters->step += 1;
    counters->cursor += batch;
}

void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed, bool shuffle) {
    detail::check_permutation_size(n);
    const detail::EpochPermutation p(std::uint64_t(n), seed, shuffle);
    parallel_range(n, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) perm[i] = std::int32_t(p(std::uint64_t(i)));
    });
}

}  // namespace minicnn::cpu::train
