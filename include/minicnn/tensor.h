// minicnn/tensor.h — host tensors: an owning, move-only Tensor and a non-owning TensorView.
//
// Activations are NHWC (m, h, w, c), convolution weights HWIO (kh, kw, c_prev, c_new), all row-major
// and contiguous. A Tensor owns 64-byte aligned host storage of float32, float64 or int32 (masks).
// Element access through data<T>() checks that T matches the dtype, so a float64 tensor is never
// read as float32 by mistake. Copies are explicit (clone()), as for device buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/error.h"

namespace minicnn {

enum class DType { f32, f64, i32 };

std::size_t dtype_size(DType dt);
const char* dtype_name(DType dt);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::f32; }
template <>
constexpr DType dtype_of<double>() { return DType::f64; }
template <>
constexpr DType dtype_of<std::int32_t>() { return DType::i32; }

using Shape = std::vector<std::int64_t>;

std::string shape_str(const Shape& s);  // "(2, 28, 28, 1)"
std::int64_t shape_numel(const Shape& s);

// A read-only view of contiguous host memory with a shape and dtype; does not own anything.
struct TensorView {
    const void* data = nullptr;
    Shape shape;
    DType dtype = DType::f32;

    TensorView() = default;
    TensorView(const void* d, Shape s, DType t) : data(d), shape(std::move(s)), dtype(t) {}

    int rank() const { return static_cast<int>(shape.size()); }
    std::int64_t dim(int i) const { return shape.at(static_cast<std::size_t>(i)); }
    std::int64_t numel() const { return shape_numel(shape); }
    template <class T>
    const T* ptr() const;  // throws ArgumentError if T is not the dtype
};

class Tensor {
public:
    Tensor() = default;
    // Zero-filled tensor of the given shape. Negative dimensions are an error.
    explicit Tensor(Shape shape, DType dtype = DType::f32);
    // The same without the zero fill, for a result the caller overwrites entirely.
    static Tensor uninitialized(Shape shape, DType dtype = DType::f32);

    template <class T>
    static Tensor from(Shape shape, const std::vector<T>& values);
    template <class T>
    static Tensor from(Shape shape, std::initializer_list<T> values) {
        return from<T>(std::move(shape), std::vector<T>(values));
    }

    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;
    Tensor(const Tensor&) = delete;  // copies are explicit: clone()
    Tensor& operator=(const Tensor&) = delete;

    Tensor clone() const;
    Tensor astype(DType dt) const;  // converting copy
    // Same storage, new shape with the same number of elements.
    Tensor reshaped(Shape s) &&;

    bool defined() const { return static_cast<bool>(data_); }
    const Shape& shape() const { return shape_; }
    int rank() const { return static_cast<int>(shape_.size()); }
    std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i)); }
    std::int64_t numel() const { return shape_numel(shape_); }
    DType dtype() const { return dtype_; }
    std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

    void* raw() { return data_.get(); }
    const void* raw() const { return data_.get(); }
    template <class T>
    T* data();
    template <class T>
    const T* data() const;

    // Element (n, i, j, c) of a rank-4 tensor; bounds are checked.
    template <class T>
    T& at(std::int64_t n, std::int64_t i, std::int64_t j, std::int64_t c);
    template <class T>
    const T& at(std::int64_t n, std::int64_t i, std::int64_t j, std::int64_t c) const;

    TensorView view() const { return TensorView(data_.get(), shape_, dtype_); }
    operator TensorView() const { return view(); }  // NOLINT: implicit by design

    // Hands the storage to the caller (e.g. a NumPy capsule); free it with Tensor::free_storage.
    void* release();
    static void free_storage(void* p);

private:
    struct Free {
        void operator()(std::byte* p) const noexcept;
    };
    std::unique_ptr<std::byte[], Free> data_;
    Shape shape_;
    DType dtype_ = DType::f32;
};

}  // namespace minicnn
