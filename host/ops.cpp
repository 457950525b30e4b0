// host/ops.cpp — the functional API of minicnn/ops.h: validates every argument once, then runs the
// CPU backend (minicnn/cpu_backend.h) or hands over to the CUDA backend (host/cuda_ops.h). CPU
// results are allocated without the zero fill (Tensor::uninitialized): every pass below writes
// each element of its outputs.
#include "minicnn/ops.h"

#include "cuda_ops.h"
#include "minicnn/cpu_backend.h"

namespace minicnn {

PoolMode parse_pool_mode(const std::string& s) {
    if (s == "max") return PoolMode::max;
    if (s == "avg" || s == "average") return PoolMode::avg;
    MINICNN_REQUIRE(false, "mode must be \"max\" or \"avg\", got \"" << s << "\"");
    return PoolMode::max;
}

const char* pool_mode_name(PoolMode m) {
    return m == PoolMode::max ? "max" : "avg";
}

namespace {

void require_defined(const TensorView& t, const char* op, const char* name) {
    MINICNN_REQUIRE(t.data != nullptr || t.numel() == 0, op << ": " << name << " has no data");
}

void require_float(const TensorView& t, const char* op, const char* name) {
    require_defined(t, op, name);
    MINICNN_REQUIRE(
        t.dtype == DType::f32 || t.dtype == DType::f64,
        op << ": " << name << " must be float32 or float64, got " << dtype_name(t.dtype));
}

void require_same_dtype(const TensorView& a, const TensorView& b, const char* op, const char* na,
                        const char* nb) {
    MINICNN_REQUIRE(a.dtype == b.dtype, op << ": " << na << " is " << dtype_name(a.dtype) << " but "
                                           << nb << " is " << dtype_name(b.dtype)
                                           << "; all inputs must have the same dtype");
}

void require_shape(const TensorView& t, const Shape& expected, const char* op, const char* name) {
    MINICNN_REQUIRE(t.shape == expected, op << ": " << name << " must have shape "
                                            << shape_str(expected) << ", got "
                                            << shape_str(t.shape));
}

// Bias: (1, 1, 1, c_new) as the exercise has it, or (c_new).
void require_bias(const TensorView& b, std::int64_t k, const char* op) {
    bool ok = !b.shape.empty() && b.shape.back() == k && b.numel() == k;
    MINICNN_REQUIRE(ok, op << ": b must have shape (1, 1, 1, " << k << ") or (" << k << ",), got "
                           << shape_str(b.shape));
}

// Which backend runs this call. The CUDA backend is float32 only: float64 runs on the CPU under
// auto, and is an error when CUDA was asked for explicitly.
Backend pick(const Device& device, DType dt, const char* op) {
    if (dt == DType::f64) {
        MINICNN_REQUIRE(
            device.backend != Backend::cuda,
            op << ": the CUDA backend computes in float32; got float64 inputs (convert to "
                  "float32, or use device=\"cpu\")");
        return Backend::cpu;
    }
    return resolve_backend(device);
}

template <class F>
decltype(auto) by_dtype(DType dt, F&& f) {
    if (dt == DType::f64) return f(double{});
    return f(float{});
}

}  // namespace

Tensor conv_forward(const TensorView& A_prev, const TensorView& W, const TensorView& b,
                    Activation activation, Padding padding, Stride stride, Device device) {
    const char* op = "conv_forward";
    require_float(A_prev, op, "A_prev");
    require_float(W, op, "W");
    require_float(b, op, "b");
    require_same_dtype(A_prev, W, op, "A_prev", "W");
    require_same_dtype(A_prev, b, op, "A_prev", "b");
    const ConvGeom g = conv_geometry(A_prev.shape, W.shape, padding, stride, op);
    require_bias(b, g.k, op);
    if (pick(device, A_prev.dtype, op) == Backend::cuda)
        return cuda_ops::conv_forward(A_prev, W, b, activation, g, device);
    Tensor out = Tensor::uninitialized(g.out_shape(), A_prev.dtype);
    by_dtype(A_prev.dtype, [&](auto tag) {
        using T = decltype(tag);
        cpu::conv2d_forward<T>(out.data<T>(), A_prev.ptr<T>(), W.ptr<T>(), b.ptr<T>(), g,
                               activation);
    });
    return out;
}

ConvGrads conv_backward(const TensorView& dZ, const TensorView& A_prev, const TensorView& W,
                        const TensorView& b, Padding padding, Stride stride, Device device) {
    const char* op = "conv_backward";
    require_float(dZ, op, "dZ");
    require_float(A_prev, op, "A_prev");
    require_float(W, op, "W");
    require_float(b, op, "b");
    require_same_dtype(A_prev, dZ, op, "A_prev", "dZ");
    require_same_dtype(A_prev, W, op, "A_prev", "W");
    require_same_dtype(A_prev, b, op, "A_prev", "b");
    const ConvGeom g = conv_geometry(A_prev.shape, W.shape, padding, stride, op);
    require_bias(b, g.k, op);
    require_shape(dZ, g.out_shape(), op, "dZ");
    if (pick(device, A_prev.dtype, op) == Backend::cuda)
        return cuda_ops::conv_backward(dZ, A_prev, W, g, device);
    ConvGrads r{Tensor::uninitialized(g.in_shape(), A_prev.dtype),
                Tensor::uninitialized(g.weight_shape(), A_prev.dtype),
                Tensor::uninitialized({1, 1, 1, g.k}, A_prev.dtype)};
    by_dtype(A_prev.dtype, [&](auto tag) {
        using T = decltype(tag);
        cpu::conv2d_backward_data<T>(r.dA_prev.data<T>(), dZ.ptr<T>(), W.ptr<T>(), g);
        cpu::conv2d_backward_filter<T>(r.dW.data<T>(), r.db.data<T>(), dZ.ptr<T>(), A_prev.ptr<T>(),
                                       g);
    });
    return r;
}

Tensor pool_forward(const TensorView& A_prev, Window kernel, Stride stride, PoolMode mode,
                    Device device) {
    const char* op = "pool_forward";
    require_float(A_prev, op, "A_prev");
    const PoolGeom g = pool_geometry(A_prev.shape, kernel, stride, op);
    if (pick(device, A_prev.dtype, op) == Backend::cuda)
        return cuda_ops::pool_forward(A_prev, g, mode, device);
    Tensor out = Tensor::uninitialized(g.out_shape(), A_prev.dtype);
    by_dtype(A_prev.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (mode == PoolMode::max)
            cpu::maxpool2d_forward<T>(out.data<T>(), nullptr, A_prev.ptr<T>(), g);
        else
            cpu::avgpool2d_forward<T>(out.data<T>(), A_prev.ptr<T>(), g);
    });
    return out;
}

