// host/fusion_rules.h — when two operations may run as one: the legality rules an engine's planner
// (minicnn/plan.h) and the fused CUDA launchers share. Each returns why the pair cannot be fused,
// or "" when it can; an engine may refuse more (a kernel's own tile rule), never less.
#pragma once

#include <cstdint>
#include <string>

#include "minicnn/activation.h"
#include "minicnn/geometry.h"

namespace minicnn {

// Why an activation cannot be folded through max pooling (pool(act(z)), its backward taking act'
// from the pooled value), or "": the windows must not overlap (stride >= window) and the
// activation must be elementwise (not softmax).
std::string maxpool_act_unfoldable(Activation act, const PoolGeom& pool);
// ... and why that pooling cannot be fused into the forward of `conv`, whose output it pools.
std::string conv_maxpool_unfusable(const ConvGeom& conv, Activation act, const PoolGeom& pool);
// ... and why its backward cannot run inside the backward data of `conv`, whose input it produced.
std::string maxpool_conv_unfusable(const PoolGeom& pool, Activation act, const ConvGeom& conv);
// ... and for a dense layer of n_in inputs (the pooling's output flattened) over n samples.
std::string maxpool_dense_unfusable(const PoolGeom& pool, Activation act, std::int64_t n,
                                    std::int64_t n_in);

}  // namespace minicnn
