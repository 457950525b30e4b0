// host/plan.cpp — Plan and the layer-by-layer plan (minicnn/plan.h): one stage per layer, which
// runs Layer::forward / Layer::backward on the engine's operations. It is the CPU engine's plan
// (Engine::plan's default) and the stage every planner falls back to for a layer it does not fuse.
#include "minicnn/plan.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "minicnn/error.h"
#include "minicnn/model.h"

namespace minicnn {

namespace {

// One layer: its output and mask buffers (none for a reshape, which passes pointers through in
// both directions), its context from forward to backward.
class LayerStage final : public Stage {
public:
    LayerStage(Engine& engine, const Layer& layer, std::size_t index, std::int64_t max_batch,
               bool grad_is_dz)
        : Stage(layer.name, index, 1),
          engine_(&engine),
          layer_(&layer),
          reshape_(layer.op().kind == LayerOp::Kind::reshape),
          grad_is_dz_(grad_is_dz) {
        if (!reshape_) out_ = EngineBuffer<float>(engine, max_batch * layer.output_numel());
        mask_ = EngineBuffer<std::int32_t>(engine, max_batch * layer.mask_numel());
        layer.reserve(engine, max_batch);
    }

    const float* forward(const float* inp, std::int64_t n) override {
        ctx_ = layer_->forward(*engine_, inp, out_.data(), mask_.data(), n);
        return ctx_.out;
    }
    const float* forward_train(const float* inp, std::int64_t n, const TrainingStep& t) override {
        ctx_ = layer_->forward_train(*engine_, inp, out_.data(), mask_.data(), n, t, first_layer());
        return ctx_.out;
    }
    float* backward(float* grad, float* spare, std::int64_t, bool need_dinp) override {
        if (reshape_) return need_dinp ? grad : nullptr;  // the same elements, no copy
        layer_->backward(*engine_, ctx_, grad, grad_is_dz_, need_dinp ? spare : nullptr);
        return need_dinp ? spare : nullptr;
    }

private:
    Engine* engine_;
    const Layer* layer_;
    bool reshape_, grad_is_dz_;
    EngineBuffer<float> out_;
    EngineBuffer<std::int32_t> mask_;
    LayerContext ctx_;
};

}  // namespace

Plan::Plan(Engine& engine, const Sequential& model, std::vector<std::unique_ptr<Stage>> stages,
           std::int64_t max_batch)
    : engine_(&engine), max_batch_(max_batch), stages_(std::move(stages)) {
    MINICNN_REQUIRE(max_batch > 0, "Plan: max_batch must be positive, got " << max_batch);
    std::size_t next = 0;
    for (const auto& s : stages_) {
        MINICNN_REQUIRE(s && s->first_layer() == next && s->layer_count() > 0,
                        "Plan: the stages do not run the model's layers in order, each once (stage "
                            << (s ? s->name() : std::string("null")) << " at layer " << next
                            << ")");
        next += s->layer_count();
    }
    MINICNN_REQUIRE(next == model.size(), "Plan: the stages run " << next << " of the model's "
                                                                  << model.size() << " layers");
    std::int64_t widest = shape_numel(model.input_shape());
    for (std::size_t i = 0; i < model.size(); ++i)
        widest = std::max(widest, model.layer(i).output_numel());
    grad_a_ = EngineBuffer<float>(engine, max_batch * widest);
    grad_b_ = EngineBuffer<float>(engine, max_batch * widest);
}

const float* Plan::forward(const float* x, std::int64_t n, const TrainingStep* training) {
    MINICNN_REQUIRE(n > 0 && n <= max_batch_,
                    "Plan::forward: " << n << " samples, the plan holds 1 to " << max_batch_);
    const float* cur = x;
    for (const auto& s : stages_)
        cur = training ? s->forward_train(cur, n, *training) : s->forward(cur, n);
    return cur;
}

void Plan::backward(std::int64_t n) {
    float* grad = grad_a_.data();
    float* spare = grad_b_.data();
    for (std::size_t i = stages_.size(); i-- > 0;) {
        float* next = stages_[i]->backward(grad, spare, n, i > 0);
        if (next == spare) spare = grad;  // grad has been consumed: the next stage's spare
        grad = next;
    }
}

std::string Plan::summary() const {
    std::ostringstream os;
    for (std::size_t i = 0; i < stages_.size(); ++i)
        os << "  " << i << "  " << stages_[i]->name() << "\n";
    return os.str();
}

std::unique_ptr<Stage> make_layer_stage(Engine& engine, const Sequential& model, std::size_t index,
                                        std::int64_t max_batch, bool grad_is_dz) {
    return std::make_unique<LayerStage>(engine, model.layer(index), index, max_batch, grad_is_dz);
}

std::unique_ptr<Plan> plan_layer_by_layer(Engine& engine, const Sequential& model,
                                          std::int64_t max_batch) {
    std::vector<std::unique_ptr<Stage>> stages;
    for (std::size_t i = 0; i < model.size(); ++i)
        stages.push_back(make_layer_stage(engine, model, i, max_batch, i + 1 == model.size()));
    return std::make_unique<Plan>(engine, model, std::move(stages), max_batch);
}

std::unique_ptr<Plan> Engine::plan(const Sequential& model, std::int64_t max_batch) {
    return plan_layer_by_layer(*this, model, max_batch);
}

}  // namespace minicnn
