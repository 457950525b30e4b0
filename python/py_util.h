// python/py_util.h — what the module's binding files share: NumPy arrays in (as TensorViews over
// NumPy's buffer, converted only when they must be) and out (Tensor storage handed over through a
// capsule), and the parsers of the exercise's Python arguments (pairs, padding, device, mode),
// whose errors name the calling function.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/device.h"
#include "minicnn/error.h"
#include "minicnn/geometry.h"
#include "minicnn/ops.h"
#include "minicnn/tensor.h"

namespace minicnn::py_util {

namespace py = pybind11;

// Arguments that had to be copied or converted on the way in (for the no-copy tests).
inline std::atomic<long> g_input_copies{0};

inline py::dtype numpy_dtype(DType dt) {
    switch (dt) {
        case DType::f32:
            return py::dtype::of<float>();
        case DType::f64:
            return py::dtype::of<double>();
        case DType::i32:
            return py::dtype::of<std::int32_t>();
    }
    throw Error("numpy_dtype: unknown minicnn dtype");
}

inline std::string py_repr(const py::handle& h) {
    return py::repr(h).cast<std::string>();
}
inline std::string py_str(const py::handle& h) {
    return py::str(h).cast<std::string>();
}

// Any array-like as an ndarray (no copy for an ndarray), or ArgumentError naming the argument.
inline py::array as_array(const py::handle& obj, const char* op, const char* name) {
    py::array a = py::array::ensure(obj);
    MINICNN_REQUIRE(a, op << ": " << name << " must be a NumPy array (or array-like), got "
                          << py_str(py::type::handle_of(obj).attr("__name__")));
    return a;
}

// The minicnn dtype of a float array; anything else is an ArgumentError that says how to convert.
inline DType float_dtype(const py::array& a, const char* op, const char* name) {
    const py::dtype dt = a.dtype();
    if (dt.kind() == 'f' && dt.itemsize() == 4) return DType::f32;
    if (dt.kind() == 'f' && dt.itemsize() == 8) return DType::f64;
    MINICNN_REQUIRE(false, op << ": " << name << " must be a float32 or float64 array, got dtype "
                              << py_str(dt)
                              << " (convert it first, e.g. np.asarray(x, dtype=np.float32))");
    return DType::f32;
}

// The computation dtype of several arrays: float64 if any is float64, else float32.
inline DType common_dtype(std::initializer_list<std::pair<const py::array*, const char*>> args,
                          const char* op) {
    DType dt = DType::f32;
    for (const auto& [a, name] : args)
        if (float_dtype(*a, op, name) == DType::f64) dt = DType::f64;
    return dt;
}

// `a` itself when it already has dtype `dt` and is C-contiguous and aligned; else one converted
// copy (np.require), counted in g_input_copies.
inline py::array contiguous(const py::array& a, const py::dtype& dt) {
    if (a.dtype().equal(dt) && (a.flags() & py::array::c_style) &&
        (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        return a;
    // Never released: a static py::object would be destroyed after the interpreter has finalised.
    static PyObject* require =
        py::object(py::module_::import("numpy").attr("require")).release().ptr();
    ++g_input_copies;
    return py::reinterpret_borrow<py::object>(require)(a, dt, "CA");
}

// An array argument as minicnn sees it: the array that owns the buffer, and a view over it.
struct Input {
    py::array array;
    TensorView view;
};

inline Input wrap(const py::array& a, DType dt) {
    py::array owner = contiguous(a, numpy_dtype(dt));
    Shape shape(owner.shape(), owner.shape() + owner.ndim());
    return {owner, TensorView(owner.data(), std::move(shape), dt)};
}

// A result Tensor as an ndarray that owns its storage through a capsule: no copy.
inline py::array to_numpy(Tensor&& t) {
    const Shape shape = t.shape();
    const DType dt = t.dtype();
    void* p = t.release();
    py::capsule owner;
    try {
        owner = py::capsule(p, [](void* q) { Tensor::free_storage(q); });
    } catch (...) {
        Tensor::free_storage(p);
        throw;
    }
    std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    return py::array(numpy_dtype(dt), dims, p, owner);
}

// Runs a parser of the library (Padding::parse, parse_activation, ...) and names `op` in its error.
template <class F>
inline auto prefixed(const char* op, F&& parse) {
    try {
        return parse();
    } catch (const ArgumentError& e) {
        throw ArgumentError(std::string(op) + ": " + e.what());
    }
}

// (a, b) from a Python pair of integers (tuple, list, NumPy integers); `what` names it in errors.
inline std::pair<int, int> int_pair(const py::handle& obj, const char* op, const char* what) {
    const auto fail = [&]() {
        MINICNN_REQUIRE(false,
                        op << ": " << what << " must be a pair of integers, got " << py_repr(obj));
    };
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj)) fail();
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != 2) fail();
    int v[2];
    for (int i = 0; i < 2; ++i) {
        py::object item = seq[i];
        // operator.index semantics: ints and NumPy integers, not floats or bools.
        if (py::isinstance<py::bool_>(item) || !PyIndex_Check(item.ptr())) fail();
        const long long x =
            PyLong_AsLongLong(py::reinterpret_steal<py::object>(PyNumber_Index(item.ptr())).ptr());
        if (x == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            fail();
        }
        MINICNN_REQUIRE(x >= -(1LL << 30) && x <= (1LL << 30),
                        op << ": " << what << " value " << x << " is out of range");
        v[i] = static_cast<int>(x);
    }
    return {v[0], v[1]};
}

