// host/activation.cpp — CPU reference of the activations (docs/operations.md) and their backward passes: the
// oracle for cuda/activation.cu, in float and double. Data is (rows, cols); softmax normalises each
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
// Threads (OpenMP, static schedule): one thread per row; each row's sums run left to right, so the
// result does not depend on the thread count. out may alias in, and din may alias dout: every
// element is read before the same element is written, and softmax reads its whole row before
// writing it.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"

namespace minicnn::cpu {

namespace {

// Below this many elements a pass runs on the calling thread: forking threads costs more than it
// saves. (Results do not depend on it.)
constexpr std::int64_t kMinParallelElements = 1 << 14;

template <class T>
T act_scalar(T x, Activation act) {
    switch (act) {
        case Activation::relu:
            return x > T(0) ? x : T(0);
        case Activation::tanh:
            return std::tanh(x);
        case Activation::sigmoid:
            return T(1) / (T(1) + std::exp(-x));
        default:
            return x;  // linear (softmax is handled row-wise)
    }
}

template <class T>
T act_grad_scalar(T dout, T a, Activation act) {
    switch (act) {
        case Activation::relu:
            return a > T(0) ? dout : T(0);
        case Activation::tanh:
            return dout * (T(1) - a * a);
        case Activation::sigmoid:
            return dout * a * (T(1) - a);
        default:
            return dout;  // linear
    }
}

void check_act(Activation act, std::int64_t rows, std::int64_t cols, const char* op) {
    MINICNN_REQUIRE(rows >= 0 && cols >= 0,
                    op << ": expected non-negative rows and cols, got " << rows << " x " << cols);
    MINICNN_REQUIRE(act == Activation::linear || act == Activation::relu ||
                        act == Activation::tanh || act == Activation::sigmoid ||
                        act == Activation::softmax,
                    op << ": unknown activation value " << static_cast<int>(act));
}

}  // namespace

template <class T>
void activation_forward(T* out, const T* in, std::int64_t rows, std::int64_t cols, Activation act) {
    // out (rows, cols); in (rows, cols); out may alias in
    check_act(act, rows, cols, "activation_forward");
    if (rows == 0 || cols == 0) return;
    MINICNN_REQUIRE(out != nullptr && in != nullptr,
                    "activation_forward: out or in is a null pointer");

#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* x = in + r * cols;  // (cols)
        T* y = out + r * cols;       // (cols)
        if (act == Activation::softmax) {
            T m = x[0];
            for (std::int64_t j = 1; j < cols; ++j) m = std::max(m, x[j]);
            T sum = T(0);
            for (std::int64_t j = 0; j < cols; ++j) {
                y[j] = std::exp(x[j] - m);
                sum += y[j];
            }
            for (std::int64_t j = 0; j < cols; ++j) y[j] /= sum;
        } else {
            for (std::int64_t j = 0; j < cols; ++j) y[j] = act_scalar(x[j], act);
        }
    }
}

template <class T>
void activation_backward(T* din, const T* dout, const T* out, std::int64_t rows, std::int64_t cols,
                         Activation act) {
    // din (rows, cols); dout (rows, cols); out (rows, cols) = the forward output; din may alias
    // dout
    check_act(act, rows, cols, "activation_backward");
    if (rows == 0 || cols == 0) return;
    MINICNN_REQUIRE(din != nullptr && dout != nullptr && out != nullptr,
                    "activation_backward: din, dout or out is a null pointer");

#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* dy = dout + r * cols;  // (cols)
        const T* a = out + r * cols;    // (cols)
        T* dx = din + r * cols;         // (cols)
        if (act == Activation::softmax) {
            T dot = T(0);  // sum_j dout_j * a_j, read in full before any write
            for (std::int64_t j = 0; j < cols; ++j) dot += dy[j] * a[j];
            for (std::int64_t j = 0; j < cols; ++j) dx[j] = a[j] * (dy[j] - dot);
        } else {
            for (std::int64_t j = 0; j < cols; ++j) dx[j] = act_grad_scalar(dy[j], a[j], act);
        }
    }
}

#define MINICNN_INSTANTIATE_ACT(T)                                                             \
    template void activation_forward<T>(T*, const T*, std::int64_t, std::int64_t, Activation); \
    template void activation_backward<T>(T*, const T*, const T*, std::int64_t, std::int64_t,   \
                                         Activation);
MINICNN_INSTANTIATE_ACT(float)
MINICNN_INSTANTIATE_ACT(double)
#undef MINICNN_INSTANTIATE_ACT

}  // namespace minicnn::cpu
