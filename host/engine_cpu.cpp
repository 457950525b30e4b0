// host/engine_cpu.cpp — CpuEngine: the training engine on the host (minicnn/engine.h).
//
// Convolution is im2col + SGEMM (host/gemm.h), dense layers are SGEMM; pooling, activations, the
// loss and Adam are plain loops; the epoch permutation is the CUDA engine's
// (minicnn/detail/permutation.h). There are no graphs: capture() returns nullptr.
// Parallelism: a batch of n images is cut into chunk_count(n) fixed chunks (at most kMaxChunks, a
// function of n only), and OpenMP threads take whole chunks; each chunk runs a single-threaded
// SGEMM on its own im2col buffer. Weight gradients are computed per chunk and summed in chunk
// order, so every result is bit-identical whatever the number of threads.
//
//   conv forward : cols (rows, kh*kw*c) = im2col(inp chunk); out chunk (rows, k) = cols @ W + b;
//   act conv backward: dW_chunk = cols^T @ dz chunk; db_chunk = column sums of dz chunk;
//                  dcols = dz chunk @ W^T; dinp chunk = col2im(dcols)      (rows = images * oh *
//                  ow)
//   dense        : the same with cols = the input rows.
// Element-wise operations (pooling, activations, Adam) split by output element: no reductions
// across threads.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "gemm.h"
#include "minicnn/detail/permutation.h"
#include "minicnn/engine.h"
#include "minicnn/error.h"

