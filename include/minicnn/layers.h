// minicnn/layers.h — the layers of a Sequential model: Conv2D, MaxPool2D, AvgPool2D, Flatten,
// Dense, ActivationLayer, Dropout.
//
// A layer is built against a per-sample input shape ((h, w, c) or (features)) and then knows its
// output shape and its parameters. Parameters are not owned by the layer: bind() hands it views
// into the model's parameter arena and the twin gradient arena (same layout), so the optimiser is
// one flat update. forward() runs on an Engine and returns a LayerContext — the pointers backward()
// needs, including the max-pool argmax mask, which lives in the buffers of the plan's stage
// (minicnn/plan.h), never in layer state. forward() is the evaluation / prediction pass;
// forward_train() the training pass, which differs only for Dropout. Gradient writes are explicit: backward() overwrites this
// layer's parameter gradients and, when dinp is not null, dinp; it may overwrite dout (the
// activation's derivative is applied in place).
//
// A layer also describes what it computes (op(): a LayerOp), which is all an engine's planner reads
// to decide what to fuse; forward() and backward() are how the layer runs as a stage of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/activation.h"
#include "minicnn/engine.h"
#include "minicnn/geometry.h"
#include "minicnn/ops.h"
#include "minicnn/tensor.h"

namespace minicnn {

// One parameter array of a layer, in arena order.
struct ParamInfo {
    std::string name;     // "kernel" or "bias"
    Shape shape;          // (kh, kw, c, k), (n_in, n_out), (k) ...
    std::int64_t fan_in;  // for He initialisation; 0 for biases (zero-initialised)
};

// What forward hands to backward. Pointers into the trainer's workspace (engine memory).
struct LayerContext {
    const float* inp = nullptr;          // (n, input shape)
    const float* out = nullptr;          // (n, output shape): the layer's output (post-activation)
    const std::int32_t* mask = nullptr;  // MaxPool2D: (n, output shape) first-max positions;
                                         // Dropout in training: (n, output shape) 1 kept, 0 dropped
    std::int64_t n = 0;
};

// What a layer computes, as an engine's planner reads it: the kind of operation, its activation,
// its shapes for one sample, and views of its parameters and their gradients (after bind()). A
// planner fuses only kinds it knows; any other layer runs as a stage of its own.
struct LayerOp {
    enum class Kind { conv2d, max_pool, avg_pool, reshape, dense, activation, dropout, other };
    Kind kind = Kind::other;
    Activation act = Activation::linear;  // applied to the output (conv2d, dense, activation)
    ConvGeom conv;                        // conv2d: the geometry for n = 1
    PoolGeom pool;                        // max_pool, avg_pool: the geometry for n = 1
    std::int64_t n_in = 0, n_out = 0;     // dense: features in and out
    const float* weight = nullptr;        // conv2d (kh, kw, c, k), dense (n_in, n_out)
    const float* bias = nullptr;          // (k) or (n_out)
    float* dweight = nullptr;             // their gradients, same layouts
    float* dbias = nullptr;
};

class Layer {
public:
    virtual ~Layer() = default;

    // The Keras class name ("Conv2D") and a one-line spec that from_spec() parses back
    // ("Conv2D filters=6 kernel=5x5 stride=1x1 padding=same activation=relu").
    virtual const char* type() const = 0;
    virtual std::string spec() const = 0;
    static std::unique_ptr<Layer> from_spec(const std::string& spec);

    // Checks the per-sample input shape and computes the output shape (ArgumentError on mismatch).
    void build(const Shape& input_shape);
    bool built() const { return built_; }
    const Shape& input_shape() const { return input_shape_; }
    const Shape& output_shape() const { return output_shape_; }
    std::int64_t input_numel() const { return shape_numel(input_shape_); }
    std::int64_t output_numel() const { return shape_numel(output_shape_); }

    std::string name;  // "conv2d", "dense_1", ... (set by the model)

    virtual std::vector<ParamInfo> param_info() const { return {}; }
    std::int64_t param_count() const;
    // Views of this layer's parameters and gradients inside the model's arenas (engine memory).
    void bind(float* params, float* grads) {
        params_ = params;
        grads_ = grads;
    }

    // The activation applied at the end of forward (linear for layers without one).
    virtual Activation activation() const { return Activation::linear; }
    // int32 workspace per sample that forward fills for backward (MaxPool2D's mask, Dropout's).
    virtual std::int64_t mask_numel() const { return 0; }
    // Reserves engine scratch for batches up to max_batch.
    virtual void reserve(Engine& engine, std::int64_t max_batch) const;

    // out (n, output shape) from inp (n, input shape); mask has n * mask_numel() entries.
    // A reshape (op().kind == reshape: Flatten) returns inp itself as the context's output and
    // does not write `out`, which may then be null.
    virtual LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                                 std::int64_t n) const = 0;
    // dout (n, output shape): the gradient with respect to the output, or, when dout_is_dz, with
    // respect to the pre-activation (the fused softmax + cross-entropy gradient). Writes this
    // layer's gradients and, when not null, dinp (n, input shape). dout may be overwritten.
    virtual void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                          float* dinp) const = 0;
    // The training pass: forward() unless the layer draws random numbers (Dropout), from `t` and
    // its index in the model, `index`.
    virtual LayerContext forward_train(Engine& engine, const float* inp, float* out,
                                       std::int32_t* mask, std::int64_t n, const TrainingStep& t,
                                       std::size_t index) const;
    // What it computes (see LayerOp): Kind::other unless a subclass says more.
    virtual LayerOp op() const;

