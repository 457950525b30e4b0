// tests/test_distributed.cpp — data-parallel training (minicnn/distributed.h, Trainer with a
// Communicator), in two ways:
//   - in one process, with ranks as threads (ThreadComm below: the collectives over shared memory,
//     summing in rank order like an MPI all-reduce): shares of a global batch, the weights checksum
//     and its error naming the ranks, 2 ranks ending bit-identical to each other and within
//     tolerance of one process on the same global batches (an uneven last batch, and one smaller
//     than the ranks, included), a rank that never arrives making the others throw. Always runs.
//   - the CUDA engine's NCCL all-reduce: 2 GPU ranks (threads) against 2 CPU ranks (on the CUDA
//     emulator without a GPU, whose NCCL is emulated; skipped with the reason where neither is);
//     a GPU rank whose peer dies before NCCL's initialisation or mid-training ends within the
//     rank timeout with an error naming the rank and the collective (emulator only: it kills the
//     peer);
//   - the minicnn program under mpirun (MPI build, MINICNN_MPIEXEC found; skipped with the reason
//     otherwise): 2 ranks against 1 process, the JSON's world_size, rank 0 alone printing; a
//     2-rank checkpoint resumed on 1 process; a global batch that does not divide (usage error,
//     status 2); a rank killed with SIGKILL (mpirun ends the others, which say so) and a rank
//     stopped with SIGSTOP (the others' deadline) end the run with an error within a bounded time
//     and the last checkpoint intact.
#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "minicnn/checkpoint.h"
#include "minicnn/device.h"
#include "minicnn/distributed.h"
#include "minicnn/error.h"
#include "minicnn/model.h"
#include "minicnn/trainer.h"
#include "process_util.h"
#include "synthetic_data.h"
#if defined(MINICNN_CUDA_EMULATOR)
#include <nccl.h>  // emu::nccl_stop_rank
#endif

namespace minicnn {
namespace {

// ---- ranks as threads ---------------------------------------------------------------------------

// What the threads of one run share: every collective is an exchange of each rank's bytes.
class ThreadGroup {
public:
    explicit ThreadGroup(int size, double timeout_s = 20)
        : size_(size), timeout_s_(timeout_s), slots_(std::size_t(size)) {}
    int size() const { return size_; }
    double timeout_s() const { return timeout_s_; }

    // Every rank's bytes, by rank, once every rank has called it; Error after timeout_s without
    // them.
    std::vector<std::vector<char>> exchange(int rank, const void* p, std::size_t bytes) {
        std::unique_lock<std::mutex> lock(mu_);
        const char* c = static_cast<const char*>(p);
        slots_[std::size_t(rank)].assign(c, c + bytes);
        const long gen = generation_;
        if (++arrived_ == size_) {
            result_ = slots_;
            arrived_ = 0;
            ++generation_;
            cv_.notify_all();
        } else if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout_s_),
                                 [&] { return generation_ != gen; })) {
            std::ostringstream os;
            os << "no answer from the other ranks within " << timeout_s_ << " s";
            throw Error(os.str());
        }
        return result_;
    }

private:
    int size_;
    double timeout_s_;
    std::mutex mu_;
    std::condition_variable cv_;
    int arrived_ = 0;
    long generation_ = 0;
    std::vector<std::vector<char>> slots_, result_;
};

class ThreadComm final : public Communicator {
public:
    ThreadComm(ThreadGroup& g, int rank) : g_(&g), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return g_->size(); }
    int local_rank() const override { return rank_; }
    int local_size() const override { return g_->size(); }
    std::string name() const override { return "threads"; }
    double timeout_s() const override { return g_->timeout_s(); }
    void allreduce_sum(float* d, std::int64_t n) override { sum(d, n); }
    void allreduce_sum(double* d, std::int64_t n) override { sum(d, n); }
    void broadcast(void* d, std::size_t bytes, int root) override {
        const auto all = g_->exchange(rank_, d, bytes);
        std::memcpy(d, all[std::size_t(root)].data(), bytes);
    }
    std::vector<std::uint64_t> allgather(std::uint64_t v) override {
        std::vector<std::uint64_t> out;
        for (const auto& b : g_->exchange(rank_, &v, sizeof v)) {
            std::uint64_t x;
            std::memcpy(&x, b.data(), sizeof x);
            out.push_back(x);
        }
        return out;
    }
    void abort(int) noexcept override {}

