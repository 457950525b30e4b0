// cuda/activation_math.cuh — the elementwise activations and their derivatives as device
// functions, the one definition used by every kernel that applies them: cuda/activation.cu (the
// activation kernels), cuda/conv2d.cu (the forward epilogue; act' on the loads of dy in the
// backward passes), cuda/train_kernels.cu (bias + activation, act' + column sums of dense layers).
// CPU twin: host/cpu/activation.cpp. Softmax, which needs a whole row, is not here.
//
//   forward    linear  x             relu  x > 0 ? x : 0     tanh  tanh(x)
//              sigmoid 1 / (1 + e^-x)
//   backward   (from dout and the forward *output* a)
//              linear  dout          relu  a > 0 ? dout : 0  tanh  dout * (1 - a^2)
//              sigmoid dout * a * (1 - a)
#pragma once

#include <cuda_runtime.h>

#include "minicnn/activation.h"

namespace minicnn::cuda {

__device__ inline float act_forward(float x, Activation act) {
    switch (act) {
        case Activation::relu:
            return x > 0.0f ? x : 0.0f;
        case Activation::tanh:
            return tanhf(x);
        case Activation::sigmoid:
            return 1.0f / (1.0f + expf(-x));
        default:
            return x;  // linear (softmax runs as a row kernel)
    }
}

__device__ inline float act_backward(float dout, float a, Activation act) {
    switch (act) {
        case Activation::relu:
            return a > 0.0f ? dout : 0.0f;
        case Activation::tanh:
            return dout * (1.0f - a * a);
        case Activation::sigmoid:
            return dout * a * (1.0f - a);
        default:
            return dout;  // linear
    }
}

// The gradient with respect to the pre-activation at flat index i, from dy (the gradient with
// respect to the output a = act(z)): dy itself when act is linear (a is then not read, may be null).
__device__ inline float load_dz(const float* dy, const float* a, Activation act, std::int64_t i) {
    return act == Activation::linear ? dy[i] : act_backward(dy[i], a[i], act);
}

}  // namespace minicnn::cuda
