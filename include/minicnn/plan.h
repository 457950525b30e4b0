// minicnn/plan.h — an engine's execution plan for a model: the stages one batch runs through.
//
// The model describes the computation (its layers, each with a LayerOp: minicnn/layers.h); the
// engine decides how it runs (cuDNN-frontend's operation graph and execution plan, tiny-cuda-nn's
// fully fused MLP as one more implementation of the same interface). Engine::plan() turns a built
// Sequential into a list of stages. A stage runs one or more consecutive layers as a unit: its
// forward, its backward, the context between them (what forward leaves for backward: inputs,
// outputs, max-pooling masks) and the buffers it needs, allocated when the plan is made; a buffer
// no stage writes is never allocated. The trainer runs the plan and never learns which layers
// were fused:
//
//   const float* probs = plan.forward(x, n, &step);     // every stage's forward, in order
//   engine.softmax_xent(plan.dlogits(), ..., probs, ...);
//   plan.backward(n);                                   // every stage's backward, in reverse
//
// The gradient that passes between two stages is whatever the two agree on, and both are made by
// the same planner: the gradient with respect to the earlier stage's output, unless the later
// stage runs the earlier stage's last operation's backward inside its own (the CUDA engine runs a
// max pooling's backward in the epilogue of the next layer's backward kernel), in which case it
// hands down the gradient with respect to an earlier point. The loss hands the last stage the
// gradient with respect to the last layer's pre-activation (the fused softmax + cross-entropy).
//
// A forward is a training forward when it is handed a TrainingStep (minicnn/engine.h), else an
// evaluation one; they differ only in stages that draw random numbers (Dropout).
//
// The default plan (plan_layer_by_layer, the CPU engine's) has one stage per layer, which runs
// Layer::forward / Layer::backward on the engine's operations; a reshape (Flatten) is a view in
// both directions. docs/architecture.md says how to add a layer or a fusion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/engine.h"

namespace minicnn {

class Layer;
class Sequential;

class Stage {
public:
    virtual ~Stage() = default;
    Stage(const Stage&) = delete;
    Stage& operator=(const Stage&) = delete;

    // Its layers' names joined by '+' ("conv2d+max_pooling2d"): what it runs, for summaries and
    // profiles.
    const std::string& name() const { return name_; }
    std::size_t first_layer() const { return first_; }
    std::size_t layer_count() const { return count_; }

    // inp (n, input shape of its first layer), engine memory -> its output (n, output shape of
    // its last layer), valid until its next forward. n is at most the plan's max_batch.
    virtual const float* forward(const float* inp, std::int64_t n) = 0;
    // The training forward: forward() unless the stage runs a layer that draws random numbers.
    virtual const float* forward_train(const float* inp, std::int64_t n, const TrainingStep&) {
        return forward(inp, n);
    }
    // After forward on the same n. grad is the gradient the next stage hands down (see the file
    // comment) and may be overwritten. Writes its layers' parameter gradients and, when need_dinp,
    // the gradient the stage before expects, either into `spare` (the plan's other gradient
    // buffer, as wide as the widest layer) or in place of grad, or it returns grad itself (a
    // reshape); returns where that gradient is (nullptr when !need_dinp).
    virtual float* backward(float* grad, float* spare, std::int64_t n, bool need_dinp) = 0;

protected:
    Stage(std::string name, std::size_t first, std::size_t count)
        : name_(std::move(name)), first_(first), count_(count) {}

private:
    std::string name_;
    std::size_t first_, count_;
};

class Plan {
public:
    // Stages that together run every layer of `model` in order, each once. Allocates the two
    // gradient buffers (max_batch x the widest layer input or output).
    Plan(Engine& engine, const Sequential& model, std::vector<std::unique_ptr<Stage>> stages,
         std::int64_t max_batch);
    Plan(const Plan&) = delete;
    Plan& operator=(const Plan&) = delete;

    // x (n, model input) in engine memory, n <= max_batch(); returns the model's output (n,
    // classes), valid until the next forward. A training forward when `training` is not null
    // (every stage's forward_train), else an evaluation one.
    const float* forward(const float* x, std::int64_t n, const TrainingStep* training = nullptr);
    // Where the loss writes its gradient (n, classes) for backward().
    float* dlogits() { return grad_a_.data(); }
    // After forward(x, n) and the loss: every layer's parameter gradients.
    void backward(std::int64_t n);

    std::int64_t max_batch() const { return max_batch_; }
    std::size_t size() const { return stages_.size(); }
    const Stage& stage(std::size_t i) const { return *stages_.at(i); }
    // The stages' names, one per line ("  0  conv2d+max_pooling2d"), for --verbose and tests.
    std::string summary() const;

private:
    Engine* engine_;
    std::int64_t max_batch_;
    std::vector<std::unique_ptr<Stage>> stages_;
    EngineBuffer<float> grad_a_, grad_b_;
};

// One layer as a stage of its own: Layer::forward / Layer::backward on the engine's operations,
// its output and mask buffers for max_batch samples (none for a reshape, which passes pointers
// through). grad_is_dz: the gradient handed to its backward is with respect to the layer's
// pre-activation (the stage is last and the loss hands it dlogits). Every planner's fallback.
std::unique_ptr<Stage> make_layer_stage(Engine& engine, const Sequential& model, std::size_t index,
                                        std::int64_t max_batch, bool grad_is_dz);
// Engine::plan's default: one stage per layer.
std::unique_ptr<Plan> plan_layer_by_layer(Engine& engine, const Sequential& model,
                                          std::int64_t max_batch);

}  // namespace minicnn
