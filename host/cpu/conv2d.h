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

// Any of dinp, dweight, dbias may be null (not computed).
template <class T>
void conv2d_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     const ConvGeom& g, Workspace<T>& ws);

}  // namespace minicnn::cpu
