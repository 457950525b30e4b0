// cuda/dense.cu — dense (fully connected) layers of the CUDA training engine: small and medium
// layers as small tiled SGEMMs with their elementwise work fused in (one launch forward, one
// backward), large ones (uses_cublas, cuda/dense.h) as cuBLAS SGEMMs.
// CPU twin: host/cpu/dense.cpp. Test: tests/test_engine_cuda.cpp (dense layers against the CPU
// engine; one LeNet-5 step; the device-operation count; the cuBLAS path, 1024 wide, against the
// CPU with its dispatch checked, and a model with 1024-wide layers trained with CUDA graphs),
// tests/test_dense.cpp (the chained forward), tests/test_engine_cuda_fused.cpp (the unpooling
// backward and the chained forward, in the CUDA plan, against the layer-by-layer plan; a cuBLAS
// layer after a fused pair).
//
//   forward   out (n, n_out)     = act(inp (n, n_in) @ weight (n_in, n_out) + bias (n_out))
//             a small layer (forward_chain's limits) by the row kernel below; a large one
//             (uses_cublas) by cublasSgemm, then bias + activation in one kernel
//             (cuda/activation.cu's bias_activation_forward); any other by the tiled GEMM,
//             softmax in the epilogue when n_out <= 32 (one tile holds whole rows), else a second
//             kernel (bias_activation_forward).
//   cuBLAS    row-major X (r, c) is column-major X^T, so each product is issued transposed:
//             forward  out^T (n_out, n)  = weight^T (n_out, n_in) inp^T (n_in, n)    (N, N)
//             dweight  dweight^T (n_out, n_in) = dz^T (n_out, n) inp (n, n_in)       (N, T)
//             dinp     dinp^T (n_in, n)  = weight (n_in, n_out) dz^T (n_out, n)      (T, N)
//             FP32 compute (the context's handle: default math, no TF32), on the context's
//             stream with its workspace, so the calls are captured into the training step's CUDA
//             graph like the kernels. A large layer's backward is act' in place on dy
//             (activation_backward; none when linear), the two GEMMs and dbias by
//             column_sum_kernel (one thread per column, rows in order).
//   backward  (the tiled kernel; a cuBLAS layer's: above)
//             dz                 = act'(out) * dy, formed as dy is loaded (dy when act is linear)
//             dweight (n_in, n_out) = inp^T dz,   dbias (n_out) = column sums of dz,
//             dinp (n, n_in)        = dz weight^T
//             in one launch: blocks [0, B0) compute [dweight; dbias] as one product whose extra
//             row of inp^T is ones, blocks [B0, B0 + B1) compute dinp.
//   backward_unpool  the same, but when inp is the (flattened) output of a max pooling of act(z)
//             with windows that do not overlap, the dinp blocks write dz_prev, the gradient with
//             respect to z, instead of dinp: maxpool2d_backward_mask with act' folded in, in the
//             epilogue (each pooled element owns the cells of its stride-sized block of z, the
//             last row and column of pooled pixels also the cells past them; the cell its mask
//             names gets 0 + act'(pooled) * dinp, every other one 0).
//   forward_chain  the forwards of a run of small dense layers (LeNet's three) in one launch, by
//             the row kernel: block b owns rows [2 b, 2 b + 2) of every layer (128 blocks at batch
//             256) and computes layer after layer for them, the rows kept in shared memory between
//             layers; thread t sums element t, t + 256, ... in k order. forward() runs a small
//             layer (at most 2048 features in and out and 64 Ki weights) by the same kernel, so a
//             chained forward is bit for bit the forwards one by one; larger layers take the
//             tiled GEMM above (the row kernel would read their weights once per two rows).
//
// Tiling. C (M, N) = sum_k A(m, k) B(k, n): a block of 256 threads owns a 32 x 32 tile of C; thread
// t owns rows t/16 + {0, 16} and columns t%16 + {0, 16}. K is walked in chunks of 32 staged in shared
// memory, in order, so every sum has a fixed order (bit-identical run to run, no atomics). Operands
// are read through strides (element (m, k) of A at m*sm + k*sk), which covers the transposes.
// Indices are 32-bit: the launchers check that every matrix has fewer than 2^31 elements.
#include <algorithm>
#include <cstdint>
#include <string>

