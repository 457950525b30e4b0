// minicnn/cuda_backend.h — the CUDA backend at pointer level: kernel launchers (llm.c style). They take
// device pointers, a geometry and a stream, check the launch, and never synchronise. Same argument
// order and semantics as minicnn/cpu_backend.h (outputs first, overwritten, deterministic: no
// floating-point atomics). float32 only. Only present in CUDA builds (MINICNN_WITH_CUDA).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "minicnn/activation.h"
#include "minicnn/geometry.h"

namespace minicnn::cuda {

// cuda/conv2d.cu — direct tiled convolution (no im2col).
void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, cudaStream_t stream);
// Convolution, activation and max pooling in one kernel (the forward kernel with a pooling
// epilogue): pooled (n, poh, pow, k) and mask (n, poh, pow, k) as maxpool2d_forward(pool,
// conv2d_forward(inp)) would write them, bit for bit, without the convolution's output ever
// reaching memory. `pool` pools the convolution's output (pool.h == g.oh, ...). Only where
// conv2d_maxpool_fusable says so (else ArgumentError): an activation other than softmax, pooling
// windows that do not overlap (stride >= window), and a forward tile that is whole windows.
bool conv2d_maxpool_fusable(const ConvGeom& g, Activation act, const PoolGeom& pool);
void conv2d_maxpool_forward(float* pooled, std::int32_t* mask, const float* inp,
                            const float* weight, const float* bias, const ConvGeom& g,
                            Activation act, const PoolGeom& pool, cudaStream_t stream);
// For both backward passes, dout is the gradient with respect to the pre-activation, or, when
// dout_act is not linear, with respect to the forward output dout_a = act(z) (n, oh, ow, k), and
// the activation's derivative is applied as dout is read (no separate activation_backward).
void conv2d_backward_data(float* dinp, const float* dout, const float* weight, const ConvGeom& g,
                          cudaStream_t stream, const float* dout_a = nullptr,
                          Activation dout_act = Activation::linear);
// conv2d_backward_data followed by maxpool2d_backward_mask (act' folded in) of the max pooling
// `pool` that produced this convolution's input (its mask, its output `pooled` = the
// convolution's input, the activation pooled_act before it; windows that do not overlap), in one
// kernel: dz_prev (n, pool.h, pool.w, c), the gradient with respect to the pre-activation of the
// layer before the pooling, without the convolution's input gradient reaching memory. Bit for bit
// what the two launchers give. Where the one-kernel path (the stride-1 strip kernel) does not
// apply it launches nothing and returns false; the caller then runs the two launchers.
// conv2d_backward_data_unpool_fusable says beforehand whether it applies (for every batch size).
bool conv2d_backward_data_unpool_fusable(const ConvGeom& g, const PoolGeom& pool,
                                         Activation pooled_act);
bool conv2d_backward_data_unpool(float* dz_prev, const float* dout, const float* weight,
                                 const ConvGeom& g, cudaStream_t stream, const float* dout_a,
                                 Activation dout_act, const std::int32_t* mask, const float* pooled,
                                 Activation pooled_act, const PoolGeom& pool);
// dbias may be null. `workspace` must hold conv2d_backward_filter_workspace(g) bytes (may be 0).
std::size_t conv2d_backward_filter_workspace(const ConvGeom& g);
void conv2d_backward_filter(float* dweight, float* dbias, const float* dout, const float* inp,
                            const ConvGeom& g, void* workspace, cudaStream_t stream,
                            const float* dout_a = nullptr,
                            Activation dout_act = Activation::linear);

// cuda/pool2d.cu
void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp, const PoolGeom& g,
                       cudaStream_t stream);
void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g, cudaStream_t stream);
// With dout_act not linear, dout is the gradient with respect to the pooled output dout_a of
// act(z) and dinp becomes the gradient with respect to z: act' (from the pooled value, which is
// act(z) at the window's argmax) is applied as dout is read. Exact only for windows that do not
// overlap (conv2d_maxpool_forward's backward).
void maxpool2d_backward_mask(float* dinp, const float* dout, const std::int32_t* mask,
                             const PoolGeom& g, cudaStream_t stream, const float* dout_a = nullptr,
                             Activation dout_act = Activation::linear);
void maxpool2d_backward_allties(float* dinp, const float* dout, const float* inp, const PoolGeom& g,
                                cudaStream_t stream);
void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g, cudaStream_t stream);

// cuda/activation.cu
void activation_forward(float* out, const float* in, std::int64_t rows, std::int64_t cols,
                        Activation act, cudaStream_t stream);
void activation_backward(float* din, const float* dout, const float* out, std::int64_t rows,
                         std::int64_t cols, Activation act, cudaStream_t stream);
// out (rows, cols) = act(in + bias (cols)), the bias added to every row, any activation (softmax
// row by row), in one kernel; out may alias in.
void bias_activation_forward(float* out, const float* in, const float* bias, std::int64_t rows,
                             std::int64_t cols, Activation act, cudaStream_t stream);

}  // namespace minicnn::cuda
