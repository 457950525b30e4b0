// host/cpu/gemm.cpp — row-major GEMM: OpenBLAS's cblas_sgemm / cblas_dgemm when CMake found it
// (MINICNN_HAVE_OPENBLAS), else a cache-blocked loop nest. Both are single-threaded and
// deterministic (fixed summation order).
//
// blocked_gemm: C is processed in (kMc x kNc) tiles; for each tile the k range is walked in kKc
// panels; inside, the innermost loop runs over contiguous columns of C and B so the compiler
// vectorises it. Transposed operands are read through strides (A^T and B^T cases are only used for
// the small weight-gradient products, so they are not packed).
#include "gemm.h"

#include <algorithm>
#include <vector>

#include "simd_clones.h"

#if defined(MINICNN_HAVE_OPENBLAS)
extern "C" {
// Declared here rather than through <cblas.h>, whose Debian alternative may be the netlib one.
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
void cblas_dgemm(int order, int trans_a, int trans_b, int m, int n, int k, double alpha,
                 const double* a, int lda, const double* b, int ldb, double beta, double* c,
                 int ldc);
void openblas_set_num_threads(int num_threads);
}
#endif

namespace minicnn::cpu_gemm {

namespace {
constexpr std::int64_t kMc = 64;
constexpr std::int64_t kNc = 256;
constexpr std::int64_t kKc = 128;
}  // namespace

template <class T>
void blocked_gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                  T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
                  std::int64_t ldc) {
    // Scale C by beta first (beta == 0 overwrites, so NaNs in C do not leak through).
    for (std::int64_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        if (beta == T(0)) {
            std::fill(ci, ci + n, T(0));
        } else if (beta != T(1)) {
            for (std::int64_t j = 0; j < n; ++j) ci[j] *= beta;
        }
    }
    // B panel packed row-major (kc, nc) so the inner loop is contiguous whatever trans_b is.
    std::vector<T> bpack(std::size_t(kKc * kNc));
    for (std::int64_t j0 = 0; j0 < n; j0 += kNc) {
        const std::int64_t nc = std::min(kNc, n - j0);
        for (std::int64_t p0 = 0; p0 < k; p0 += kKc) {
            const std::int64_t kc = std::min(kKc, k - p0);
            for (std::int64_t p = 0; p < kc; ++p) {
                T* dst = bpack.data() + p * nc;
                for (std::int64_t j = 0; j < nc; ++j) {
                    dst[j] = trans_b ? b[(j0 + j) * ldb + (p0 + p)] : b[(p0 + p) * ldb + (j0 + j)];
                }
            }
            for (std::int64_t i0 = 0; i0 < m; i0 += kMc) {
                const std::int64_t mc = std::min(kMc, m - i0);
                for (std::int64_t i = 0; i < mc; ++i) {
                    T* ci = c + (i0 + i) * ldc + j0;
                    for (std::int64_t p = 0; p < kc; ++p) {
                        const T av = alpha * (trans_a ? a[(p0 + p) * lda + (i0 + i)]
                                                      : a[(i0 + i) * lda + (p0 + p)]);
                        const T* bp = bpack.data() + p * nc;
                        for (std::int64_t j = 0; j < nc; ++j) ci[j] += av * bp[j];
                    }
                }
            }
        }
    }
}

template void blocked_gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                                  const float*, std::int64_t, const float*, std::int64_t, float,
                                  float*, std::int64_t);
template void blocked_gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                                   const double*, std::int64_t, const double*, std::int64_t, double,
                                   double*, std::int64_t);

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
    if (m <= 0 || n <= 0) return;
#if defined(MINICNN_HAVE_OPENBLAS)
    constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
    cblas_sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, int(m), int(n),
                int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
#else
    blocked_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
           double* c, std::int64_t ldc) {
    if (m <= 0 || n <= 0) return;
#if defined(MINICNN_HAVE_OPENBLAS)
    constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
    cblas_dgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, int(m), int(n),
                int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
#else
    blocked_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

// o (rows, k) += bias (k).
template <class T>
MINICNN_CLONES void add_bias(T* o, const T* bias, std::int64_t rows, std::int64_t k) {
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < k; ++j) o[r * k + j] += bias[j];
}

// sums[j] (+)= sum over rows of x (rows, cols), rows in order.
template <class T>
MINICNN_CLONES void column_sums(T* sums, const T* x, std::int64_t rows, std::int64_t cols,
                                bool accumulate) {
    if (!accumulate) std::fill(sums, sums + cols, T(0));
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = x + r * cols;
        for (std::int64_t j = 0; j < cols; ++j) sums[j] += row[j];
    }
}

template void add_bias<float>(float*, const float*, std::int64_t, std::int64_t);
template void add_bias<double>(double*, const double*, std::int64_t, std::int64_t);
template void column_sums<float>(float*, const float*, std::int64_t, std::int64_t, bool);
template void column_sums<double>(double*, const double*, std::int64_t, std::int64_t, bool);

const char* sgemm_backend_name() {
#if defined(MINICNN_HAVE_OPENBLAS)
    return "OpenBLAS sgemm";
#else
    return "blocked-loop sgemm";
#endif
}

void use_single_blas_thread() {
#if defined(MINICNN_HAVE_OPENBLAS)
    openblas_set_num_threads(1);
#endif
}

}  // namespace minicnn::cpu_gemm