#include "activation_math.cuh"
#include "context.h"
#include "cuda_check.h"
#include "dense.h"
#include "fusion_rules.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"
#include "nvtx_range.h"
#include "pool_math.cuh"

namespace minicnn::cuda::dense {

namespace {

constexpr int kThreads = 256;
constexpr int kTile = 32;  // C tile (rows and columns) and K chunk

// A matrix operand read through strides: value(r, k) = p[r*sr + k*sk], with act' of the forward
// output `a` (same indexing) applied when act is not linear, and a row of ones at r == ones_row.
struct Operand {
    const float* p;
    const float* a;
    Activation act;
    int sr, sk;
    int ones_row;  // -1: none
};

// One product of a launch: C (M, N) += nothing, overwritten: c[m*ldc + n] = epilogue(sum).
// Row M-1 goes to last_row[n] instead when last_row is not null (dbias).
struct Job {
    Operand A;  // (M, K)
    Operand B;  // (N, K): B(k, n) is B.value(n, k)
    int M, N, K;
    float* c;
    int ldc;
    float* last_row;
    const float* bias;  // (N) or null
    Activation act;     // epilogue activation (softmax: whole rows in one tile)
    int tiles_n;
    // The unpooling epilogue (backward_unpool): with umask not null, element (m, n) of C is the
    // gradient of pooled element n of sample m (pool: NHWC, flattened), and c is dz_prev (M, h,
    // w, c) of the pooling's input.
    const std::int32_t* umask;
    const float* upooled;
    Activation uact;
    PoolGeom pool;
};

// The unpooling epilogue of one element (see Job): element n of sample m is pooled pixel
// (py, px), channel ch (NHWC flattened).
__device__ inline void unpool_element(const Job& J, int m, int n, float z) {
    const PoolGeom& p = J.pool;
    const int C = int(p.c), POW = int(p.ow);
    const std::int64_t o = std::int64_t(m) * J.N + n;
    unpool_store(J.c + std::int64_t(m) * p.h * p.w * C, p, n / (C * POW), (n / C) % POW, n % C, z,
                 J.upooled[o], J.uact, J.umask[o]);
}

__device__ inline float load(const Operand& o, int r, int k) {
    if (r == o.ones_row) return 1.0f;
    return load_dz(o.p, o.a, o.act, std::int64_t(r * o.sr + k * o.sk));
}

// Block b of job J (the body of dense_gemm_kernel, inlined once per job so that the job's fields
// are read from the kernel parameters, not copied to local memory).
__device__ __forceinline__ void gemm_tile(const Job& J, const int b, float (&a_s)[kTile][kTile + 1],
                                          float (&b_s)[kTile][kTile + 1],
                                          float (&z_s)[kTile][kTile + 1]) {
    const int m0 = (b / J.tiles_n) * kTile, n0 = (b % J.tiles_n) * kTile;
    const int tid = threadIdx.x;
    const int tm = tid / 16, tn = tid % 16;

    float acc[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
    for (int k0 = 0; k0 < J.K; k0 += kTile) {
        __syncthreads();  // the previous chunk has been read
        // Stage A(m0.., k0..) and B(k0.., n0..): element e = (row, k) with k fastest when the
        // operand is contiguous along k, else the row fastest (coalesced either way).
        for (int e = tid; e < kTile * kTile; e += kThreads) {
            const int fa = J.A.sk == 1 ? e % kTile : e / kTile;  // k offset
            const int ra = J.A.sk == 1 ? e / kTile : e % kTile;  // row offset
            const int m = m0 + ra, k = k0 + fa;
            a_s[fa][ra] = (m < J.M && k < J.K) ? load(J.A, m, k) : 0.0f;
            const int fb = J.B.sk == 1 ? e % kTile : e / kTile;
            const int rb = J.B.sk == 1 ? e / kTile : e % kTile;
            const int n = n0 + rb, kb = k0 + fb;
            b_s[fb][rb] = (n < J.N && kb < J.K) ? load(J.B, n, kb) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < kTile; ++k) {
            const float x0 = a_s[k][tm], x1 = a_s[k][tm + 16];
            const float y0 = b_s[k][tn], y1 = b_s[k][tn + 16];
            acc[0][0] += x0 * y0;
            acc[0][1] += x0 * y1;
            acc[1][0] += x1 * y0;
            acc[1][1] += x1 * y1;
        }
    }

    if (J.act == Activation::softmax) {
        // The tile holds whole rows (N <= 32, checked on the host): pre-activations to shared
        // memory, then one thread per row: max, sum of exponentials, quotient, columns in order.
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
            for (int v = 0; v < 2; ++v) {
                const int n = n0 + tn + 16 * v;
                z_s[tm + 16 * u][tn + 16 * v] = acc[u][v] + (J.bias && n < J.N ? J.bias[n] : 0.0f);
            }
        __syncthreads();
        if (tid >= kTile) return;
        const int m = m0 + tid;
        if (m >= J.M) return;
        float mx = -INFINITY;
        for (int n = 0; n < J.N; ++n) mx = fmaxf(mx, z_s[tid][n]);
        float s = 0.0f;
        for (int n = 0; n < J.N; ++n) s += expf(z_s[tid][n] - mx);
        for (int n = 0; n < J.N; ++n) J.c[m * J.ldc + n] = expf(z_s[tid][n] - mx) / s;
        return;
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
#pragma unroll
        for (int v = 0; v < 2; ++v) {
            const int m = m0 + tm + 16 * u, n = n0 + tn + 16 * v;
            if (m >= J.M || n >= J.N) continue;
            const float z = acc[u][v] + (J.bias ? J.bias[n] : 0.0f);
            if (J.last_row && m == J.M - 1) {
                J.last_row[n] = z;
            } else if (J.umask) {
                unpool_element(J, m, n, z);
            } else {
                J.c[m * J.ldc + n] = act_forward(z, J.act);
            }
        }
    }
}

__global__ void __launch_bounds__(kThreads)
    dense_gemm_kernel(const Job j0, const Job j1, const int blocks0) {
    __shared__ float a_s[kTile][kTile + 1];  // [k][m]
    __shared__ float b_s[kTile][kTile + 1];  // [k][n]
    __shared__ float z_s[kTile][kTile + 1];  // softmax epilogue: the tile's pre-activations
    // The branch is uniform per block, so every thread of a block reaches the same barriers.
    if (int(blockIdx.x) < blocks0) {
        gemm_tile(j0, int(blockIdx.x), a_s, b_s, z_s);
    } else {
        gemm_tile(j1, int(blockIdx.x) - blocks0, a_s, b_s, z_s);
    }
}

int tiles(int x) {
    return (x + kTile - 1) / kTile;
}

void check_sizes(std::int64_t n, std::int64_t n_in, std::int64_t n_out, const char* op) {
    constexpr std::int64_t kMax = std::int64_t(1) << 31;
    MINICNN_REQUIRE(n >= 0 && n_in > 0 && n_out > 0 && n * n_in < kMax && n * n_out < kMax &&
                        (n_in + 1) * n_out < kMax,
                    op << ": sizes beyond 32-bit indexing or not positive: n " << n << ", n_in "
                       << n_in << ", n_out " << n_out);
}

void launch(const Job& j0, const Job* j1, cudaStream_t stream) {
    const int b0 = tiles(j0.M) * j0.tiles_n;
    const int b1 = j1 ? tiles(j1->M) * j1->tiles_n : 0;
    if (b0 + b1 == 0) return;
    const Job second = j1 ? *j1 : j0;  // unused when b1 == 0
    dense_gemm_kernel<<<unsigned(b0 + b1), kThreads, 0, stream>>>(j0, second, b0);
    MINICNN_CUDA_CHECK_LAUNCH();
}

// Column-major C (m, nn) = op(A) op(B) by cublasSgemm on ctx's handle (bound to ctx's stream).
void sgemm(const Context& ctx, cublasOperation_t ta, cublasOperation_t tb, std::int64_t m,
           std::int64_t nn, std::int64_t k, const float* A, std::int64_t lda, const float* B,
           std::int64_t ldb, float* C, std::int64_t ldc) {
    const float one = 1.0f, zero = 0.0f;
    MINICNN_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), ta, tb, int(m), int(nn), int(k), &one, A,
                                     int(lda), B, int(ldb), &zero, C, int(ldc)));
}