namespace minicnn {

// Hot loops are compiled twice, for AVX2 and for the baseline, and picked at load time (GCC).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MINICNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MINICNN_CLONES
#endif

namespace {

constexpr std::int64_t kMaxChunks = 8;
constexpr std::int64_t kMinChunkImages = 16;

// Number of chunks a batch of n is split into: depends on n only (determinism).
std::int64_t chunk_count(std::int64_t n) {
    return std::clamp<std::int64_t>((n + kMinChunkImages - 1) / kMinChunkImages, 1, kMaxChunks);
}
std::int64_t chunk_begin(std::int64_t n, std::int64_t c, std::int64_t chunks) {
    return n * c / chunks;
}
// Largest chunk over every batch size up to n.
std::int64_t max_chunk_images(std::int64_t n) {
    std::int64_t best = 0;
    for (std::int64_t m = 1; m <= n; ++m) {
        const std::int64_t chunks = chunk_count(m);
        for (std::int64_t c = 0; c < chunks; ++c) {
            best = std::max(best, chunk_begin(m, c + 1, chunks) - chunk_begin(m, c, chunks));
        }
    }
    return best;
}

// Applies an activation to `rows` rows of `cols` values in place.
MINICNN_CLONES void apply_activation(float* x, std::int64_t rows, std::int64_t cols,
                                     Activation act) {
    const std::int64_t total = rows * cols;
    switch (act) {
        case Activation::linear:
            break;
        case Activation::relu:
            for (std::int64_t i = 0; i < total; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
            break;
        case Activation::tanh:
            for (std::int64_t i = 0; i < total; ++i) x[i] = std::tanh(x[i]);
            break;
        case Activation::sigmoid:
            for (std::int64_t i = 0; i < total; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
            break;
        case Activation::softmax:
            for (std::int64_t r = 0; r < rows; ++r) {
                float* row = x + r * cols;
                float mx = row[0];
                for (std::int64_t j = 1; j < cols; ++j) mx = std::max(mx, row[j]);
                float sum = 0.0f;
                for (std::int64_t j = 0; j < cols; ++j) {
                    row[j] = std::exp(row[j] - mx);
                    sum += row[j];
                }
                const float inv = 1.0f / sum;
                for (std::int64_t j = 0; j < cols; ++j) row[j] *= inv;
            }
            break;
    }
}

// The image (h, w, c) with a zero border of (ph, pw): into `pad` ((h + 2ph, w + 2pw, c)), or the
// image itself when there is no padding.
const float* padded(const float* img, float* pad, const ConvGeom& g) {
    if (g.ph == 0 && g.pw == 0) return img;
    const std::int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
    std::fill(pad, pad + hp * wp * g.c, 0.0f);
    for (std::int64_t y = 0; y < g.h; ++y) {
        std::memcpy(pad + ((y + g.ph) * wp + g.pw) * g.c, img + y * g.w * g.c,
                    std::size_t(g.w * g.c) * sizeof(float));
    }
    return pad;
}

// Row layout, cols (images * oh * ow, kh * kw * c): row (b, i, j) holds the receptive field in
// (a, q, c) order, the order of the HWIO weight's rows; each (a) is one contiguous copy of kw * c
// values from the padded image.
MINICNN_CLONES void im2col_rows(float* cols, const float* inp, float* pad, std::int64_t images,
                                const ConvGeom& g) {
    const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c, seg = std::int64_t(g.kw) * g.c;
    const std::int64_t wp = g.w + 2 * g.pw;
    for (std::int64_t b = 0; b < images; ++b) {
        const float* src = padded(inp + b * g.h * g.w * g.c, pad, g);
        for (std::int64_t i = 0; i < g.oh; ++i) {
            for (std::int64_t j = 0; j < g.ow; ++j) {
                float* row = cols + ((b * g.oh + i) * g.ow + j) * kdim;
                for (int a = 0; a < g.kh; ++a) {
                    const float* s = src + ((i * g.sh + a) * wp + j * g.sw) * g.c;
                    for (std::int64_t t = 0; t < seg; ++t) row[a * seg + t] = s[t];
                }
            }
        }
    }
}

// Transposed layout, colsT (kh * kw * c, ld) with ld >= images * oh * ow: row (a, q, ch) is the
// shifted image plane; with c == 1 and stride 1 each output row is one contiguous copy.
MINICNN_CLONES void im2col_t(float* colsT, std::int64_t ld, const float* inp, float* pad,
                             std::int64_t images, const ConvGeom& g) {
    const std::int64_t wp = g.w + 2 * g.pw, pix = g.oh * g.ow;
    for (std::int64_t b = 0; b < images; ++b) {
        const float* src = padded(inp + b * g.h * g.w * g.c, pad, g);
        for (int a = 0; a < g.kh; ++a)
            for (int q = 0; q < g.kw; ++q)
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    float* dst = colsT + ((std::int64_t(a) * g.kw + q) * g.c + ch) * ld + b * pix;
                    for (std::int64_t i = 0; i < g.oh; ++i) {
                        const float* s = src + ((i * g.sh + a) * wp + q) * g.c + ch;
                        float* d = dst + i * g.ow;
                        const std::int64_t step = g.sw * g.c;
                        if (step == 1) {
                            std::memcpy(d, s, std::size_t(g.ow) * sizeof(float));
                        } else {
                            for (std::int64_t j = 0; j < g.ow; ++j) d[j] = s[j * step];
                        }
                    }
                }
    }
}

// Copies the interior of the padded gradient dpad back to dinp (one image).
void unpad(float* dimg, const float* dpad, const ConvGeom& g) {
    const std::int64_t wp = g.w + 2 * g.pw;
    for (std::int64_t y = 0; y < g.h; ++y) {
        std::memcpy(dimg + y * g.w * g.c, dpad + ((y + g.ph) * wp + g.pw) * g.c,
                    std::size_t(g.w * g.c) * sizeof(float));
    }
}

// dinp (images, h, w, c) = the sum of the dcols entries of every window position reading a cell
// (the adjoint of im2col_rows). Accumulates in a padded image, then drops the border.
MINICNN_CLONES void col2im_rows(float* dinp, const float* dcols, float* dpad, std::int64_t images,
                                const ConvGeom& g) {
    const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c, seg = std::int64_t(g.kw) * g.c;
    const std::int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
    const bool has_pad = g.ph != 0 || g.pw != 0;
    for (std::int64_t b = 0; b < images; ++b) {
        float* dimg = dinp + b * g.h * g.w * g.c;
        float* acc = has_pad ? dpad : dimg;
        std::fill(acc, acc + hp * wp * g.c, 0.0f);
        for (std::int64_t i = 0; i < g.oh; ++i) {
            for (std::int64_t j = 0; j < g.ow; ++j) {
                const float* row = dcols + ((b * g.oh + i) * g.ow + j) * kdim;
                for (int a = 0; a < g.kh; ++a) {
                    float* d = acc + ((i * g.sh + a) * wp + j * g.sw) * g.c;
                    for (std::int64_t t = 0; t < seg; ++t) d[t] += row[a * seg + t];
                }
            }
        }
        if (has_pad) unpad(dimg, dpad, g);
    }
}

// The adjoint of im2col_t.
MINICNN_CLONES void col2im_t(float* dinp, const float* dcolsT, std::int64_t ld, float* dpad,
                             std::int64_t images, const ConvGeom& g) {
    const std::int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, pix = g.oh * g.ow;
    const bool has_pad = g.ph != 0 || g.pw != 0;
    for (std::int64_t b = 0; b < images; ++b) {
        float* dimg = dinp + b * g.h * g.w * g.c;
        float* acc = has_pad ? dpad : dimg;
        std::fill(acc, acc + hp * wp * g.c, 0.0f);
        for (int a = 0; a < g.kh; ++a)
            for (int q = 0; q < g.kw; ++q)
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    const float* src =
                        dcolsT + ((std::int64_t(a) * g.kw + q) * g.c + ch) * ld + b * pix;
                    for (std::int64_t i = 0; i < g.oh; ++i) {
                        float* d = acc + ((i * g.sh + a) * wp + q) * g.c + ch;
                        const float* s = src + i * g.ow;
                        const std::int64_t step = g.sw * g.c;
                        if (step == 1) {
                            for (std::int64_t j = 0; j < g.ow; ++j) d[j] += s[j];
                        } else {
                            for (std::int64_t j = 0; j < g.ow; ++j) d[j * step] += s[j];
                        }
                    }
                }
        if (has_pad) unpad(dimg, dpad, g);
    }
}

// o (rows, k) += bias (k).
MINICNN_CLONES void add_bias(float* o, const float* bias, std::int64_t rows, std::int64_t k) {
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < k; ++j) o[r * k + j] += bias[j];
}

// o (rows, k) = oT (k, rows)^T + bias (k).
MINICNN_CLONES void transpose_add_bias(float* o, const float* oT, const float* bias,
                                       std::int64_t rows, std::int64_t k) {
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < k; ++j) o[r * k + j] = oT[j * rows + r] + bias[j];
}

