// cuda/plan_cuda.cpp — the CUDA engine's plan (minicnn/plan.h): which layers run fused, and the
// stages that run them on the engine's stream.
//
// The planner walks the model's layers (their LayerOps) once:
//   - Conv2D followed by a max pooling that conv2d_maxpool_fusable accepts (windows that do not
//     overlap, an elementwise activation, a forward tile of whole windows) -> ConvPoolStage: one
//     kernel writes the pooled output and its mask, the convolution's output never reaches
//     memory (no buffer for it);
//   - a run of Dense layers, after any reshapes (Flatten) -> DenseStage: their forwards in one
//     launch where cuda::dense::forward_chain takes them (up to 4 layers, a softmax only over at
//     most 32 outputs), else one each (a large layer's on cuBLAS, cuda::dense::uses_cublas);
//   - anything else -> the layer's own stage (make_layer_stage), on the engine's operations.
// Then, backwards: a stage that follows a ConvPoolStage runs that pooling's backward inside its
// own backward kernel where it can (unpooling epilogues: conv2d_backward_data_unpool for a
// stride-1 convolution, dense::backward_unpool for a dense layer that is not a cuBLAS one), and
// hands the ConvPoolStage the gradient with respect to its convolution's pre-activation instead
// of the pooled output's; a ConvPoolStage that is handed the pooled output's gradient runs the
// pooling backward itself, with act' folded in (maxpool2d_backward_mask).
//
// LeNet-5 (conv, pool, conv, pool, flatten, dense x 3) is three stages:
//   conv2d+max_pooling2d             forward 1 kernel, backward: filter gradient (2 kernels)
//   conv2d_1+max_pooling2d_1         forward 1 kernel, backward: data + pool1's backward (1),
//                                    filter gradient (2)
//   flatten+dense+dense_1+dense_2    forward 1 kernel for the three layers, backward 1 per layer,
//                                    the first with pool2's backward in its epilogue
// Every fused path gives bit for bit what the layer-by-layer plan gives on this engine
// (tests/test_engine_cuda_fused.cpp; a zero's sign aside, see cuda::conv2d_backward_data_unpool).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dense.h"
#include "engine_cuda.h"
#include "fusion_rules.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/layers.h"
#include "minicnn/model.h"
#include "minicnn/plan.h"

namespace minicnn {

namespace {

// The max pooling at the end of a ConvPoolStage, as the next stage needs it to run its backward:
// its geometry (n = 1), its mask and the activation it pooled (its output is the next stage's
// input).
struct PoolLink {
    PoolGeom pool;
    const std::int32_t* mask = nullptr;
    Activation act = Activation::linear;
};

PoolGeom with_n(PoolGeom g, std::int64_t n) {
    g.n = n;
    return g;
}
ConvGeom with_n(ConvGeom g, std::int64_t n) {
    g.n = n;
    return g;
}

std::string joined_names(const Sequential& m, std::size_t first, std::size_t count) {
    std::string s;
    for (std::size_t i = first; i < first + count; ++i)
        s += (s.empty() ? "" : "+") + m.layer(i).name;
    return s;
}

// A convolution and the max pooling of its output (cuda::conv2d_maxpool_forward).
class ConvPoolStage final : public Stage {
public:
    ConvPoolStage(CudaEngine& e, const Sequential& m, std::size_t i, std::int64_t max_batch)
        : Stage(joined_names(m, i, 2), i, 2),
          e_(&e),
          conv_(m.layer(i).op()),
          pool_(m.layer(i + 1).op()),
          pooled_(e, max_batch * pool_.pool.oh * pool_.pool.ow * pool_.pool.c),
          mask_(e, max_batch * pool_.pool.oh * pool_.pool.ow * pool_.pool.c) {
        e.reserve_conv(with_n(conv_.conv, max_batch));
    }

    // What the next stage needs to run this pooling's backward in its own.
    PoolLink link() const { return {pool_.pool, mask_.data(), conv_.act}; }
    // The next stage hands down the gradient with respect to the convolution's pre-activation.
    void set_handed_dz() { handed_dz_ = true; }
    // This stage runs the backward of the previous stage's pooling in its backward data kernel.
    void set_unpool(const PoolLink& prev) { unpool_ = prev; }

