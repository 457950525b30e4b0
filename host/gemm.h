// host/gemm.h — single-threaded row-major SGEMM for the CPU training engine.
//
// C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, row-major, op = transpose or not.
// With OpenBLAS (Debian libopenblas-dev, found by CMake's FindBLAS) this is cblas_sgemm, run on one
// thread: the engine parallelises over batch chunks with OpenMP instead, so the two thread pools
// never compete for the two cores. Without a BLAS it is a cache-blocked loop nest (blocked_sgemm).
#pragma once

#include <cstdint>

namespace minicnn::cpu_gemm {

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);

// The portable fallback (also used by the tests as a second implementation).
void blocked_sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                   float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                   float beta, float* c, std::int64_t ldc);

// "OpenBLAS" or "blocked loops".
const char* sgemm_backend_name();
// Pins the BLAS to one thread (no-op without OpenBLAS). Called by the CPU engine.
void use_single_blas_thread();

}  // namespace minicnn::cpu_gemm
