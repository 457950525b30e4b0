// cuda/ops_cuda.cpp — the functional API's CUDA path (host/cuda_ops.h). host/ops.cpp has validated
// every argument (ranks, dtypes float32, geometry); each function here
//   1. picks the context: Device::context when given, else this thread's default context for
//      Device::index (one non-blocking stream per thread and device; never the legacy stream),
//   2. allocates device buffers (DeviceBuffer: freed on every exit path, out of memory is a
//      DeviceError naming the buffer and the sizes),
//   3. copies the host inputs to the device, runs the launchers of minicnn/cuda_backend.h and
//      copies the results back, all explicitly on the context's stream,
//   4. synchronises that stream once, so the returned host tensors are complete and any
//      asynchronous fault surfaces here as a DeviceError.
// Each operation is an NVTX range named after it (the launchers add ranges for their kernels).
// Steps 1, 4 and the range are run_on_device's; the buffers of step 2 belong to its Staging, which
// frees them only after that synchronisation (no copy or kernel outlives its memory, and no
// asynchronous fault is swallowed by a cudaFree). An operation's function is only its own step 3.
#include <cstdint>
#include <deque>
#include <string>
#include <tuple>

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

// The device side of one operation: the context's stream and every device buffer the operation
// allocates (float32 data, int32 max-pool masks), kept until run_on_device has synchronised.
class Staging {
public:
    explicit Staging(cudaStream_t stream) : stream_(stream) {}
    Staging(const Staging&) = delete;
    Staging& operator=(const Staging&) = delete;

    cudaStream_t stream() const { return stream_; }

    // An uninitialised device buffer of `count` elements (`what` names it if memory runs out).
    template <class T>
    DeviceBuffer<T>& alloc(std::size_t count, const char* what) {
        auto& buffers = std::get<std::deque<DeviceBuffer<T>>>(buffers_);
        return buffers.emplace_back(count, what);  // a deque never moves its elements
    }
    // A device copy of a validated host tensor of element type T.
    template <class T = float>
    const DeviceBuffer<T>& upload(const TensorView& t, const char* what) {
        DeviceBuffer<T>& buf = alloc<T>(count_of(t.numel()), what);
        buf.copy_from(t.ptr<T>(), buf.size(), stream_);
        return buf;
    }
    // A host tensor of `shape` filled from `buf`; valid after the stream synchronises.
    template <class T>
    Tensor download(const DeviceBuffer<T>& buf, const Shape& shape) const {
        Tensor t(shape, dtype_of<T>());
        buf.copy_to(t.data<T>(), count_of(t.numel()), stream_);
        return t;
    }

private:
    cudaStream_t stream_;
    std::tuple<std::deque<DeviceBuffer<float>>, std::deque<DeviceBuffer<std::int32_t>>> buffers_;
};

// Runs `body(staging)` for the operation `op` (its NVTX range) on the context of `device`, with
// that device current, synchronises the context's stream once (a failure there throws DeviceError)
// and returns what `body` returned: host tensors whose copies `body` queued. Staging's buffers are
// freed after the synchronisation, before the previous device is restored.
template <class Body>
auto run_on_device(const Device& device, const char* op, Body&& body) {
    NvtxRange range(op);
    Context& ctx = context_for(device);
    DeviceGuard guard(ctx.device());
    Staging staging(ctx.stream());
    auto result = body(staging);
    ctx.synchronize();
    return result;
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
    return run_on_device(device, "conv_forward", [&](Staging& d) {
        const auto& d_in = d.upload(A_prev, "conv_forward A_prev");
        const auto& d_w = d.upload(W, "conv_forward W");
        const auto& d_b = d.upload(b, "conv_forward b");
        auto& d_out = d.alloc<float>(count_of(g.out_numel()), "conv_forward A");
        cuda::conv2d_forward(d_out.data(), d_in.data(), d_w.data(), d_b.data(), g, activation,
                             d.stream());
        return d.download(d_out, g.out_shape());
    });
}

ConvGrads conv_backward(const TensorView& dZ, const TensorView& A_prev, const TensorView& W,
                        const ConvGeom& g, const Device& device) {
    return run_on_device(device, "conv_backward", [&](Staging& d) {
        const auto& d_dz = d.upload(dZ, "conv_backward dZ");
        const auto& d_in = d.upload(A_prev, "conv_backward A_prev");
        const auto& d_w = d.upload(W, "conv_backward W");
        auto& d_dinp = d.alloc<float>(count_of(g.in_numel()), "conv_backward dA_prev");
        auto& d_dw = d.alloc<float>(count_of(g.weight_numel()), "conv_backward dW");
        auto& d_db = d.alloc<float>(count_of(g.k), "conv_backward db");
        const std::size_t ws_bytes = cuda::conv2d_backward_filter_workspace(g);
        auto& d_ws = d.alloc<float>((ws_bytes + sizeof(float) - 1) / sizeof(float),
                                    "conv_backward filter workspace");
        cuda::conv2d_backward_data(d_dinp.data(), d_dz.data(), d_w.data(), g, d.stream());
        cuda::conv2d_backward_filter(d_dw.data(), d_db.data(), d_dz.data(), d_in.data(), g,
                                     d_ws.data(), d.stream());
        return ConvGrads{d.download(d_dinp, g.in_shape()), d.download(d_dw, g.weight_shape()),
                         d.download(d_db, {1, 1, 1, g.k})};
    });
}