inline Stride parse_stride(const py::handle& obj, const char* op) {
    auto [sh, sw] = int_pair(obj, op, "stride (sh, sw)");
    return Stride{sh, sw};
}

inline Window parse_window(const py::handle& obj, const char* op) {
    auto [kh, kw] = int_pair(obj, op, "kernel_shape (kh, kw)");
    return Window{kh, kw};
}

// "same", "valid" or (ph, pw).
inline Padding parse_padding(const py::handle& obj, const char* op) {
    if (py::isinstance<py::str>(obj))
        return prefixed(op, [&] { return Padding::parse(obj.cast<std::string>()); });
    MINICNN_REQUIRE(
        py::isinstance<py::sequence>(obj),
        op << ": padding must be \"same\", \"valid\" or a pair (ph, pw), got " << py_repr(obj));
    auto [ph, pw] = int_pair(obj, op, "padding (ph, pw)");
    return prefixed(op, [&] { return Padding::explicit_pad(ph, pw); });
}

inline std::string str_arg(const py::handle& obj, const char* op, const char* what) {
    MINICNN_REQUIRE(py::isinstance<py::str>(obj),
                    op << ": " << what << " must be a string, got " << py_repr(obj));
    return obj.cast<std::string>();
}

inline Device parse_device(const py::handle& obj, const char* op) {
    const std::string s = str_arg(obj, op, "device (\"auto\", \"cpu\", \"cuda\" or \"cuda:N\")");
    return prefixed(op, [&] { return Device::parse(s); });
}

inline PoolMode parse_mode(const py::handle& obj, const char* op) {
    const std::string s = str_arg(obj, op, "mode (\"max\" or \"avg\")");
    return prefixed(op, [&] { return parse_pool_mode(s); });
}

inline MaxTie parse_ties(const py::handle& obj, const char* op) {
    const std::string s = str_arg(obj, op, "ties (\"all\" or \"first\")");
    if (s == "all") return MaxTie::all_ties;
    if (s == "first") return MaxTie::first_max;
    MINICNN_REQUIRE(false, op << ": ties must be \"all\" (the exercise's rule: every cell equal to "
                                 "the window maximum gets the gradient) or \"first\" (the first "
                                 "maximum only, as PyTorch), got \""
                              << s << "\"");
    return MaxTie::all_ties;
}

}  // namespace minicnn::py_util
