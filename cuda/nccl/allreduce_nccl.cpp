// cuda/nccl/allreduce_nccl.cpp — cuda/nccl_allreduce.h with NCCL: the gradient arena summed over
// the ranks by ncclAllReduce (in place, float32, sum) on the engine's stream, so it is ordered
// after the backward pass and before Adam like every other launch.
//
// NCCL cannot hang the run. The communicator is non-blocking (ncclConfig_t.blocking = 0): its
// initialisation (ncclCommInitRankConfig) returns at once, and is polled with
// ncclCommGetAsyncError until it is no longer ncclInProgress. After each ncclAllReduce, sum()
// polls cudaStreamQuery on the engine's stream and ncclCommGetAsyncError until the sum is done.
// Both waits have a deadline, the communicator's timeout_s (--rank-timeout, as for MPI's
// collectives): a peer that died, stopped or failed, or an async NCCL error, makes this rank
// ncclCommAbort the communicator (which ends its NCCL kernel, so the stream is idle and freeing
// memory afterwards is safe) and throw a one-line DeviceError naming the rank, the collective and
// the timeout. The destructor finalizes the communicator (ncclCommFinalize, polled with the same
// deadline) before ncclCommDestroy, and aborts it if that does not end.
//
// The cost: sum() waits on the host for the step's backward pass and all-reduce (one host
// synchronisation per step), so the next launches (Adam, the next step) are issued only then and
// the GPU idles for their launch latency, some microseconds per step. Steps of more than one rank
// are never captured into CUDA graphs anyway (host/trainer.cpp, run_step). Nothing allocates or
// frees device memory between the all-reduce's launch and its end: sum() only polls.
//
// NOT YET RUN ON A GPU, nor with the real NCCL: no GPU was available to this work. It compiles
// against NCCL 2.28's nccl.h, and runs on the CUDA emulator (tests/emu/nccl.cpp emulates NCCL, its
// non-blocking communicators, async errors and abort, for ranks that are threads; tests
// CudaDistributed.*, a peer that never arrives included). docs/training.md says so.
#include <nccl.h>
#include <time.h>
#if MINICNN_NCCL_DLOPEN
#include <dlfcn.h>
#endif

#include <chrono>
#include <sstream>
#include <string>
#include <type_traits>

#include "cuda_check.h"
#include "minicnn/error.h"
#include "nccl_allreduce.h"