Tensor pool_backward(const TensorView& dA, const TensorView& A_prev, Window kernel, Stride stride,
                     PoolMode mode, MaxTie tie, Device device) {
    const char* op = "pool_backward";
    require_float(dA, op, "dA");
    require_float(A_prev, op, "A_prev");
    require_same_dtype(A_prev, dA, op, "A_prev", "dA");
    const PoolGeom g = pool_geometry(A_prev.shape, kernel, stride, op);
    require_shape(dA, g.out_shape(), op, "dA");
    if (pick(device, A_prev.dtype, op) == Backend::cuda)
        return cuda_ops::pool_backward(dA, A_prev, g, mode, tie, device);
    Tensor dinp = Tensor::uninitialized(g.in_shape(), A_prev.dtype);
    by_dtype(A_prev.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (mode == PoolMode::avg) {
            cpu::avgpool2d_backward<T>(dinp.data<T>(), dA.ptr<T>(), g);
        } else if (tie == MaxTie::all_ties) {
            cpu::maxpool2d_backward_allties<T>(dinp.data<T>(), dA.ptr<T>(), A_prev.ptr<T>(), g);
        } else {
            // First-max rule without a stored mask: recompute the mask, then route through it.
            Tensor out(g.out_shape(), A_prev.dtype), mask(g.out_shape(), DType::i32);
            cpu::maxpool2d_forward<T>(out.data<T>(), mask.data<std::int32_t>(), A_prev.ptr<T>(), g);
            cpu::maxpool2d_backward_mask<T>(dinp.data<T>(), dA.ptr<T>(), mask.data<std::int32_t>(),
                                            g);
        }
    });
    return dinp;
}

