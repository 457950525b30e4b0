// host/tensor.cpp — owning host tensors (64-byte aligned storage, large blocks reused) and views.
#include "minicnn/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>
#include <vector>

#include "minicnn/error.h"

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

// ---- storage: 64-byte aligned blocks, the large ones kept for reuse -----------------------------
//
// A block is a 64-byte header holding its capacity, then the data. Freed blocks of at least
// kCacheMinBytes go to a small process-wide cache (at most kCacheBlocks blocks, kCacheMaxBytes in
// all; the oldest is freed first when it is full) and are handed out again for the same capacity.
// Without it, every large result (a functional-API output handed to NumPy, say) came from glibc's
// mmap and went back by munmap: each call paid a page fault per 4 KiB page (1,176 for pool1's
// 4.8 MB gradient) and a memset, several times the work of the operation itself.
namespace {

constexpr std::size_t kHeader = 64;
constexpr std::size_t kCacheMinBytes = std::size_t(64) << 10;
constexpr std::size_t kCacheMaxBytes = std::size_t(256) << 20;
constexpr std::size_t kCacheBlocks = 16;

class BlockCache {
public:
    // A cached block of exactly `capacity` bytes (its data pointer), or nullptr.
    std::byte* take(std::size_t capacity) {
        if (capacity < kCacheMinBytes) return nullptr;
        std::lock_guard<std::mutex> lk(mu_);
        for (std::size_t i = blocks_.size(); i-- > 0;) {
            if (capacity_of(blocks_[i]) == capacity) {
                std::byte* p = blocks_[i];
                blocks_.erase(blocks_.begin() + std::ptrdiff_t(i));
                bytes_ -= capacity;
                return p;
            }
        }
        return nullptr;
    }
    // Keeps the block, or frees it (too small, too large for the cache).
    void give(std::byte* p) noexcept {
        const std::size_t capacity = capacity_of(p);
        if (capacity >= kCacheMinBytes && capacity <= kCacheMaxBytes) {
            std::lock_guard<std::mutex> lk(mu_);
            while (!blocks_.empty() &&
                   (blocks_.size() >= kCacheBlocks || bytes_ + capacity > kCacheMaxBytes)) {
                bytes_ -= capacity_of(blocks_.front());
                std::free(blocks_.front() - kHeader);
                blocks_.erase(blocks_.begin());
            }
            if (blocks_.capacity() < kCacheBlocks) blocks_.reserve(kCacheBlocks);  // no throw below
            blocks_.push_back(p);
            bytes_ += capacity;
            return;
        }
        std::free(p - kHeader);
    }
    static std::size_t capacity_of(const std::byte* p) {
        std::size_t c;
        std::memcpy(&c, p - kHeader, sizeof c);
        return c;
    }

private:
    std::mutex mu_;
    std::vector<std::byte*> blocks_;  // oldest first
    std::size_t bytes_ = 0;
};

// Never destroyed: NumPy may free a result during interpreter shutdown, after static destructors.
BlockCache& block_cache() {
    static BlockCache* cache = new BlockCache;
    return *cache;
}

std::byte* allocate(std::size_t bytes, bool zero) {
    std::size_t capacity = (bytes + 63) / 64 * 64;
    if (capacity == 0) capacity = 64;
    std::byte* p = block_cache().take(capacity);
    if (!p) {
        void* raw = capacity > std::numeric_limits<std::size_t>::max() - kHeader
                        ? nullptr
                        : std::aligned_alloc(64, capacity + kHeader);
        if (!raw) {
            std::ostringstream os;
            os << "out of host memory: asked for " << bytes << " bytes for a tensor";
            throw Error(os.str());
        }
        std::memcpy(raw, &capacity, sizeof capacity);
        p = static_cast<std::byte*>(raw) + kHeader;
    }
    if (zero) std::memset(p, 0, capacity);
    return p;
}

std::int64_t checked_numel(const Shape& shape) {
    std::int64_t n = 1;
    for (std::int64_t d : shape) {
        MINICNN_REQUIRE(d >= 0, "tensor dimensions must be non-negative, got " << shape_str(shape));
        MINICNN_REQUIRE(d == 0 || n <= std::numeric_limits<std::int64_t>::max() / 8 / d,
                        "tensor shape " << shape_str(shape) << " is too large");
        n *= d;
    }
    return n;
}

}  // namespace

void Tensor::Free::operator()(std::byte* p) const noexcept {
    if (p) block_cache().give(p);
}

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
    const std::int64_t n = checked_numel(shape_);
    data_.reset(allocate(static_cast<std::size_t>(n) * dtype_size(dtype_), true));
}

Tensor Tensor::uninitialized(Shape shape, DType dtype) {
    Tensor t;
    const std::int64_t n = checked_numel(shape);
    t.shape_ = std::move(shape);
    t.dtype_ = dtype;
    t.data_.reset(allocate(static_cast<std::size_t>(n) * dtype_size(dtype), false));
    return t;
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
    Free()(static_cast<std::byte*>(p));
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