    const float* forward(const float* inp, std::int64_t n) override {
        inp_ = inp;
        cuda::DeviceGuard guard(e_->device());
        cuda::conv2d_maxpool_forward(pooled_.data(), mask_.data(), inp, conv_.weight, conv_.bias,
                                     with_n(conv_.conv, n), conv_.act, with_n(pool_.pool, n),
                                     e_->stream());
        return pooled_.data();
    }

    float* backward(float* grad, float* spare, std::int64_t n, bool need_dinp) override {
        const ConvGeom g = with_n(conv_.conv, n);
        void* ws = e_->filter_workspace(g);
        cuda::DeviceGuard guard(e_->device());
        float* dz = grad;
        float* free = spare;
        if (!handed_dz_) {  // the pooling's backward, act' taken from the pooled value
            cuda::maxpool2d_backward_mask(spare, grad, mask_.data(), with_n(pool_.pool, n),
                                          e_->stream(), pooled_.data(), conv_.act);
            dz = spare;
            free = grad;
        }
        float* dinp = nullptr;
        if (need_dinp) {
            dinp = free;
            if (unpool_.mask) {
                const bool fused = cuda::conv2d_backward_data_unpool(
                    dinp, dz, conv_.weight, g, e_->stream(), nullptr, Activation::linear,
                    unpool_.mask, inp_, unpool_.act, with_n(unpool_.pool, n));
                MINICNN_REQUIRE(fused, name() << ": the unpooling backward data kernel did not "
                                                 "apply, though the plan said it would");
            } else {
                cuda::conv2d_backward_data(dinp, dz, conv_.weight, g, e_->stream());
            }
        }
        cuda::conv2d_backward_filter(conv_.dweight, conv_.dbias, dz, inp_, g, ws, e_->stream());
        return dinp;
    }

private:
    CudaEngine* e_;
    LayerOp conv_, pool_;
    EngineBuffer<float> pooled_;
    EngineBuffer<std::int32_t> mask_;
    const float* inp_ = nullptr;
    bool handed_dz_ = false;
    PoolLink unpool_;
};

// Reshapes (Flatten) followed by Dense layers: their forwards in one launch
// (cuda::dense::forward_chain) or one each (cuda::dense::forward), each layer's backward one launch
// (act' folded in; the first layer's with the previous stage's pooling backward in its epilogue
// where the plan links them), a large layer's forward and backward on cuBLAS instead
// (cuda::dense::uses_cublas; cuda/dense.cu).
class DenseStage final : public Stage {
public:
    // Layers [first, first + count): reshapes, then Dense layers (at least one).
    DenseStage(CudaEngine& e, const Sequential& m, std::size_t first, std::size_t count,
               std::int64_t max_batch, bool grad_is_dz)
        : Stage(joined_names(m, first, count), first, count), e_(&e), grad_is_dz_(grad_is_dz) {
        for (std::size_t i = first; i < first + count; ++i) {
            const LayerOp o = m.layer(i).op();
            if (o.kind != LayerOp::Kind::dense) continue;
            layers_.push_back(o);
            outs_.emplace_back(e, max_batch * o.n_out);
        }
        MINICNN_REQUIRE(!layers_.empty(), "DenseStage: no dense layer in " << name());
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            MINICNN_REQUIRE(
                layers_[l].act != Activation::softmax || (l + 1 == layers_.size() && grad_is_dz),
                "DenseStage " << name() << ": a softmax only as the last layer of the model");
        }
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerOp& o = layers_[l];
            chain_.push_back({o.weight, o.bias, outs_[l].data(), o.n_in, o.n_out, o.act});
        }
        chained_ = chain_.size() > 1 &&
                   cuda::dense::chain_unfusable(chain_.data(), int(chain_.size())).empty();
    }

    void set_unpool(const PoolLink& prev) { unpool_ = prev; }