private:
    template <class T>
    void sum(T* d, std::int64_t n) {  // in rank order, the same on every rank
        const auto all = g_->exchange(rank_, d, std::size_t(n) * sizeof(T));
        for (std::int64_t i = 0; i < n; ++i) {
            T s = 0;
            for (const auto& b : all) {
                T x;
                std::memcpy(&x, b.data() + i * std::int64_t(sizeof(T)), sizeof(T));
                s += x;
            }
            d[i] = s;
        }
    }
    ThreadGroup* g_;
    int rank_;
};

// What one rank ends with.
struct RankResult {
    std::vector<float> params;
    History history;
    std::string error;
    std::chrono::steady_clock::time_point failed_at;  // when the error was caught
};

// Trains LeNet-5 (seed 7) on `train` with `ranks` thread ranks, rank r on the CPU or on GPU r;
// `tweak` runs in each rank's on_epoch_end; `timeout_s`: the communicator's rank timeout.
std::vector<RankResult> train_ranks(int ranks, const test::Squares& train, const test::Squares* val,
                                    FitOptions opt,
                                    std::function<void(int, Trainer&, const EpochLog&)> tweak = {},
                                    bool gpu = false, double timeout_s = 20) {
    ThreadGroup group(ranks, timeout_s);
    std::vector<RankResult> out(static_cast<std::size_t>(ranks));
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r) {
        threads.emplace_back([&, r] {
            RankResult& res = out[std::size_t(r)];
            try {
                ThreadComm comm(group, r);
                Sequential model = lenet5(7);
                Trainer t(model, gpu ? Device::cuda(r) : Device::cpu(), &comm);
                FitOptions o = opt;
                if (tweak) o.on_epoch_end = [&](const EpochLog& e) { tweak(r, t, e); };
                const DataView v = val ? val->view() : DataView{};
                res.history = t.fit(train.view(), val ? &v : nullptr, o);
                t.pull_params();
                res.params = model.params();
            } catch (const std::exception& e) {
                res.failed_at = std::chrono::steady_clock::now();
                res.error = e.what();
            }
        });
    }
    for (std::thread& t : threads) t.join();
    return out;
}

// |got - ref| <= atol + rtol |ref| for every element; the worst one on failure.
void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double atol,
                  double rtol, const std::string& what) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    std::size_t worst = 0;
    double worst_excess = -1;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double excess =
            std::fabs(double(got[i]) - ref[i]) - (atol + rtol * std::fabs(ref[i]));
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    EXPECT_LE(worst_excess, 0.0) << what << ": worst element " << worst << ": got " << got[worst]
                                 << ", expected " << ref[worst];
}

TEST(Distributed, SharesAreContiguousAndDifferByAtMostOne) {
    for (int ranks = 1; ranks <= 5; ++ranks) {
        for (std::int64_t batch = 0; batch <= 13; ++batch) {
            std::int64_t next = 0;
            for (int r = 0; r < ranks; ++r) {
                const Share s = share(batch, r, ranks);
                EXPECT_EQ(s.begin, next) << batch << " over " << ranks << ", rank " << r;
                EXPECT_GE(s.count, batch / ranks);
                EXPECT_LE(s.count, batch / ranks + 1);
                next = s.begin + s.count;
            }
            EXPECT_EQ(next, batch);
        }
    }
    EXPECT_THROW(share(8, 2, 2), ArgumentError);
}

TEST(Distributed, ChecksumMismatchNamesTheRanks) {
    const std::vector<float> a{1.0f, 2.0f, 3.0f}, b{1.0f, 2.0f, 3.0000002f};
    const std::uint64_t ca = weights_checksum(a.data(), 3), cb = weights_checksum(b.data(), 3);
    EXPECT_NE(ca, cb);
    EXPECT_NO_THROW(check_same_checksum({ca, ca, ca}, "after epoch 1"));
    try {
        check_same_checksum({ca, ca, cb, cb}, "after epoch 3");
        FAIL() << "a mismatch must throw";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("after epoch 3"), std::string::npos) << m;
        EXPECT_NE(m.find("rank 2"), std::string::npos) << m;
        EXPECT_NE(m.find("rank 3"), std::string::npos) << m;
        EXPECT_EQ(m.find("rank 1"), std::string::npos) << m;
    }
}

