// host/no_cuda/cuda_ops_none.cpp — the CUDA seam (host/cuda_ops.h, make_cuda_engine) in a build
// without the CUDA backend: no device, and every entry that would need one throws DeviceError
// saying so. Linked instead of cuda/ops_cuda.cpp and cuda/engine_cuda.cpp (CMakeLists.txt).
#include <string>

#include "../cuda_ops.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"

namespace minicnn {

namespace {

const char* const kNoCuda =
    "minicnn was built without CUDA (configure with -DMINICNN_CUDA=ON where nvcc is installed)";

[[noreturn]] void no_cuda(const char* what) {
    throw DeviceError(std::string(what) + ": " + kNoCuda);
}

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(int) {
    no_cuda("make_cuda_engine");
}

namespace cuda_ops {

bool built() {
    return false;
}

int device_count(std::string* reason) {
    if (reason != nullptr) *reason = kNoCuda;
    return 0;
}

Tensor conv_forward(const TensorView&, const TensorView&, const TensorView&, Activation,
                    const ConvGeom&, const Device&) {
    no_cuda("conv_forward");
}
ConvGrads conv_backward(const TensorView&, const TensorView&, const TensorView&, const ConvGeom&,
                        const Device&) {
    no_cuda("conv_backward");
}
Tensor pool_forward(const TensorView&, const PoolGeom&, PoolMode, const Device&) {
    no_cuda("pool_forward");
}
Tensor pool_backward(const TensorView&, const TensorView&, const PoolGeom&, PoolMode, MaxTie,
                     const Device&) {
    no_cuda("pool_backward");
}
MaxPoolResult maxpool_forward_mask(const TensorView&, const PoolGeom&, const Device&) {
    no_cuda("maxpool_forward_mask");
}
Tensor maxpool_backward_mask(const TensorView&, const TensorView&, const PoolGeom&, const Device&) {
    no_cuda("maxpool_backward_mask");
}
Tensor activation_forward(const TensorView&, Activation, const Device&) {
    no_cuda("activation_forward");
}
Tensor activation_backward(const TensorView&, const TensorView&, Activation, const Device&) {
    no_cuda("activation_backward");
}

}  // namespace cuda_ops
}  // namespace minicnn
