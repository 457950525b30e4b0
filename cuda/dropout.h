// cuda/dropout.h — launchers of the dropout kernels in cuda/dropout.cu (Engine::dropout_forward /
// dropout_backward of the CUDA engine). Device pointers and a stream; they check the launch and
// never synchronise. CPU twin: host/cpu/dropout.h; test: tests/test_dropout.cpp.
// Host-only header: usable from .cpp files compiled by g++.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "minicnn/engine.h"

namespace minicnn::cuda {

// out, mask (count) from inp (count): the units of minicnn/detail/dropout.h, the step read from
// t.counters (device memory) by the kernel, so a recorded graph draws new units at each replay.
void dropout_forward(float* out, std::int32_t* mask, const float* inp, std::int64_t count,
                     std::int64_t sample_numel, float rate, std::uint64_t layer,
                     const TrainingStep& t, cudaStream_t stream);
// dinp (count) = mask ? dout * 1 / (1 - rate) : 0; dinp may alias dout.
void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask, std::int64_t count,
                      float rate, cudaStream_t stream);

}  // namespace minicnn::cuda
