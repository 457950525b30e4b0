// tests/emu/cublas.cpp — the emulated cuBLAS (tests/emu/include/cublas_v2.h): handles bound to a
// device, a stream and a workspace, and SGEMM, run (or recorded under capture) on the handle's
// stream with its matrices checked against device memory and the shadow state. Verification only.
// What it checks beyond the arguments, as the cuBLAS guide states the rules (cublasSetWorkspace,
// cublasSetStream, "CUDA Graphs Support"):
//   - a workspace must be 256-byte aligned device memory (else CUBLAS_STATUS_INVALID_VALUE), and
//     one under 16 KiB makes a GEMM fail with CUBLAS_STATUS_ALLOC_FAILED;
//   - cublasSetStream resets the handle to cuBLAS's own workspace pool;
//   - a GEMM recorded into a CUDA graph with that pool (no cublasSetWorkspace after the last
//     cublasSetStream) is reported: the graph would use memory cuBLAS manages outside it;
//   - a GEMM that runs (replays included) after its workspace was freed is reported;
//   - a GEMM on a handle whose stream was never set (the legacy default stream) is reported.
// The sums run in k order in float32, products and sums rounded separately (no FMA): the real
// cuBLAS may order, block and contract them otherwise, so tests compare it within a bound.
#include <cublas_v2.h>

#include <algorithm>
#include <cinttypes>

#include "emu_internal.h"

using namespace emu;

// -------------------------------------------------------------------------------------------------
// cuBLAS
// -------------------------------------------------------------------------------------------------

struct cublasContext {
    int device = 0;
    cudaStream_t stream = nullptr;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
    // The user workspace (cublasSetWorkspace), or none: cuBLAS's own pool.
    void* workspace = nullptr;
    std::size_t workspace_bytes = 0;
    long workspace_alloc = 0;  // the id of the allocation it lies in
    bool user_workspace = false;
};

