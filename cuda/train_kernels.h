// cuda/train_kernels.h — launchers of the training kernels in cuda/train_kernels.cu: what the CUDA
// engine (cuda/engine_cuda.cpp) needs beyond the layer kernels of minicnn/cuda_backend.h and the
// dense layers of cuda/dense.h. All take device pointers and a stream, check the launch and never
// synchronise. No floating-point atomics: every reduction runs in a fixed order, so results are
// bit-reproducible.
// Host-only header: usable from .cpp files compiled by g++.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "minicnn/activation.h"
#include "minicnn/engine.h"

namespace minicnn::cuda::train {

// The fused softmax + cross-entropy of Engine::softmax_xent, loss and metrics in one launch (one
// block; per-sample values summed in a fixed tree order into *metrics).
void softmax_xent(float* dlogits, Metrics* metrics, const float* probs, const std::int32_t* labels,
                  std::int64_t n, std::int64_t classes, std::int64_t mean_over, StepCounters* step,
                  std::int64_t cursor_advance, cudaStream_t stream);
// One Adam update over n parameters, t = counters->step (already counted) read on the device.
void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                 const AdamConfig& cfg, const StepCounters* counters, cudaStream_t stream);
// x (batch, sample) = images[perm[cursor + i]], y (batch) = labels[perm[cursor + i]].
void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample, cudaStream_t stream);
// The same from 8-bit images: x = detail::pixel_to_unit(pixels[...]) (minicnn/detail/pixel.h).
void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels, const std::int32_t* labels,
                  const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                  std::int64_t sample, cudaStream_t stream);
// counters->step += count_step, counters->cursor += batch (one thread).
void advance(StepCounters* counters, std::int64_t batch, bool count_step, cudaStream_t stream);
// perm (n) = detail::EpochPermutation(n, seed, shuffle) (minicnn/detail/permutation.h), one
// thread per element: the same permutation as the CPU engine's. No scratch, no synchronisation.
void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed, bool shuffle,
                 cudaStream_t stream);

}  // namespace minicnn::cuda::train
