// host/cpu/dense.h — dense (fully connected) layers on the CPU for the training engine: SGEMM per
// batch chunk (host/cpu/thread_pool.h), weight gradients summed per chunk, then the chunks in order
// (deterministic for any thread count). The CUDA twin is cuda/dense.cu (minicnn's own tiled
// SGEMM kernels with the bias, activation and softmax fused in; tests/test_engine_cuda.cpp).
//
//   forward   out (n, n_out) = act(inp (n, n_in) @ W (n_in, n_out) + b)
//   backward  dW = inp^T @ dz;  db = column sums of dz;  dinp = dz @ W^T  (dinp may be null)
#pragma once

#include <cstdint>

#include "minicnn/activation.h"
#include "workspace.h"

namespace minicnn::cpu {

void dense_reserve(Workspace<float>& ws, std::int64_t n, std::int64_t n_in, std::int64_t n_out);
void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                   std::int64_t n, std::int64_t n_in, std::int64_t n_out, Activation act);
void dense_backward(float* dinp, float* dweight, float* dbias, const float* dz, const float* inp,
                    const float* weight, std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                    Workspace<float>& ws);

}  // namespace minicnn::cpu
