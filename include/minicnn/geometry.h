// minicnn/geometry.h — padding, strides and the output-size rules of docs/operations.md, validated once.
//
// conv_geometry() and pool_geometry() turn user shapes into a ConvGeom / PoolGeom: the output-size
// rules ('same' with an even kernel gives one more row, 'same' with stride 2 keeps the size, ...) are
// written there once. Every backend (CPU, CUDA) and every layer takes the resulting geometry; the
// pointer-level functions of both backends re-check a hand-built one with check_geometry().
#pragma once

#include <cstdint>
#include <string>

#include "minicnn/tensor.h"

namespace minicnn {

// Symmetric zero padding: the exercise's "same" and "valid", or explicit (ph, pw) >= 0.
struct Padding {
    enum class Kind { same, valid, explicit_ };
    Kind kind = Kind::same;
    int h = 0;  // only for Kind::explicit_
    int w = 0;

    static Padding same() { return {Kind::same, 0, 0}; }
    static Padding valid() { return {Kind::valid, 0, 0}; }
    static Padding explicit_pad(int ph, int pw);  // negative values are an error
    // "same" or "valid" (anything else is an error that names the value).
    static Padding parse(const std::string& s);
    std::string str() const;  // "same", "valid" or "(ph, pw)"
};

struct Stride {
    int h = 1;
    int w = 1;
};

// Pooling window (kh, kw).
struct Window {
    int h = 2;
    int w = 2;
};

// Everything a convolution kernel needs to know about its shapes.
//   inp  (n, h, w, c)   weight (kh, kw, c, k)   bias (k)   out (n, oh, ow, k)
struct ConvGeom {
    std::int64_t n = 0, h = 0, w = 0, c = 0;  // input
    std::int64_t k = 0;                       // output channels
    int kh = 0, kw = 0;                       // kernel
    int sh = 1, sw = 1;                       // stride
    int ph = 0, pw = 0;                       // zero padding on each side
    std::int64_t oh = 0, ow = 0;              // output

    std::int64_t in_numel() const { return n * h * w * c; }
    std::int64_t out_numel() const { return n * oh * ow * k; }
    std::int64_t weight_numel() const { return std::int64_t(kh) * kw * c * k; }
    Shape in_shape() const { return {n, h, w, c}; }
    Shape out_shape() const { return {n, oh, ow, k}; }
    Shape weight_shape() const { return {kh, kw, c, k}; }
    // Multiply-adds of the forward pass (also of each backward pass).
    double macs() const { return double(n) * oh * ow * k * kh * kw * c; }
};

// Everything a pooling kernel needs. inp (n, h, w, c) -> out (n, oh, ow, c); no padding.
struct PoolGeom {
    std::int64_t n = 0, h = 0, w = 0, c = 0;
    int kh = 0, kw = 0;
    int sh = 1, sw = 1;
    std::int64_t oh = 0, ow = 0;

    std::int64_t in_numel() const { return n * h * w * c; }
    std::int64_t out_numel() const { return n * oh * ow * c; }
    Shape in_shape() const { return {n, h, w, c}; }
    Shape out_shape() const { return {n, oh, ow, c}; }
};

// The padding docs/operations.md prescribes for one axis: "same" -> ceil(((in - 1) * s + k - in) / 2).
int same_padding(std::int64_t in, int k, int s);

// Validates A_prev (m, h, w, c) against W (kh, kw, c, k), the padding and the stride; `op` names the
// calling operation in error messages. Throws ArgumentError naming what was expected and found.
ConvGeom conv_geometry(const Shape& a_prev, const Shape& weight, Padding padding, Stride stride,
                       const char* op);
// Validates A_prev (m, h, w, c), the window and the stride.
PoolGeom pool_geometry(const Shape& a_prev, Window window, Stride stride, const char* op);

// Checks a geometry built by hand (not by conv_geometry / pool_geometry) before pointer-level code
// (minicnn/cpu_backend.h, minicnn/cuda_backend.h) reads through it: positive sizes, kernel or
// window and stride, non-negative padding, and the output size the rules give. ArgumentError
// naming `op` and what was found otherwise.
void check_geometry(const ConvGeom& g, const char* op);
void check_geometry(const PoolGeom& g, const char* op);

}  // namespace minicnn
