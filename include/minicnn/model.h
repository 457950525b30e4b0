// minicnn/model.h — Sequential: a stack of layers, the C++ counterpart of the exercise's Keras
// model, with its parameters in one host arena; lenet5(); a Keras-like summary.
//
// The model holds the architecture and the host copy of the parameters (float32, layer after layer,
// each layer's arrays in param_info() order). Training runs on a Trainer (minicnn/trainer.h), which
// copies the arena to its engine and back.
//
//   Sequential m({28, 28, 1}, "lenet5");
//   m.conv2d(6, {5, 5}, Padding::same(), Activation::relu).maxpool2d({2, 2})
//    .conv2d(16, {5, 5}, Padding::valid(), Activation::relu).maxpool2d({2, 2})
//    .flatten().dense(120, Activation::relu).dense(84, Activation::relu)
//    .dense(10, Activation::softmax);
//   m.init_params(seed);   // He normal (truncated at 2 stddev) kernels, zero biases
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/layers.h"

namespace minicnn {

// How init_params draws a layer's kernel (biases are always zero):
//   he_normal       a normal with stddev sqrt(2 / fan_in), values beyond 2 stddev redrawn (the
//                   exercise's; minicnn's default);
//   glorot_uniform  uniform in [-l, l], l = sqrt(6 / (fan_in + fan_out)) (Keras's default);
//   zeros.
// fan_in / fan_out: kh*kw*c / kh*kw*k for a Conv2D kernel (kh, kw, c, k); n_in / n_out for a Dense.
enum class KernelInit { he_normal, glorot_uniform, zeros };

class Sequential {
public:
    // input_shape: one sample, e.g. (28, 28, 1).
    explicit Sequential(Shape input_shape, std::string name = "sequential");
    Sequential(Sequential&&) noexcept = default;
    Sequential& operator=(Sequential&&) noexcept = default;
    Sequential(const Sequential&) = delete;
    Sequential& operator=(const Sequential&) = delete;

    // Builds the layer against the current output shape (ArgumentError naming the layer when the
    // shapes do not fit) and appends it; its parameters are appended to the arena (zeros).
    Sequential& add(std::unique_ptr<Layer> layer);
    Sequential& conv2d(int filters, Window kernel, Padding padding = Padding::same(),
                       Activation activation = Activation::linear, Stride stride = {});
    Sequential& maxpool2d(Window pool = {2, 2});  // stride = pool
    Sequential& maxpool2d(Window pool, Stride stride);
    Sequential& avgpool2d(Window pool = {2, 2});
    Sequential& avgpool2d(Window pool, Stride stride);
    Sequential& flatten();
    Sequential& dense(int units, Activation activation = Activation::linear);
    Sequential& activation(Activation activation);
    Sequential& dropout(float rate);  // inverted dropout in training, the identity otherwise

    const std::string& name() const { return name_; }
    const Shape& input_shape() const { return input_shape_; }
    const Shape& output_shape() const;
    std::size_t size() const { return layers_.size(); }
    const Layer& layer(std::size_t i) const { return *layers_.at(i); }
    Layer& layer(std::size_t i) { return *layers_.at(i); }

    std::int64_t param_count() const { return std::int64_t(params_.size()); }
    // Offset of layer i's first parameter in the arena.
    std::int64_t param_offset(std::size_t i) const { return offsets_.at(i); }
    std::vector<float>& params() { return params_; }
    const std::vector<float>& params() const { return params_; }

    // He normal kernels (truncated normal, stddev sqrt(2 / fan_in), redrawn beyond 2 stddev) and
    // zero biases, from a mt19937_64 seeded with `seed`: the same seed gives the same weights.
    // kernel_init, when not empty, has one entry per layer (layers without parameters ignore
    // theirs) and says how each layer's kernel is drawn instead.
    void init_params(std::uint64_t seed, const std::vector<KernelInit>& kernel_init = {});

    // A Keras-like table: layer (type), output shape, parameter count, totals.
    std::string summary() const;
    // One spec line per layer after an "input h,w,c" line; from_spec() rebuilds the architecture.
    std::string spec() const;
    static Sequential from_spec(const std::string& spec, std::string name = "sequential");

private:
    std::string name_;
    Shape input_shape_;
    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<std::int64_t> offsets_;
    std::vector<float> params_;
};

// The exercise's modified LeNet-5 (docs/training.md): 61,706 parameters, initialised from `seed`.
Sequential lenet5(std::uint64_t seed = 0);

// "61,706"
std::string format_thousands(std::int64_t v);

}  // namespace minicnn
