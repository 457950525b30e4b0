// host/cpu/plan_cpu.cpp — the CPU engine's plan (minicnn/plan.h): which layers run fused, and the
// stages that run them.
//
// The planner walks the model's layers (their LayerOps) once:
//   - Conv2D followed by a max pooling that cpu::conv2d_maxpool_fits accepts (host/fusion_rules.h:
//     windows that do not overlap, an elementwise activation; and the direct kernels for the
//     convolution) -> ConvPoolStage:
//       forward   cpu::conv2d_maxpool_forward: image by image, the convolution, its activation and
//                 the pooling with its mask; the convolution's output exists only in a worker's
//                 scratch (LeNet-5 at batch 256: 4.8 + 1.6 MB never written nor read back);
//       backward  act' taken from the pooled value, on the pooled gradient (a quarter of the
//                 elements for 2x2 windows) in place of a pass over the convolution's output;
//                 then the pooling's backward inside the convolution's: for the model's first
//                 layer (no dinp) with one input channel, the filter gradient reads the pooled
//                 gradient and the mask directly (cpu::conv2d_backward_filter_unpool: dz is never
//                 written); with 2 or more input channels, image by image, each image's dz
//                 routed into a worker's scratch where both gradient passes read it
//                 (cpu::conv2d_maxpool_backward: LeNet-5's conv2, 1.6 MB at batch 256 never
//                 written to a batch-sized buffer); otherwise the pooling's backward into dz, then
//                 the convolution's backward;
//   - anything else -> the layer's own stage (make_layer_stage), on the engine's operations.
// LeNet-5 is then conv2d+max_pooling2d, conv2d_1+max_pooling2d_1, and one stage per remaining layer.
// The results are the layer-by-layer plan's, value for value (tests/test_plan_cpu.cpp): the same
// operations on the same numbers; act' of a window's maximum is act' of the pooled value, and the
// cells that are not a window's maximum get 0 either way.
#include "plan_cpu.h"

#include <string>
#include <utility>
#include <vector>

#include "conv2d.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/layers.h"
#include "minicnn/model.h"

namespace minicnn::cpu {

namespace {

template <class G>
G with_n(G g, std::int64_t n) {
    g.n = n;
    return g;
}

class ConvPoolStage final : public Stage {
public:
    ConvPoolStage(Engine& e, Workspace<float>& ws, const Sequential& m, std::size_t i,
                  std::int64_t max_batch)
        : Stage(m.layer(i).name + "+" + m.layer(i + 1).name, i, 2),
          ws_(&ws),
          conv_(m.layer(i).op()),
          pool_(m.layer(i + 1).op()),
          pooled_(e, max_batch * pool_.pool.oh * pool_.pool.ow * pool_.pool.c),
          mask_(e, max_batch * pool_.pool.oh * pool_.pool.ow * pool_.pool.c) {
        e.reserve_conv(with_n(conv_.conv, max_batch));
    }

    const float* forward(const float* inp, std::int64_t n) override {
        inp_ = inp;
        conv2d_maxpool_forward(pooled_.data(), mask_.data(), inp, conv_.weight, conv_.bias,
                               with_n(conv_.conv, n), conv_.act, with_n(pool_.pool, n), *ws_);
        return pooled_.data();
    }

    float* backward(float* grad, float* spare, std::int64_t n, bool need_dinp) override {
        const PoolGeom p = with_n(pool_.pool, n);
        const ConvGeom g = with_n(conv_.conv, n);
        activation_backward(grad, grad, pooled_.data(), n * p.oh * p.ow, p.c, conv_.act);
        if (!need_dinp && conv2d_backward_filter_unpool_fits(g, p)) {
            // The model's first layer: no dinp, and its dz never written.
            conv2d_backward_filter_unpool(conv_.dweight, conv_.dbias, grad, mask_.data(), inp_, g,
                                          p, *ws_);
            return nullptr;
        }
        if (conv2d_maxpool_backward_fits(g, p)) {
            // Image by image, each dz in a worker's scratch; dinp cannot overwrite grad, which
            // later images still read.
            float* dinp = need_dinp ? spare : nullptr;
            conv2d_maxpool_backward(dinp, conv_.dweight, conv_.dbias, grad, mask_.data(), inp_,
                                    conv_.weight, g, p, *ws_);
            return dinp;
        }
        maxpool2d_backward_mask(spare, grad, mask_.data(), p);  // dz, the pre-activation's
        float* dinp = need_dinp ? grad : nullptr;
        conv2d_backward(dinp, conv_.dweight, conv_.dbias, spare, inp_, conv_.weight, g, *ws_);
        return dinp;
    }

private:
    Workspace<float>* ws_;
    LayerOp conv_, pool_;
    EngineBuffer<float> pooled_;
    EngineBuffer<std::int32_t> mask_;
    const float* inp_ = nullptr;
};

}  // namespace

std::unique_ptr<Plan> plan_cpu(Engine& engine, Workspace<float>& ws, const Sequential& m,
                               std::int64_t max_batch) {
    std::vector<std::unique_ptr<Stage>> stages;
    const std::size_t layers = m.size();
    for (std::size_t i = 0; i < layers;) {
        const LayerOp op = m.layer(i).op();
        const LayerOp next = i + 1 < layers ? m.layer(i + 1).op() : LayerOp{};
        if (op.kind == LayerOp::Kind::conv2d && next.kind == LayerOp::Kind::max_pool &&
            conv2d_maxpool_fits(op.conv, op.act, next.pool)) {
            stages.push_back(std::make_unique<ConvPoolStage>(engine, ws, m, i, max_batch));
            i += 2;
        } else {
            stages.push_back(make_layer_stage(engine, m, i, max_batch, i + 1 == layers));
            ++i;
        }
    }
    return std::make_unique<Plan>(engine, m, std::move(stages), max_batch);
}

}  // namespace minicnn::cpu
