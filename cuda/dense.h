// cuda/dense.h — launchers of cuda/dense.cu: a dense layer's forward (GEMM + bias + activation,
// softmax included for up to 32 outputs) and backward (act', dweight, dbias, dinp) as one launch
// each, and the forward of a run of dense layers as one launch. Device pointers, a stream; they check the launch and never synchronise. Deterministic (no
// atomics). Host-only header: usable from .cpp files compiled by g++.
#pragma once

#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "minicnn/activation.h"
#include "minicnn/geometry.h"

namespace minicnn::cuda::dense {

// out (n, n_out) = act(inp (n, n_in) @ weight (n_in, n_out) + bias (n_out)), any activation.
void forward(float* out, const float* inp, const float* weight, const float* bias, std::int64_t n,
             std::int64_t n_in, std::int64_t n_out, Activation act, cudaStream_t stream);
// From dy (n, n_out), the gradient with respect to out = act(z) (act linear: dy is dz; out may
// then be null; act is linear, relu, tanh or sigmoid): dweight (n_in, n_out) = inp^T dz, dbias
// (n_out) = column sums of dz when not null, dinp (n, n_in) = dz weight^T when not null.
void backward(float* dinp, float* dweight, float* dbias, const float* dy, const float* out,
              Activation act, const float* inp, const float* weight, std::int64_t n,
              std::int64_t n_in, std::int64_t n_out, cudaStream_t stream);
// The same when inp is the (flattened, NHWC) output of the max pooling `pool` (windows that do not
// overlap) of act(z), prev_act being that activation: instead of dinp it writes dz_prev (pool.n,
// pool.h, pool.w, pool.c), the gradient with respect to z, as maxpool2d_backward_mask with act'
// folded in would from dinp, bit for bit. Still one launch.
void backward_unpool(float* dz_prev, float* dweight, float* dbias, const float* dy,
                     const float* out, Activation act, const float* inp, const float* weight,
                     std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                     const std::int32_t* mask, Activation prev_act, const PoolGeom& pool,
                     cudaStream_t stream);

// A run of dense layers whose forward passes run as one launch (forward_chain): layer l reads
// layer l - 1's output (the first reads inp) and writes its own, every output kept for the
// backward pass.
struct ChainLayer {
    const float* weight;  // (n_in, n_out)
    const float* bias;    // (n_out)
    float* out;           // (n, n_out)
    std::int64_t n_in, n_out;
    Activation act;  // softmax only with n_out <= 32 (one tile holds whole rows)
};
constexpr int kMaxChain = 4;
constexpr std::int64_t kChainMaxWidth = 2048;  // features in or out of a layer
constexpr std::int64_t kChainMaxWeights =
    65536;  // weights of a layer (256 KiB, read once per 2 rows)
// Why these layers cannot run as one forward_chain launch, or "": 1 to kMaxChain layers, each
// one's n_in the previous one's n_out, each at most kChainMaxWidth features in and out and
// kChainMaxWeights weights, a softmax only as the last layer and over at most 32 outputs.
std::string chain_unfusable(const ChainLayer* layers, int count);
// The forward of every layer, bit for bit what one forward() per layer writes (forward() runs such
// small layers by the same kernel), in one launch.
void forward_chain(const float* inp, const ChainLayer* layers, int count, std::int64_t n,
                   cudaStream_t stream);

}  // namespace minicnn::cuda::dense