TEST(Distributed, SingleProcessCommunicatorWithoutALauncher) {
    if (launcher_ranks() > 1) GTEST_SKIP() << "this test process was started by an MPI launcher";
    const auto c = make_communicator();
    EXPECT_EQ(c->size(), 1);
    EXPECT_EQ(c->rank(), 0);
    double d[2] = {1.5, 2.5};
    c->allreduce_sum(d, 2);
    EXPECT_EQ(d[0], 1.5);
    EXPECT_EQ(c->allgather(42), std::vector<std::uint64_t>{42});
}

// Started by mpirun as one of 2 ranks (here: its variable), a build without MPI refuses to train
// rather than have each rank train alone and write the same files.
TEST(Distributed, ABuildWithoutMpiRefusesToTrainAsOneOfManyRanks) {
    if (mpi_built()) GTEST_SKIP() << "this build has MPI";
    const std::string s = test::make_scratch_dir("no_mpi");
    test::write_idx_dataset(s + "/data", 40, 10, 5);
    const test::Result r = test::wait_child(test::spawn_program(
        {"/usr/bin/env", "OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=1", test::minicnn_binary(),
         "train", "--data", s + "/data", "--device", "cpu", "--epochs", "1", "--validation", "10"},
        s + "/out", s + "/err"));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err,
              "minicnn train (rank 1 of 2): error: started as one of 2 MPI ranks, but "
              "minicnn was built without MPI (install libopenmpi-dev and configure again)\n");
}

// 2 and 3 ranks against one process on the same global batches: 70 images at batch 12 end each
// epoch with a batch of 10 (shares 5 + 5; 4 + 3 + 3), 61 at batch 12 with a batch of 1 (an empty
// share on rank 0, and on rank 1 of 3).
TEST(Distributed, RanksStayIdenticalAndMatchOneProcess) {
    for (const std::int64_t n : {70, 61}) {
        const test::Squares train = test::squares(n, 3), val = test::squares(17, 4);
        FitOptions opt;
        opt.epochs = 2;
        opt.batch_size = 12;
        opt.seed = 5;
        const std::vector<RankResult> one = train_ranks(1, train, &val, opt);
        ASSERT_EQ(one[0].error, "");
        for (const int ranks : {2, 3}) {
            const std::vector<RankResult> many = train_ranks(ranks, train, &val, opt);
            const std::string what =
                std::to_string(ranks) + " ranks, " + std::to_string(n) + " images";
            for (int r = 0; r < ranks; ++r) {
                ASSERT_EQ(many[std::size_t(r)].error, "") << what << ", rank " << r;
                EXPECT_EQ(many[std::size_t(r)].params, many[0].params)
                    << what << ": rank " << r << " differs from rank 0";
            }
            // Two epochs of Adam from the same start: float sums in another order.
            expect_close(many[0].params, one[0].params, 2e-4, 1e-3, what);
            ASSERT_EQ(many[0].history.epochs.size(), 2u);
            for (std::size_t e = 0; e < 2; ++e) {
                const EpochLog &m = many[0].history.epochs[e], &o = one[0].history.epochs[e];
                EXPECT_NEAR(m.loss, o.loss, 1e-4) << what << ", epoch " << e + 1;
                EXPECT_NEAR(m.accuracy, o.accuracy, 1e-9) << what << ", epoch " << e + 1;
                EXPECT_NEAR(m.val_loss, o.val_loss, 1e-4) << what << ", epoch " << e + 1;
                EXPECT_EQ(m.steps, o.steps);
            }
        }
    }
}

TEST(Distributed, GlobalBatchThatDoesNotDivideIsAnArgumentError) {
    const test::Squares train = test::squares(20, 3);
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 9;
    const std::vector<RankResult> r = train_ranks(2, train, nullptr, opt);
    for (const RankResult& x : r) {
        EXPECT_NE(x.error.find("does not divide among 2 ranks"), std::string::npos) << x.error;
    }
}

