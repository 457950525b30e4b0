// python/minicnn_py.cpp — the extension module `minicnn._minicnn`, which the package `minicnn`
// (python/minicnn/__init__.py) re-exports: the exercise's four functions
// (conv_forward, pool_forward, conv_backward, pool_backward) with its signatures and defaults, on
// NumPy arrays, backed by the functional API of minicnn/ops.h.
//
// Arrays in: every array argument is wrapped as a minicnn::TensorView over NumPy's own buffer when
// it already has the computation dtype and is C-contiguous and aligned; otherwise one converted
// copy is made (np.require) and kept alive for the duration of the call. The computation dtype
// follows NumPy's promotion of float32/float64: float64 when any array argument is float64, else
// float32. Integer, boolean, float16 and complex arrays are a ValueError that says how to convert.
//
// Arrays out: the result Tensor's storage is handed to NumPy (Tensor::release()) with a capsule
// that frees it (Tensor::free_storage), so an output is never copied.
//
// Errors: minicnn::ArgumentError -> minicnn.ArgumentError (a ValueError); minicnn::DeviceError ->
// minicnn.DeviceError (a RuntimeError); any other minicnn::Error -> RuntimeError. The message is
// minicnn's. The GIL is released while minicnn computes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/device.h"
#include "minicnn/error.h"
#include "minicnn/geometry.h"
#include "minicnn/ops.h"
#include "minicnn/tensor.h"
#include "minicnn/version.h"
#include "py_util.h"

namespace py = pybind11;
using namespace minicnn;
using namespace minicnn::py_util;

namespace {

// ---- the exercise's functions -------------------------------------------------------------------

py::object py_conv_forward(py::object A_prev, py::object W, py::object b, py::object activation,
                           py::object padding, py::object stride, py::object device) {
    const char* op = "conv_forward";
    // A name (or None) picks a built-in activation; a callable is applied to Z = conv + b.
    Activation act = Activation::linear;
    py::object fn;
    if (py::isinstance<py::str>(activation)) {
        const std::string name = activation.cast<std::string>();
        act = prefixed(op, [&] { return parse_activation(name); });
    } else if (!activation.is_none()) {
        MINICNN_REQUIRE(PyCallable_Check(activation.ptr()),
                        op << ": activation must be \"relu\", \"tanh\", \"sigmoid\", \"softmax\", "
                              "\"linear\", None or a callable, got "
                           << py_repr(activation));
        fn = py::reinterpret_borrow<py::object>(activation);
    }
    const Padding pad = parse_padding(padding, op);
    const Stride st = parse_stride(stride, op);
    const Device dev = parse_device(device, op);
    py::array a = as_array(A_prev, op, "A_prev"), w = as_array(W, op, "W"),
              bb = as_array(b, op, "b");
    const DType dt = common_dtype({{&a, "A_prev"}, {&w, "W"}, {&bb, "b"}}, op);
    Input ia = wrap(a, dt), iw = wrap(w, dt), ib = wrap(bb, dt);
    Tensor out;
    {
        py::gil_scoped_release nogil;
        out = conv_forward(ia.view, iw.view, ib.view, act, pad, st, dev);
    }
    py::array Z = to_numpy(std::move(out));
    if (fn) return fn(Z);
    return std::move(Z);
}

py::array py_pool_forward(py::object A_prev, py::object kernel_shape, py::object stride,
                          py::object mode, py::object device) {
    const char* op = "pool_forward";
    const Window win = parse_window(kernel_shape, op);
    const Stride st = parse_stride(stride, op);
    const PoolMode pm = parse_mode(mode, op);
    const Device dev = parse_device(device, op);
    py::array a = as_array(A_prev, op, "A_prev");
    Input ia = wrap(a, float_dtype(a, op, "A_prev"));
    Tensor out;
    {
        py::gil_scoped_release nogil;
        out = pool_forward(ia.view, win, st, pm, dev);
    }
    return to_numpy(std::move(out));
}

py::tuple py_conv_backward(py::object dZ, py::object A_prev, py::object W, py::object b,
                           py::object padding, py::object stride, py::object device) {
    const char* op = "conv_backward";
    const Padding pad = parse_padding(padding, op);
    const Stride st = parse_stride(stride, op);
    const Device dev = parse_device(device, op);
    py::array dz = as_array(dZ, op, "dZ"), a = as_array(A_prev, op, "A_prev"),
              w = as_array(W, op, "W"), bb = as_array(b, op, "b");
    const DType dt = common_dtype({{&dz, "dZ"}, {&a, "A_prev"}, {&w, "W"}, {&bb, "b"}}, op);
    Input idz = wrap(dz, dt), ia = wrap(a, dt), iw = wrap(w, dt), ib = wrap(bb, dt);
    ConvGrads g;
    {
        py::gil_scoped_release nogil;
        g = conv_backward(idz.view, ia.view, iw.view, ib.view, pad, st, dev);
    }
    return py::make_tuple(to_numpy(std::move(g.dA_prev)), to_numpy(std::move(g.dW)),
                          to_numpy(std::move(g.db)));
}

py::array py_pool_backward(py::object dA, py::object A_prev, py::object kernel_shape,
                           py::object stride, py::object mode, py::object ties, py::object device) {
    const char* op = "pool_backward";
    const Window win = parse_window(kernel_shape, op);
    const Stride st = parse_stride(stride, op);
    const PoolMode pm = parse_mode(mode, op);
    const MaxTie tie = parse_ties(ties, op);
    const Device dev = parse_device(device, op);
    py::array da = as_array(dA, op, "dA"), a = as_array(A_prev, op, "A_prev");
    const DType dt = common_dtype({{&da, "dA"}, {&a, "A_prev"}}, op);
    Input ida = wrap(da, dt), ia = wrap(a, dt);
    Tensor out;
    {
        py::gil_scoped_release nogil;
        out = pool_backward(ida.view, ia.view, win, st, pm, tie, dev);
    }
    return to_numpy(std::move(out));
}

}  // namespace

