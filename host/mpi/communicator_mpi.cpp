// host/mpi/communicator_mpi.cpp — the communicator (minicnn/distributed.h) over MPI, in a build
// with MPI (CMakeLists.txt: find_package(MPI)); host/no_mpi/communicator_none.cpp otherwise.
//
// MPI is initialised only when a launcher started the process (launcher_ranks() sees its
// variables); a plain `minicnn train` never touches MPI. The communicator works on a duplicate of
// MPI_COMM_WORLD whose errors return (MPI_ERRORS_RETURN) instead of aborting, and every collective
// is non-blocking (MPI_Iallreduce, ...) and waited for with a deadline: a rank that died, hangs or
// failed before a collective makes the others throw a one-line Error after timeout_s at most, and
// the program then ends the run with abort() (MPI_Abort). (mpirun itself also ends the job when a
// rank exits with a non-zero status or is killed; the deadline covers the cases it does not see,
// such as a rank that stops without exiting.)
#include <mpi.h>
#include <time.h>

#include <chrono>
#include <climits>
#include <memory>
#include <sstream>
#include <string>

#include "minicnn/distributed.h"
#include "minicnn/error.h"

namespace minicnn {

namespace {

std::string mpi_error(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        return "MPI error " + std::to_string(code);
    return std::string(text, std::size_t(len));
}

class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
        int initialised = 0;
        MPI_Initialized(&initialised);
        MINICNN_REQUIRE(!initialised,
                        "make_communicator: MPI is initialised already (one MPI "
                        "communicator per process)");
        if (MPI_Init(nullptr, nullptr) != MPI_SUCCESS) throw Error("MPI_Init failed");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
        MPI_Comm node;
        check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
        MPI_Comm_rank(node, &local_rank_);
        MPI_Comm_size(node, &local_size_);
        MPI_Comm_free(&node);
        char version[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(version, &len);
        library_.assign(version, std::size_t(len));
        library_ = library_.substr(0, library_.find_first_of(",\n"));
    }
    ~MpiCommunicator() override {
        // After a collective that never finished, MPI_Finalize could wait for it forever: leave
        // MPI as it is (the program aborts the run in that case).
        if (broken_) return;
        MPI_Comm_free(&comm_);
        MPI_Finalize();
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    int local_size() const override { return local_size_; }
    double timeout_s() const override { return timeout_s_; }
    std::string name() const override {
        return "MPI (" + library_ + "), " + std::to_string(size_) + " ranks";
    }

    void allreduce_sum(float* data, std::int64_t n) override {
        MPI_Request req;
        check(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, comm_, &req),
              "MPI_Iallreduce");
        wait(req, "the all-reduce of the gradients");
    }
    void allreduce_sum(double* data, std::int64_t n) override {
        MPI_Request req;
        check(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_DOUBLE, MPI_SUM, comm_, &req),
              "MPI_Iallreduce");
        wait(req, "the all-reduce of the metrics");
    }
    void broadcast(void* data, std::size_t bytes, int root) override {
        MPI_Request req;
        check(MPI_Ibcast(data, count(std::int64_t(bytes)), MPI_BYTE, root, comm_, &req),
              "MPI_Ibcast");
        wait(req, "a broadcast from rank " + std::to_string(root));
    }
    std::vector<std::uint64_t> allgather(std::uint64_t value) override {
        std::vector<std::uint64_t> all(std::size_t(size_), 0);
        MPI_Request req;
        check(MPI_Iallgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_, &req),
              "MPI_Iallgather");
        wait(req, "the comparison of the weights' checksums");
        return all;
    }
    void abort(int exit_code) noexcept override {
        broken_ = true;
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }

private:
    int count(std::int64_t n) const {
        MINICNN_REQUIRE(n >= 0 && n <= INT_MAX,
                        "MPI collective of " << n << " elements: at most " << INT_MAX);
        return int(n);
    }
    void check(int rc, const char* what) {
        if (rc == MPI_SUCCESS) return;
        broken_ = true;
        throw Error(std::string(what) + " failed: " + mpi_error(rc));
    }
    // Tests the request until it completes: a tight loop for the first millisecond (a step's
    // all-reduce usually completes within it), then every 50 us, until timeout_s.
    void wait(MPI_Request& req, const std::string& what) {
        using Clock = std::chrono::steady_clock;
        const auto t0 = Clock::now();
        for (long polls = 0;; ++polls) {
            int done = 0;
            check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
            if (done) return;
            const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
            if (waited > timeout_s_) {
                broken_ = true;
                std::ostringstream os;
                os << "no answer from the other ranks within " << timeout_s_ << " s in " << what
                   << " (a rank died, hangs or failed)";
                throw Error(os.str());
            }
            if (waited > 1e-3) {
                const timespec ts{0, 50000};
                nanosleep(&ts, nullptr);
            }
        }
    }

    double timeout_s_;
    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
    std::string library_;
    bool broken_ = false;
};

}  // namespace

bool mpi_built() {
    return true;
}

std::unique_ptr<Communicator> make_communicator(double timeout_s) {
    MINICNN_REQUIRE(timeout_s > 0, "make_communicator: timeout_s must be > 0, got " << timeout_s);
    if (launcher_ranks() <= 1) return make_single_process();
    return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace minicnn
