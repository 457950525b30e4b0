// cuda/ops_cuda.cpp — the functional API's CUDA path (host/cuda_ops.h). host/ops.cpp has validated
// every argument (ranks, dtypes float32, geometry); each function here
//   1. picks the context: Device::context when given, else this thread's default context for
//      Device::index (one non-blocking stream per thread and device; never the legacy stream),
//   2. allocates device buffers (DeviceBuffer: freed on every exit path, out of memory is a
//      DeviceError naming the buffer and the sizes),
//   3. copies the host inputs to the device, runs the launchers of minicnn/cuda_backend.h and
//   copies
//      the results back, all explicitly on the context's stream,
//   4. synchronises that stream once, so the returned host tensors are complete and any
//   asynchronous
//      fault surfaces here as a DeviceError.
// Each operation is an NVTX range named after it (the launchers add ranges for their kernels).
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "context.h"
#include "cuda_check.h"
#include "cuda_ops.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#include "nvtx_range.h"

namespace minicnn::cuda_ops {

namespace {

using cuda::Context;
using cuda::DeviceBuffer;
using cuda::DeviceGuard;
using cuda::NvtxRange;

Context& context_for(const Device& device) {
    if (device.context != nullptr) return *device.context;
    return Context::thread_default(device.index);
}

std::size_t count_of(std::int64_t n) {
    return static_cast<std::size_t>(n);
}

// A device copy of a validated float32 host tensor.
DeviceBuffer<float> upload(const TensorView& t, const char* what, cudaStream_t stream) {
    DeviceBuffer<float> buf(count_of(t.numel()), what);
    buf.copy_from(t.ptr<float>(), buf.size(), stream);
    return buf;
}

// A host tensor of `shape` filled from `buf`; valid after the stream synchronises.
template <class T>
Tensor download(const DeviceBuffer<T>& buf, const Shape& shape, cudaStream_t stream) {
    Tensor t(shape, dtype_of<T>());
    buf.copy_to(t.data<T>(), count_of(t.numel()), stream);
    return t;
}

// (rows, cols) of a tensor for the activations: cols is the last axis.
void rows_cols(const Shape& shape, std::int64_t* rows, std::int64_t* cols) {
    *cols = shape.empty() ? 1 : shape.back();
    *rows = *cols == 0 ? 0 : shape_numel(shape) / *cols;
}

}  // namespace

bool built() {
    return true;
}

int device_count(std::string* reason) {
    try {
        int count = 0;
        const cudaError_t err = cudaGetDeviceCount(&count);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            if (reason != nullptr)
                *reason = std::string("the CUDA runtime found no usable device: ") +
                          cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
            return 0;
        }
        if (count <= 0) {
            if (reason != nullptr) *reason = "the CUDA driver reports no device";
            return 0;
        }
        if (reason != nullptr) reason->clear();
        return count;
    } catch (...) {
        if (reason != nullptr) *reason = "querying the CUDA devices failed";
        return 0;
    }
}

Tensor conv_forward(const TensorView& A_prev, const TensorView& W, const TensorView& b,
                    Activation activation, const ConvGeom& g, const Device& device) {
    NvtxRange range("conv_forward");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    const DeviceBuffer<float> d_in = upload(A_prev, "conv_forward A_prev", s);
    const DeviceBuffer<float> d_w = upload(W, "conv_forward W", s);
    const DeviceBuffer<float> d_b = upload(b, "conv_forward b", s);
    DeviceBuffer<float> d_out(count_of(g.out_numel()), "conv_forward A");
    cuda::conv2d_forward(d_out.data(), d_in.data(), d_w.data(), d_b.data(), g, activation, s);
    Tensor out = download(d_out, g.out_shape(), s);
    ctx.synchronize();
    return out;
}

ConvGrads conv_backward(const TensorView& dZ, const TensorView& A_prev, const TensorView& W,
                        const ConvGeom& g, const Device& device) {
    NvtxRange range("conv_backward");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    const DeviceBuffer<float> d_dz = upload(dZ, "conv_backward dZ", s);
    const DeviceBuffer<float> d_in = upload(A_prev, "conv_backward A_prev", s);
    const DeviceBuffer<float> d_w = upload(W, "conv_backward W", s);
    DeviceBuffer<float> d_dinp(count_of(g.in_numel()), "conv_backward dA_prev");
    DeviceBuffer<float> d_dw(count_of(g.weight_numel()), "conv_backward dW");
    DeviceBuffer<float> d_db(count_of(g.k), "conv_backward db");
    const std::size_t ws_bytes = cuda::conv2d_backward_filter_workspace(g);
    DeviceBuffer<float> d_ws((ws_bytes + sizeof(float) - 1) / sizeof(float),
                             "conv_backward filter workspace");
    cuda::conv2d_backward_data(d_dinp.data(), d_dz.data(), d_w.data(), g, s);
    cuda::conv2d_backward_filter(d_dw.data(), d_db.data(), d_dz.data(), d_in.data(), g, d_ws.data(),
                                 s);
    ConvGrads r{download(d_dinp, g.in_shape(), s), download(d_dw, g.weight_shape(), s),
                download(d_db, {1, 1, 1, g.k}, s)};
    ctx.synchronize();
    return r;
}