// A rank whose weights drift (here: changed by hand after epoch 1) is caught at the next epoch's
// end, on every rank, by name.
TEST(Distributed, WeightsThatDriftApartAreAnErrorNamingTheRank) {
    const test::Squares train = test::squares(40, 3);
    FitOptions opt;
    opt.epochs = 3;
    opt.batch_size = 9;
    const std::vector<RankResult> r =
        train_ranks(3, train, nullptr, opt, [](int rank, Trainer& t, const EpochLog& e) {
            if (rank != 1 || e.epoch != 1) return;
            t.pull_params();
            t.model().params()[100] += 1e-3f;
            t.push_params();
        });
    for (int k = 0; k < 3; ++k) {
        const std::string& m = r[std::size_t(k)].error;
        EXPECT_NE(m.find("the ranks' weights differ after epoch 2: rank 1 ("), std::string::npos)
            << "rank " << k << ": " << m;
        EXPECT_EQ(m.find("rank 2"), std::string::npos) << m;
    }
}

// The CUDA engine's NCCL all-reduce (cuda/nccl/allreduce_nccl.cpp): 2 ranks on GPUs 0 and 1
// against 2 ranks on the CPU, on an uneven last batch (18 images at batch 8: shares 1 + 1).
// Without a GPU this runs on the CUDA emulator (tests/emu/run.sh), whose NCCL is emulated.
TEST(CudaDistributed, TwoGpuRanksSumWithNcclLikeTwoCpuRanks) {
    if (cuda_device_count() < 2) {
        GTEST_SKIP() << "needs 2 GPUs, found " << cuda_device_count() << ": "
                     << cuda_unavailable_reason();
    }
    if (!MINICNN_TEST_NCCL) GTEST_SKIP() << "this CUDA build has no NCCL";
    const test::Squares train = test::squares(18, 3), val = test::squares(5, 4);
    FitOptions opt;
    opt.epochs = 1;
    opt.batch_size = 8;
    const std::vector<RankResult> cpu = train_ranks(2, train, &val, opt);
    const std::vector<RankResult> gpu = train_ranks(2, train, &val, opt, {}, true);
    for (int r = 0; r < 2; ++r) {
        ASSERT_EQ(cpu[std::size_t(r)].error, "") << "CPU rank " << r;
        ASSERT_EQ(gpu[std::size_t(r)].error, "") << "GPU rank " << r;
    }
    // Exact: both GPU ranks apply the same kernels to the same all-reduced gradients (the
    // emulated NCCL sums in rank order once and hands every rank the same bits).
    EXPECT_EQ(gpu[1].params, gpu[0].params) << "the GPU ranks differ";
    // One epoch of 18 images at batch 8 is 3 Adam steps: Adam's rule (tests/engine_test_util.h),
    // not every weight within a tight bound (a weight whose gradient is within the engines'
    // rounding of zero may step either way). The tight bound for the others: each of the 3
    // updates rounds the weight once (3 u |w| << 1e-4 |w|) and moves it by lr m^ / sqrt(v^), a
    // ratio whose few-u relative error costs a few u * lr << 1e-5.
    enginetest::expect_adam_weights_close(gpu[0].params, cpu[0].params, AdamConfig{}.lr, 3, 1e-5,
                                          1e-4, "GPU ranks against CPU ranks");
    // The mean losses (~2.3) differ by the engines' forward rounding (relative ~1e-6: [R32] of
    // tests/test_util.h per layer, He-normal layers of scale ~1) and by the loose weights above,
    // whose gradient, hence effect on the loss, is ~0: well under 1e-5.
    EXPECT_NEAR(gpu[0].history.epochs[0].loss, cpu[0].history.epochs[0].loss, 1e-5);
    EXPECT_NEAR(gpu[0].history.epochs[0].val_loss, cpu[0].history.epochs[0].val_loss, 1e-5);
}

