// host/cpu/train_kernels.h — the training engine's operations beyond the layers, on the CPU: the twin of
// cuda/train_kernels.cu (same names, same formulas; host pointers, the pool of host/cpu/thread_pool.h).
#pragma once

#include <cstdint>

#include "minicnn/engine.h"

namespace minicnn::cpu::train {

// The fused softmax + cross-entropy of Engine::softmax_xent (metrics accumulate, in sample order),
// counting the training step in `step` when it is not null.
void softmax_xent(float* dlogits, Metrics* metrics, const float* probs, const std::int32_t* labels,
                  std::int64_t n, std::int64_t classes, std::int64_t mean_over, StepCounters* step,
                  std::int64_t cursor_advance);
// One Adam update over n parameters, t = counters->step (already counted).
void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                 const AdamConfig& cfg, const StepCounters* counters);
// x (batch, sample) = images[perm[cursor + i]], y (batch) = labels[perm[cursor + i]].
void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample);
// The same from 8-bit images: x = detail::pixel_to_unit(pixels[...]) (minicnn/detail/pixel.h).
void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample);
// counters->step += count_step, counters->cursor += batch.
void advance(StepCounters* counters, std::int64_t batch, bool count_step);
// perm (n) = detail::EpochPermutation(n, seed, shuffle) (minicnn/detail/permutation.h).
void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed, bool shuffle);

}  // namespace minicnn::cpu::train
