// host/cpu/gemm.h — single-threaded row-major GEMM (float and double) for the CPU backend.
//
// C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, row-major, op = transpose or not.
// With OpenBLAS (Debian libopenblas-dev, found by CMake's FindBLAS) this is cblas_sgemm, run on one
// thread: the CPU backend parallelises over batch chunks on its own pool (host/cpu/thread_pool.h)
// instead, so two thread pools never compete for the cores. Without a BLAS it is a cache-blocked
// loop nest (blocked_gemm).
#pragma once

#include <cstdint>

namespace minicnn::cpu_gemm {

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);

void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
           double* c, std::int64_t ldc);

inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                 float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                 float beta, float* c, std::int64_t ldc) {
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                 double alpha, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
                 double beta, double* c, std::int64_t ldc) {
    dgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The portable fallback (also used by the tests as a second implementation).
template <class T>
void blocked_gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                  T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
                  std::int64_t ldc);

// The GEMM epilogues of the convolution and dense layers (host/cpu/conv2d.cpp, host/cpu/dense.cpp):
// o (rows, k) += bias (k); sums (cols) = (or += when accumulate) the column sums of x (rows, cols),
// rows added in order.
template <class T>
void add_bias(T* o, const T* bias, std::int64_t rows, std::int64_t k);
template <class T>
void column_sums(T* sums, const T* x, std::int64_t rows, std::int64_t cols, bool accumulate);

// "OpenBLAS" or "blocked loops".
const char* sgemm_backend_name();
// Pins the BLAS to one thread (no-op without OpenBLAS). Called by the CPU engine.
void use_single_blas_thread();

}  // namespace minicnn::cpu_gemm