// One output row (image b, row i; bi = b * oh + i) of max pooling with the first-max mask: the
// window is walked in row-major order with a strict >, branch-free.
MINICNN_CLONES void maxpool_row(float* out, std::int32_t* mask, const float* inp, const PoolGeom& g,
                                std::int64_t bi) {
    const std::int64_t b = bi / g.oh, i = bi % g.oh;
    if (g.kh == 2 && g.kw == 2) {
        // The 2x2 window (LeNet's): four candidates per output, kept in registers.
        const std::int64_t row = g.w * g.c;
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const std::int64_t o = ((b * g.oh + i) * g.ow + j) * g.c;
            const float* __restrict p00 = inp + ((b * g.h + i * g.sh) * g.w + j * g.sw) * g.c;
            const float* __restrict p01 = p00 + g.c;
            const float* __restrict p10 = p00 + row;
            const float* __restrict p11 = p10 + g.c;
            float* __restrict best = out + o;
            std::int32_t* __restrict arg = mask + o;
#pragma omp simd
            for (std::int64_t ch = 0; ch < g.c; ++ch) {
                float v = p00[ch];
                std::int32_t m = 0;
                m = p01[ch] > v ? 1 : m;
                v = p01[ch] > v ? p01[ch] : v;
                m = p10[ch] > v ? 2 : m;
                v = p10[ch] > v ? p10[ch] : v;
                m = p11[ch] > v ? 3 : m;
                v = p11[ch] > v ? p11[ch] : v;
                best[ch] = v;
                arg[ch] = m;
            }
        }
        return;
    }
    for (std::int64_t j = 0; j < g.ow; ++j) {
        const std::int64_t o = ((b * g.oh + i) * g.ow + j) * g.c;
        const float* base = inp + ((b * g.h + i * g.sh) * g.w + j * g.sw) * g.c;
        float* best = out + o;
        std::int32_t* arg = mask + o;
        for (std::int64_t ch = 0; ch < g.c; ++ch) {
            best[ch] = base[ch];
            arg[ch] = 0;
        }
        for (int a = 0; a < g.kh; ++a) {
            for (int q = (a == 0 ? 1 : 0); q < g.kw; ++q) {
                const float* cell = base + (std::int64_t(a) * g.w + q) * g.c;
                const std::int32_t pos = a * g.kw + q;
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    const bool gt = cell[ch] > best[ch];
                    best[ch] = gt ? cell[ch] : best[ch];
                    arg[ch] = gt ? pos : arg[ch];
                }
            }
        }
    }
}