// sum (cols) = column sums of x (rows, cols): one thread per column, rows in order.
__global__ void __launch_bounds__(kThreads)
    column_sum_kernel(float* sum, const float* x, const int rows, const int cols) {
    const int c = int(blockIdx.x) * kThreads + int(threadIdx.x);
    if (c >= cols) return;
    float s = 0.0f;
    for (int r = 0; r < rows; ++r) s += x[std::int64_t(r) * cols + c];
    sum[c] = s;
}

}  // namespace

void forward(float* out, const float* inp, const float* weight, const float* bias, std::int64_t n,
             std::int64_t n_in, std::int64_t n_out, Activation act, const Context& ctx) {
    NvtxRange range("dense_forward");
    check_sizes(n, n_in, n_out, "dense_forward");
    if (n == 0) return;
    const cudaStream_t stream = ctx.stream();
    if (uses_cublas(n_in, n_out)) {
        sgemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, n_out, n, n_in, weight, n_out, inp, n_in, out, n_out);
        bias_activation_forward(out, out, bias, n, n_out, act, stream);
        return;
    }
    // A layer whose weights are small runs the row kernel (the chain of one layer): the sums of a
    // chained forward are then those of this one by construction, in any rounding mode.
    const ChainLayer one{weight, bias, out, n_in, n_out, act};
    if (chain_unfusable(&one, 1).empty()) return forward_chain(inp, &one, 1, n, stream);
    const bool fused_softmax = act != Activation::softmax || n_out <= kTile;
    Job j{};
    j.A = Operand{inp, nullptr, Activation::linear, int(n_in), 1, -1};      // inp (n, n_in)
    j.B = Operand{weight, nullptr, Activation::linear, 1, int(n_out), -1};  // weight (n_in, n_out)
    j.M = int(n);
    j.N = int(n_out);
    j.K = int(n_in);
    j.c = out;
    j.ldc = int(n_out);
    j.last_row = nullptr;
    j.bias = fused_softmax ? bias : nullptr;
    j.act = fused_softmax ? act : Activation::linear;
    j.tiles_n = tiles(j.N);
    launch(j, nullptr, stream);
    if (!fused_softmax) bias_activation_forward(out, out, bias, n, n_out, act, stream);
}