// A GPU rank whose peer never arrives (it died, or stopped) ends within the rank timeout with one
// line naming the rank, the collective and the timeout, as CPU ranks under MPI do
// (cuda/nccl/allreduce_nccl.cpp: a non-blocking communicator, polled with a deadline, aborted).
// The emulated NCCL makes rank 1 die at NCCL call `stop_at` (emu::nccl_stop_rank: 0 its
// ncclCommInitRankConfig, k its k-th ncclAllReduce); rank 0, with a rank timeout of 2 s, must say
// `expected`. Runs on the CUDA emulator only: a dead peer is its test hook.
void expect_gpu_rank_times_out(long stop_at, const std::string& expected) {
    if (cuda_device_count() < 2) {
        GTEST_SKIP() << "needs 2 GPUs, found " << cuda_device_count() << ": "
                     << cuda_unavailable_reason();
    }
    if (!MINICNN_TEST_NCCL) GTEST_SKIP() << "this CUDA build has no NCCL";
#if !defined(MINICNN_CUDA_EMULATOR)
    (void)stop_at;
    (void)expected;
    GTEST_SKIP() << "a peer that dies is modelled by the CUDA emulator's NCCL "
                    "(emu::nccl_stop_rank; tests/emu/run.sh 'CudaDistributed*')";
#else
    const test::Squares train = test::squares(40, 3);
    FitOptions opt;
    opt.epochs = 2;
    opt.batch_size = 8;  // 5 steps per epoch
    struct Hook {
        explicit Hook(long at) { emu::nccl_stop_rank(1, at); }
        ~Hook() { emu::nccl_stop_rank(-1, 0); }
    } hook(stop_at);
    // The test's own bound: a hang is a failure, not a stuck test run.
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<RankResult> r;
    std::thread run([&] { r = train_ranks(2, train, nullptr, opt, {}, true, 2.0); });
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread watchdog([&] {
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return done; })) {
            std::fprintf(stderr, "the GPU ranks did not end within 60 s: NCCL hangs\n");
            std::abort();
        }
    });
    run.join();
    {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
    }
    cv.notify_all();
    watchdog.join();
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Rank 0 gave up this long after rank 1 died: at most the rank timeout (and some slack), and
    // not before (an earlier step's wait that timed out). Its wait may have begun before the death.
    const double waited = std::chrono::duration<double>(r[0].failed_at - r[1].failed_at).count();
    std::cout << "[          ] rank 0 ended " << waited << " s after rank 1 died (the run took "
              << took << " s); rank 0: " << r[0].error << "\n[          ] rank 1: " << r[1].error
              << "\n";
    EXPECT_EQ(r[0].error, expected);
    EXPECT_NE(r[1].error.find("NCCL error unhandled system error (emulator: this rank died"),
              std::string::npos)
        << r[1].error;
    EXPECT_GT(waited, 0.0) << "rank 0 gave up before rank 1 died";
    EXPECT_LT(waited, 10.0) << "rank 0 waited far longer than its 2 s rank timeout";
    EXPECT_GE(took, 2.0);
#endif
}

TEST(CudaDistributed, APeerThatNeverJoinsNcclEndsTheRunWithinTheRankTimeout) {
    expect_gpu_rank_times_out(0,
                              "rank 0: no answer from the other ranks within 2 s in the NCCL "
                              "communicator's initialisation, ncclCommInitRankConfig (a rank died, "
                              "hangs or failed); the NCCL communicator was aborted");
}

TEST(CudaDistributed, APeerThatStopsMidTrainingEndsTheRunWithinTheRankTimeout) {
    expect_gpu_rank_times_out(3,
                              "rank 0: no answer from the other ranks within 2 s in the all-reduce "
                              "of the gradients, ncclAllReduce (a rank died, hangs or failed); the "
                              "NCCL communicator was aborted");
}

// ---- the minicnn program under mpirun -----------------------------------------------------------

