// cuda/dense.h — launchers of cuda/dense.cu: a dense layer's forward (GEMM + bias + activation,
// softmax included) and backward (act', dweight, dbias, dinp), and the forward of a run of dense
// layers as one launch. Three paths by the layer's size: small layers (forward_chain's limits) by
// the row kernel forward, large ones (uses_cublas) by cuBLAS's SGEMM on the context's handle with a
// bias + activation kernel after it, the rest by the tiled GEMM kernel (one launch forward, one
// backward). Device pointers; they check the launch and never synchronise. Run to run
// deterministic (no atomics; cuBLAS's GEMMs are bit for bit reproducible on GPUs of one
// architecture and SM count with one toolkit version, the handle having a workspace of its own:
// cuBLAS guide, "Results reproducibility"). Host-only header: usable from .cpp files compiled by
// g++.
#pragma once

#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "context.h"
#include "minicnn/activation.h"
#include "minicnn/geometry.h"

namespace minicnn::cuda::dense {

// The layers whose GEMMs run on cuBLAS: at least kCublasMinWeights weights (n_in * n_out), the
// crossover of bench/README.md's cost MODEL (a forward and a backward at batch 32 and 256:
// cuBLAS's two forward and three or four backward launches against one each of the tiled
// kernel; not measured). The choice depends on the layer alone, never on the batch size, so a
// layer's results come from one path whatever the batch. Disjoint from forward_chain's layers.
constexpr std::int64_t kCublasMinWeights = std::int64_t(1) << 17;  // 131,072: 512 x 256
constexpr bool uses_cublas(std::int64_t n_in, std::int64_t n_out) {
    return n_in * n_out >= kCublasMinWeights;
}

// out (n, n_out) = act(inp (n, n_in) @ weight (n_in, n_out) + bias (n_out)), any activation, on
// ctx's stream (and its cuBLAS handle for a large layer).
void forward(float* out, const float* inp, const float* weight, const float* bias, std::int64_t n,
             std::int64_t n_in, std::int64_t n_out, Activation act, const Context& ctx);
// From dy (n, n_out), the gradient with respect to out = act(z) (act linear: dy is dz; out may
// then be null; act is linear, relu, tanh or sigmoid): dweight (n_in, n_out) = inp^T dz, dbias
// (n_out) = column sums of dz when not null, dinp (n, n_in) = dz weight^T when not null. A large
// layer (uses_cublas) with act not linear overwrites dy with dz first; a smaller one leaves it.
void backward(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
              Activation act, const float* inp, const float* weight, std::int64_t n,
              std::int64_t n_in, std::int64_t n_out, const Context& ctx);
// The same when inp is the (flattened, NHWC) output of the max pooling `pool` (windows that do not
// overlap) of act(z), prev_act being that activation: instead of dinp it writes dz_prev (pool.n,
// pool.h, pool.w, pool.c), the gradient with respect to z, as maxpool2d_backward_mask with act'
// folded in would from dinp, bit for bit. Still one launch, by the tiled kernel whatever the
// layer's size (the engine's plan links a pooling to the dense layer after it only when that
// layer is not a cuBLAS one).
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
