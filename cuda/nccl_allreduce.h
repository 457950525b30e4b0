// cuda/nccl_allreduce.h — the CUDA engine's all-reduce over ranks (Engine::make_allreduce,
// minicnn/distributed.h): NCCL's ncclAllReduce, in place, on the engine's stream. One GPU per
// rank. Implemented in cuda/nccl/allreduce_nccl.cpp in CUDA builds that found NCCL, and in
// cuda/no_nccl/allreduce_none.cpp (a DeviceError saying so) in those that did not (CMakeLists.txt).
#pragma once

#include <memory>

#include "context.h"
#include "minicnn/distributed.h"
#include "minicnn/engine.h"

namespace minicnn::cuda {

// An NCCL communicator over comm's ranks on ctx's device: rank 0 makes the unique id and
// broadcasts it over `comm` (MPI), every rank then joins (ncclCommInitRankConfig, non-blocking).
// Collective: every rank must call it. The initialisation and every sum() wait at most
// comm.timeout_s() for the other ranks, then abort the communicator and throw DeviceError.
std::unique_ptr<EngineAllReduce> make_nccl_allreduce(Context& ctx, Communicator& comm);

}  // namespace minicnn::cuda