namespace {

// The two products of a dense layer's backward (see the file comment); d writes dinp.
void backward_jobs(Job& w, Job& d, float* dinp, float* dweight, float* dbias, const float* dy,
                   const float* out, Activation act, const float* inp, const float* weight,
                   std::int64_t n, std::int64_t n_in, std::int64_t n_out, const char* op) {
    check_sizes(n, n_in, n_out, op);
    MINICNN_REQUIRE(act != Activation::softmax && (act == Activation::linear || out != nullptr),
                    op << ": the activation folded into dy must be linear, relu, tanh or "
                          "sigmoid with its forward output given, got "
                       << activation_name(act));
    // [dweight; dbias] (n_in + 1, n_out) = [inp^T; ones] (n_in + 1, n) dz (n, n_out).
    w = Job{};
    w.A = Operand{inp, nullptr, Activation::linear, 1, int(n_in), dbias ? int(n_in) : -1};
    w.B = Operand{dy, out, act, 1, int(n_out), -1};  // dz(k = sample, o)
    w.M = int(n_in) + (dbias ? 1 : 0);
    w.N = int(n_out);
    w.K = int(n);
    w.c = dweight;
    w.ldc = int(n_out);
    w.last_row = dbias;
    w.act = Activation::linear;
    w.tiles_n = tiles(w.N);
    // dinp (n, n_in) = dz (n, n_out) weight^T.
    d = Job{};
    d.A = Operand{dy, out, act, int(n_out), 1, -1};                         // dz(i, k = o)
    d.B = Operand{weight, nullptr, Activation::linear, int(n_out), 1, -1};  // weight(r, o)
    d.M = int(n);
    d.N = int(n_in);
    d.K = int(n_out);
    d.c = dinp;
    d.ldc = int(n_in);
    d.act = Activation::linear;
    d.tiles_n = tiles(d.N);
}

}  // namespace