Tensor pool_forward(const TensorView& A_prev, const PoolGeom& g, PoolMode mode,
                    const Device& device) {
    NvtxRange range("pool_forward");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    const DeviceBuffer<float> d_in = upload(A_prev, "pool_forward A_prev", s);
    DeviceBuffer<float> d_out(count_of(g.out_numel()), "pool_forward A");
    if (mode == PoolMode::avg)
        cuda::avgpool2d_forward(d_out.data(), d_in.data(), g, s);
    else
        cuda::maxpool2d_forward(d_out.data(), nullptr, d_in.data(), g, s);
    Tensor out = download(d_out, g.out_shape(), s);
    ctx.synchronize();
    return out;
}

Tensor pool_backward(const TensorView& dA, const TensorView& A_prev, const PoolGeom& g,
                     PoolMode mode, MaxTie tie, const Device& device) {
    NvtxRange range("pool_backward");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    const DeviceBuffer<float> d_dout = upload(dA, "pool_backward dA", s);
    DeviceBuffer<float> d_dinp(count_of(g.in_numel()), "pool_backward dA_prev");
    // Declared here so that they outlive the stream synchronisation below.
    DeviceBuffer<float> d_in, d_out;
    DeviceBuffer<std::int32_t> d_mask;
    if (mode == PoolMode::avg) {
        cuda::avgpool2d_backward(d_dinp.data(), d_dout.data(), g, s);
    } else if (tie == MaxTie::all_ties) {
        d_in = upload(A_prev, "pool_backward A_prev", s);
        cuda::maxpool2d_backward_allties(d_dinp.data(), d_dout.data(), d_in.data(), g, s);
    } else {
        // First-max rule without a stored mask: recompute the mask, then route through it.
        d_in = upload(A_prev, "pool_backward A_prev", s);
        d_out = DeviceBuffer<float>(count_of(g.out_numel()), "pool_backward window maxima");
        d_mask = DeviceBuffer<std::int32_t>(count_of(g.out_numel()), "pool_backward mask");
        cuda::maxpool2d_forward(d_out.data(), d_mask.data(), d_in.data(), g, s);
        cuda::maxpool2d_backward_mask(d_dinp.data(), d_dout.data(), d_mask.data(), g, s);
    }
    Tensor dinp = download(d_dinp, g.in_shape(), s);
    ctx.synchronize();
    return dinp;
}

MaxPoolResult maxpool_forward_mask(const TensorView& A_prev, const PoolGeom& g,
                                   const Device& device) {
    NvtxRange range("maxpool_forward_mask");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    const DeviceBuffer<float> d_in = upload(A_prev, "maxpool_forward_mask A_prev", s);
    DeviceBuffer<float> d_out(count_of(g.out_numel()), "maxpool_forward_mask A");
    DeviceBuffer<std::int32_t> d_mask(count_of(g.out_numel()), "maxpool_forward_mask mask");
    cuda::maxpool2d_forward(d_out.data(), d_mask.data(), d_in.data(), g, s);
    MaxPoolResult r{download(d_out, g.out_shape(), s), download(d_mask, g.out_shape(), s)};
    ctx.synchronize();
    return r;
}

Tensor maxpool_backward_mask(const TensorView& dA, const TensorView& mask, const PoolGeom& g,
                             const Device& device) {
    NvtxRange range("maxpool_backward_mask");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    const DeviceBuffer<float> d_dout = upload(dA, "maxpool_backward_mask dA", s);
    DeviceBuffer<std::int32_t> d_mask(count_of(mask.numel()), "maxpool_backward_mask mask");
    d_mask.copy_from(mask.ptr<std::int32_t>(), d_mask.size(), s);
    DeviceBuffer<float> d_dinp(count_of(g.in_numel()), "maxpool_backward_mask dA_prev");
    cuda::maxpool2d_backward_mask(d_dinp.data(), d_dout.data(), d_mask.data(), g, s);
    Tensor dinp = download(d_dinp, g.in_shape(), s);
    ctx.synchronize();
    return dinp;
}

Tensor activation_forward(const TensorView& Z, Activation activation, const Device& device) {
    NvtxRange range("activation_forward");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    std::int64_t rows = 0, cols = 0;
    rows_cols(Z.shape, &rows, &cols);
    const DeviceBuffer<float> d_in = upload(Z, "activation_forward Z", s);
    DeviceBuffer<float> d_out(d_in.size(), "activation_forward A");
    cuda::activation_forward(d_out.data(), d_in.data(), rows, cols, activation, s);
    Tensor out = download(d_out, Z.shape, s);
    ctx.synchronize();
    return out;
}

Tensor activation_backward(const TensorView& dA, const TensorView& A, Activation activation,
                           const Device& device) {
    NvtxRange range("activation_backward");
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    const cudaStream_t s = ctx.stream();
    std::int64_t rows = 0, cols = 0;
    rows_cols(A.shape, &rows, &cols);
    const DeviceBuffer<float> d_dout = upload(dA, "activation_backward dA", s);
    const DeviceBuffer<float> d_a = upload(A, "activation_backward A", s);
    DeviceBuffer<float> d_din(d_a.size(), "activation_backward dZ");
    cuda::activation_backward(d_din.data(), d_dout.data(), d_a.data(), rows, cols, activation, s);
    Tensor din = download(d_din, A.shape, s);
    ctx.synchronize();
    return din;
}

}  // namespace minicnn::cuda_ops
