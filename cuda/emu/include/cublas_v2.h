// cuda/emu/include/cublas_v2.h — the cuBLAS handle calls minicnn makes, emulated for
// cuda/emu/run.sh.
#pragma once
#include <cuda_runtime.h>
typedef struct cublasContext* cublasHandle_t;
enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1 };
inline const char* cublasGetStatusName(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_NOT_INITIALIZED";
}
inline const char* cublasGetStatusString(cublasStatus_t) {
    return "emulated";
}
struct cublasContext {
    cudaStream_t s = nullptr;
};
inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
    *h = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->s = s;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
    *s = h->s;
    return CUBLAS_STATUS_SUCCESS;
}