// din = dout where out > 0, else 0 (din may alias dout).
MINICNN_CLONES void relu_backward(float* din, const float* dout, const float* out, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

// One Adam update of n parameters (the formula of minicnn/engine.h, lr_t bias-corrected).
MINICNN_CLONES void adam_range(float* params, const float* grads, float* m, float* v,
                               std::int64_t n, float lr_t, float b1, float b2, float eps) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float g = grads[i];
        const float mi = b1 * m[i] + (1.0f - b1) * g;
        const float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr_t * mi / (std::sqrt(vi) + eps);
    }
}

// A fixed pool of worker threads for the engine's parallel loops.
//
// run(n, fn) publishes a job as one atomic ticket (generation | n | next index); the caller and any
// awake workers claim indices from it with a compare-and-swap, and run() returns as soon as every
// index has been *done*, whoever did it. A worker that was not scheduled in time simply finds the
// job finished (its generation is over) and goes back to waiting: on a machine whose cores are busy
// with other processes nobody waits for a descheduled thread that holds no work. Idle workers spin
// briefly, then sleep on a condition variable (OpenMP's default active wait made a 2-thread step
// 100x slower when the two cores were shared). Which thread runs which index never changes a
// result: the callers' reductions are per index, in a fixed order.
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
        for (int spin = 0; spin < kSpin; ++spin) {
            if (done_.load(std::memory_order_acquire) == n) return;
        }
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == n; });
    }

private:
    static constexpr int kSpin = 20000;
    static constexpr std::int64_t kMaxItems = (1 << 20) - 1;
    static constexpr std::uint64_t kGenMask = (1ull << 24) - 1;

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
            std::uint64_t gen = ticket_.load(std::memory_order_acquire) >> 40;
            for (int spin = 0; spin < kSpin && gen == seen; ++spin) {
                gen = ticket_.load(std::memory_order_acquire) >> 40;
            }
            if (gen == seen) {
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

// The transposed layout pays off when a window row of one channel is a contiguous run.
bool use_transposed(const ConvGeom& g) {
    return g.c == 1 && g.sw == 1;
}

// sums[j] = sum over rows of x (rows, cols), rows in order.
MINICNN_CLONES void column_sums(float* sums, const float* x, std::int64_t rows, std::int64_t cols) {
    std::fill(sums, sums + cols, 0.0f);
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = x + r * cols;
        for (std::int64_t j = 0; j < cols; ++j) sums[j] += row[j];
    }
}

class CpuEngine final : public Engine {
public:
    CpuEngine() : threads_(std::max(1, omp_get_max_threads())), pool_(threads_) {
        cpu_gemm::use_single_blas_thread();
        scratch_.resize(std::size_t(threads_));
    }

    Backend backend() const override { return Backend::cpu; }
    std::string name() const override {
        std::ostringstream os;
        os << "cpu (" << threads_ << " threads, " << cpu_gemm::sgemm_backend_name() << ")";
        return os.str();
    }