class Mpi : public ::testing::Test {
protected:
    void SetUp() override {
        if (!mpi_built())
            GTEST_SKIP() << "this build has no MPI (configure found no libopenmpi-dev)";
        if (std::string(MINICNN_MPIEXEC).empty() || !test::file_exists(MINICNN_MPIEXEC)) {
            GTEST_SKIP() << "no mpirun was found at configure time (Debian: openmpi-bin)";
        }
        scratch_ = test::make_scratch_dir(
            std::string("mpi_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
        data_ = scratch_ + "/data";
        test::write_idx_dataset(data_, 200, 40, 21);
    }

    // mpirun -np `ranks` minicnn args... (root allowed, oversubscribed, shared memory only), in a
    // process group of its own.
    test::Child spawn(int ranks, const std::vector<std::string>& args, const std::string& tag) {
        std::vector<std::string> argv{MINICNN_MPIEXEC,
                                      "--allow-run-as-root",
                                      "--oversubscribe",
                                      "--mca",
                                      "btl",
                                      "self,vader",
                                      "-np",
                                      std::to_string(ranks),
                                      test::minicnn_binary()};
        argv.insert(argv.end(), args.begin(), args.end());
        return test::spawn_program(argv, scratch_ + "/" + tag + ".out",
                                   scratch_ + "/" + tag + ".err", 0, true);
    }

    test::Result run(int ranks, const std::vector<std::string>& args, const std::string& tag) {
        return test::wait_child_for(spawn(ranks, args, tag), 60);
    }

    std::vector<std::string> train_args(int epochs, const std::string& ckpt) const {
        return {"train",
                "--data",
                data_,
                "--device",
                "cpu",
                "--epochs",
                std::to_string(epochs),
                "--batch-size",
                "16",
                "--validation",
                "40",
                "--seed",
                "3",
                "--checkpoint",
                ckpt};
    }

    // The pid of rank `rank` among mpirun `c`'s children (OMPI_COMM_WORLD_RANK in its environment).
    static pid_t rank_pid(const test::Child& c, int rank) {
        DIR* d = ::opendir("/proc");
        pid_t found = -1;
        while (dirent* e = d ? ::readdir(d) : nullptr) {
            const pid_t pid = pid_t(std::atoi(e->d_name));
            if (pid <= 0) continue;
            std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
            std::string line;
            std::getline(stat, line);
            const std::size_t close = line.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream rest(line.substr(close + 2));
            char state;
            pid_t ppid = 0;
            rest >> state >> ppid;
            if (ppid != c.pid) continue;
            const std::string env =
                test::slurp_file("/proc/" + std::string(e->d_name) + "/environ");
            if (env.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') !=
                std::string::npos) {
                found = pid;
            }
        }
        if (d) ::closedir(d);
        return found;
    }

    static std::vector<float> params_of(const std::string& ckpt) {
        const Checkpoint ck = load_checkpoint(ckpt);
        const CheckpointArray& a = ck.array("params");
        std::vector<float> v(a.bytes.size() / sizeof(float));
        std::memcpy(v.data(), a.bytes.data(), a.bytes.size());
        return v;
    }

    // The lines of a run's stderr that the program wrote (each starts with "minicnn", tools/cli.cpp):
    // mpirun and the libraries under it may write their own there (hwloc warns where /sys has no
    // CPU topology; Open MPI's banners), which these tests do not judge.
    static std::string program_lines(const std::string& err) {
        std::string mine;
        std::istringstream in(err);
        for (std::string line; std::getline(in, line);)
            if (line.rfind("minicnn", 0) == 0) mine += line + "\n";
        return mine;
    }

    static int count(const std::string& s, const std::string& needle) {
        int n = 0;
        for (std::size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
        return n;
    }

    std::string scratch_, data_;
};

TEST_F(Mpi, TwoRanksMatchOneProcessAndRankZeroAloneWrites) {
    const std::string c1 = scratch_ + "/one.ckpt", c2 = scratch_ + "/two.ckpt";
    std::vector<std::string> a1 = train_args(2, c1), a2 = train_args(2, c2);
    a1.insert(a1.end(), {"--json", scratch_ + "/one.json", "--metrics", scratch_ + "/one.csv"});
    a2.insert(a2.end(), {"--json", scratch_ + "/two.json", "--metrics", scratch_ + "/two.csv"});
    const test::Result one = run(1, a1, "one");
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const test::Result two = run(2, a2, "two");
    ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
    EXPECT_EQ(program_lines(two.err), "") << two.err;
    // Rank 0 alone prints: one summary, one line per epoch, one test line.
    EXPECT_EQ(count(two.out, "Epoch 2/2 - 10 steps"), 1) << two.out;
    EXPECT_EQ(count(two.out, "Test: loss"), 1) << two.out;
    EXPECT_NE(two.out.find("2 ranks; global batch 16, 8 per rank"), std::string::npos) << two.out;
    EXPECT_NE(test::slurp_file(scratch_ + "/two.json").find("\"world_size\": 2"),
              std::string::npos);
    EXPECT_NE(test::slurp_file(scratch_ + "/one.json").find("\"world_size\": 1"),
              std::string::npos);
    EXPECT_EQ(test::line_count(test::slurp_file(scratch_ + "/two.csv")), 3);
    // The ranks compared their weights' checksums after each epoch (or the run would have
    // failed); against one process, the sums ran in another order.
    expect_close(params_of(c2), params_of(c1), 2e-4, 1e-3, "2 ranks against 1 process");
}

TEST_F(Mpi, ATwoRankCheckpointResumesOnOneProcess) {
    const std::string c1 = scratch_ + "/one.ckpt", c2 = scratch_ + "/two.ckpt";
    ASSERT_EQ(run(1, train_args(2, c1), "one").exit_code, 0);
    const test::Result first = run(2, train_args(1, c2), "two");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    std::vector<std::string> resume = train_args(2, c2);
    resume.push_back("--resume");
    const test::Result second = run(1, resume, "resume");
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_NE(second.out.find("Resuming from " + c2 + " after epoch 1"), std::string::npos)
        << second.out;
    EXPECT_EQ(load_checkpoint(c2).get("epochs_done"), "2");
    expect_close(params_of(c2), params_of(c1), 2e-4, 1e-3, "2 ranks, then 1, against 1");
}

TEST_F(Mpi, GlobalBatchThatDoesNotDivideIsOneUsageLine) {
    std::vector<std::string> a = train_args(1, scratch_ + "/x.ckpt");
    a[std::size_t(std::find(a.begin(), a.end(), "--batch-size") - a.begin()) + 1] = "15";
    const test::Result r = run(2, a, "usage");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    // mpirun adds its own banner; minicnn's is one line, from rank 0 alone.
    EXPECT_EQ(count(r.err, "minicnn train: "), 1) << r.err;
    EXPECT_NE(r.err.find("minicnn train: --batch-size 15 is the global batch and must divide "
                         "among the 2 ranks\n"),
              std::string::npos)
        << r.err;
}

// A rank killed mid-run (SIGKILL) or stopped (SIGSTOP, so it never exits): the run ends within a
// bounded time with a non-zero status and a message, and the last checkpoint is intact.
TEST_F(Mpi, AKilledOrStoppedRankEndsTheRunWithAnErrorAndKeepsTheCheckpoint) {
    for (const int sig : {SIGKILL, SIGSTOP}) {
        const std::string tag = sig == SIGKILL ? "kill" : "stop";
        const std::string ck = scratch_ + "/" + tag + ".ckpt";
        std::vector<std::string> a = train_args(100000, ck);
        a.insert(a.end(), {"--rank-timeout", "3"});
        std::remove(ck.c_str());  // a checkpoint of an earlier repetition (--gtest_repeat)
        const test::Child c = spawn(2, a, tag);
        // Whatever happens below, mpirun and its ranks end with the test.
        struct EndGroup {
            pid_t pid;
            ~EndGroup() {
                if (::waitpid(pid, nullptr, WNOHANG) != 0) return;  // reaped, or not ours
                ::kill(-pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
        } end_group{c.pid};
        const auto t0 = std::chrono::steady_clock::now();
        while (!test::file_exists(ck) &&
               std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ASSERT_TRUE(test::file_exists(ck)) << "no checkpoint after 30 s";
        const pid_t victim = rank_pid(c, 1);
        ASSERT_GT(victim, 0) << "rank 1 not found among mpirun's children";
        ASSERT_EQ(::kill(victim, sig), 0);
        const auto t_kill = std::chrono::steady_clock::now();
        const test::Result r = test::wait_child_for(c, 30);
        const double took =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_kill).count();
        EXPECT_NE(r.exit_code, 0) << tag << ": " << r.err;
        if (sig == SIGKILL) {  // mpirun sees the death and ends the job
            EXPECT_NE(r.err.find("exited on signal 9"), std::string::npos) << r.err;
            EXPECT_NE(r.err.find("minicnn train (rank 0 of 2): stopped by the launcher (another "
                                 "rank died or failed)\n"),
                      std::string::npos)
                << r.err;
        } else {  // the others wait --rank-timeout, say so, and abort the run
            EXPECT_NE(r.err.find("minicnn train (rank 0 of 2): error: no answer from the other "
                                 "ranks within 3 s"),
                      std::string::npos)
                << r.err;
        }
        std::cout << "[          ] " << tag << ": the run ended " << took << " s after rank 1 was "
                  << (sig == SIGKILL ? "killed" : "stopped") << "\n";
        const Checkpoint k = load_checkpoint(ck);  // intact: loads and checks its CRC
        EXPECT_GE(std::stoi(k.get("epochs_done")), 1);
    }
}

}  // namespace
}  // namespace minicnn
