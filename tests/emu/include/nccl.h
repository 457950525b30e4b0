// tests/emu/include/nccl.h — the part of NCCL that minicnn uses (cuda/nccl/allreduce_nccl.cpp), for
// the CUDA emulator: ranks are threads of one process, each with its emulated device, as real NCCL
// allows. Non-blocking communicators (ncclConfig_t.blocking = 0) and their error handling
// (ncclCommGetAsyncError, ncclCommAbort) as NCCL documents them, and a test hook that makes a rank
// behave as a process that died (emu::nccl_stop_rank). Implemented in tests/emu/nccl.cpp.
// Verification only: never part of a real build.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstddef>

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;
typedef struct ncclComm* ncclComm_t;

typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7
} ncclResult_t;
typedef enum { ncclFloat32 = 7, ncclFloat = 7 } ncclDataType_t;
typedef enum { ncclSum = 0 } ncclRedOp_t;

// The fields of NCCL 2.28's ncclConfig_t up to the one the emulator reads (blocking); the rest are
// NCCL's defaults.
#define NCCL_CONFIG_UNDEF_INT INT_MIN
typedef struct {
    std::size_t size;
    unsigned int magic;
    unsigned int version;
    int blocking;  // 0: calls return ncclInProgress and progress in the background
} ncclConfig_t;
#define NCCL_CONFIG_INITIALIZER \
    { sizeof(ncclConfig_t), 0xcafebeef, 0, NCCL_CONFIG_UNDEF_INT }

ncclResult_t ncclGetUniqueId(ncclUniqueId* id);
// Blocking: returns when every rank has joined (ncclRemoteError after 60 s, where NCCL waits for
// ever).
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank);
// With config->blocking == 0: returns ncclInProgress at once while some rank has not joined;
// ncclCommGetAsyncError says ncclInProgress until every rank has.
ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank,
                                    ncclConfig_t* config);
// ncclInProgress while the initialisation waits for a rank, or a finalize for an all-reduce;
// ncclRemoteError once a peer aborted its communicator while this one waits for it (init, or an
// all-reduce); ncclSuccess otherwise. As
// in NCCL, an all-reduce that waits for a peer is not an async error: its stream is busy
// (cudaStreamQuery says cudaErrorNotReady).
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error);
// Ends the communicator's unfinished work (its stream is idle afterwards) and frees it; its peers
// that wait for it get ncclRemoteError.
ncclResult_t ncclCommAbort(ncclComm_t comm);
// Flushes the communicator's work: ncclInProgress while an all-reduce of its waits for a peer
// (non-blocking), as ncclCommGetAsyncError then says; ncclSuccess otherwise.
ncclResult_t ncclCommFinalize(ncclComm_t comm);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
// float32 sums only; in place when sendbuff == recvbuff. The sum is done when the last rank calls
// it; until then the calling ranks' streams are busy: cudaStreamQuery says cudaErrorNotReady,
// cudaStreamSynchronize waits, and work enqueued behind it, cudaMalloc and cudaFree on the device
// are checker reports (on a GPU they wait for the collective, for ever if a peer never arrives).
// A blocking communicator's call returns when the sum is done (ncclRemoteError after 60 s).
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, std::size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream);
const char* ncclGetErrorString(ncclResult_t result);

namespace emu {
// Test hook: from its `at_call`-th NCCL call on (0: ncclCommInitRank*, k >= 1: its k-th
// ncclAllReduce), rank `rank` of every communicator behaves as a process that died there: the call
// fails with ncclSystemError without joining, and its peers are not told (they wait, as they would
// for a dead process), not even by its ncclCommAbort. nccl_stop_rank(-1, 0) turns it off.
void nccl_stop_rank(int rank, long at_call);
}  // namespace emu