    void* alloc_bytes(std::size_t bytes) override {
        if (bytes > std::numeric_limits<std::size_t>::max() - 255) {  // rounding up would wrap
            throw DeviceError("cpu engine: out of host memory allocating " + std::to_string(bytes) +
                              " bytes");
        }
        const std::size_t rounded = ((bytes + 255) / 256) * 256;
        void* p = std::aligned_alloc(256, rounded == 0 ? 256 : rounded);
        if (!p) {
            throw DeviceError("cpu engine: out of host memory allocating " + std::to_string(bytes) +
                              " bytes");
        }
        std::memset(p, 0, rounded == 0 ? 256 : rounded);
        return p;
    }
    void free_bytes(void* p) noexcept override { std::free(p); }
    void upload(void* dst, const void* src, std::size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void download(void* dst, const void* src, std::size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void copy(void* dst, const void* src, std::size_t bytes) override {
        if (bytes && dst != src) std::memmove(dst, src, bytes);
    }
    void fill_zero(void* dst, std::size_t bytes) override {
        if (bytes) std::memset(dst, 0, bytes);
    }
    void synchronize() override {}

    void reserve_conv(const ConvGeom& g) override {
        const std::int64_t rows = max_chunk_images(g.n) * g.oh * g.ow;
        const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c;
        ensure_scratch(rows * kdim, rows * std::max(kdim, g.k),
                       (g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c);
        ensure_partials(chunk_count(g.n) * (kdim * g.k + g.k));
    }
    void reserve_dense(std::int64_t n, std::int64_t n_in, std::int64_t n_out) override {
        ensure_partials(chunk_count(n) * (n_in * n_out + n_out));
    }
    void reserve_loss(std::int64_t) override {}  // the loss needs no scratch

    std::unique_ptr<EngineGraph> capture(const std::function<void()>&) override { return nullptr; }

    void conv2d_forward(float* out, const float* inp, const float* weight, const float* bias,
                        const ConvGeom& g, Activation act) override {
        const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c;
        const std::int64_t pix = g.oh * g.ow;
        const std::int64_t chunks = chunk_count(g.n);
        const bool transposed = use_transposed(g);
        reserve_conv(g);
        parallel_for(chunks, [&](std::int64_t c, int worker) {
            const std::int64_t b0 = chunk_begin(g.n, c, chunks),
                               b1 = chunk_begin(g.n, c + 1, chunks);
            const std::int64_t rows = (b1 - b0) * pix;
            Scratch& s = scratch_[std::size_t(worker)];
            const float* img = inp + b0 * g.h * g.w * g.c;
            float* o = out + b0 * pix * g.k;
            if (transposed) {
                // outT (k, rows) = W^T (k, kdim) @ colsT (kdim, rows), then back to (rows, k).
                im2col_t(s.cols.data(), rows, img, s.pad.data(), b1 - b0, g);
                cpu_gemm::sgemm(true, false, g.k, rows, kdim, 1.0f, weight, g.k, s.cols.data(),
                                rows, 0.0f, s.dcols.data(), rows);
                transpose_add_bias(o, s.dcols.data(), bias, rows, g.k);
            } else {
                im2col_rows(s.cols.data(), img, s.pad.data(), b1 - b0, g);
                cpu_gemm::sgemm(false, false, rows, g.k, kdim, 1.0f, s.cols.data(), kdim, weight,
                                g.k, 0.0f, o, g.k);
                add_bias(o, bias, rows, g.k);
            }
            apply_activation(o, rows, g.k, act);
        });
    }

    void conv2d_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                         const float* inp, const float* weight, const ConvGeom& g) override {
        const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c;
        const std::int64_t pix = g.oh * g.ow;
        const std::int64_t chunks = chunk_count(g.n);
        const std::int64_t part = kdim * g.k + g.k;
        const bool transposed = use_transposed(g);
        reserve_conv(g);
        parallel_for(chunks, [&](std::int64_t c, int worker) {
            const std::int64_t b0 = chunk_begin(g.n, c, chunks),
                               b1 = chunk_begin(g.n, c + 1, chunks);
            const std::int64_t rows = (b1 - b0) * pix;
            Scratch& s = scratch_[std::size_t(worker)];
            const float* dzc = dz + b0 * pix * g.k;
            const float* img = inp + b0 * g.h * g.w * g.c;
            float* pw = partials_.data() + c * part;
            if (transposed) {
                // dW (kdim, k) = colsT (kdim, rows) @ dz (rows, k); dcolsT = W (kdim, k) @ dz^T.
                im2col_t(s.cols.data(), rows, img, s.pad.data(), b1 - b0, g);
                cpu_gemm::sgemm(false, false, kdim, g.k, rows, 1.0f, s.cols.data(), rows, dzc, g.k,
                                0.0f, pw, g.k);
                if (dinp) {
                    cpu_gemm::sgemm(false, true, kdim, rows, g.k, 1.0f, weight, g.k, dzc, g.k, 0.0f,
                                    s.dcols.data(), rows);
                    col2im_t(dinp + b0 * g.h * g.w * g.c, s.dcols.data(), rows, s.pad.data(),
                             b1 - b0, g);
                }
            } else {
                // dW (kdim, k) = cols^T (kdim, rows) @ dz (rows, k); dcols = dz @ W^T.
                im2col_rows(s.cols.data(), img, s.pad.data(), b1 - b0, g);
                cpu_gemm::sgemm(true, false, kdim, g.k, rows, 1.0f, s.cols.data(), kdim, dzc, g.k,
                                0.0f, pw, g.k);
                if (dinp) {
                    cpu_gemm::sgemm(false, true, rows, kdim, g.k, 1.0f, dzc, g.k, weight, g.k, 0.0f,
                                    s.dcols.data(), kdim);
                    col2im_rows(dinp + b0 * g.h * g.w * g.c, s.dcols.data(), s.pad.data(), b1 - b0,
                                g);
                }
            }
            column_sums(pw + kdim * g.k, dzc, rows, g.k);
        });
        reduce_partials(dweight, dbias, chunks, kdim * g.k, g.k);
    }

    void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp,
                           const PoolGeom& g) override {
        parallel_for(g.n * g.oh,
                     [&](std::int64_t bi, int /*worker*/) { maxpool_row(out, mask, inp, g, bi); });
    }

    void maxpool2d_backward(float* dinp, const float* dout, const std::int32_t* mask,
                            const PoolGeom& g) override {
        const std::int64_t img = g.h * g.w * g.c;
        parallel_for(g.n, [&](std::int64_t b, int /*worker*/) {
            float* d = dinp + b * img;
            std::fill(d, d + img, 0.0f);
            for (std::int64_t i = 0; i < g.oh; ++i) {
                for (std::int64_t j = 0; j < g.ow; ++j) {
                    const std::int64_t o = ((b * g.oh + i) * g.ow + j) * g.c;
                    for (std::int64_t ch = 0; ch < g.c; ++ch) {
                        const int a = mask[o + ch] / g.kw, q = mask[o + ch] % g.kw;
                        d[((i * g.sh + a) * g.w + j * g.sw + q) * g.c + ch] += dout[o + ch];
                    }
                }
            }
        });
    }

    void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g) override {
        const float inv = 1.0f / float(g.kh * g.kw);
        parallel_for(g.n * g.oh, [&](std::int64_t bi, int /*worker*/) {
            const std::int64_t b = bi / g.oh, i = bi % g.oh;
            for (std::int64_t j = 0; j < g.ow; ++j) {
                const std::int64_t o = ((b * g.oh + i) * g.ow + j) * g.c;
                const float* base = inp + ((b * g.h + i * g.sh) * g.w + j * g.sw) * g.c;
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    float sum = 0.0f;
                    for (int a = 0; a < g.kh; ++a)
                        for (int q = 0; q < g.kw; ++q)
                            sum += base[(std::int64_t(a) * g.w + q) * g.c + ch];
                    out[o + ch] = sum * inv;
                }
            }
        });
    }

    void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g) override {
        const std::int64_t img = g.h * g.w * g.c;
        const float inv = 1.0f / float(g.kh * g.kw);
        parallel_for(g.n, [&](std::int64_t b, int /*worker*/) {
            float* d = dinp + b * img;
            std::fill(d, d + img, 0.0f);
            for (std::int64_t i = 0; i < g.oh; ++i)
                for (std::int64_t j = 0; j < g.ow; ++j)
                    for (std::int64_t ch = 0; ch < g.c; ++ch) {
                        const float v = dout[((b * g.oh + i) * g.ow + j) * g.c + ch] * inv;
                        for (int a = 0; a < g.kh; ++a)
                            for (int q = 0; q < g.kw; ++q)
                                d[((i * g.sh + a) * g.w + j * g.sw + q) * g.c + ch] += v;
                    }
        });
    }

    void activation_forward(float* out, const float* in, std::int64_t rows, std::int64_t cols,
                            Activation act) override {
        const std::int64_t chunks = chunk_count(rows);
        parallel_for(chunks, [&](std::int64_t c, int /*worker*/) {
            const std::int64_t r0 = chunk_begin(rows, c, chunks),
                               r1 = chunk_begin(rows, c + 1, chunks);
            if (out != in)
                std::memcpy(out + r0 * cols, in + r0 * cols,
                            std::size_t((r1 - r0) * cols) * sizeof(float));
            apply_activation(out + r0 * cols, r1 - r0, cols, act);
        });
    }

    void activation_backward(float* din, const float* dout, const float* out, std::int64_t rows,
                             std::int64_t cols, Activation act) override {
        const std::int64_t total = rows * cols;
        switch (act) {
            case Activation::linear:
                copy(din, dout, std::size_t(total) * sizeof(float));
                break;
            case Activation::relu: {
                const std::int64_t chunks = chunk_count(rows);
                parallel_for(chunks, [&](std::int64_t c, int /*worker*/) {
                    const std::int64_t r0 = chunk_begin(rows, c, chunks) * cols;
                    const std::int64_t r1 = chunk_begin(rows, c + 1, chunks) * cols;
                    relu_backward(din + r0, dout + r0, out + r0, r1 - r0);
                });
            } break;
            case Activation::tanh:
                parallel_range(total, [&](std::int64_t i0, std::int64_t i1) {
                    for (std::int64_t i = i0; i < i1; ++i)
                        din[i] = dout[i] * (1.0f - out[i] * out[i]);
                });
                break;
            case Activation::sigmoid:
                parallel_range(total, [&](std::int64_t i0, std::int64_t i1) {
                    for (std::int64_t i = i0; i < i1; ++i)
                        din[i] = dout[i] * out[i] * (1.0f - out[i]);
                });
                break;
            case Activation::softmax:
                parallel_for(rows, [&](std::int64_t r, int /*worker*/) {
                    const float* a = out + r * cols;
                    const float* d = dout + r * cols;
                    float dot = 0.0f;
                    for (std::int64_t j = 0; j < cols; ++j) dot += d[j] * a[j];
                    float* o = din + r * cols;
                    for (std::int64_t j = 0; j < cols; ++j) o[j] = a[j] * (d[j] - dot);
                });
                break;
        }
    }

    void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                       std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                       Activation act) override {
        const std::int64_t chunks = chunk_count(n);
        parallel_for(chunks, [&](std::int64_t c, int /*worker*/) {
            const std::int64_t r0 = chunk_begin(n, c, chunks), r1 = chunk_begin(n, c + 1, chunks);
            float* o = out + r0 * n_out;
            cpu_gemm::sgemm(false, false, r1 - r0, n_out, n_in, 1.0f, inp + r0 * n_in, n_in, weight,
                            n_out, 0.0f, o, n_out);
            for (std::int64_t r = 0; r < r1 - r0; ++r)
                for (std::int64_t j = 0; j < n_out; ++j) o[r * n_out + j] += bias[j];
            apply_activation(o, r1 - r0, n_out, act);
        });
    }

    void dense_backward(float* dinp, float* dweight, float* dbias, const float* dz,
                        const float* inp, const float* weight, std::int64_t n, std::int64_t n_in,
                        std::int64_t n_out) override {
        const std::int64_t chunks = chunk_count(n);
        const std::int64_t part = n_in * n_out + n_out;
        reserve_dense(n, n_in, n_out);
        parallel_for(chunks, [&](std::int64_t c, int /*worker*/) {
            const std::int64_t r0 = chunk_begin(n, c, chunks), r1 = chunk_begin(n, c + 1, chunks);
            const float* dzc = dz + r0 * n_out;
            float* pw = partials_.data() + c * part;
            cpu_gemm::sgemm(true, false, n_in, n_out, r1 - r0, 1.0f, inp + r0 * n_in, n_in, dzc,
                            n_out, 0.0f, pw, n_out);
            column_sums(pw + n_in * n_out, dzc, r1 - r0, n_out);
            if (dinp) {
                cpu_gemm::sgemm(false, true, r1 - r0, n_in, n_out, 1.0f, dzc, n_out, weight, n_out,
                                0.0f, dinp + r0 * n_in, n_in);
            }
        });
        reduce_partials(dweight, dbias, chunks, n_in * n_out, n_out);
    }

    void softmax_xent(float* dlogits, Metrics* metrics, const float* probs,
                      const std::int32_t* labels, std::int64_t n, std::int64_t classes) override {
        double loss = 0.0, correct = 0.0;
        const float inv_n = 1.0f / float(n);
        for (std::int64_t r = 0; r < n; ++r) {
            const float* p = probs + r * classes;
            const std::int32_t y = labels[r];
            MINICNN_REQUIRE(y >= 0 && y < classes, "softmax_xent: label " << y << " of sample " << r
                                                                          << " is outside [0, "
                                                                          << classes << ")");
            std::int64_t best = 0;
            for (std::int64_t j = 1; j < classes; ++j)
                if (p[j] > p[best]) best = j;
            correct += best == y ? 1.0 : 0.0;
            loss += -std::log(std::max(double(p[y]), 1e-7));
            if (dlogits) {
                float* d = dlogits + r * classes;
                for (std::int64_t j = 0; j < classes; ++j)
                    d[j] = (p[j] - (j == y ? 1.0f : 0.0f)) * inv_n;
            }
        }
        metrics->loss_sum += loss;
        metrics->correct += correct;
        metrics->count += double(n);
    }

    void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                     const AdamConfig& cfg, const StepCounters* counters) override {
        const double t = double(counters->step + 1);
        const float lr_t = float(double(cfg.lr) * std::sqrt(1.0 - std::pow(double(cfg.beta2), t)) /
                                 (1.0 - std::pow(double(cfg.beta1), t)));
        const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
        parallel_range(n, [&](std::int64_t i0, std::int64_t i1) {
            adam_range(params + i0, grads + i0, m + i0, v + i0, i1 - i0, lr_t, b1, b2, eps);
        });
    }

    void gather_batch(float* x, std::int32_t* y, const float* images, const std::int32_t* labels,
                      const std::int32_t* perm, const StepCounters* counters, std::int64_t batch,
                      std::int64_t sample_numel) override {
        const std::int32_t* idx = perm + counters->cursor;
        parallel_for(batch, [&](std::int64_t i, int /*worker*/) {
            std::memcpy(x + i * sample_numel, images + std::int64_t(idx[i]) * sample_numel,
                        std::size_t(sample_numel) * sizeof(float));
            y[i] = labels[idx[i]];
        });
    }

    void advance(StepCounters* counters, std::int64_t batch, bool count_step) override {
        if (count_step) counters->step += 1;
        counters->cursor += batch;
    }

    // The CUDA engine's permutation (minicnn/detail/permutation.h), element by element.
    void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed,
                     bool shuffle) override {
        detail::check_permutation_size(n);
        const detail::EpochPermutation p(std::uint64_t(n), seed, shuffle);
        parallel_range(n, [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i) perm[i] = std::int32_t(p(std::uint64_t(i)));
        });
    }