protected:
    virtual Shape do_build(const Shape& input_shape) = 0;

    float* params_ = nullptr;
    float* grads_ = nullptr;

private:
    bool built_ = false;
    Shape input_shape_, output_shape_;
};

// C: (h, w, c) -> (oh, ow, filters). Parameters: kernel (kh, kw, c, filters), bias (filters).
class Conv2D final : public Layer {
public:
    Conv2D(int filters, Window kernel, Padding padding = Padding::same(), Stride stride = {},
           Activation activation = Activation::linear);
    const char* type() const override { return "Conv2D"; }
    std::string spec() const override;
    std::vector<ParamInfo> param_info() const override;
    Activation activation() const override { return act_; }
    void reserve(Engine& engine, std::int64_t max_batch) const override;
    LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                         std::int64_t n) const override;
    void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                  float* dinp) const override;
    ConvGeom geometry(std::int64_t n) const;
    LayerOp op() const override;

protected:
    Shape do_build(const Shape& input_shape) override;

private:
    int filters_;
    Window kernel_;
    Padding padding_;
    Stride stride_;
    Activation act_;
    ConvGeom geom_;  // for n = 1
};

// S: (h, w, c) -> (oh, ow, c), max or mean of each window; no padding.
class Pool2D final : public Layer {
public:
    Pool2D(PoolMode mode, Window pool, Stride stride);
    const char* type() const override {
        return mode_ == PoolMode::max ? "MaxPooling2D" : "AveragePooling2D";
    }
    std::string spec() const override;
    std::int64_t mask_numel() const override { return mode_ == PoolMode::max ? output_numel() : 0; }
    LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                         std::int64_t n) const override;
    void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                  float* dinp) const override;
    PoolGeom geometry(std::int64_t n) const;
    PoolMode mode() const { return mode_; }
    LayerOp op() const override;

protected:
    Shape do_build(const Shape& input_shape) override;

private:
    PoolMode mode_;
    Window pool_;
    Stride stride_;
    PoolGeom geom_;
};

// (h, w, c) -> (h*w*c), NHWC order: a view, no copy in forward.
class Flatten final : public Layer {
public:
    const char* type() const override { return "Flatten"; }
    std::string spec() const override { return "Flatten"; }
    LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                         std::int64_t n) const override;
    void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                  float* dinp) const override;
    LayerOp op() const override;

protected:
    Shape do_build(const Shape& input_shape) override;
};

// F: (n_in) -> (units). Parameters: kernel (n_in, units), bias (units).
class Dense final : public Layer {
public:
    explicit Dense(int units, Activation activation = Activation::linear);
    const char* type() const override { return "Dense"; }
    std::string spec() const override;
    std::vector<ParamInfo> param_info() const override;
    Activation activation() const override { return act_; }
    void reserve(Engine& engine, std::int64_t max_batch) const override;
    LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                         std::int64_t n) const override;
    void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                  float* dinp) const override;
    LayerOp op() const override;

protected:
    Shape do_build(const Shape& input_shape) override;

private:
    int units_;
    Activation act_;
};

// An activation on its own (any shape; softmax over the last axis).
class ActivationLayer final : public Layer {
public:
    explicit ActivationLayer(Activation activation) : act_(activation) {}
    const char* type() const override { return "Activation"; }
    std::string spec() const override;
    Activation activation() const override { return act_; }
    LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                         std::int64_t n) const override;
    void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                  float* dinp) const override;
    LayerOp op() const override;

protected:
    Shape do_build(const Shape& input_shape) override { return input_shape; }

private:
    Activation act_;
};

// Inverted dropout (Keras Dropout), any shape. In training (forward_train) each element is dropped
// with probability `rate` and the kept ones are scaled by 1 / (1 - rate), so the expectation is
// unchanged; the draw is counter-based (minicnn/detail/dropout.h: the run's seed, the layer's
// index, the step, the element), so every engine drops the same units, and the mask backward
// needs lives in the stage's mask buffer. In evaluation and prediction (forward) the identity, a
// view like Flatten's: no copy.
class Dropout final : public Layer {
public:
    explicit Dropout(float rate);  // rate in [0, 1)
    const char* type() const override { return "Dropout"; }
    std::string spec() const override;
    float rate() const { return rate_; }
    std::int64_t mask_numel() const override { return output_numel(); }
    LayerContext forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                         std::int64_t n) const override;
    LayerContext forward_train(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                               std::int64_t n, const TrainingStep& t,
                               std::size_t index) const override;
    // dinp = dout * mask / (1 - rate) after forward_train; dout itself after forward.
    void backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                  float* dinp) const override;
    LayerOp op() const override;

protected:
    Shape do_build(const Shape& input_shape) override { return input_shape; }

private:
    float rate_;
};

}  // namespace minicnn