    const float* forward(const float* inp, std::int64_t n) override {
        inp_ = inp;
        cuda::DeviceGuard guard(e_->device());
        if (chained_) {  // every layer's forward in one launch
            cuda::dense::forward_chain(inp, chain_.data(), int(chain_.size()), n, e_->stream());
            return outs_.back().data();
        }
        const float* x = inp;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LayerOp& o = layers_[l];
            cuda::dense::forward(outs_[l].data(), x, o.weight, o.bias, n, o.n_in, o.n_out, o.act,
                                 e_->context());
            x = outs_[l].data();
        }
        return x;
    }

    float* backward(float* grad, float* spare, std::int64_t n, bool need_dinp) override {
        cuda::DeviceGuard guard(e_->device());
        float* dy = grad;
        float* free = spare;
        for (std::size_t l = layers_.size(); l-- > 0;) {
            const LayerOp& o = layers_[l];
            const float* x = l == 0 ? inp_ : outs_[l - 1].data();
            const bool last = l + 1 == layers_.size();
            // act' folded into the kernel's loads of dy; the loss's gradient is dz already.
            const Activation folded = last && grad_is_dz_ ? Activation::linear : o.act;
            float* dinp = l > 0 || need_dinp ? free : nullptr;
            if (l == 0 && dinp && unpool_.mask) {
                cuda::dense::backward_unpool(dinp, o.dweight, o.dbias, dy, outs_[l].data(), folded,
                                             x, o.weight, n, o.n_in, o.n_out, unpool_.mask,
                                             unpool_.act, with_n(unpool_.pool, n), e_->stream());
            } else {
                cuda::dense::backward(dinp, o.dweight, o.dbias, dy, outs_[l].data(), folded, x,
                                      o.weight, n, o.n_in, o.n_out, e_->context());
            }
            free = dy;
            dy = dinp;
        }
        return dy;
    }

private:
    CudaEngine* e_;
    bool grad_is_dz_;
    std::vector<LayerOp> layers_;
    std::vector<EngineBuffer<float>> outs_;
    std::vector<cuda::dense::ChainLayer> chain_;
    bool chained_ = false;  // the forwards as one launch (cuda::dense::forward_chain)
    const float* inp_ = nullptr;
    PoolLink unpool_;
};

}  // namespace

std::unique_ptr<Plan> CudaEngine::plan(const Sequential& m, std::int64_t max_batch) {
    using Kind = LayerOp::Kind;
    std::vector<std::unique_ptr<Stage>> stages;
    ConvPoolStage* prev_pool = nullptr;  // the stage before, when it is a ConvPoolStage
    const std::size_t layers = m.size();
    for (std::size_t i = 0; i < layers;) {
        const LayerOp op = m.layer(i).op();
        const LayerOp next = i + 1 < layers ? m.layer(i + 1).op() : LayerOp{};
        // Reshapes, then dense layers: a DenseStage (a softmax only as the model's last layer,
        // whose gradient the loss hands down as dz).
        std::size_t j = i;
        while (j < layers && m.layer(j).op().kind == Kind::reshape) ++j;
        std::size_t k = j;
        while (k < layers && m.layer(k).op().kind == Kind::dense &&
               (m.layer(k).op().act != Activation::softmax || k + 1 == layers))
            ++k;
        if (op.kind == Kind::conv2d && next.kind == Kind::max_pool &&
            cuda::conv2d_maxpool_fusable(op.conv, op.act, next.pool)) {
            auto s = std::make_unique<ConvPoolStage>(*this, m, i, max_batch);
            if (prev_pool && cuda::conv2d_backward_data_unpool_fusable(
                                 op.conv, prev_pool->link().pool, prev_pool->link().act)) {
                s->set_unpool(prev_pool->link());
                prev_pool->set_handed_dz();
            }
            prev_pool = s.get();
            stages.push_back(std::move(s));
            i += 2;
        } else if (k > j) {
            auto s = std::make_unique<DenseStage>(*this, m, i, k - i, max_batch, k == layers);
            const LayerOp first = m.layer(j).op();
            // Not before a cuBLAS layer (cuda::dense::uses_cublas): its backward runs as cuBLAS
            // GEMMs, and the pooling's backward as its own kernel.
            if (prev_pool && !cuda::dense::uses_cublas(first.n_in, first.n_out) &&
                maxpool_dense_unfusable(prev_pool->link().pool, prev_pool->link().act, 1,
                                        first.n_in)
                    .empty()) {
                s->set_unpool(prev_pool->link());
                prev_pool->set_handed_dz();
            }
            prev_pool = nullptr;
            stages.push_back(std::move(s));
            i = k;
        } else {
            stages.push_back(make_layer_stage(*this, m, i, max_batch, i + 1 == layers));
            prev_pool = nullptr;
            ++i;
        }
    }
    return std::make_unique<Plan>(*this, m, std::move(stages), max_batch);
}

}  // namespace minicnn
