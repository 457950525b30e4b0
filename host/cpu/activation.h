// host/cpu/activation.h — the activations on one thread, for callers that already split the work (the
// convolution's fused activation, the training engine's chunks). out may alias in, din may alias
// dout. Public, multithreaded forms: minicnn/cpu_backend.h.
#pragma once

#include <cstdint>

#include "minicnn/activation.h"

namespace minicnn::cpu {

// ArgumentError unless rows, cols >= 0 and act is a known activation (`op` names the caller). The
// CUDA launchers of cuda/activation.cu check with the same function.
void check_activation_args(std::int64_t rows, std::int64_t cols, Activation act, const char* op);

template <class T>
void activation_rows(T* out, const T* in, std::int64_t rows, std::int64_t cols, Activation act);
template <class T>
void activation_backward_rows(T* din, const T* dout, const T* out, std::int64_t rows,
                              std::int64_t cols, Activation act);

}  // namespace minicnn::cpu