// python/idx_py.cpp: load_idx, read_idx_images, read_idx_labels.
void bind_idx(py::module_& m);
// python/model_py.cpp: Sequential, History, lenet5, load_model.
void bind_model(py::module_& m);

PYBIND11_MODULE(_minicnn, m) {
    m.doc() =
        R"doc(minicnn: the convolution exercise's functions on NumPy arrays, backed by C++/CUDA.

Layouts: activations (m, h, w, c); conv weights W (kh, kw, c_prev, c_new); bias b (1, 1, 1, c_new).

dtypes: float64 arrays are computed in float64 on the CPU and give float64 results; float32 stays
float32. With mixed float32/float64 arguments the computation dtype is float64 (NumPy's promotion).
Integer, boolean, float16 and complex arrays raise ValueError: convert them first.

device="auto" (the GPU when minicnn was built with CUDA and one is visible, else the CPU), "cpu",
"cuda" or "cuda:N". Asking for CUDA where there is none raises RuntimeError with the reason.

Errors: bad shapes and arguments raise minicnn.ArgumentError (a ValueError); device failures raise
minicnn.DeviceError (a RuntimeError).)doc";

    // Exceptions: registered as subclasses of ValueError / RuntimeError, so callers can catch
    // either. The type objects are kept as raw, never-released references: a static py::object
    // would be destroyed after the interpreter has finalised.
    static PyObject* argument_error =
        py::exception<ArgumentError>(m, "ArgumentError", PyExc_ValueError).release().ptr();
    static PyObject* device_error =
        py::exception<DeviceError>(m, "DeviceError", PyExc_RuntimeError).release().ptr();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ArgumentError& e) {
            PyErr_SetString(argument_error, e.what());
        } catch (const DeviceError& e) {
            PyErr_SetString(device_error, e.what());
        } catch (const Error& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
    });

    m.def("conv_forward", &py_conv_forward, py::arg("A_prev"), py::arg("W"), py::arg("b"),
          py::arg("activation"), py::arg("padding") = "same",
          py::arg("stride") = py::make_tuple(1, 1), py::kw_only(), py::arg("device") = "auto",
          R"doc(Forward convolution: A = activation(conv(A_prev, W) + b).

A_prev (m, h_prev, w_prev, c_prev), W (kh, kw, c_prev, c_new), b (1, 1, 1, c_new).
activation: "relu", "tanh", "sigmoid", "softmax" (over channels), "linear" or None, or any callable,
which is called on Z (computed with the linear activation) and whose result is returned.
padding: "same" (ph = ceil(((h_prev - 1) * sh + kh - h_prev) / 2)), "valid", or (ph, pw).
stride: (sh, sw). Returns (m, h_new, w_new, c_new).)doc");

    m.def("pool_forward", &py_pool_forward, py::arg("A_prev"), py::arg("kernel_shape"),
          py::arg("stride") = py::make_tuple(1, 1), py::arg("mode") = "max", py::kw_only(),
          py::arg("device") = "auto",
          R"doc(Forward pooling, no padding: A_prev (m, h_prev, w_prev, c) -> (m, h_new, w_new, c).

kernel_shape (kh, kw); stride (sh, sw); mode "max" or "avg".)doc");

    m.def("conv_backward", &py_conv_backward, py::arg("dZ"), py::arg("A_prev"), py::arg("W"),
          py::arg("b"), py::arg("padding") = "same", py::arg("stride") = py::make_tuple(1, 1),
          py::kw_only(), py::arg("device") = "auto",
          R"doc(Backward convolution: returns (dA_prev, dW, db).

dZ (m, h_new, w_new, c_new) is the gradient with respect to the pre-activation Z; A_prev, W, b,
padding and stride are those of the forward call. db has shape (1, 1, 1, c_new).)doc");

    m.def("pool_backward", &py_pool_backward, py::arg("dA"), py::arg("A_prev"),
          py::arg("kernel_shape"), py::arg("stride") = py::make_tuple(1, 1),
          py::arg("mode") = "max", py::kw_only(), py::arg("ties") = "all",
          py::arg("device") = "auto",
          R"doc(Backward pooling: dA (m, h_new, w_new, c) -> dA_prev (m, h_prev, w_prev, c).

mode "avg": each cell of a window gets dA / (kh * kw). mode "max": ties="all" (the default, the
exercise's rule) gives the window's gradient to every cell equal to the window maximum;
ties="first" gives it to the first maximum only (row-major window order), as PyTorch and cuDNN do.
Overlapping windows add up.)doc");

    m.def("built_with_cuda", &built_with_cuda,
          "True when this build of minicnn has the CUDA backend.");
    m.def("cuda_device_count", &cuda_device_count, "Number of visible CUDA devices.");
    m.def("cuda_unavailable_reason", &cuda_unavailable_reason,
          "Why CUDA cannot be used here, or \"\" when it can.");
    m.def(
        "_input_copies", []() { return g_input_copies.load(); },
        "Number of array arguments the module had to copy or convert so far (for tests).");
    bind_idx(m);
    bind_model(m);
    // MINICNN_VERSION of cmake/sources.cmake, which pyproject.toml's version also reads.
    m.attr("__version__") = MINICNN_VERSION_STRING;
}