void backward(float* dinp, float* dweight, float* dbias, float* dy, const float* out,
              Activation act, const float* inp, const float* weight, std::int64_t n,
              std::int64_t n_in, std::int64_t n_out, const Context& ctx) {
    NvtxRange range("dense_backward");
    Job w, d;
    backward_jobs(w, d, dinp, dweight, dbias, dy, out, act, inp, weight, n, n_in, n_out,
                  "dense_backward");
    const cudaStream_t stream = ctx.stream();
    if (!uses_cublas(n_in, n_out)) return launch(w, dinp && n > 0 ? &d : nullptr, stream);
    if (act != Activation::linear) activation_backward(dy, dy, out, n, n_out, act, stream);
    sgemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, n_out, n_in, n, dy, n_out, inp, n_in, dweight, n_out);
    if (dbias) {
        column_sum_kernel<<<unsigned((n_out + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
            dbias, dy, int(n), int(n_out));
        MINICNN_CUDA_CHECK_LAUNCH();
    }
    if (dinp && n > 0)
        sgemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, n_in, n, n_out, weight, n_out, dy, n_out, dinp, n_in);
}

void backward_unpool(float* dz_prev, float* dweight, float* dbias, const float* dy,
                     const float* out, Activation act, const float* inp, const float* weight,
                     std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                     const std::int32_t* mask, Activation prev_act, const PoolGeom& pool,
                     cudaStream_t stream) {
    NvtxRange range("dense_backward_unpool");
    check_geometry(pool, "dense_backward_unpool");
    const std::string why = maxpool_dense_unfusable(pool, prev_act, n, n_in);
    MINICNN_REQUIRE(why.empty(), "dense_backward_unpool: " << why);
    MINICNN_REQUIRE(mask != nullptr && pool.in_numel() < (std::int64_t(1) << 31),
                    "dense_backward_unpool: the mask is null or the pooling's input ("
                        << pool.in_numel() << " elements) is beyond 32-bit indexing");
    Job w, d;
    backward_jobs(w, d, dz_prev, dweight, dbias, dy, out, act, inp, weight, n, n_in, n_out,
                  "dense_backward_unpool");
    d.umask = mask;
    d.upooled = inp;  // the layer's input is the pooled output
    d.uact = prev_act;
    d.pool = pool;
    launch(w, n > 0 ? &d : nullptr, stream);
}

namespace {

// The layers of forward_chain as jobs, by value in the kernel's parameters; job l reads job
// l - 1's output.
// One layer of a chain, by value in the kernel's parameters.
struct ChainStep {
    const float* weight;  // (K, N)
    const float* bias;    // (N)
    float* out;           // (n, N)
    int K, N;
    Activation act;
};
struct Chain {
    ChainStep steps[kMaxChain];
    int count;
    int width;  // the widest layer input or output: the shared buffers' row length
};
constexpr int kChainRows = 2;  // rows (samples) per block

// Block b owns rows [2b, 2b + 2) of every layer, so a batch of 256 runs 128 blocks. The rows'
// current input sits in shared memory (staged from inp for the first layer), and each layer writes
// its output both to memory (the backward pass reads it) and to the other shared buffer, which the
// next layer reads after a barrier: no block waits for another. Element (r, c) of a layer is one
// thread's sum over k = 0, 1, ... of x[r][k] * w[k][c] from 0, then + bias and act; threads of a
// warp read consecutive columns of w (coalesced) and the same x (a broadcast). Softmax (N <= 32):
// one thread per row, max, sum of exponentials, quotient, columns in order.
__global__ void __launch_bounds__(kThreads)
    dense_chain_kernel(const float* __restrict__ inp, const Chain chain, const int n) {
    extern __shared__ float chain_s[];  // [2][kChainRows][width]
    const int r0 = int(blockIdx.x) * kChainRows;
    const int rows = min(kChainRows, n - r0);
    const int tid = int(threadIdx.x);
    float* cur = chain_s;
    float* nxt = chain_s + kChainRows * chain.width;
    const int K0 = chain.steps[0].K;
    for (int e = tid; e < rows * K0; e += kThreads)
        cur[(e / K0) * chain.width + e % K0] = inp[std::int64_t(r0 + e / K0) * K0 + e % K0];
    __syncthreads();
    // Unrolled: each step is read from the kernel parameters at a constant index.
#pragma unroll
    for (int l = 0; l < kMaxChain; ++l) {
        if (l < chain.count) {  // uniform: every thread of every block takes the same branch
            const ChainStep& S = chain.steps[l];
            for (int e = tid; e < rows * S.N; e += kThreads) {
                const int r = e / S.N, c = e % S.N;
                const float* x = cur + r * chain.width;
                float acc = 0.0f;
                for (int k = 0; k < S.K; ++k) acc += x[k] * S.weight[std::int64_t(k) * S.N + c];
                const float z = acc + (S.bias ? S.bias[c] : 0.0f);
                if (S.act == Activation::softmax) {
                    nxt[r * chain.width + c] = z;
                } else {
                    const float y = act_forward(z, S.act);
                    S.out[std::int64_t(r0 + r) * S.N + c] = y;
                    nxt[r * chain.width + c] = y;
                }
            }
            __syncthreads();  // the layer's rows are in nxt
            if (S.act == Activation::softmax && tid < rows) {
                const float* z = nxt + tid * chain.width;
                float mx = -INFINITY;
                for (int c = 0; c < S.N; ++c) mx = fmaxf(mx, z[c]);
                float sum = 0.0f;
                for (int c = 0; c < S.N; ++c) sum += expf(z[c] - mx);
                for (int c = 0; c < S.N; ++c)
                    S.out[std::int64_t(r0 + tid) * S.N + c] = expf(z[c] - mx) / sum;
            }
            float* t = cur;
            cur = nxt;
            nxt = t;
        }
    }
}

}  // namespace

