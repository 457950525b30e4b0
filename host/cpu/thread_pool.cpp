// host/cpu/thread_pool.cpp — the CPU backend's worker pool (host/cpu/thread_pool.h).
//
// run(n, fn) publishes a job as one atomic ticket (generation | n | next index); the caller and any
// awake workers claim indices from it with a compare-and-swap, and run() returns as soon as every
// index has been *done*, whoever did it. A worker that was not scheduled in time simply finds the
// job finished (its generation is over) and goes back to waiting: on a machine whose cores are busy
// with other processes nobody waits for a descheduled thread that holds no work. Idle workers (and
// a caller waiting for the last index) spin for kSpin checks, about the gaps between the jobs of a
// training step, yielding the core every kYieldEvery checks, then sleep on a condition variable.
// (OpenMP's default active wait made a 2-thread step 100x slower when the two cores were shared;
// a spin of 20,000 checks without yielding put the workers to sleep and woke them again between
// most jobs of a batch-32 step; 200,000 without yielding was 15% slower than with it when two
// trainings shared the two cores.) Which thread runs which index never changes a result: the
// callers' reductions are per index, in a fixed order.
#include "thread_pool.h"

#include "minicnn/error.h"

#include <omp.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace minicnn::cpu {

namespace {

class ThreadPool {
public:
    explicit ThreadPool(int threads) {
        for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
    }
    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        wake_.notify_all();
        for (std::thread& t : workers_) t.join();
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return int(workers_.size()) + 1; }

    // Calls fn(i, worker) for every i in [0, n) (worker in [0, size())) and returns when all calls
    // have returned.
    void run(std::int64_t n, const std::function<void(std::int64_t, int)>& fn) {
        if (n <= 0) return;
        if (workers_.empty() || n == 1) {
            for (std::int64_t i = 0; i < n; ++i) fn(i, 0);
            return;
        }
        if (n > kMaxItems) {  // the ticket holds 20-bit counts: run blocks of indices instead
            const std::int64_t blocks = (n + kMaxItems - 1) / kMaxItems;
            run(blocks, [&](std::int64_t b, int w) {
                for (std::int64_t i = b * n / blocks; i < (b + 1) * n / blocks; ++i) fn(i, w);
            });
            return;
        }
        fn_ = &fn;
        done_.store(0, std::memory_order_relaxed);
        generation_ = (generation_ + 1) & kGenMask;
        // seq_cst store and load here and in worker_loop (a Dekker pattern): either this sees the
        // worker's sleeper count or the worker's wait predicate sees the new ticket.
        ticket_.store((generation_ << 40) | (std::uint64_t(n) << 20));
        if (sleepers_.load() > 0) {
            std::lock_guard<std::mutex> lk(mu_);
            wake_.notify_all();
        }
        work(generation_, 0);
        if (spin_until([&] { return done_.load(std::memory_order_acquire) == n; })) return;
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == n; });
    }

private:
    static constexpr int kSpin = 200000;
    static constexpr int kYieldEvery = 2048;
    static constexpr std::int64_t kMaxItems = (1 << 20) - 1;
    static constexpr std::uint64_t kGenMask = (1ull << 24) - 1;

    // Checks done() up to kSpin times, yielding the core every kYieldEvery checks; whether it
    // became true.
    template <class Done>
    static bool spin_until(Done&& done) {
        for (int spin = 0; spin < kSpin; ++spin) {
            if (done()) return true;
            if (spin % kYieldEvery == kYieldEvery - 1) std::this_thread::yield();
        }
        return false;
    }

    // Claims and runs indices of generation `gen` until none is left.
    void work(std::uint64_t gen, int worker) {
        std::uint64_t t = ticket_.load(std::memory_order_acquire);
        for (;;) {
            const std::uint64_t n = (t >> 20) & 0xFFFFF, i = t & 0xFFFFF;
            if ((t >> 40) != gen || i >= n) return;
            if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
            // The claimed index is not done, so the job (and fn_) cannot have moved on.
            (*fn_)(std::int64_t(i), worker);
            if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == std::int64_t(n)) {
                std::lock_guard<std::mutex> lk(mu_);
                done_cv_.notify_all();
            }
            t = ticket_.load(std::memory_order_acquire);
        }
    }

    void worker_loop(int worker) {
        std::uint64_t seen = 0;
        for (;;) {
            std::uint64_t gen = seen;
            const auto new_job = [&] {
                gen = ticket_.load(std::memory_order_acquire) >> 40;
                return gen != seen;
            };
            if (!spin_until(new_job)) {
                std::unique_lock<std::mutex> lk(mu_);
                sleepers_.fetch_add(1);
                wake_.wait(lk, [&] { return stop_ || (ticket_.load() >> 40) != seen; });
                sleepers_.fetch_sub(1, std::memory_order_acq_rel);
                if (stop_) return;
                gen = ticket_.load(std::memory_order_acquire) >> 40;
            }
            seen = gen;
            work(gen, worker);
        }
    }

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable wake_, done_cv_;
    const std::function<void(std::int64_t, int)>* fn_ = nullptr;
    std::uint64_t generation_ = 0;          // the caller's: generation of the current job
    std::atomic<std::uint64_t> ticket_{0};  // generation << 40 | n << 20 | next index
    std::atomic<std::int64_t> done_{0};     // indices of the current job done
    std::atomic<int> sleepers_{0};
    bool stop_ = false;
};

// Held by the caller whose job is on the pool (or who replaces it); a second caller runs inline
// instead of queueing.
std::mutex& pool_busy() {
    static std::mutex m;
    return m;
}

std::atomic<int>& threads() {
    static std::atomic<int> n{std::max(1, omp_get_max_threads())};
    return n;
}

// The pool, created on first use; only touched with pool_busy() held.
std::unique_ptr<ThreadPool>& pool_slot() {
    static std::unique_ptr<ThreadPool> pool;
    return pool;
}

}  // namespace

int thread_count() {
    return threads().load();
}

void set_thread_count(int n) {
    MINICNN_REQUIRE(n >= 1 && n <= 4096, "set_thread_count: expected 1 to 4096 threads, got " << n);
    std::lock_guard<std::mutex> busy(pool_busy());
    if (n == threads().load() && pool_slot()) return;
    pool_slot().reset();  // joins the old workers
    threads().store(n);
}

std::int64_t max_chunk_images(std::int64_t n) {
    std::int64_t best = 0;
    for (std::int64_t m = 1; m <= n; ++m) {
        for (std::int64_t c = 0; c < chunk_count(m); ++c) {
            best = std::max(best, chunk_begin(m, c + 1) - chunk_begin(m, c));
        }
    }
    return best;
}

void parallel_for(std::int64_t n, const std::function<void(std::int64_t, int)>& fn) {
    if (n <= 0) return;
    std::exception_ptr first;
    std::mutex first_mu;
    const std::function<void(std::int64_t, int)> guarded = [&](std::int64_t i, int worker) {
        try {
            fn(i, worker);
        } catch (...) {
            std::lock_guard<std::mutex> lk(first_mu);
            if (!first) first = std::current_exception();
        }
    };
    std::unique_lock<std::mutex> busy(pool_busy(), std::try_to_lock);
    if (n == 1 || !busy.owns_lock()) {
        for (std::int64_t i = 0; i < n; ++i) guarded(i, 0);
    } else {
        std::unique_ptr<ThreadPool>& pool = pool_slot();
        if (!pool) pool = std::make_unique<ThreadPool>(thread_count());
        pool->run(n, guarded);
    }
    if (first) std::rethrow_exception(first);
}

}  // namespace minicnn::cpu
