// tests/test_util.h — shared helpers for the GoogleTest suite (header-only, generic):
//   - random data with a fixed seed (the same numbers on every machine and every run),
//   - all_close / expect_close: |got - ref| <= atol + rtol * |ref| elementwise, reporting the worst
//     element, its flat index and (given a shape) its multi-index,
//   - all_equal for masks and bit-exact comparisons, to_vector for a host Tensor's elements,
//   - central finite differences and the relative error used by the gradient checks.
//
// Usage:
//   auto x = minicnn::test::random_vector<float>(n, /*seed=*/1);
//   EXPECT_TRUE(minicnn::test::all_close(got, ref, 1e-5, 1e-5, shape));  // failure names the line
//   minicnn::test::expect_close(got, ref, atol, rtol);                    // shorter, same check
// `got` and `ref` may have different element types (float results against a double reference).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/tensor.h"

namespace minicnn::test {

// ---- random data --------------------------------------------------------------------------------

// n values uniform in [lo, hi), from a fixed-seed generator. The mapping from the raw 32-bit stream
// is written out (not std::uniform_real_distribution) so the values are the same with every
// library.
template <class T>
std::vector<T> random_vector(std::size_t n, std::uint32_t seed, double lo = -1.0, double hi = 1.0) {
    std::mt19937 gen(seed);
    std::vector<T> v(n);
    for (auto& x : v) {
        const double u = static_cast<double>(gen()) / 4294967296.0;  // [0, 1)
        x = static_cast<T>(lo + (hi - lo) * u);
    }
    return v;
}

// n distinct values spaced at least `gap` apart in [lo, lo + n*gap*...), in a fixed random order:
// inputs without ties, for max-pooling gradient checks (a perturbation of eps < gap/2 never changes
// which cell is a window's maximum).
template <class T>
std::vector<T> distinct_vector(std::size_t n, std::uint32_t seed, double lo = -1.0,
                               double gap = 1e-2) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(lo + gap * static_cast<double>(i));
    std::mt19937 gen(seed);
    for (std::size_t i = n; i > 1; --i) {  // Fisher-Yates with the raw stream (library independent)
        const std::size_t j = static_cast<std::size_t>(gen() % i);
        std::swap(v[i - 1], v[j]);
    }
    return v;
}

// Converting copy (e.g. a double reference input as float).
template <class To, class From>
std::vector<To> cast_vector(const std::vector<From>& v) {
    return std::vector<To>(v.begin(), v.end());
}

// A host Tensor's elements as a vector (T must be its dtype; Tensor::data<T>() checks that).
template <class T>
std::vector<T> to_vector(const Tensor& t) {
    const T* p = t.data<T>();
    return std::vector<T>(p, p + t.numel());
}

