// host/activation_name.cpp — the names of the activations (minicnn/activation.h).
#include "minicnn/activation.h"

#include "minicnn/error.h"

namespace minicnn {

Activation parse_activation(const std::string& s) {
    if (s == "linear" || s == "none" || s == "identity") return Activation::linear;
    if (s == "relu") return Activation::relu;
    if (s == "tanh") return Activation::tanh;
    if (s == "sigmoid") return Activation::sigmoid;
    if (s == "softmax") return Activation::softmax;
    MINICNN_REQUIRE(false,
                    "activation must be one of \"linear\", \"relu\", \"tanh\", \"sigmoid\", "
                    "\"softmax\", got \""
                        << s << "\"");
    return Activation::linear;
}

const char* activation_name(Activation a) {
    switch (a) {
        case Activation::linear:
            return "linear";
        case Activation::relu:
            return "relu";
        case Activation::tanh:
            return "tanh";
        case Activation::sigmoid:
            return "sigmoid";
        case Activation::softmax:
            return "softmax";
    }
    return "?";
}

}  // namespace minicnn
