// minicnn/distributed.h — data-parallel training across processes: the communicator the trainer
// talks to, and the arithmetic of a rank's share of a global batch.
//
// One process per rank, launched by `mpirun -np N` (docs/training.md, "Multi-process training").
// Every rank holds the whole model and the same Adam state, draws the same epoch permutation, and
// takes its contiguous share of every global batch (share()); its gradient is the gradient of the
// global batch's mean loss restricted to its share, so the sum over the ranks (one all-reduce of
// the gradient arena per step) is the single-process gradient of the global batch, and the Adam
// step that follows is the same on every rank.
//
// Communicator is the seam (like host/cuda_ops.h for CUDA): host/distributed.cpp holds what every
// build shares (the single-process communicator, shares, the weights checksum), host/mpi/ the MPI
// implementation (a build with MPI), host/no_mpi/ the stand-in of a build without it. The trainer
// carries no #if: it asks the communicator for its rank and world size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace minicnn {

// The ranks of one training run and the collectives the trainer needs, on host memory. Every rank
// must make the same calls in the same order. A collective that gets no answer from some rank
// within the timeout throws Error (it never waits forever); MPI errors throw Error too.
class Communicator {
public:
    virtual ~Communicator() = default;

    virtual int rank() const = 0;
    virtual int size() const = 0;
    // Rank and number of ranks on this node (the GPU of a rank is its local rank).
    virtual int local_rank() const = 0;
    virtual int local_size() const = 0;
    // "single process", "MPI (Open MPI v4.1.4), 2 ranks".
    virtual std::string name() const = 0;

    // data[i] = the sum over the ranks of data[i], on every rank (in place).
    virtual void allreduce_sum(float* data, std::int64_t n) = 0;
    virtual void allreduce_sum(double* data, std::int64_t n) = 0;
    // root's bytes to every rank.
    virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
    // Every rank's value, indexed by rank, on every rank.
    virtual std::vector<std::uint64_t> allgather(std::uint64_t value) = 0;
    // How long a collective waits for the slowest rank before it throws (make_communicator's
    // timeout_s, --rank-timeout). The engine's own collectives (NCCL's all-reduce of a GPU rank,
    // cuda/nccl_allreduce.h) wait as long. 300 s unless the communicator says otherwise.
    virtual double timeout_s() const { return 300.0; }
    // Ends every rank of the run now, with this exit status (MPI_Abort): called by a rank that
    // failed, after it has reported why, so that the others do not wait for it. Returns only for a
    // single process.
    virtual void abort(int exit_code) noexcept = 0;
};

// The communicator of a single process: rank 0 of 1, collectives leave their data as it is. The
// shared one, and a new one.
Communicator& single_process();
std::unique_ptr<Communicator> make_single_process();

// The communicator of this process: MPI's world when the process was started by an MPI launcher
// (mpirun sets OMPI_COMM_WORLD_SIZE, Hydra and Slurm PMI_SIZE) and the build has MPI; otherwise
// the single process. In a build without MPI, a launch with more than one rank is an Error (the
// ranks would each train alone and write the same files). `timeout_s`: how long a collective waits
// for the slowest rank before it throws. At most one MPI communicator exists per process
// (MPI_Finalize runs when it is destroyed).
std::unique_ptr<Communicator> make_communicator(double timeout_s = 300.0);
// Whether this build has MPI.
bool mpi_built();
// The number of ranks an MPI launcher started this process among (OMPI_COMM_WORLD_SIZE, else
// PMI_SIZE), or 1 when no launcher's variables are set; and this process's rank among them
// (OMPI_COMM_WORLD_RANK, else PMI_RANK; 0 when none). Read from the environment: no MPI call.
int launcher_ranks();
int launcher_rank();

// Rank `rank`'s share of a global batch of `batch` samples over `ranks` ranks: samples [begin,
// begin + count) of the batch, contiguous, in rank order; the counts differ by at most one (the
// shorter last batch of an epoch need not divide evenly) and may be 0.
struct Share {
    std::int64_t begin = 0, count = 0;
};
Share share(std::int64_t batch, int rank, int ranks);

// A 64-bit checksum (FNV-1a) of n floats' bytes: equal weights give equal checksums.
std::uint64_t weights_checksum(const float* data, std::int64_t n);

// Throws Error naming every rank whose checksum differs from rank 0's (checksums: by rank).
void check_same_checksum(const std::vector<std::uint64_t>& checksums, const std::string& when);

}  // namespace minicnn
