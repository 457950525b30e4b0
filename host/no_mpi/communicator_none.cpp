// host/no_mpi/communicator_none.cpp — the communicator seam (minicnn/distributed.h) in a build
// without MPI: every process is a single process. Started by mpirun with more than one rank, it
// refuses to train, since each rank would train alone and write the same files. Linked instead of
// host/mpi/communicator_mpi.cpp (CMakeLists.txt).
#include <memory>
#include <string>

#include "minicnn/distributed.h"
#include "minicnn/error.h"

namespace minicnn {

bool mpi_built() {
    return false;
}

std::unique_ptr<Communicator> make_communicator(double) {
    const int ranks = launcher_ranks();
    if (ranks > 1) {
        throw Error("started as one of " + std::to_string(ranks) +
                    " MPI ranks, but minicnn was built without MPI (install libopenmpi-dev and "
                    "configure again)");
    }
    return make_single_process();
}

}  // namespace minicnn
