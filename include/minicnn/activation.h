// minicnn/activation.h — the activations a layer or an operation applies to its output, and their
// names. On its own so that kernels and layers get the enum without the functional API (ops.h).
#pragma once

#include <string>

namespace minicnn {

// relu: max(z, 0); tanh; sigmoid: 1 / (1 + e^-z); softmax: over the last axis (a row).
enum class Activation { linear, relu, tanh, sigmoid, softmax };
// "linear" (also "none", "identity"), "relu", "tanh", "sigmoid", "softmax"; anything else is an
// ArgumentError that names the bad value.
Activation parse_activation(const std::string& s);
const char* activation_name(Activation a);

}  // namespace minicnn
