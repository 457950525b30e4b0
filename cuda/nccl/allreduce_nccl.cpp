// cuda/nccl/allreduce_nccl.cpp — cuda/nccl_allreduce.h with NCCL: the gradient arena summed over
// the ranks by ncclAllReduce (in place, float32, sum) on the engine's stream, so it is ordered
// after the backward pass and before Adam like every other launch, and nothing synchronises.
//
// NOT YET RUN ON A GPU, nor with the real NCCL: no GPU was available to this work. It runs on the
// CUDA emulator (tests/emu/nccl.cpp emulates NCCL for ranks that are threads; tests
// CudaDistributed.*). docs/training.md says so.
#include <nccl.h>

#include <string>

#include "cuda_check.h"
#include "minicnn/error.h"
#include "nccl_allreduce.h"

namespace minicnn::cuda {

namespace {

#define MINICNN_NCCL_CHECK(expr)                                                                  \
    do {                                                                                          \
        const ncclResult_t minicnn_nccl_st_ = (expr);                                             \
        if (minicnn_nccl_st_ != ncclSuccess) {                                                    \
            throw DeviceError(std::string("NCCL error ") + ncclGetErrorString(minicnn_nccl_st_) + \
                              " at " + __FILE__ + ":" + std::to_string(__LINE__) + " in `" +      \
                              #expr + "`");                                                       \
        }                                                                                         \
    } while (0)

class NcclAllReduce final : public EngineAllReduce {
public:
    NcclAllReduce(Context& ctx, Communicator& comm) : ctx_(&ctx) {
        ncclUniqueId id{};
        if (comm.rank() == 0) MINICNN_NCCL_CHECK(ncclGetUniqueId(&id));
        comm.broadcast(&id, sizeof id, 0);
        DeviceGuard guard(ctx.device());
        MINICNN_NCCL_CHECK(ncclCommInitRank(&nccl_, comm.size(), id, comm.rank()));
    }
    ~NcclAllReduce() override {
        if (nccl_) (void)ncclCommDestroy(nccl_);
    }
    NcclAllReduce(const NcclAllReduce&) = delete;
    NcclAllReduce& operator=(const NcclAllReduce&) = delete;

    void sum(float* data, std::int64_t n) override {
        DeviceGuard guard(ctx_->device());
        MINICNN_NCCL_CHECK(
            ncclAllReduce(data, data, std::size_t(n), ncclFloat, ncclSum, nccl_, ctx_->stream()));
    }

private:
    Context* ctx_;
    ncclComm_t nccl_ = nullptr;
};

}  // namespace

std::unique_ptr<EngineAllReduce> make_nccl_allreduce(Context& ctx, Communicator& comm) {
    return std::make_unique<NcclAllReduce>(ctx, comm);
}

}  // namespace minicnn::cuda