private:
    struct Scratch {
        std::vector<float> cols;   // im2col matrix (either layout)
        std::vector<float> dcols;  // its gradient, or the transposed forward output
        std::vector<float> pad;    // one zero-padded image
    };

    void ensure_scratch(std::int64_t cols, std::int64_t dcols, std::int64_t pad) {
        for (Scratch& s : scratch_) {
            if (std::int64_t(s.cols.size()) < cols) s.cols.resize(std::size_t(cols));
            if (std::int64_t(s.dcols.size()) < dcols) s.dcols.resize(std::size_t(dcols));
            if (std::int64_t(s.pad.size()) < pad) s.pad.resize(std::size_t(pad));
        }
    }
    void ensure_partials(std::int64_t n) {
        if (std::int64_t(partials_.size()) < n) partials_.resize(std::size_t(n));
    }
    // dweight = sum of the chunks' partial gradients, chunk 0 first (fixed order).
    void reduce_partials(float* dweight, float* dbias, std::int64_t chunks, std::int64_t wn,
                         std::int64_t bn) {
        const std::int64_t part = wn + bn;
        const float* p = partials_.data();
        parallel_range(part, [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i) {
                float s = p[i];
                for (std::int64_t c = 1; c < chunks; ++c) s += p[c * part + i];
                if (i < wn) {
                    dweight[i] = s;
                } else if (dbias) {
                    dbias[i - wn] = s;
                }
            }
        });
    }

    // fn(i, worker) for i in [0, n), on the pool.
    void parallel_for(std::int64_t n, const std::function<void(std::int64_t, int)>& fn) {
        pool_.run(n, fn);
    }
    // fn(begin, end) over fixed blocks of [0, n) (element-wise loops).
    template <class F>
    void parallel_range(std::int64_t n, F&& fn) {
        const std::int64_t blocks = std::clamp<std::int64_t>(n / 16384, 1, 64);
        pool_.run(blocks, [&](std::int64_t b, int) { fn(n * b / blocks, n * (b + 1) / blocks); });
    }

    int threads_;
    ThreadPool pool_;
    std::vector<Scratch> scratch_;  // one per pool worker
    std::vector<float> partials_;   // (chunks, weight + bias) partial gradients
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine() {
    return std::make_unique<CpuEngine>();
}

std::unique_ptr<Engine> make_engine(const Device& device) {
    const Backend b = resolve_backend(device);
    if (b == Backend::cuda) {
#if defined(MINICNN_WITH_CUDA)
        return make_cuda_engine(device.index);
#else
        throw DeviceError(
            "make_engine: CUDA was requested but this build of minicnn has no CUDA backend");
#endif
    }
    return make_cpu_engine();
}

}  // namespace minicnn
