// host/optim.cpp — Adam (minicnn/optim.h): the moments live in engine memory; one update is one
// flat Engine::adam_update over the whole parameter arena.
#include "minicnn/optim.h"

#include <cmath>

#include "minicnn/error.h"

namespace minicnn {

void validate_adam_config(const AdamConfig& c) {
    MINICNN_REQUIRE(std::isfinite(c.lr) && c.lr > 0.0f,
                    "Adam: learning rate must be a finite number > 0, got " << c.lr);
    MINICNN_REQUIRE(c.beta1 >= 0.0f && c.beta1 < 1.0f,
                    "Adam: beta1 must be in [0, 1), got " << c.beta1);
    MINICNN_REQUIRE(c.beta2 >= 0.0f && c.beta2 < 1.0f,
                    "Adam: beta2 must be in [0, 1), got " << c.beta2);
    MINICNN_REQUIRE(std::isfinite(c.eps) && c.eps > 0.0f,
                    "Adam: epsilon must be > 0, got " << c.eps);
}

Adam::Adam(Engine& engine, std::int64_t n, AdamConfig cfg)
    : engine_(&engine), n_(n), cfg_(cfg), m_(engine, n), v_(engine, n) {
    validate_adam_config(cfg);
}

void Adam::set_config(const AdamConfig& cfg) {
    validate_adam_config(cfg);
    cfg_ = cfg;
}

void Adam::step(float* params, const float* grads, const StepCounters* counters) {
    engine_->adam_update(params, grads, m_.data(), v_.data(), n_, cfg_, counters);
}

std::vector<float> Adam::m_host() const {
    std::vector<float> h(static_cast<std::size_t>(n_));
    engine_->download(h.data(), m_.data(), m_.bytes());
    return h;
}

std::vector<float> Adam::v_host() const {
    std::vector<float> h(static_cast<std::size_t>(n_));
    engine_->download(h.data(), v_.data(), v_.bytes());
    return h;
}

void Adam::set_moments(const std::vector<float>& m, const std::vector<float>& v) {
    MINICNN_REQUIRE(std::int64_t(m.size()) == n_ && std::int64_t(v.size()) == n_,
                    "Adam: moments of " << n_ << " parameters expected, got " << m.size() << " and "
                                        << v.size());
    engine_->upload(m_.data(), m.data(), m_.bytes());
    engine_->upload(v_.data(), v.data(), v_.bytes());
}

void Adam::reset() {
    engine_->fill_zero(m_.data(), m_.bytes());
    engine_->fill_zero(v_.data(), v_.bytes());
}

}  // namespace minicnn
