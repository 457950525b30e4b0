// host/cuda_ops.h — the seam between the host code (the functional API host/ops.cpp, device
// selection host/device.cpp, engine selection host/engine_select.cpp) and the CUDA backend. The host
// code carries no CUDA #if: a CUDA build links cuda/ops_cuda.cpp (and make_cuda_engine from
// cuda/engine_cuda.cpp), a CPU-only build links host/no_cuda/cuda_ops_none.cpp, where device_count()
// is 0 with the reason and every other entry throws DeviceError saying the build has no CUDA backend.
//
// host/ops.cpp validates every argument (ranks, dtypes, geometry) and then calls one of these when the
// resolved backend is CUDA. They are implemented in cuda/ops_cuda.cpp, which copies the host inputs to
// the device (explicitly, on the context's stream), runs the launchers of minicnn/cuda_backend.h, and
// copies the results back. Inputs here are already validated and float32.
#pragma once

#include <string>

#include "minicnn/ops.h"

namespace minicnn::cuda_ops {

// Whether this build has the CUDA backend.
bool built();
// Number of visible devices; on failure (or without the backend) 0 and a one-line reason in *reason.
int device_count(std::string* reason);

Tensor conv_forward(const TensorView& A_prev, const TensorView& W, const TensorView& b,
                    Activation activation, const ConvGeom& g, const Device& device);
ConvGrads conv_backward(const TensorView& dZ, const TensorView& A_prev, const TensorView& W,
                        const ConvGeom& g, const Device& device);
Tensor pool_forward(const TensorView& A_prev, const PoolGeom& g, PoolMode mode,
                    const Device& device);
Tensor pool_backward(const TensorView& dA, const TensorView& A_prev, const PoolGeom& g,
                     PoolMode mode, MaxTie tie, const Device& device);
MaxPoolResult maxpool_forward_mask(const TensorView& A_prev, const PoolGeom& g,
                                   const Device& device);
Tensor maxpool_backward_mask(const TensorView& dA, const TensorView& mask, const PoolGeom& g,
                             const Device& device);
Tensor activation_forward(const TensorView& Z, Activation activation, const Device& device);
Tensor activation_backward(const TensorView& dA, const TensorView& A, Activation activation,
                           const Device& device);

}  // namespace minicnn::cuda_ops
