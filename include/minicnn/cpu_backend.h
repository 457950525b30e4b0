// minicnn/cpu_backend.h — the CPU backend at pointer level: the oracle the GPU is tested against, and
// the fallback where no GPU is visible. Same argument order as the CUDA launchers in
// minicnn/cuda_backend.h (outputs first, shapes in the geometry), templated on float and double.
//
// Every function *overwrites* its outputs (no accumulation into what was there) and is deterministic:
// work is split across threads by output element, never by reduction index, so results do not depend
// on the thread count. The convolutions keep their scratch (padded images, packed weights, per-chunk
// partial gradients: for LeNet's layers at batch 256 well under 1 MB) per calling thread between
// calls, so repeated calls allocate nothing; it is freed when that thread exits.
#pragma once

#include <cstdint>

#include "minicnn/activation.h"
#include "minicnn/geometry.h"

namespace minicnn::cpu {

// Threads of the CPU backend: one pool runs the functional API and the CPU training engine. The
// default is OMP_NUM_THREADS when set, else the number of cores. set_thread_count(n) (n >= 1)
// replaces the pool; results never depend on the thread count.
int thread_count();
void set_thread_count(int n);

// How the float convolution computes (double always runs im2col + GEMM). automatic: direct,
// register-blocked kernels (AVX-512 where the CPU has it, else AVX2 + FMA) where the geometry suits
// them, im2col + GEMM elsewhere; im2col: always im2col + GEMM; direct_avx2: as automatic with the
// AVX2 kernels even on an AVX-512 CPU. Process-wide; meant for comparing them (tests, benchmarks).
// Each is deterministic for any thread count; they differ by rounding only.
enum class CpuConvMethod { automatic, im2col, direct_avx2 };
void set_conv_method(CpuConvMethod m);
CpuConvMethod conv_method();

// out (n, oh, ow, k) = act(conv(inp (n, h, w, c), weight (kh, kw, c, k)) + bias (k)).
template <class T>
void conv2d_forward(T* out, const T* inp, const T* weight, const T* bias, const ConvGeom& g,
                    Activation act);
// dinp (n, h, w, c) from dout (n, oh, ow, k) and weight.
template <class T>
void conv2d_backward_data(T* dinp, const T* dout, const T* weight, const ConvGeom& g);
// dweight (kh, kw, c, k) and dbias (k) from dout and inp. dbias may be null.
template <class T>
void conv2d_backward_filter(T* dweight, T* dbias, const T* dout, const T* inp, const ConvGeom& g);

// out (n, oh, ow, c); mask (n, oh, ow, c) may be null, else gets the first-max window position.
template <class T>
void maxpool2d_forward(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g);
template <class T>
void avgpool2d_forward(T* out, const T* inp, const PoolGeom& g);
template <class T>
void maxpool2d_backward_mask(T* dinp, const T* dout, const std::int32_t* mask, const PoolGeom& g);
template <class T>
void maxpool2d_backward_allties(T* dinp, const T* dout, const T* inp, const PoolGeom& g);
template <class T>
void avgpool2d_backward(T* dinp, const T* dout, const PoolGeom& g);

// out = act(in) over rows x cols (softmax normalises each row of `cols`). out may alias in.
template <class T>
void activation_forward(T* out, const T* in, std::int64_t rows, std::int64_t cols, Activation act);
// din from dout and the forward output `out`. din may alias dout.
template <class T>
void activation_backward(T* din, const T* dout, const T* out, std::int64_t rows, std::int64_t cols,
                         Activation act);

}  // namespace minicnn::cpu
