// host/cpu/conv2d.h — the CPU convolution with caller-owned scratch (host/cpu/workspace.h): what the
// training engine calls; the functional API's pointer-level entry points (minicnn/cpu_backend.h) wrap
// these with a workspace of their own.
#pragma once

#include "minicnn/cpu_backend.h"
#include "workspace.h"

namespace minicnn::cpu {

// Grows `ws` for every batch size up to g.n of this geometry (the training engine's reservation).
template <class T>
void conv2d_reserve(Workspace<T>& ws, const ConvGeom& g);

// out (n, oh, ow, k) = act(conv(inp, weight) + bias); bias may be null.
template <class T>
void conv2d_forward(T* out, const T* inp, const T* weight, const T* bias, const ConvGeom& g,
                    Activation act, Workspace<T>& ws);

// Whether conv2d_maxpool_forward runs this pair: the shared fusion rules (host/fusion_rules.h) and
// the direct kernels for the convolution (host/cpu/conv_direct.h).
bool conv2d_maxpool_fits(const ConvGeom& conv, Activation act, const PoolGeom& pool);
// pooled (n, poh, pow, k) and mask = max_pool(act(conv(inp, weight) + bias)) with
// maxpool2d_forward's first-max mask, image by image: an image's convolution output lives only in
// a worker's scratch (no batch-sized buffer is written). Equal, value for value, to
// conv2d_forward then maxpool2d_forward. ArgumentError where conv2d_maxpool_fits is false.
void conv2d_maxpool_forward(float* pooled, std::int32_t* mask, const float* inp,
                            const float* weight, const float* bias, const ConvGeom& g,
                            Activation act, const PoolGeom& pool, Workspace<float>& ws);

// conv2d_backward's filter and bias gradients (no dinp) on dout = maxpool2d_backward_mask(g2,
// mask, pool) of a 2x2, stride-2 max pooling of this convolution's output, without writing that
// dout (the direct kernels for one input channel). Equal, bit for bit, to the two
// calls. ArgumentError where conv2d_backward_filter_unpool_fits is false.
bool conv2d_backward_filter_unpool_fits(const ConvGeom& conv, const PoolGeom& pool);
void conv2d_backward_filter_unpool(float* dweight, float* dbias, const float* g2,
                                   const std::int32_t* mask, const float* inp, const ConvGeom& g,
                                   const PoolGeom& pool, Workspace<float>& ws);

// conv2d_backward (dinp may be null) on dout = maxpool2d_backward_mask(g2, mask, pool), image by
// image: each image's dout lives only in a worker's scratch, where its filter gradient (summed per
// batch chunk, as conv2d_backward's) and its data gradient read it. Equal, bit for bit, to the two
// calls. Fits where the direct kernels run both passes of a convolution with at least 2 input
// channels (conv2d_backward_filter_unpool covers the first layer); ArgumentError elsewhere.
bool conv2d_maxpool_backward_fits(const ConvGeom& conv, const PoolGeom& pool);
void conv2d_maxpool_backward(float* dinp, float* dweight, float* dbias, const float* g2,
                             const std::int32_t* mask, const float* inp, const float* weight,
                             const ConvGeom& g, const PoolGeom& pool, Workspace<float>& ws);

// Any of dinp, dweight, dbias may be null (not computed).
template <class T>
void conv2d_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     const ConvGeom& g, Workspace<T>& ws);

}  // namespace minicnn::cpu