const char* cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS:
            return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED:
            return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "CUBLAS_STATUS_EXECUTION_FAILED";
        default:
            return "CUBLAS_STATUS_INTERNAL_ERROR";
    }
}
const char* cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "success" : "emulated cuBLAS error";
}
cublasStatus_t cublasCreate(cublasHandle_t* h) {
    Lock lk(g_mu);
    if (capture_violation("cublasCreate")) return CUBLAS_STATUS_NOT_INITIALIZED;
    *h = new cublasContext;
    (*h)->device = t_device;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    h->user_workspace = false;  // "unconditionally resets the workspace to the default pool"
    h->workspace = nullptr;
    h->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *s = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void* ws, std::size_t bytes) {
    Lock lk(g_mu);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (reinterpret_cast<std::uintptr_t>(ws) % 256 != 0) {
        note("cublas", "cublasSetWorkspace: %p is not 256-byte aligned", ws);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const Alloc* a = bytes ? device_range(ws, bytes) : nullptr;
    if (bytes && (!a || a->device != h->device)) {
        note("cublas",
             "cublasSetWorkspace: %zu bytes at %s are not inside one allocation of device %d",
             bytes, describe_global(reinterpret_cast<std::uintptr_t>(ws)).c_str(), h->device);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    h->workspace = ws;
    h->workspace_bytes = bytes;
    h->workspace_alloc = a ? a->id : 0;
    h->user_workspace = true;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t* m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *m = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

namespace {

// The column-major matrix of `rows` x `cols` with leading dimension ld at p, all in one allocation
// of `device`; every element read must have been written when `reads`.
bool gemm_matrix(const char* name, const float* p, int rows, int cols, int ld, int device,
                 bool reads) {
    if (rows == 0 || cols == 0) return true;
    const std::size_t extent = (std::size_t(cols) - 1) * std::size_t(ld) + std::size_t(rows);
    const Alloc* a = device_range(p, extent * sizeof(float));
    if (!a || a->device != device) {
        report("out-of-bounds global",
               "cublasSgemm: matrix %s (%d x %d, ld %d) at %s is not "
               "inside one allocation of device %d",
               name, rows, cols, ld, describe_global(reinterpret_cast<std::uintptr_t>(p)).c_str(),
               device);
        return false;
    }
    if (!reads) return true;
    for (int j = 0; j < cols; ++j)
        for (int i = 0; i < rows; ++i) {
            const auto q = reinterpret_cast<std::uintptr_t>(p + std::size_t(j) * ld + i);
            if (gword(a, q)->w_launch == 0) {
                report("uninitialized read",
                       "cublasSgemm: matrix %s element (%d, %d) at %s was "
                       "never written",
                       name, i, j, describe_global(q).c_str());
                return true;
            }
        }
    return true;
}

}  // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float* alpha, const float* A, int lda,
                           const float* B, int ldb, const float* beta, float* C, int ldc) {
    Lock lk(g_mu);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (h->device != t_device) {
        note("wrong device",
             "cublasSgemm: handle created on device %d used while device %d is "
             "current",
             h->device, t_device);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (g_captures > 0 && h->stream && !as_stream(h->stream)->capturing) {
        note("capture violation",
             "cublasSgemm: the handle is bound to a stream other than the "
             "one being captured: the GEMM would run outside the graph");
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    const int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    const int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, arows) || ldb < std::max(1, brows) ||
        ldc < std::max(1, m) || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) ||
        (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (h->math == CUBLAS_TF32_TENSOR_OP_MATH)
        report("tf32", "cublasSgemm with TF32 tensor-op math: results would not match the CPU");
    constexpr std::size_t kMinWorkspace = 16 * 1024;  // the guide's floor against ALLOC_FAILED
    if (h->user_workspace && h->workspace_bytes < kMinWorkspace) {
        note("cublas",
             "cublasSgemm: the handle's workspace holds %zu bytes, under the %zu cuBLAS needs",
             h->workspace_bytes, kMinWorkspace);
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    if (!h->stream)
        report("cublas",
               "cublasSgemm on a handle whose stream was never set (cublasSetStream): it runs on "
               "the legacy default stream");
    if (h->stream && g_streams.count(as_stream(h->stream)) && as_stream(h->stream)->capturing &&
        !h->user_workspace)
        report("cublas",
               "cublasSgemm captured into a CUDA graph with cuBLAS's own workspace pool (no "
               "cublasSetWorkspace since the last cublasSetStream): the graph would use memory "
               "that cuBLAS manages outside it");
    const float al = *alpha, be = *beta;  // host pointer mode: read at the call
    const int dev = h->device;
    const bool user_ws = h->user_workspace;
    void* const ws = h->workspace;
    const std::size_t ws_bytes = h->workspace_bytes;
    const long ws_alloc = h->workspace_alloc;
    auto op = [=] {
        if (g_sticky != cudaSuccess) return;
        if (user_ws && ws_bytes) {  // the workspace must still be the allocation it was set to
            const Alloc* a = device_range(ws, ws_bytes);
            if (!a || a->id != ws_alloc) {
                report("use after free",
                       "cublasSgemm: its workspace (%zu bytes at %p, allocation #%ld, set by "
                       "cublasSetWorkspace) was freed",
                       ws_bytes, ws, ws_alloc);
                g_sticky = cudaErrorIllegalAddress;
                return;
            }
        }
        if (m == 0 || n == 0) return;
        if (!gemm_matrix("A", A, arows, acols, lda, dev, k > 0 && al != 0.0f) ||
            !gemm_matrix("B", B, brows, bcols, ldb, dev, k > 0 && al != 0.0f) ||
            !gemm_matrix("C", C, m, n, ldc, dev, be != 0.0f)) {
            g_sticky = cudaErrorIllegalAddress;
            return;
        }
        const Alloc* ca = device_range(C, ((std::size_t(n) - 1) * ldc + m) * sizeof(float));
        const std::uint32_t id = ++g_launch_ids;
        ++g_launches;
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) {
                float s = 0.0f;
                for (int l = 0; l < k; ++l) {
                    const float a = ta == CUBLAS_OP_N ? A[std::size_t(l) * lda + i]
                                                      : A[std::size_t(i) * lda + l];
                    const float b = tb == CUBLAS_OP_N ? B[std::size_t(j) * ldb + l]
                                                      : B[std::size_t(l) * ldb + j];
                    s += a * b;
                }
                float* c = C + std::size_t(j) * ldc + i;
                *c = be == 0.0f ? al * s : al * s + be * *c;
                GWord* g = gword(ca, reinterpret_cast<std::uintptr_t>(c));
                *g = GWord{id, 0, 0, 1, 0, 0};
            }
    };
    if (enqueue(h->stream, "cublasSgemm", op) != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    return g_sticky == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
