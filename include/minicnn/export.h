// minicnn/export.h — models that travel: the weights as safetensors in PyTorch's layouts, and the
// whole model (architecture and weights) as ONNX. docs/export.md shows both in use.
//
// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length
// N, N bytes of JSON {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"key": "value"}}, then the data section, offsets relative to its start. The
// parser trusts nothing: the header length must fit the file, the JSON must be an object of such
// entries (no other fields, no duplicate names), every dtype known, every shape's size times the
// dtype's must be the entry's byte count, and the entries must tile the data section exactly (no
// overlap, no hole, nothing past its end) — the rules of the format's own reader. Every failure is
// an ArgumentError that names the file and the tensor or field and says what was expected.
//
// The model's tensors are named "<layer>.weight" and "<layer>.bias" with the layer names of
// Sequential::summary() ("conv2d", "dense_1", ...), in PyTorch's layouts, so that a torch.nn.Module
// whose attributes have those names (nn.Conv2d, nn.Linear) takes the file with
// load_state_dict(..., strict=True):
//   Conv2D  kernel (kh, kw, c, k) HWIO   -> "<conv>.weight" (k, c, kh, kw) OIHW; bias (k)
//   Dense   kernel (n_in, n_out)         -> "<dense>.weight" (n_out, n_in);      bias (n_out)
// A Dense fed by a Flatten of (h, w, c) (with only activations or dropouts between them) reads its
// inputs in minicnn's (h, w, c) order; PyTorch flattens NCHW in (c, h, w) order, so that Dense's
// weight columns are reordered to (c, h, w). Reading a file applies the inverse mapping.
//
// ONNX: opset 17, IR version 8, written by a small protobuf encoder (the subset of onnx.proto3 the
// graph needs). The graph's input "input" is float32 (batch, h, w, c) NHWC with a free batch
// dimension; it is transposed to NCHW for Conv / MaxPool / AveragePool, flattened from NCHW (hence
// the same weights as the safetensors file), and Dense layers are Gemm (transB = 1). minicnn's
// symmetric paddings ('same' of docs/operations.md, 'valid', explicit (ph, pw)) are the explicit
// pads [ph, pw, ph, pw]. The output "output" is the last layer's, a softmax for a classifier
// (batch, classes); a model that ends on an image is transposed back to NHWC. Dropout layers are
// the identity (inference). A layer the exporter does not know is refused by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/model.h"
#include "minicnn/tensor.h"

namespace minicnn {

// One tensor of a safetensors file: its bytes as stored (little-endian).
struct SafetensorsTensor {
    std::string name;
    std::string dtype;  // "F32", "F64", "I32", ... (the format's names)
    Shape shape;
    std::vector<std::uint8_t> bytes;
};

struct Safetensors {
    std::vector<std::pair<std::string, std::string>> metadata;  // "__metadata__", in file order
    std::vector<SafetensorsTensor> tensors;  // parsed: in data order; written: in this order
    // The tensor of that name, or nullptr.
    const SafetensorsTensor* find(const std::string& name) const;
};

// The file's bytes (the header padded with spaces to a multiple of 8) / the parsed file; `name`
// names the file in errors. Duplicate or empty names are refused by both.
std::vector<std::uint8_t> serialize_safetensors(const Safetensors& st);
Safetensors parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& name);

// The model's weights as float32 tensors in PyTorch's layouts (above), metadata {"format": "pt"}.
Safetensors model_weights(const Sequential& model);
// Sets the model's weights from `st` (as model_weights writes them): every tensor the model needs
// must be there with dtype F32 and its shape, and no other tensor may be; otherwise ArgumentError
// naming the tensor, and the model's weights are unchanged. `name` names the file in errors.
void set_model_weights(Sequential& model, const Safetensors& st, const std::string& name);

// The files, written atomically (a temporary file renamed over `path`: an existing file is
// replaced only by a complete one).
void save_weights(const Sequential& model, const std::string& path);
void load_weights(Sequential& model, const std::string& path);

// The ONNX model (bytes of a ModelProto), and the file.
std::vector<std::uint8_t> model_to_onnx(const Sequential& model);
void save_onnx(const Sequential& model, const std::string& path);

// The format a path's extension names: ".safetensors" (the weights) or ".onnx" (the model); any
// other is an ArgumentError naming it.
enum class ExportFormat { safetensors, onnx };
ExportFormat export_format(const std::string& path);
// save_weights or save_onnx, as export_format(path) says (nothing is written for another
// extension).
void export_model(const Sequential& model, const std::string& path);

}  // namespace minicnn
