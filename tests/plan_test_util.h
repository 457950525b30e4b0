// tests/plan_test_util.h — an engine's plan (minicnn/plan.h) against the layer-by-layer plan on the
// same engine, parameters, inputs and loss gradient (tests/test_engine_cuda_fused.cpp for the CUDA
// engine, tests/test_plan_cpu.cpp for the CPU engine). The gradient arena is poisoned with NaNs
// first, so a gradient a fused stage fails to write is caught.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "minicnn/device.h"
#include "minicnn/engine.h"
#include "minicnn/model.h"
#include "minicnn/plan.h"

namespace minicnn::enginetest {

// got[i] == ref[i] for every i (NaN never equals: an unwritten poisoned element fails).
inline ::testing::AssertionResult values_equal(const std::vector<float>& got,
                                        const std::vector<float>& ref) {
    if (got.size() != ref.size())
        return ::testing::AssertionFailure() << got.size() << " elements, expected " << ref.size();
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (!(got[i] == ref[i])) {
            return ::testing::AssertionFailure() << "element " << i << " of " << got.size()
                                                 << ": got " << got[i] << ", expected " << ref[i];
        }
    }
    return ::testing::AssertionSuccess();
}

// A model's parameters and gradients in engine memory, its layers bound to them.
struct Bound {
    EngineBuffer<float> params, grads;
    Bound(Engine& e, Sequential& m) : params(e, m.param_count()), grads(e, m.param_count()) {
        e.upload(params.data(), m.params().data(), params.bytes());
        for (std::size_t i = 0; i < m.size(); ++i)
            m.layer(i).bind(params.data() + m.param_offset(i), grads.data() + m.param_offset(i));
    }
};

struct Result {
    std::vector<float> out, grads;
};

// One forward and backward of `plan` over n samples x, the loss handing it dlogits.
inline Result run(Engine& e, Plan& plan, Bound& b, const Sequential& m, const std::vector<float>& x,
           const std::vector<float>& dlogits, std::int64_t n) {
    EngineBuffer<float> X(e, std::int64_t(x.size()));
    e.upload(X.data(), x.data(), X.bytes());
    const std::vector<float> nan(static_cast<std::size_t>(b.grads.size()), std::nanf(""));
    e.upload(b.grads.data(), nan.data(), b.grads.bytes());
    Result r;
    r.out.resize(dlogits.size());
    const float* out = plan.forward(X.data(), n);
    e.download(r.out.data(), out, r.out.size() * sizeof(float));
    e.upload(plan.dlogits(), dlogits.data(), dlogits.size() * sizeof(float));
    plan.backward(n);
    r.grads.resize(static_cast<std::size_t>(b.grads.size()));
    e.download(r.grads.data(), b.grads.data(), b.grads.bytes());
    return r;
}

// The engine's plan against the layer-by-layer plan on an engine of `device`: outputs and every
// parameter gradient equal value for value, at n and at n - 2 samples on the same plans; returns
// the engine plan's stage names.
inline std::vector<std::string> expect_plans_agree(const Device& device, Sequential& m,
                                                   std::int64_t n) {
    auto g = make_engine(device);
    Bound b(*g, m);
    const auto x = randv(static_cast<std::size_t>(n * shape_numel(m.input_shape())), 7);
    const auto dl = randv(static_cast<std::size_t>(n * shape_numel(m.output_shape())), 8);
    std::unique_ptr<Plan> fused = g->plan(m, n);
    std::unique_ptr<Plan> plain = plan_layer_by_layer(*g, m, n);
    EXPECT_EQ(plain->size(), m.size());
    const Result f = run(*g, *fused, b, m, x, dl, n);
    const Result p = run(*g, *plain, b, m, x, dl, n);
    // Exact under FMA: see tests/test_engine_cuda_fused.cpp's header.
    EXPECT_TRUE(values_equal(f.out, p.out)) << "outputs\n" << fused->summary();
    EXPECT_TRUE(values_equal(f.grads, p.grads)) << "parameter gradients\n" << fused->summary();
    // A smaller batch on the same plan (the last batch of an epoch).
    const Result f2 = run(*g, *fused, b, m, x, dl, n - 2);
    const Result p2 = run(*g, *plain, b, m, x, dl, n - 2);
    EXPECT_TRUE(values_equal(f2.grads, p2.grads)) << "n - 2\n" << fused->summary();
    std::vector<std::string> names;
    for (std::size_t i = 0; i < fused->size(); ++i) names.push_back(fused->stage(i).name());
    return names;
}

}  // namespace minicnn::enginetest