// ---- how a GPU-vs-CPU tolerance is derived ------------------------------------------------------
//
// Every tolerance of a GPU-vs-CPU comparison cites one of these bounds beside it. u = 2^-24 ~ 6.0e-8
// is float32's unit roundoff. The GPU side is float32, compiled by nvcc with a * b + c contracted
// into fused multiply-adds wherever it chooses (the emulator runs the kernels both ways:
// tests/emu/run.sh and EMU_FMA=1 tests/emu/run.sh). Each bound holds with and without contraction
// and for any summation order or tree: a contracted product is rounded once instead of twice, which
// only removes error terms. A float64 reference on the same float32 inputs is exact to ~1e-16
// relative, so against it the comparison measures the GPU's rounding alone.
//
// [E] Elementwise, a few roundings per element (a bias add, relu, tanhf / expf / a division within
//     a few ulp, act' = 1 - y*y or y*(1 - y)): |err| <= k u |ref| + u * (the cancelled terms), k <= ~10.
//     rtol = 1e-5 (~170 u) covers the relative part; atol = 1e-6 (~17 u) the absolute part, a
//     cancellation between terms of magnitude <= 1 (1 - y*y at |y| ~ 1: the product's rounding is
//     <= u y^2 <= u).
// [R] A reduction of length L, s = sum_{i<L} a_i b_i (a dot product, a convolution's sum, a bias
//     gradient's sum with b_i = 1), accumulated in float32 against a float64 reference. To first
//     order the error is sum_k d_k s_k + sum_i e_i a_i b_i, |d_k|, |e_i| <= u, s_k the partial sums
//     (e_i = 0 where the product is contracted). The worst case, gamma_L * sum|a_i b_i| ~ L^2 u for
//     inputs in [-1, 1) (Higham, Accuracy and Stability of Numerical Algorithms, (3.5)), needs every
//     rounding error to have the same sign; with rounding errors independent and of mean zero
//     (Higham & Mary 2019, "A new approach to probabilistic rounding error analysis") Hoeffding's
//     inequality gives
//         P(|err| > t) <= 2 exp(-t^2 / (2 u^2 S)),   S = sum_k s_k^2 + sum_i (a_i b_i)^2.
//     The tests' inputs are independent and uniform in [-1, 1) (one factor may be in [0, 1)), so the
//     products have mean 0 and mean square sigma^2 <= 1/3, the partial sums are random walks
//     (E s_k^2 = k sigma^2) and S ~ sigma^2 L^2 / 2 <= L^2 / 6; a tree shortens the walks. The
//     tests' atol = 1e-6 * L (~17 u L) then makes the exponent (1e-6 L)^2 / (2 u^2 L^2 / 6) ~ 845
//     for every L: no false failure even with S ten times its mean (e^-84 per element). The same
//     rtol = 1e-5 covers what [E] adds after the sum (bias, activation). An indexing error moves an
//     element by ~sigma sqrt(L), far beyond 1e-6 L for the tests' L (<= 2e5).
// [R32] The same reduction on the GPU against the CPU engine in float32 (tests/engine_test_util.h's
//     close): both sides round, S doubles; atol = c * L with c = 1e-5 gives the exponent
//     (c L)^2 / (2 u^2 * 2 L^2 / 6) ~ 4e4, and c = 1e-6 would still give ~420.
// Exact comparisons say beside them why they stay exact under contraction: max / compare / copy /
// sum / divide only (no product to contract), or both sides are the same instruction sequence
// from the same source expression, compiled once.

// ---- comparisons --------------------------------------------------------------------------------