MaxPoolResult maxpool_forward_mask(const TensorView& A_prev, Window kernel, Stride stride,
                                   Device device) {
    const char* op = "maxpool_forward_mask";
    require_float(A_prev, op, "A_prev");
    const PoolGeom g = pool_geometry(A_prev.shape, kernel, stride, op);
    if (pick(device, A_prev.dtype, op) == Backend::cuda)
        return cuda_ops::maxpool_forward_mask(A_prev, g, device);
    MaxPoolResult r{Tensor::uninitialized(g.out_shape(), A_prev.dtype),
                    Tensor::uninitialized(g.out_shape(), DType::i32)};
    by_dtype(A_prev.dtype, [&](auto tag) {
        using T = decltype(tag);
        cpu::maxpool2d_forward<T>(r.A.data<T>(), r.mask.data<std::int32_t>(), A_prev.ptr<T>(), g);
    });
    return r;
}

Tensor maxpool_backward_mask(const TensorView& dA, const TensorView& mask,
                             const Shape& a_prev_shape, Window kernel, Stride stride,
                             Device device) {
    const char* op = "maxpool_backward_mask";
    require_float(dA, op, "dA");
    require_defined(mask, op, "mask");
    MINICNN_REQUIRE(mask.dtype == DType::i32,
                    op << ": mask must be int32, got " << dtype_name(mask.dtype));
    const PoolGeom g = pool_geometry(a_prev_shape, kernel, stride, op);
    require_shape(dA, g.out_shape(), op, "dA");
    require_shape(mask, g.out_shape(), op, "mask");
    // A mask from elsewhere may hold anything: an out-of-window index would write out of bounds.
    const std::int32_t* m = mask.ptr<std::int32_t>();
    const std::int64_t window = std::int64_t(g.kh) * g.kw;
    for (std::int64_t i = 0, n = mask.numel(); i < n; ++i)
        MINICNN_REQUIRE(m[i] >= 0 && m[i] < window, op << ": mask[" << i << "] = " << m[i]
                                                       << " is outside the window [0, " << window
                                                       << ")");
    if (pick(device, dA.dtype, op) == Backend::cuda)
        return cuda_ops::maxpool_backward_mask(dA, mask, g, device);
    Tensor dinp = Tensor::uninitialized(g.in_shape(), dA.dtype);
    by_dtype(dA.dtype, [&](auto tag) {
        using T = decltype(tag);
        cpu::maxpool2d_backward_mask<T>(dinp.data<T>(), dA.ptr<T>(), m, g);
    });
    return dinp;
}

namespace {
void rows_cols(const TensorView& t, const char* op, std::int64_t* rows, std::int64_t* cols) {
    MINICNN_REQUIRE(t.rank() >= 1, op << ": input must have rank >= 1, got a scalar");
    *cols = t.shape.back();
    MINICNN_REQUIRE(*cols > 0,
                    op << ": last axis must be non-empty, got shape " << shape_str(t.shape));
    *rows = t.numel() / *cols;
}
}  // namespace

Tensor activation_forward(const TensorView& Z, Activation activation, Device device) {
    const char* op = "activation_forward";
    require_float(Z, op, "Z");
    std::int64_t rows, cols;
    rows_cols(Z, op, &rows, &cols);
    if (pick(device, Z.dtype, op) == Backend::cuda)
        return cuda_ops::activation_forward(Z, activation, device);
    Tensor out = Tensor::uninitialized(Z.shape, Z.dtype);
    by_dtype(Z.dtype, [&](auto tag) {
        using T = decltype(tag);
        cpu::activation_forward<T>(out.data<T>(), Z.ptr<T>(), rows, cols, activation);
    });
    return out;
}

Tensor activation_backward(const TensorView& dA, const TensorView& A, Activation activation,
                           Device device) {
    const char* op = "activation_backward";
    require_float(dA, op, "dA");
    require_float(A, op, "A");
    require_same_dtype(A, dA, op, "A", "dA");
    require_shape(dA, A.shape, op, "dA");
    std::int64_t rows, cols;
    rows_cols(A, op, &rows, &cols);
    if (pick(device, A.dtype, op) == Backend::cuda)
        return cuda_ops::activation_backward(dA, A, activation, device);
    Tensor din = Tensor::uninitialized(A.shape, A.dtype);
    by_dtype(A.dtype, [&](auto tag) {
        using T = decltype(tag);
        cpu::activation_backward<T>(din.data<T>(), dA.ptr<T>(), A.ptr<T>(), rows, cols, activation);
    });
    return din;
}

}  // namespace minicnn
