// minicnn/ops.h — the four operations of the exercise (docs/operations.md), plus the training path's max pooling
// with an argmax mask, and activations. Host tensors in, host tensors out; the Device argument picks
// the backend (CPU, or CUDA with explicit host<->device copies) and nothing else changes for the caller.
//
// dtypes: float32 and float64 on the CPU. The CUDA backend computes in float32; under Device::auto_()
// float64 inputs run on the CPU, and asking for CUDA with float64 is an ArgumentError.
#pragma once

#include <cstdint>
#include <string>

#include "minicnn/activation.h"
#include "minicnn/device.h"
#include "minicnn/geometry.h"
#include "minicnn/tensor.h"

namespace minicnn {

enum class PoolMode { max, avg };
PoolMode parse_pool_mode(const std::string& s);  // "max" or "avg"
const char* pool_mode_name(PoolMode m);

// How pool_backward routes a max window's gradient.
enum class MaxTie {
    all_ties,  // the exercise's rule: every cell equal to the window maximum gets the full gradient
    first_max  // the training rule: only the first maximum (row-major window order, strict >)
};

// A = activation(conv(A_prev, W) + b). A_prev (m, h, w, c_prev), W (kh, kw, c_prev, c_new),
// b (1, 1, 1, c_new) or (c_new). Returns (m, h_new, w_new, c_new).
Tensor conv_forward(const TensorView& A_prev, const TensorView& W, const TensorView& b,
                    Activation activation, Padding padding = Padding::same(), Stride stride = {},
                    Device device = {});

// A_prev (m, h, w, c) -> (m, h_new, w_new, c); window (kh, kw); no padding.
Tensor pool_forward(const TensorView& A_prev, Window kernel, Stride stride = {},
                    PoolMode mode = PoolMode::max, Device device = {});

struct ConvGrads {
    Tensor dA_prev;  // (m, h, w, c_prev)
    Tensor dW;       // (kh, kw, c_prev, c_new)
    Tensor db;       // (1, 1, 1, c_new)
};

// dZ (m, h_new, w_new, c_new) is the gradient with respect to the pre-activation Z.
ConvGrads conv_backward(const TensorView& dZ, const TensorView& A_prev, const TensorView& W,
                        const TensorView& b, Padding padding = Padding::same(), Stride stride = {},
                        Device device = {});

// dA (m, h_new, w_new, c) -> dA_prev (m, h, w, c). Max mode uses `tie` (default: the exercise's rule).
Tensor pool_backward(const TensorView& dA, const TensorView& A_prev, Window kernel,
                     Stride stride = {}, PoolMode mode = PoolMode::max,
                     MaxTie tie = MaxTie::all_ties, Device device = {});

// The training path: max pooling that also returns an int32 mask of the output's shape holding, for
// each output, the row-major position a*kw + q of the first maximum inside its window (strict >).
struct MaxPoolResult {
    Tensor A;     // (m, h_new, w_new, c)
    Tensor mask;  // (m, h_new, w_new, c), int32 in [0, kh*kw)
};
MaxPoolResult maxpool_forward_mask(const TensorView& A_prev, Window kernel, Stride stride = {},
                                   Device device = {});
// Sends each dA element to the one cell its mask names; overlapping windows add up.
// a_prev_shape is the shape of the forward input.
Tensor maxpool_backward_mask(const TensorView& dA, const TensorView& mask,
                             const Shape& a_prev_shape, Window kernel, Stride stride = {},
                             Device device = {});

// Elementwise activation (softmax: over the last axis). Any shape.
Tensor activation_forward(const TensorView& Z, Activation activation, Device device = {});
// dZ from dA and the forward *output* A (relu: A > 0; tanh: 1 - A^2; sigmoid: A (1 - A);
// softmax: A * (dA - sum(dA * A)) over the last axis).
Tensor activation_backward(const TensorView& dA, const TensorView& A, Activation activation,
                           Device device = {});

}  // namespace minicnn
