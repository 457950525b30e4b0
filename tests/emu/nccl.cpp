// tests/emu/nccl.cpp — the emulated NCCL of tests/emu/include/nccl.h: a communicator is one rank
// (a thread, on its emulated device) of a group that meets in ncclAllReduce.
//
// Everything here runs under emu::g_mu and nothing waits while holding it. The emulator runs
// stream work when it is enqueued (state.cpp: enqueue), so when a rank calls ncclAllReduce its
// earlier launches have run: the call checks its arguments (device memory of the rank's device, a
// live stream, not capturing) and posts the rank's buffers to the group. The rank's stream is then
// busy (nccl_busy: cudaStreamQuery says cudaErrorNotReady) until the last rank posts: that call
// sums the ranks' send buffers in rank order (the same bits on every rank) and writes every rank's
// receive buffer as a copy would (host_write: the checker sees initialised words). A blocking
// communicator's call then waits, without g_mu, until its sum is done.
//
// Faults, as NCCL documents them: a non-blocking init (ncclCommInitRankConfig, blocking = 0)
// returns ncclInProgress and ncclCommGetAsyncError says ncclInProgress until every rank joined; a
// peer that never arrives leaves the others waiting (in init, or with a busy stream), for ever
// unless they give up and ncclCommAbort, which ends their own unfinished work and tells the peers
// that wait for them (ncclRemoteError). emu::nccl_stop_rank makes a rank die at a chosen call: it
// fails there, and nothing it does afterwards (its own ncclCommAbort) reaches its peers.
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "emu_internal.h"

namespace {

struct Group {
    int nranks = 0;
    int joined = 0;             // ranks that called ncclCommInitRank*
    bool peer_aborted = false;  // some rank called ncclCommAbort
    // The all-reduce being gathered: each rank's buffers, once it posted.
    std::vector<const void*> send;
    std::vector<void*> recv;
    std::size_t count = 0;
    int arrived = 0;
    long completed = 0;  // all-reduces done
};

}  // namespace

struct ncclComm {
    std::shared_ptr<Group> group;
    int rank;
    int device;
    bool blocking;
    long calls = 0;           // ncclAllReduce calls so far (for the stop hook)
    long posted = 0;          // all-reduces posted; done while group->completed >= posted
    bool dead = false;        // died at a call (emu::nccl_stop_rank): its peers are never told
    bool finalizing = false;  // ncclCommFinalize was called
    emu::Stream* stream = nullptr;  // of the last all-reduce
};