namespace minicnn::cuda {

namespace {

// NCCL's entry points. The library build (MINICNN_NCCL_DLOPEN) loads libnccl.so.2 with dlopen when
// the first multi-GPU run starts, instead of linking it: a linked NCCL is loaded with the library,
// and a process that imports minicnn's Python module and then PyTorch's CUDA wheels (which bring
// their own, newer libnccl.so.2) had the older NCCL bound to PyTorch's references and failed with
// "undefined symbol" (seen with PyTorch 2.15). The emulator build takes its emulated NCCL's
// addresses directly.
struct NcclApi {
    decltype(&ncclGetErrorString) GetErrorString;
    decltype(&ncclGetUniqueId) GetUniqueId;
    decltype(&ncclCommInitRankConfig) CommInitRankConfig;
    decltype(&ncclCommFinalize) CommFinalize;
    decltype(&ncclCommDestroy) CommDestroy;
    decltype(&ncclCommAbort) CommAbort;
    decltype(&ncclCommGetAsyncError) CommGetAsyncError;
    decltype(&ncclAllReduce) AllReduce;
};

#if MINICNN_NCCL_DLOPEN
NcclApi load_nccl() {
    // The soname first (a copy already in the process, LD_LIBRARY_PATH, this library's RUNPATH),
    // then the library CMake found.
    void* h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen(MINICNN_NCCL_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* why = dlerror();
        throw DeviceError(std::string("multi-GPU training needs NCCL, which could not be loaded "
                                      "(libnccl.so.2, " MINICNN_NCCL_LIBRARY_PATH "): ") +
                          (why ? why : "unknown error"));
    }
    NcclApi api{};
    auto sym = [&](auto& fn, const char* name) {
        void* p = dlsym(h, name);
        if (!p)
            throw DeviceError(std::string("the NCCL that was loaded has no ") + name +
                              " (it is older than the NCCL " + std::to_string(NCCL_MAJOR) + "." +
                              std::to_string(NCCL_MINOR) + " this build was compiled against)");
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    sym(api.GetErrorString, "ncclGetErrorString");
    sym(api.GetUniqueId, "ncclGetUniqueId");
    sym(api.CommInitRankConfig, "ncclCommInitRankConfig");
    sym(api.CommFinalize, "ncclCommFinalize");
    sym(api.CommDestroy, "ncclCommDestroy");
    sym(api.CommAbort, "ncclCommAbort");
    sym(api.CommGetAsyncError, "ncclCommGetAsyncError");
    sym(api.AllReduce, "ncclAllReduce");
    return api;  // the library stays loaded for the process
}
#else
NcclApi load_nccl() {
    return {&ncclGetErrorString, &ncclGetUniqueId,       &ncclCommInitRankConfig,
            &ncclCommFinalize,   &ncclCommDestroy,       &ncclCommAbort,
            &ncclCommGetAsyncError, &ncclAllReduce};
}
#endif

// Loaded once (a failed load is retried on the next call, and throws again).
const NcclApi& nccl() {
    static const NcclApi api = load_nccl();
    return api;
}

std::string nccl_error(ncclResult_t st, const char* expr, const char* file, int line) {
    return std::string("NCCL error ") + nccl().GetErrorString(st) + " at " + file + ":" +
           std::to_string(line) + " in `" + expr + "`";
}

class NcclAllReduce final : public EngineAllReduce {
public:
    NcclAllReduce(Context& ctx, Communicator& comm)
        : ctx_(&ctx), rank_(comm.rank()), timeout_s_(comm.timeout_s()) {
        ncclUniqueId id{};
        if (comm.rank() == 0) check(nccl().GetUniqueId(&id), "ncclGetUniqueId(&id)", __LINE__);
        comm.broadcast(&id, sizeof id, 0);
        DeviceGuard guard(ctx.device());
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;  // every call returns at once; errors come from ncclCommGetAsyncError
        const ncclResult_t st = nccl().CommInitRankConfig(&nccl_, comm.size(), id, rank_, &config);
        if (st != ncclInProgress) check(st, "ncclCommInitRankConfig(...)", __LINE__);
        wait("the NCCL communicator's initialisation, ncclCommInitRankConfig", false);
    }
    // As NCCL documents for a non-blocking communicator: ncclCommFinalize, polled until it is no
    // longer ncclInProgress (it flushes what the ranks issued), then ncclCommDestroy; an error, or
    // no end within the rank timeout (a peer gone), aborts instead. Never throws.
    ~NcclAllReduce() override {
        if (!nccl_) return;
        ncclResult_t st = nccl().CommFinalize(nccl_);
        const auto t0 = std::chrono::steady_clock::now();
        while (st == ncclInProgress &&
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() <
                   timeout_s_) {
            const timespec ts{0, 50000};
            nanosleep(&ts, nullptr);
            if (nccl().CommGetAsyncError(nccl_, &st) != ncclSuccess) st = ncclInternalError;
        }
        if (st == ncclSuccess)
            (void)nccl().CommDestroy(nccl_);
        else
            (void)nccl().CommAbort(nccl_);
    }
    NcclAllReduce(const NcclAllReduce&) = delete;
    NcclAllReduce& operator=(const NcclAllReduce&) = delete;

    void sum(float* data, std::int64_t n) override {
        DeviceGuard guard(ctx_->device());
        const ncclResult_t st =
            nccl().AllReduce(data, data, std::size_t(n), ncclFloat, ncclSum, nccl_, ctx_->stream());
        if (st != ncclInProgress) check(st, "ncclAllReduce(data, data, n, ...)", __LINE__);
        wait("the all-reduce of the gradients, ncclAllReduce", true);
    }

private:
    // An NCCL error: the communicator is aborted (a peer may wait for it), then DeviceError.
    void check(ncclResult_t st, const char* expr, int line) {
        if (st == ncclSuccess) return;
        abort_comm();
        throw DeviceError(nccl_error(st, expr, __FILE__, line));
    }
    void abort_comm() noexcept {
        if (nccl_) (void)nccl().CommAbort(nccl_);
        nccl_ = nullptr;
    }

    // Polls until the communicator is no longer ncclInProgress and, with `stream`, the engine's
    // stream is idle (the all-reduce, last on it, is done): a tight loop for the first millisecond
    // (a step's all-reduce usually ends within it), then every 50 us, until timeout_s_. On an async
    // error or at the deadline, aborts the communicator and throws.
    void wait(const char* what, bool stream) {
        using Clock = std::chrono::steady_clock;
        const auto t0 = Clock::now();
        for (;;) {
            ncclResult_t async = ncclSuccess;
            check(nccl().CommGetAsyncError(nccl_, &async), "ncclCommGetAsyncError(...)", __LINE__);
            if (async != ncclSuccess && async != ncclInProgress) {
                abort_comm();
                std::ostringstream os;
                os << "rank " << rank_ << ": NCCL error " << nccl().GetErrorString(async) << " in "
                   << what << " (a rank died or failed); the NCCL communicator was aborted";
                throw DeviceError(os.str());
            }
            bool done = async == ncclSuccess;
            if (done && stream) {
                const cudaError_t q = cudaStreamQuery(ctx_->stream());
                if (q != cudaSuccess && q != cudaErrorNotReady) {
                    abort_comm();
                    detail::throw_cuda_error(q, "cudaStreamQuery(stream)", __FILE__, __LINE__);
                }
                done = q == cudaSuccess;
            }
            if (done) return;
            const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
            if (waited > timeout_s_) {
                abort_comm();
                std::ostringstream os;
                os << "rank " << rank_ << ": no answer from the other ranks within " << timeout_s_
                   << " s in " << what
                   << " (a rank died, hangs or failed); the NCCL communicator was aborted";
                throw DeviceError(os.str());
            }
            if (waited > 1e-3) {
                const timespec ts{0, 50000};
                nanosleep(&ts, nullptr);
            }
        }
    }

    Context* ctx_;
    int rank_;
    double timeout_s_;
    ncclComm_t nccl_ = nullptr;
};

}  // namespace

std::unique_ptr<EngineAllReduce> make_nccl_allreduce(Context& ctx, Communicator& comm) {
    return std::make_unique<NcclAllReduce>(ctx, comm);
}

}  // namespace minicnn::cuda
