// tests/test_plan.cpp — the execution plan (minicnn/plan.h) on the CPU engine: the layer-by-layer
// plan runs one stage per layer, named after the layer (the CPU engine's own plan, which fuses, is
// tested in tests/test_plan_cpu.cpp); a plan whose stages do not run every layer in order is
// refused; a batch beyond the plan's size is refused; the plan's forward is the layers' forward.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/engine.h"
#include "minicnn/error.h"
#include "minicnn/model.h"
#include "minicnn/plan.h"
#include "test_util.h"

namespace minicnn {
namespace {

// LeNet-5 bound to arenas in `e`'s memory.
struct BoundLenet {
    Sequential m = lenet5(11);
    EngineBuffer<float> params, grads;
    explicit BoundLenet(Engine& e) : params(e, m.param_count()), grads(e, m.param_count()) {
        e.upload(params.data(), m.params().data(), params.bytes());
        for (std::size_t i = 0; i < m.size(); ++i)
            m.layer(i).bind(params.data() + m.param_offset(i), grads.data() + m.param_offset(i));
    }
};

TEST(Plan, LayerByLayerPlanHasOneStagePerLayer) {
    auto e = make_cpu_engine();
    BoundLenet b(*e);
    const std::unique_ptr<Plan> p = plan_layer_by_layer(*e, b.m, 4);
    ASSERT_EQ(p->size(), b.m.size());
    for (std::size_t i = 0; i < p->size(); ++i) {
        EXPECT_EQ(p->stage(i).name(), b.m.layer(i).name);
        EXPECT_EQ(p->stage(i).first_layer(), i);
        EXPECT_EQ(p->stage(i).layer_count(), 1u);
    }
    EXPECT_NE(p->summary().find("max_pooling2d_1"), std::string::npos) << p->summary();
}

// The plan's output is the chain of the layers' own forwards, and it sums to 1 per sample.
TEST(Plan, ForwardIsTheLayersForwardAndRefusesABatchBeyondItsSize) {
    auto e = make_cpu_engine();
    BoundLenet b(*e);
    const std::unique_ptr<Plan> p = e->plan(b.m, 3);
    const auto x = test::random_vector<float>(3 * 28 * 28, 5);
    const float* out = p->forward(x.data(), 3);
    // The same through each layer by hand.
    std::vector<std::vector<float>> acts;
    const float* cur = x.data();
    for (std::size_t i = 0; i < b.m.size(); ++i) {
        const Layer& l = b.m.layer(i);
        acts.emplace_back(static_cast<std::size_t>(3 * l.output_numel()));
        std::vector<std::int32_t> mask(static_cast<std::size_t>(3 * l.mask_numel()));
        cur = l.forward(*e, cur, acts.back().data(), mask.data(), 3).out;
    }
    for (int s = 0; s < 3; ++s) {
        double sum = 0;
        for (int k = 0; k < 10; ++k) {
            EXPECT_EQ(out[s * 10 + k], cur[s * 10 + k]) << "sample " << s << " class " << k;
            sum += out[s * 10 + k];
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    EXPECT_THROW(p->forward(x.data(), 4), ArgumentError);
    EXPECT_THROW(p->forward(x.data(), 0), ArgumentError);
}

TEST(Plan, StagesThatDoNotRunEveryLayerInOrderAreRefused) {
    auto e = make_cpu_engine();
    BoundLenet b(*e);
    std::vector<std::unique_ptr<Stage>> missing;
    for (std::size_t i = 0; i + 1 < b.m.size(); ++i)
        missing.push_back(make_layer_stage(*e, b.m, i, 2, false));
    EXPECT_THROW(Plan(*e, b.m, std::move(missing), 2), ArgumentError);
    std::vector<std::unique_ptr<Stage>> swapped;
    swapped.push_back(make_layer_stage(*e, b.m, 1, 2, false));
    swapped.push_back(make_layer_stage(*e, b.m, 0, 2, false));
    for (std::size_t i = 2; i < b.m.size(); ++i)
        swapped.push_back(make_layer_stage(*e, b.m, i, 2, i + 1 == b.m.size()));
    try {
        Plan bad(*e, b.m, std::move(swapped), 2);
        FAIL() << "a plan with its stages out of order must be refused";
    } catch (const ArgumentError& err) {
        EXPECT_NE(std::string(err.what()).find("in order"), std::string::npos) << err.what();
    }
}

}  // namespace
}  // namespace minicnn