// "(n, i, j, c)" for a flat index into a row-major shape; "[index]" when no shape is given.
inline std::string index_str(std::size_t flat, const std::vector<std::int64_t>& shape) {
    std::ostringstream os;
    if (shape.empty()) {
        os << "[" << flat << "]";
        return os.str();
    }
    std::vector<std::int64_t> idx(shape.size());
    std::uint64_t rest = flat;
    for (std::size_t d = shape.size(); d-- > 0;) {
        const auto extent = static_cast<std::uint64_t>(std::max<std::int64_t>(shape[d], 1));
        idx[d] = static_cast<std::int64_t>(rest % extent);
        rest /= extent;
    }
    os << "(";
    for (std::size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
    os << ") [flat " << flat << "]";
    return os.str();
}

// Elementwise |got - ref| <= atol + rtol * |ref| over n elements. A NaN or infinity where the other
// side has a finite value (or a different non-finite one) fails. On failure the message gives the
// number of bad elements and the worst one (largest excess over its tolerance) with its index.
template <class G, class R>
::testing::AssertionResult all_close(const G* got, const R* ref, std::size_t n, double atol,
                                     double rtol, const std::vector<std::int64_t>& shape = {}) {
    std::size_t bad = 0, worst = 0;
    double worst_excess = -std::numeric_limits<double>::infinity();
    double max_abs_err = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
        double excess;
        if (std::isfinite(g) && std::isfinite(r)) {
            const double err = std::fabs(g - r);
            max_abs_err = std::max(max_abs_err, err);
            excess = err - (atol + rtol * std::fabs(r));
        } else {
            const bool same = (std::isnan(g) && std::isnan(r)) || g == r;
            excess = same ? -1.0 : std::numeric_limits<double>::infinity();
        }
        if (excess > 0) ++bad;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    const double g = static_cast<double>(got[worst]), r = static_cast<double>(ref[worst]);
    return ::testing::AssertionFailure()
           << bad << " of " << n << " elements differ beyond |got - ref| <= " << atol << " + "
           << rtol << " * |ref|; worst at " << index_str(worst, shape) << ": got "
           << ::testing::PrintToString(g) << ", expected " << ::testing::PrintToString(r)
           << " (|diff| = " << std::fabs(g - r) << "); max |diff| over finite elements "
           << max_abs_err;
}

template <class G, class R>
::testing::AssertionResult all_close(const std::vector<G>& got, const std::vector<R>& ref,
                                     double atol, double rtol,
                                     const std::vector<std::int64_t>& shape = {}) {
    if (got.size() != ref.size()) {
        return ::testing::AssertionFailure()
               << "size mismatch: got " << got.size() << " elements, expected " << ref.size();
    }
    return all_close(got.data(), ref.data(), got.size(), atol, rtol, shape);
}

// The same check as a non-fatal expectation. (EXPECT_TRUE(all_close(...)) reports the caller's
// line.)
template <class G, class R>
void expect_close(const std::vector<G>& got, const std::vector<R>& ref, double atol, double rtol,
                  const std::vector<std::int64_t>& shape = {}) {
    EXPECT_TRUE(all_close(got, ref, atol, rtol, shape));
}
template <class G, class R>
void expect_close(const G* got, const R* ref, std::size_t n, double atol, double rtol,
                  const std::vector<std::int64_t>& shape = {}) {
    EXPECT_TRUE(all_close(got, ref, n, atol, rtol, shape));
}

// Exact equality (masks, bit-identical results). Floating-point values are compared bitwise, so
// -0.0 != 0.0 and a NaN equals the same NaN: "bit-identical" means exactly that.
template <class T>
::testing::AssertionResult all_equal(const T* got, const T* ref, std::size_t n,
                                     const std::vector<std::int64_t>& shape = {}) {
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (std::memcmp(&got[i], &ref[i], sizeof(T)) != 0) {
            if (bad++ == 0) first = i;
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << bad << " of " << n << " elements differ; first at " << index_str(first, shape)
           << ": got " << ::testing::PrintToString(got[first]) << ", expected "
           << ::testing::PrintToString(ref[first]);
}
template <class T>
::testing::AssertionResult all_equal(const std::vector<T>& got, const std::vector<T>& ref,
                                     const std::vector<std::int64_t>& shape = {}) {
    if (got.size() != ref.size()) {
        return ::testing::AssertionFailure()
               << "size mismatch: got " << got.size() << " elements, expected " << ref.size();
    }
    return all_equal(got.data(), ref.data(), got.size(), shape);
}

// ---- finite differences -------------------------------------------------------------------------

// Central differences of a scalar function: grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).
// `f` reads the vector x (which is perturbed in place and restored).
template <class F>
std::vector<double> numerical_gradient(F&& f, std::vector<double>& x, double eps = 1e-6) {
    std::vector<double> grad(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double saved = x[i];
        x[i] = saved + eps;
        const double fp = f();
        x[i] = saved - eps;
        const double fm = f();
        x[i] = saved;
        grad[i] = (fp - fm) / (2.0 * eps);
    }
    return grad;
}

// ||a - b|| / (||a|| + ||b||) in the 2-norm (0 when both are zero): the usual gradient-check
// measure.
inline double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
    double diff = 0.0, na = 0.0, nb = 0.0;
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        diff += (a[i] - b[i]) * (a[i] - b[i]);
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
    const double denom = std::sqrt(na) + std::sqrt(nb);
    return denom == 0.0 ? 0.0 : std::sqrt(diff) / denom;
}

// sum_i a[i] * b[i] in double: the projection loss L = <out, G> whose gradient is G pushed
// backward.
template <class A, class B>
double dot(const std::vector<A>& a, const std::vector<B>& b) {
    double s = 0.0;
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
    return s;
}

// Runs f, expects a minicnn::ArgumentError and returns its message (empty, with a failure,
// otherwise).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const ArgumentError& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected minicnn::ArgumentError, got another exception: " << e.what();
        return "";
    }
    ADD_FAILURE() << "expected minicnn::ArgumentError, nothing was thrown";
    return "";
}

}  // namespace minicnn::test

#define EXPECT_CONTAINS(msg, part)                 \
    EXPECT_NE((msg).find(part), std::string::npos) \
        << "message: " << (msg) << "\nexpected to contain: " << (part)

