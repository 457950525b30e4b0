// host/tensor.cpp — owning host tensors (64-byte aligned storage) and views.
#include "minicnn/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>

namespace minicnn {

std::size_t dtype_size(DType dt) {
    switch (dt) {
        case DType::f32:
            return 4;
        case DType::f64:
            return 8;
        case DType::i32:
            return 4;
    }
    return 0;
}

const char* dtype_name(DType dt) {
    switch (dt) {
        case DType::f32:
            return "float32";
        case DType::f64:
            return "float64";
        case DType::i32:
            return "int32";
    }
    return "?";
}

std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << '(';
    for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    if (s.size() == 1) os << ',';
    os << ')';
    return os.str();
}

std::int64_t shape_numel(const Shape& s) {
    std::int64_t n = 1;
    for (std::int64_t d : s) n *= d;
    return n;
}

template <class T>
const T* TensorView::ptr() const {
    MINICNN_REQUIRE(dtype == dtype_of<T>(), "tensor of dtype " << dtype_name(dtype) << " read as "
                                                               << dtype_name(dtype_of<T>()));
    return static_cast<const T*>(data);
}

void Tensor::Free::operator()(std::byte* p) const noexcept {
    std::free(p);
}

static std::byte* allocate_zeroed(std::size_t bytes) {
    // aligned_alloc needs a size that is a multiple of the alignment.
    std::size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) {
        std::ostringstream os;
        os << "out of host memory: asked for " << bytes << " bytes for a tensor";
        throw Error(os.str());
    }
    std::memset(p, 0, rounded);
    return static_cast<std::byte*>(p);
}

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
    std::int64_t n = 1;
    for (std::int64_t d : shape_) {
        MINICNN_REQUIRE(d >= 0,
                        "tensor dimensions must be non-negative, got " << shape_str(shape_));
        MINICNN_REQUIRE(d == 0 || n <= std::numeric_limits<std::int64_t>::max() / 8 / d,
                        "tensor shape " << shape_str(shape_) << " is too large");
        n *= d;
    }
    data_.reset(allocate_zeroed(static_cast<std::size_t>(n) * dtype_size(dtype_)));
}

template <class T>
Tensor Tensor::from(Shape shape, const std::vector<T>& values) {
    Tensor t(std::move(shape), dtype_of<T>());
    MINICNN_REQUIRE(static_cast<std::int64_t>(values.size()) == t.numel(),
                    "Tensor::from: shape " << shape_str(t.shape()) << " holds " << t.numel()
                                           << " elements, got " << values.size() << " values");
    if (!values.empty()) std::memcpy(t.raw(), values.data(), values.size() * sizeof(T));
    return t;
}

Tensor Tensor::clone() const {
    MINICNN_REQUIRE(defined(), "clone of an undefined tensor");
    Tensor t(shape_, dtype_);
    std::memcpy(t.raw(), raw(), nbytes());
    return t;
}

template <class Dst, class Src>
static void convert(Dst* d, const Src* s, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<Dst>(s[i]);
}

template <class Dst>
static void convert_from(Dst* d, const Tensor& src) {
    switch (src.dtype()) {
        case DType::f32:
            convert(d, src.data<float>(), src.numel());
            break;
        case DType::f64:
            convert(d, src.data<double>(), src.numel());
            break;
        case DType::i32:
            convert(d, src.data<std::int32_t>(), src.numel());
            break;
    }
}

Tensor Tensor::astype(DType dt) const {
    MINICNN_REQUIRE(defined(), "astype of an undefined tensor");
    if (dt == dtype_) return clone();
    Tensor t(shape_, dt);
    switch (dt) {
        case DType::f32:
            convert_from(t.data<float>(), *this);
            break;
        case DType::f64:
            convert_from(t.data<double>(), *this);
            break;
        case DType::i32:
            convert_from(t.data<std::int32_t>(), *this);
            break;
    }
    return t;
}

Tensor Tensor::reshaped(Shape s) && {
    MINICNN_REQUIRE(shape_numel(s) == numel(),
                    "cannot reshape " << shape_str(shape_) << " to " << shape_str(s));
    Tensor t(std::move(*this));
    t.shape_ = std::move(s);
    return t;
}

template <class T>
T* Tensor::data() {
    MINICNN_REQUIRE(dtype_ == dtype_of<T>(), "tensor of dtype " << dtype_name(dtype_) << " read as "
                                                                << dtype_name(dtype_of<T>()));
    return reinterpret_cast<T*>(data_.get());
}

template <class T>
const T* Tensor::data() const {
    return const_cast<Tensor*>(this)->data<T>();
}

template <class T>
T& Tensor::at(std::int64_t n, std::int64_t i, std::int64_t j, std::int64_t c) {
    MINICNN_REQUIRE(rank() == 4,
                    "at(n, i, j, c) needs a rank-4 tensor, got shape " << shape_str(shape_));
    MINICNN_REQUIRE(n >= 0 && n < shape_[0] && i >= 0 && i < shape_[1] && j >= 0 && j < shape_[2] &&
                        c >= 0 && c < shape_[3],
                    "index (" << n << ", " << i << ", " << j << ", " << c
                              << ") out of range for shape " << shape_str(shape_));
    return data<T>()[((n * shape_[1] + i) * shape_[2] + j) * shape_[3] + c];
}

template <class T>
const T& Tensor::at(std::int64_t n, std::int64_t i, std::int64_t j, std::int64_t c) const {
    return const_cast<Tensor*>(this)->at<T>(n, i, j, c);
}

void* Tensor::release() {
    shape_.clear();
    return data_.release();
}

void Tensor::free_storage(void* p) {
    std::free(p);
}

#define MINICNN_TENSOR_INSTANTIATE(T)                                                  \
    template const T* TensorView::ptr<T>() const;                                      \
    template Tensor Tensor::from<T>(Shape, const std::vector<T>&);                     \
    template T* Tensor::data<T>();                                                     \
    template const T* Tensor::data<T>() const;                                         \
    template T& Tensor::at<T>(std::int64_t, std::int64_t, std::int64_t, std::int64_t); \
    template const T& Tensor::at<T>(std::int64_t, std::int64_t, std::int64_t, std::int64_t) const;
MINICNN_TENSOR_INSTANTIATE(float)
MINICNN_TENSOR_INSTANTIATE(double)
MINICNN_TENSOR_INSTANTIATE(std::int32_t)
#undef MINICNN_TENSOR_INSTANTIATE

}  // namespace minicnn
