// host/cpu/activation.cpp — the activations on the CPU (docs/operations.md) and their backward passes, float
// and double: the CPU twin of cuda/activation.cu, used by the functional API, the convolution's fused
// activation and the training engine. Data is (rows, cols); softmax normalises each
// row over its `cols` entries (the channel axis of NHWC, the class axis of a dense layer).
//
//   forward    linear  x             relu  max(x, 0)        tanh  tanh(x)
//              sigmoid 1 / (1 + e^-x)
//              softmax e^(x - m) / sum e^(x - m), m = max of the row (no overflow for large x)
//   backward   from dout and the forward OUTPUT a (so no input has to be kept):
//              linear  dout          relu  dout * (a > 0)   tanh  dout * (1 - a^2)
//              sigmoid dout * a (1 - a)
//              softmax a * (dout - sum_row(dout * a))
//
// out may alias in, and din may alias dout: every element is read before the same element is
// written, and softmax reads its whole row before writing it.
//
// Rows are split into fixed blocks (a function of the sizes only) run on the pool
// (host/cpu/thread_pool.h); each row is computed in a fixed order, so results do not depend on the
// number of threads.
#include "activation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "minicnn/error.h"
#include "simd_clones.h"
#include "thread_pool.h"

namespace minicnn::cpu {

namespace {

// fn(r0, r1) over fixed blocks of rows of about 16 Ki elements (at most 64 blocks).
template <class F>
void parallel_rows(std::int64_t rows, std::int64_t cols, F&& fn) {
    const std::int64_t blocks =
        std::clamp<std::int64_t>(rows * cols / 16384, 1, std::min<std::int64_t>(64, rows));
    parallel_for(blocks,
                 [&](std::int64_t b, int) { fn(rows * b / blocks, rows * (b + 1) / blocks); });
}

}  // namespace

void check_activation_args(std::int64_t rows, std::int64_t cols, Activation act, const char* op) {
    MINICNN_REQUIRE(rows >= 0 && cols >= 0,
                    op << ": expected non-negative rows and cols, got " << rows << " x " << cols);
    MINICNN_REQUIRE(act == Activation::linear || act == Activation::relu ||
                        act == Activation::tanh || act == Activation::sigmoid ||
                        act == Activation::softmax,
                    op << ": unknown activation value " << static_cast<int>(act));
}

template <class T>
MINICNN_CLONES void activation_rows(T* out, const T* in, std::int64_t rows, std::int64_t cols,
                                    Activation act) {
    const std::int64_t total = rows * cols;
    switch (act) {
        case Activation::linear:
            if (out != in) std::copy(in, in + total, out);
            break;
        case Activation::relu:
            for (std::int64_t i = 0; i < total; ++i) out[i] = in[i] > T(0) ? in[i] : T(0);
            break;
        case Activation::tanh:
            for (std::int64_t i = 0; i < total; ++i) out[i] = std::tanh(in[i]);
            break;
        case Activation::sigmoid:
            for (std::int64_t i = 0; i < total; ++i) out[i] = T(1) / (T(1) + std::exp(-in[i]));
            break;
        case Activation::softmax:
            for (std::int64_t r = 0; r < rows; ++r) {
                const T* x = in + r * cols;
                T* y = out + r * cols;
                T m = x[0];
                for (std::int64_t j = 1; j < cols; ++j) m = std::max(m, x[j]);
                T sum = T(0);
                for (std::int64_t j = 0; j < cols; ++j) {
                    y[j] = std::exp(x[j] - m);
                    sum += y[j];
                }
                for (std::int64_t j = 0; j < cols; ++j) y[j] /= sum;
            }
            break;
    }
}

template <class T>
MINICNN_CLONES void activation_backward_rows(T* din, const T* dout, const T* out, std::int64_t rows,
                                             std::int64_t cols, Activation act) {
    const std::int64_t total = rows * cols;
    switch (act) {
        case Activation::linear:
            if (din != dout) std::copy(dout, dout + total, din);
            break;
        case Activation::relu:
            for (std::int64_t i = 0; i < total; ++i) din[i] = out[i] > T(0) ? dout[i] : T(0);
            break;
        case Activation::tanh:
            for (std::int64_t i = 0; i < total; ++i) din[i] = dout[i] * (T(1) - out[i] * out[i]);
            break;
        case Activation::sigmoid:
            for (std::int64_t i = 0; i < total; ++i) din[i] = dout[i] * out[i] * (T(1) - out[i]);
            break;
        case Activation::softmax:
            for (std::int64_t r = 0; r < rows; ++r) {
                const T* dy = dout + r * cols;
                const T* a = out + r * cols;
                T* dx = din + r * cols;
                T dot = T(0);  // sum_j dout_j * a_j, read in full before any write
                for (std::int64_t j = 0; j < cols; ++j) dot += dy[j] * a[j];
                for (std::int64_t j = 0; j < cols; ++j) dx[j] = a[j] * (dy[j] - dot);
            }
            break;
    }
}

template <class T>
void activation_forward(T* out, const T* in, std::int64_t rows, std::int64_t cols, Activation act) {
    // out (rows, cols); in (rows, cols); out may alias in
    check_activation_args(rows, cols, act, "activation_forward");
    if (rows == 0 || cols == 0) return;
    MINICNN_REQUIRE(out != nullptr && in != nullptr,
                    "activation_forward: out or in is a null pointer");
    parallel_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
        activation_rows(out + r0 * cols, in + r0 * cols, r1 - r0, cols, act);
    });
}

template <class T>
void activation_backward(T* din, const T* dout, const T* out, std::int64_t rows, std::int64_t cols,
                         Activation act) {
    // din (rows, cols); dout (rows, cols); out (rows, cols) = the forward output; din may alias
    // dout
    check_activation_args(rows, cols, act, "activation_backward");
    if (rows == 0 || cols == 0) return;
    MINICNN_REQUIRE(din != nullptr && dout != nullptr && out != nullptr,
                    "activation_backward: din, dout or out is a null pointer");
    parallel_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
        activation_backward_rows(din + r0 * cols, dout + r0 * cols, out + r0 * cols, r1 - r0, cols,
                                 act);
    });
}

#define MINICNN_INSTANTIATE_ACT(T)                                                                \
    template void activation_rows<T>(T*, const T*, std::int64_t, std::int64_t, Activation);       \
    template void activation_backward_rows<T>(T*, const T*, const T*, std::int64_t, std::int64_t, \
                                              Activation);                                        \
    template void activation_forward<T>(T*, const T*, std::int64_t, std::int64_t, Activation);    \
    template void activation_backward<T>(T*, const T*, const T*, std::int64_t, std::int64_t,      \
                                         Activation);
MINICNN_INSTANTIATE_ACT(float)
MINICNN_INSTANTIATE_ACT(double)
#undef MINICNN_INSTANTIATE_ACT

}  // namespace minicnn::cpu
