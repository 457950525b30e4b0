// minicnn/optim.h — Adam over a flat parameter arena.
//
// The state is two arenas of the parameter arena's layout (first and second moments) plus the step
// counter, all in engine memory; one update is one flat Engine::adam_update over every parameter of
// the model. The formula (the Keras/TensorFlow form) is in minicnn/engine.h (AdamConfig).
#pragma once

#include <cstdint>
#include <vector>

#include "minicnn/engine.h"

namespace minicnn {

class Adam {
public:
    Adam(Engine& engine, std::int64_t n, AdamConfig cfg = {});

    const AdamConfig& config() const { return cfg_; }
    void set_config(
        const AdamConfig& cfg);  // validates: lr finite and > 0, betas in [0, 1), eps > 0
    std::int64_t size() const { return n_; }

    // params -= update(grads); t is counters->step: the training step has counted this update
    // already (its softmax_xent, or Engine::advance).
    void step(float* params, const float* grads, const StepCounters* counters);

    // Host copies of the moments, and back (for checkpoints). Sizes must match size().
    std::vector<float> m_host() const;
    std::vector<float> v_host() const;
    void set_moments(const std::vector<float>& m, const std::vector<float>& v);
    void reset();

private:
    Engine* engine_;
    std::int64_t n_;
    AdamConfig cfg_;
    EngineBuffer<float> m_, v_;
};

// Throws ArgumentError naming the bad hyper-parameter.
void validate_adam_config(const AdamConfig& cfg);

}  // namespace minicnn