std::string chain_unfusable(const ChainLayer* layers, int count) {
    if (count < 1 || count > kMaxChain)
        return std::to_string(count) + " layers (one launch runs 1 to " +
               std::to_string(kMaxChain) + ")";
    for (int l = 0; l < count; ++l) {
        const ChainLayer& c = layers[l];
        if (l > 0 && c.n_in != layers[l - 1].n_out)
            return "layer " + std::to_string(l) + " takes " + std::to_string(c.n_in) +
                   " inputs, the layer before gives " + std::to_string(layers[l - 1].n_out);
        if (c.act == Activation::softmax && c.n_out > kTile)
            return "layer " + std::to_string(l) + " is a softmax over " + std::to_string(c.n_out) +
                   " outputs (one tile holds at most " + std::to_string(kTile) + ")";
        if (c.act == Activation::softmax && l + 1 < count)
            return "layer " + std::to_string(l) + " is a softmax that is not the last";
        if (c.n_in > kChainMaxWidth || c.n_out > kChainMaxWidth ||
            c.n_in * c.n_out > kChainMaxWeights)
            return "layer " + std::to_string(l) + " is " + std::to_string(c.n_in) + " -> " +
                   std::to_string(c.n_out) + " (the row kernel takes at most " +
                   std::to_string(kChainMaxWidth) + " features and " +
                   std::to_string(kChainMaxWeights) + " weights a layer)";
    }
    return "";
}

void forward_chain(const float* inp, const ChainLayer* layers, int count, std::int64_t n,
                   cudaStream_t stream) {
    NvtxRange range("dense_forward_chain");
    const std::string why = chain_unfusable(layers, count);
    MINICNN_REQUIRE(why.empty(), "dense_forward_chain: " << why);
    Chain chain{};
    chain.count = count;
    chain.width = 0;
    for (int l = 0; l < count; ++l) {
        const ChainLayer& c = layers[l];
        check_sizes(n, c.n_in, c.n_out, "dense_forward_chain");
        chain.steps[l] = ChainStep{c.weight, c.bias, c.out, int(c.n_in), int(c.n_out), c.act};
        chain.width = std::max(chain.width, int(std::max(c.n_in, c.n_out)));
    }
    if (n == 0) return;
    const int blocks = int((n + kChainRows - 1) / kChainRows);
    const std::size_t smem = sizeof(float) * 2 * kChainRows * std::size_t(chain.width);
    dense_chain_kernel<<<unsigned(blocks), kThreads, smem, stream>>>(inp, chain, int(n));
    MINICNN_CUDA_CHECK_LAUNCH();
}

}  // namespace minicnn::cuda::dense