namespace {

std::map<long, std::shared_ptr<Group>> g_groups;  // by unique id
std::set<ncclComm*> g_comms;                      // live communicators
long g_next_id = 1;
int g_stop_rank = -1;
long g_stop_at = 0;

long id_of(const ncclUniqueId& id) {
    long v = 0;
    std::memcpy(&v, id.internal, sizeof v);
    return v;
}

bool busy(const ncclComm* c) {
    return c->stream && c->group->completed < c->posted;
}

// The stop hook: rank `rank`'s call number `call` is where it died.
bool dies(int rank, long call) {
    return rank == g_stop_rank && call >= g_stop_at;
}

// Polls done() (under g_mu) every millisecond, without holding g_mu in between; false after 60 s.
template <class F>
bool wait_unlocked(F done) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
        {
            emu::Lock lk(emu::g_mu);
            if (done()) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

// The last rank posted: the sum in rank order, into every rank's receive buffer.
void finish(Group& g) {
    const std::size_t bytes = g.count * sizeof(float);
    std::vector<float> sum(g.count, 0.0f);
    for (const void* s : g.send) {
        const float* f = static_cast<const float*>(s);
        for (std::size_t i = 0; i < g.count; ++i) sum[i] += f[i];
    }
    for (void* r : g.recv) {
        const emu::Alloc* out = emu::device_range(r, bytes);
        if (!out) {  // cudaFree reports this first; never write freed memory
            emu::report("nccl", "ncclAllReduce: a receive buffer was freed before the sum");
            continue;
        }
        std::memcpy(r, sum.data(), bytes);
        emu::host_write(out, reinterpret_cast<std::uintptr_t>(r), bytes);
    }
    g.arrived = 0;
    ++g.completed;
}

}  // namespace

namespace emu {

bool nccl_busy(const Stream* s, int device) {
    for (const ncclComm* c : g_comms)
        if (busy(c) && (s ? c->stream == s : c->device == device)) return true;
    return false;
}

bool nccl_reads(std::uintptr_t begin, std::size_t size) {
    for (const ncclComm* c : g_comms) {
        if (!busy(c)) continue;
        const Group& g = *c->group;
        const std::size_t bytes = g.count * sizeof(float);
        for (const void* p : {static_cast<const void*>(g.send[std::size_t(c->rank)]),
                              static_cast<const void*>(g.recv[std::size_t(c->rank)])}) {
            const auto a = reinterpret_cast<std::uintptr_t>(p);
            if (a < begin + size && begin < a + bytes) return true;
        }
    }
    return false;
}

void nccl_stop_rank(int rank, long at_call) {
    Lock lk(g_mu);
    g_stop_rank = rank;
    g_stop_at = at_call;
}

}  // namespace emu

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
    emu::Lock lk(emu::g_mu);
    std::memset(id->internal, 0, sizeof id->internal);
    const long v = g_next_id++;
    std::memcpy(id->internal, &v, sizeof v);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank,
                                    ncclConfig_t* config) {
    const bool blocking = !config || config->blocking != 0;
    {
        emu::Lock lk(emu::g_mu);
        *comm = nullptr;
        if (nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
        if (dies(rank, 0)) {
            emu::note("nccl", "rank %d died before ncclCommInitRank (emu::nccl_stop_rank)", rank);
            return ncclSystemError;
        }
        std::shared_ptr<Group>& g = g_groups[id_of(id)];
        if (!g) {
            g = std::make_shared<Group>();
            g->nranks = nranks;
            g->send.assign(std::size_t(nranks), nullptr);
            g->recv.assign(std::size_t(nranks), nullptr);
        }
        if (g->nranks != nranks) return ncclInvalidUsage;
        ++g->joined;
        *comm = new ncclComm{g, rank, emu::t_device, blocking};
        g_comms.insert(*comm);
        if (!blocking) return g->joined >= nranks ? ncclSuccess : ncclInProgress;
    }
    Group& g = *(*comm)->group;
    return wait_unlocked([&] { return g.joined >= g.nranks; }) ? ncclSuccess : ncclRemoteError;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
    return ncclCommInitRankConfig(comm, nranks, id, rank, nullptr);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
    emu::Lock lk(emu::g_mu);
    if (!comm || !g_comms.count(comm) || !async_error) return ncclInvalidArgument;
    const Group& g = *comm->group;
    const bool waiting = g.joined < g.nranks || busy(comm);
    if (waiting && g.peer_aborted)
        *async_error = ncclRemoteError;
    else if (g.joined < g.nranks || (comm->finalizing && busy(comm)))
        *async_error = ncclInProgress;
    else
        *async_error = ncclSuccess;
    return ncclSuccess;
}

namespace {

ncclResult_t end_comm(ncclComm_t comm, bool abort) {
    emu::Lock lk(emu::g_mu);
    if (!comm || !g_comms.count(comm)) return ncclInvalidArgument;
    Group& g = *comm->group;
    if (busy(comm)) {  // its posted buffers leave the collective being gathered
        g.send[std::size_t(comm->rank)] = nullptr;
        g.recv[std::size_t(comm->rank)] = nullptr;
        --g.arrived;
    }
    if (abort && !comm->dead) g.peer_aborted = true;  // a dead process tells nobody
    g_comms.erase(comm);
    delete comm;
    return ncclSuccess;
}

}  // namespace

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    return end_comm(comm, true);
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
    emu::Lock lk(emu::g_mu);
    if (!comm || !g_comms.count(comm)) return ncclInvalidArgument;
    comm->finalizing = true;
    if (!busy(comm)) return ncclSuccess;
    return comm->blocking ? ncclInvalidUsage : ncclInProgress;  // blocking: not emulated
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    return end_comm(comm, false);
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, std::size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
    {
        emu::Lock lk(emu::g_mu);
        if (!comm || !g_comms.count(comm) || datatype != ncclFloat || op != ncclSum)
            return ncclInvalidArgument;
        const std::size_t bytes = count * sizeof(float);
        ++emu::g_operations;
        const emu::Alloc* in = emu::device_range(sendbuff, bytes);
        const emu::Alloc* out = emu::device_range(recvbuff, bytes);
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
        Group& g = *comm->group;
        if (g.joined < g.nranks) {
            emu::report("nccl",
                        "ncclAllReduce on rank %d before every rank joined the communicator",
                        comm->rank);
            return ncclInvalidUsage;
        }
        if (busy(comm)) {
            emu::report("nccl",
                        "ncclAllReduce on rank %d while its previous one has not finished (the "
                        "emulator holds one collective in flight per communicator)",
                        comm->rank);
            return ncclInvalidUsage;
        }
        if (comm->dead || dies(comm->rank, ++comm->calls)) {
            comm->dead = true;
            emu::note("nccl", "rank %d died at its ncclAllReduce %ld (emu::nccl_stop_rank)",
                      comm->rank, comm->calls);
            return ncclSystemError;
        }
        if (g.arrived > 0 && g.count != count) {
            emu::report("nccl", "ncclAllReduce of %zu floats on rank %d, of %zu on another rank",
                        count, comm->rank, g.count);
            return ncclInvalidUsage;
        }
        g.count = count;
        g.send[std::size_t(comm->rank)] = sendbuff;
        g.recv[std::size_t(comm->rank)] = recvbuff;
        comm->stream = emu::as_stream(stream);
        ++comm->posted;
        if (++g.arrived == g.nranks) finish(g);
        if (!comm->blocking) return ncclSuccess;
    }
    return wait_unlocked([&] { return !busy(comm); }) ? ncclSuccess : ncclRemoteError;
}

const char* ncclGetErrorString(ncclResult_t result) {
    switch (result) {
        case ncclSuccess:
            return "no error";
        case ncclInvalidArgument:
            return "invalid argument";
        case ncclInvalidUsage:
            return "invalid usage";
        case ncclSystemError:
            return "unhandled system error (emulator: this rank died, emu::nccl_stop_rank)";
        case ncclRemoteError:
            return "remote process exited or there was a network error (emulator: a peer "
                   "aborted, or a blocking call waited 60 s)";
        case ncclUnhandledCudaError:
            return "unhandled cuda error";
        case ncclInProgress:
            return "NCCL operation in progress";
        default:
            return "NCCL error";
    }
}
