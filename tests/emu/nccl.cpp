// tests/emu/nccl.cpp — the emulated NCCL of tests/emu/include/nccl.h: a communicator is a group of
// threads (one per rank, each on its emulated device) that meet in ncclAllReduce.
//
// The emulator runs stream work when it is enqueued (state.cpp: enqueue), so when a rank calls
// ncclAllReduce its earlier launches have run: the call checks its arguments under g_mu (device
// memory of the rank's current device, a live stream, not capturing), then, without g_mu (the
// other ranks need it to reach their own call), waits until every rank has arrived, sums the ranks'
// send buffers in rank order (the same bits on every rank), waits until every rank has read them
// (the write may be in place), and writes its receive buffer as a copy would (host_write: the
// checker sees initialised words). A rank that does not arrive within 60 s is an error.
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "emu_internal.h"

struct ncclComm {
    struct Group* group;
    int rank;
    int device;
};

struct Group {
    int nranks = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<const float*> send;
    int arrived = 0, left = 0;
    long generation = 0;
};

namespace {

std::mutex g_groups_mu;
std::map<long, std::shared_ptr<Group>> g_groups;  // by unique id
long g_next_id = 1;

long id_of(const ncclUniqueId& id) {
    long v = 0;
    std::memcpy(&v, id.internal, sizeof v);
    return v;
}

// Every rank of g at this point (a reusable barrier); false after 60 s.
bool meet(Group& g, int& counter) {
    std::unique_lock<std::mutex> lock(g.mu);
    const long gen = g.generation;
    if (++counter == g.nranks) {
        counter = 0;
        ++g.generation;
        g.cv.notify_all();
        return true;
    }
    return g.cv.wait_for(lock, std::chrono::seconds(60), [&] { return g.generation != gen; });
}

}  // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
    std::lock_guard<std::mutex> lock(g_groups_mu);
    std::memset(id->internal, 0, sizeof id->internal);
    const long v = g_next_id++;
    std::memcpy(id->internal, &v, sizeof v);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
    if (nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    std::shared_ptr<Group> g;
    {
        std::lock_guard<std::mutex> lock(g_groups_mu);
        std::shared_ptr<Group>& slot = g_groups[id_of(id)];
        if (!slot) {
            slot = std::make_shared<Group>();
            slot->nranks = nranks;
            slot->send.assign(std::size_t(nranks), nullptr);
        }
        if (slot->nranks != nranks) return ncclInvalidUsage;
        g = slot;
    }
    *comm = new ncclComm{g.get(), rank, emu::t_device};
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, std::size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
    if (!comm || datatype != ncclFloat || op != ncclSum) return ncclInvalidArgument;
    const std::size_t bytes = count * sizeof(float);
    const emu::Alloc* out = nullptr;
    {
        emu::Lock lk(emu::g_mu);
        ++emu::g_operations;
        const emu::Alloc* in = emu::device_range(sendbuff, bytes);
        out = emu::device_range(recvbuff, bytes);
        if (!in || !out || in->device != comm->device || out->device != comm->device) {
            emu::report("nccl",
                        "ncclAllReduce of %zu floats on rank %d: the buffers are not memory "
                        "of the communicator's device %d",
                        count, comm->rank, comm->device);
            return ncclInvalidArgument;
        }
        if (!stream || !emu::g_streams.count(emu::as_stream(stream))) {
            emu::report("nccl", "ncclAllReduce on rank %d: not on a live stream", comm->rank);
            return ncclInvalidArgument;
        }
        if (emu::as_stream(stream)->capturing) {
            emu::report("nccl",
                        "ncclAllReduce on rank %d: captured into a CUDA graph (the emulator "
                        "runs NCCL eagerly)",
                        comm->rank);
            return ncclInvalidUsage;
        }
        if (emu::g_sticky != cudaSuccess) return ncclUnhandledCudaError;
    }
    Group& g = *comm->group;
    {
        std::lock_guard<std::mutex> lock(g.mu);
        g.send[std::size_t(comm->rank)] = static_cast<const float*>(sendbuff);
    }
    if (!meet(g, g.arrived)) return ncclRemoteError;
    std::vector<float> sum(count, 0.0f);
    for (const float* s : g.send)
        for (std::size_t i = 0; i < count; ++i) sum[i] += s[i];
    if (!meet(g, g.left)) return ncclRemoteError;
    emu::Lock lk(emu::g_mu);
    std::memcpy(recvbuff, sum.data(), bytes);
    emu::host_write(out, reinterpret_cast<std::uintptr_t>(recvbuff), bytes);
    return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
    switch (result) {
        case ncclSuccess:
            return "no error";
        case ncclInvalidArgument:
            return "invalid argument";
        case ncclInvalidUsage:
            return "invalid usage";
        case ncclRemoteError:
            return "remote process exited or there was a network error (emulator: a rank did not "
                   "arrive within 60 s)";
        case ncclUnhandledCudaError:
            return "unhandled cuda error";
        default:
            return "NCCL error";
    }
}
