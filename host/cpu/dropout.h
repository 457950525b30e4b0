// host/cpu/dropout.h — inverted dropout on the CPU for the training engine: the twin of
// cuda/dropout.cu (tests/test_dropout.cpp compares them bit for bit). The drop decision is the
// counter-based one of minicnn/detail/dropout.h, shared with the kernel; the loops run over fixed
// blocks of the pool (host/cpu/thread_pool.h), each element on its own, so the result is the same
// for any thread count.
//
//   forward   mask[i] = keep(i);  out[i] = mask[i] ? inp[i] * scale : 0     (scale = 1 / (1 - rate))
//   backward  dinp[i] = mask[i] ? dout[i] * scale : 0                       (dinp may alias dout)
#pragma once

#include <cstdint>

#include "minicnn/engine.h"

namespace minicnn::cpu {

// count floats (n samples of sample_numel), keep(i) drawn as Engine::dropout_forward says.
void dropout_forward(float* out, std::int32_t* mask, const float* inp, std::int64_t count,
                     std::int64_t sample_numel, float rate, std::uint64_t layer,
                     const TrainingStep& t);
void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask, std::int64_t count,
                      float rate);

}  // namespace minicnn::cpu
