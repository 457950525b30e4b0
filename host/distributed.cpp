// host/distributed.cpp — what every build shares of data-parallel training (minicnn/distributed.h):
// the single-process communicator, a rank's share of a global batch, the weights checksum and its
// comparison, and Engine::make_allreduce for engines whose memory is host memory (the CPU engine).
// The MPI communicator is host/mpi/communicator_mpi.cpp; a build without MPI links
// host/no_mpi/communicator_none.cpp instead (CMakeLists.txt).
#include "minicnn/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "minicnn/engine.h"
#include "minicnn/error.h"

namespace minicnn {

namespace {

class SingleProcess final : public Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int local_rank() const override { return 0; }
    int local_size() const override { return 1; }
    std::string name() const override { return "single process"; }
    void allreduce_sum(float*, std::int64_t) override {}
    void allreduce_sum(double*, std::int64_t) override {}
    void broadcast(void*, std::size_t, int root) override {
        MINICNN_REQUIRE(root == 0, "broadcast: root " << root << " of a single process");
    }
    std::vector<std::uint64_t> allgather(std::uint64_t value) override { return {value}; }
    void abort(int) noexcept override {}
};

// The all-reduce of an engine whose memory the host reads and writes directly.
class HostAllReduce final : public EngineAllReduce {
public:
    HostAllReduce(Engine& engine, Communicator& comm) : engine_(&engine), comm_(&comm) {}
    void sum(float* data, std::int64_t n) override {
        engine_->synchronize();
        comm_->allreduce_sum(data, n);
    }

private:
    Engine* engine_;
    Communicator* comm_;
};

std::string hex64(std::uint64_t v) {
    std::ostringstream os;
    os << "0x" << std::hex << std::setw(16) << std::setfill('0') << v;
    return os.str();
}

}  // namespace

namespace {

// The first of the variables that is set, as an integer >= min_value; fallback when none is.
int env_int(std::initializer_list<const char*> vars, int min_value, int fallback) {
    for (const char* var : vars) {
        const char* v = std::getenv(var);
        if (v != nullptr && *v != '\0') return std::max(min_value, std::atoi(v));
    }
    return fallback;
}

}  // namespace

int launcher_ranks() {
    return env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}, 1, 1);
}

int launcher_rank() {
    return env_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK"}, 0, 0);
}

Communicator& single_process() {
    static SingleProcess comm;
    return comm;
}

std::unique_ptr<Communicator> make_single_process() {
    return std::make_unique<SingleProcess>();
}

std::unique_ptr<EngineAllReduce> Engine::make_allreduce(Communicator& comm) {
    return std::make_unique<HostAllReduce>(*this, comm);
}

Share share(std::int64_t batch, int rank, int ranks) {
    MINICNN_REQUIRE(ranks >= 1 && rank >= 0 && rank < ranks && batch >= 0,
                    "share: rank " << rank << " of " << ranks << ", batch " << batch);
    const std::int64_t begin = batch * rank / ranks;
    return {begin, batch * (rank + 1) / ranks - begin};
}

std::uint64_t weights_checksum(const float* data, std::int64_t n) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const auto* bytes = reinterpret_cast<const unsigned char*>(data);
    for (std::int64_t i = 0; i < n * std::int64_t(sizeof(float)); ++i) {
        h ^= bytes[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void check_same_checksum(const std::vector<std::uint64_t>& checksums, const std::string& when) {
    std::ostringstream bad;
    int n_bad = 0;
    for (std::size_t r = 1; r < checksums.size(); ++r) {
        if (checksums[r] == checksums[0]) continue;
        bad << (n_bad++ ? ", " : "") << "rank " << r << " (" << hex64(checksums[r]) << ")";
    }
    if (n_bad == 0) return;
    throw Error("the ranks' weights differ " + when + ": " + bad.str() + " against rank 0 (" +
                hex64(checksums[0]) + "); the ranks must stay bit-identical");
}

}  // namespace minicnn
