// host/torch_layout.h — where each of a model's parameters goes in PyTorch's layouts (OIHW
// convolution weights, (out, in) dense weights, (c, h, w) flattening): the one mapping that the
// safetensors export and import (host/torch_layout.cpp) and the ONNX initialisers (host/onnx.cpp)
// share. Private to the library; minicnn/export.h documents the layouts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/model.h"

namespace minicnn {

// One parameter array in PyTorch's layout.
struct TorchParam {
    std::size_t layer = 0;  // the model's layer
    bool bias = false;      // "<layer>.bias", else "<layer>.weight"
    std::string name;
    Shape shape;                      // PyTorch's shape
    std::vector<std::int64_t> index;  // element j (row-major in `shape`) is params()[index[j]]
};

// Dropout layers compute nothing at inference (export treats them as the identity).
bool is_inference_identity(const Layer& layer);

// Every parameter array of the model, layer after layer (weight, then bias). A layer with
// parameters that is neither a Conv2D nor a Dense is refused (ArgumentError naming it).
std::vector<TorchParam> torch_params(const Sequential& model);

}  // namespace minicnn