Tensor pool_forward(const TensorView& A_prev, const PoolGeom& g, PoolMode mode,
                    const Device& device) {
    return run_on_device(device, "pool_forward", [&](Staging& d) {
        const auto& d_in = d.upload(A_prev, "pool_forward A_prev");
        auto& d_out = d.alloc<float>(count_of(g.out_numel()), "pool_forward A");
        if (mode == PoolMode::avg)
            cuda::avgpool2d_forward(d_out.data(), d_in.data(), g, d.stream());
        else
            cuda::maxpool2d_forward(d_out.data(), nullptr, d_in.data(), g, d.stream());
        return d.download(d_out, g.out_shape());
    });
}

Tensor pool_backward(const TensorView& dA, const TensorView& A_prev, const PoolGeom& g,
                     PoolMode mode, MaxTie tie, const Device& device) {
    return run_on_device(device, "pool_backward", [&](Staging& d) {
        const cudaStream_t s = d.stream();
        const auto& d_dout = d.upload(dA, "pool_backward dA");
        auto& d_dinp = d.alloc<float>(count_of(g.in_numel()), "pool_backward dA_prev");
        if (mode == PoolMode::avg) {
            cuda::avgpool2d_backward(d_dinp.data(), d_dout.data(), g, s);
        } else if (tie == MaxTie::all_ties) {
            const auto& d_in = d.upload(A_prev, "pool_backward A_prev");
            cuda::maxpool2d_backward_allties(d_dinp.data(), d_dout.data(), d_in.data(), g, s);
        } else {
            // First-max rule without a stored mask: recompute the mask, then route through it.
            const auto& d_in = d.upload(A_prev, "pool_backward A_prev");
            auto& d_out = d.alloc<float>(count_of(g.out_numel()), "pool_backward window maxima");
            auto& d_mask = d.alloc<std::int32_t>(count_of(g.out_numel()), "pool_backward mask");
            cuda::maxpool2d_forward(d_out.data(), d_mask.data(), d_in.data(), g, s);
            cuda::maxpool2d_backward_mask(d_dinp.data(), d_dout.data(), d_mask.data(), g, s);
        }
        return d.download(d_dinp, g.in_shape());
    });
}

MaxPoolResult maxpool_forward_mask(const TensorView& A_prev, const PoolGeom& g,
                                   const Device& device) {
    return run_on_device(device, "maxpool_forward_mask", [&](Staging& d) {
        const auto& d_in = d.upload(A_prev, "maxpool_forward_mask A_prev");
        auto& d_out = d.alloc<float>(count_of(g.out_numel()), "maxpool_forward_mask A");
        auto& d_mask = d.alloc<std::int32_t>(count_of(g.out_numel()), "maxpool_forward_mask mask");
        cuda::maxpool2d_forward(d_out.data(), d_mask.data(), d_in.data(), g, d.stream());
        return MaxPoolResult{d.download(d_out, g.out_shape()), d.download(d_mask, g.out_shape())};
    });
}

Tensor maxpool_backward_mask(const TensorView& dA, const TensorView& mask, const PoolGeom& g,
                             const Device& device) {
    return run_on_device(device, "maxpool_backward_mask", [&](Staging& d) {
        const auto& d_dout = d.upload(dA, "maxpool_backward_mask dA");
        const auto& d_mask = d.upload<std::int32_t>(mask, "maxpool_backward_mask mask");
        auto& d_dinp = d.alloc<float>(count_of(g.in_numel()), "maxpool_backward_mask dA_prev");
        cuda::maxpool2d_backward_mask(d_dinp.data(), d_dout.data(), d_mask.data(), g, d.stream());
        return d.download(d_dinp, g.in_shape());
    });
}

Tensor activation_forward(const TensorView& Z, Activation activation, const Device& device) {
    return run_on_device(device, "activation_forward", [&](Staging& d) {
        std::int64_t rows = 0, cols = 0;
        rows_cols(Z.shape, &rows, &cols);
        const auto& d_in = d.upload(Z, "activation_forward Z");
        auto& d_out = d.alloc<float>(d_in.size(), "activation_forward A");
        cuda::activation_forward(d_out.data(), d_in.data(), rows, cols, activation, d.stream());
        return d.download(d_out, Z.shape);
    });
}

Tensor activation_backward(const TensorView& dA, const TensorView& A, Activation activation,
                           const Device& device) {
    return run_on_device(device, "activation_backward", [&](Staging& d) {
        std::int64_t rows = 0, cols = 0;
        rows_cols(A.shape, &rows, &cols);
        const auto& d_dout = d.upload(dA, "activation_backward dA");
        const auto& d_a = d.upload(A, "activation_backward A");
        auto& d_din = d.alloc<float>(d_a.size(), "activation_backward dZ");
        cuda::activation_backward(d_din.data(), d_dout.data(), d_a.data(), rows, cols, activation,
                                  d.stream());
        return d.download(d_din, A.shape);
    });
}

}  // namespace minicnn::cuda_ops
