// host/fusion_rules.cpp — the fusion legality rules of host/fusion_rules.h.
#include "fusion_rules.h"

#include "minicnn/tensor.h"

namespace minicnn {

std::string maxpool_act_unfoldable(Activation act, const PoolGeom& pool) {
    if (act == Activation::softmax) return "the activation is softmax (it needs whole pixels)";
    if (pool.kh > pool.sh || pool.kw > pool.sw) {
        return "the pooling windows overlap (window " + std::to_string(pool.kh) + "x" +
               std::to_string(pool.kw) + ", stride " + std::to_string(pool.sh) + "x" +
               std::to_string(pool.sw) + ")";
    }
    return "";
}

namespace {

// "" when `a` (the pooling's side) equals `b` (the layer's side), else why not.
std::string mismatch(const char* a_name, const Shape& a, const char* b_name, const Shape& b) {
    if (a == b) return "";
    return std::string("the pooling's ") + a_name + " " + shape_str(a) + " is not the " + b_name +
           " " + shape_str(b);
}

}  // namespace

std::string maxpool_conv_unfusable(const PoolGeom& pool, Activation act, const ConvGeom& conv) {
    std::string why = mismatch("output", pool.out_shape(), "convolution's input", conv.in_shape());
    return why.empty() ? maxpool_act_unfoldable(act, pool) : why;
}

std::string maxpool_dense_unfusable(const PoolGeom& pool, Activation act, std::int64_t n,
                                    std::int64_t n_in) {
    std::string why =
        mismatch("output", {pool.n, pool.oh * pool.ow * pool.c}, "dense layer's input", {n, n_in});
    return why.empty() ? maxpool_act_unfoldable(act, pool) : why;
}

std::string conv_maxpool_unfusable(const ConvGeom& conv, Activation act, const PoolGeom& pool) {
    std::string why = mismatch("input", pool.in_shape(), "convolution's output", conv.out_shape());
    return why.empty() ? maxpool_act_unfoldable(act, pool) : why;
}

}  // namespace minicnn
